"""Exit codes (go-state-types exitcode) and ActorError, the one exception that crosses the VM boundary.

Codes 0-15 are the system's; actors use 16 and up. This module and chain/vm/runtime.py are the VM's
interface to the actors, so they import nothing from the rest of chain.vm.
"""

from enum import IntEnum


class ExitCode(IntEnum):
    Ok = 0
    SysErrSenderInvalid = 1
    SysErrSenderStateInvalid = 2
    SysErrInvalidMethod = 3
    SysErrIllegalInstruction = 4
    SysErrInvalidReceiver = 5
    SysErrInsufficientFunds = 6
    SysErrOutOfGas = 7
    SysErrForbidden = 8
    SysErrIllegalExitCode = 9
    SysErrFatal = 10
    SysErrMissingReturn = 11

    ErrIllegalArgument = 16
    ErrNotFound = 17
    ErrForbidden = 18
    ErrInsufficientFunds = 19
    ErrIllegalState = 20
    ErrSerialization = 21
    ErrUnhandledMessage = 22
    ErrUnspecified = 23
    ErrAssertionFailed = 24
    ErrReadOnly = 25
    ErrNotPayable = 26

    # Actor-specific codes start at 32 (go-state-types FirstActorSpecificExitCode).
    ErrFirstActorSpecific = 32

    @property
    def is_success(self) -> bool:
        return self is ExitCode.Ok

    @property
    def is_system(self) -> bool:
        return self < 16


class ActorError(Exception):
    """An actor's abort: the VM records exit_code in the receipt and rolls back the call's state."""

    def __init__(self, exit_code: ExitCode | int, message: str) -> None:
        super().__init__(message)
        self.exit_code = ExitCode(exit_code) if exit_code in ExitCode._value2member_map_ else exit_code
        self.message = message

    def __str__(self) -> str:
        code = self.exit_code
        name = code.name if isinstance(code, ExitCode) else str(int(code))
        return f"{name}({int(code)}): {self.message}"


# The one set of helpers actors raise with (builtin-actors' actor_error!/ensure!): `require` for a
# condition, the constructors for a raise that needs more than a condition.


def require(condition: bool, code: ExitCode | int, message: str) -> None:
    """Abort with `code` and `message` unless condition holds."""
    if not condition:
        raise ActorError(code, message)


def _with_cause(message: str, cause: Exception | None) -> str:
    return message if cause is None else f"{message}: {cause}"


def illegal_argument(message: str, cause: Exception | None = None) -> ActorError:
    return ActorError(ExitCode.ErrIllegalArgument, _with_cause(message, cause))


def illegal_state(message: str, cause: Exception | None = None) -> ActorError:
    return ActorError(ExitCode.ErrIllegalState, _with_cause(message, cause))


def not_found(message: str) -> ActorError:
    return ActorError(ExitCode.ErrNotFound, message)


def forbidden(message: str) -> ActorError:
    return ActorError(ExitCode.ErrForbidden, message)


def insufficient_funds(message: str) -> ActorError:
    return ActorError(ExitCode.ErrInsufficientFunds, message)


def serialization(message: str, cause: Exception | None = None) -> ActorError:
    return ActorError(ExitCode.ErrSerialization, _with_cause(message, cause))
