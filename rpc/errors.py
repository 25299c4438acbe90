"""JSON-RPC error codes, and the exception handlers raise to answer with one.

Codes below zero are JSON-RPC 2.0's own. Lotus answers every error a method returns with code 1 unless
the error's type is registered with a code of its own (go-jsonrpc `Errors`, lotus `api/api_errors.go`,
which numbers them from 2); `LotusCode` lists those numbers as Lotus master has them.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import Any, Final

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
# go-jsonrpc's code for an error a method returned whose type has no code of its own.
GENERIC_ERROR: Final = 1


class LotusCode(IntEnum):
    """lotus api/api_errors.go: iota + jsonrpc.FirstUserCode (2)."""

    OUT_OF_GAS = 2
    EXECUTION_REVERTED = 3
    F3_DISABLED = 4
    F3_PARTICIPATION_TICKET_INVALID = 5
    F3_PARTICIPATION_TICKET_EXPIRED = 6
    F3_PARTICIPATION_ISSUER_MISMATCH = 7
    F3_PARTICIPATION_TOO_MANY_INSTANCES = 8
    F3_PARTICIPATION_TICKET_START_BEFORE_EXISTING = 9
    F3_NOT_READY = 10
    ACTOR_NOT_FOUND = 11
    NULL_ROUND = 12
    PAYMENT_CHANNEL_DISABLED = 13


class RpcError(Exception):
    """An error a method answers with: a code (1 unless a Lotus code applies), a message, and
    optionally `data` (Lotus puts the epoch of a null round there, the revert data of a call)."""

    def __init__(self, message: str, code: int = GENERIC_ERROR, data: Any = None) -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out


class InvalidParams(RpcError):
    """-32602: the params of a call do not fit the method."""

    def __init__(self, message: str) -> None:
        super().__init__(message, INVALID_PARAMS)


@contextmanager
def answer_errors(*errors: type[Exception], prefix: str = "") -> Iterator[None]:
    """Answer the call with code 1 and the message of any of `errors` raised inside (after `prefix: `
    when given), without the traceback: for the refusals a node part raises with words for the user.

        with answer_errors(WalletError, prefix="failed to set default key"):
            await node.run_sync(node.wallet.set_default, address)
    """
    try:
        yield
    except errors as exc:
        raise RpcError(f"{prefix}: {exc}" if prefix else str(exc)) from None


def actor_not_found() -> RpcError:
    return RpcError("actor not found", LotusCode.ACTOR_NOT_FOUND)


def out_of_gas() -> RpcError:
    return RpcError("call ran out of gas", LotusCode.OUT_OF_GAS)


def null_round(epoch: int) -> RpcError:
    return RpcError(f"requested epoch was a null round ({epoch})", LotusCode.NULL_ROUND, data=epoch)


def execution_reverted(message: str, data: str) -> RpcError:
    return RpcError(message, LotusCode.EXECUTION_REVERTED, data=data)


def permission_denied(method: str, need: str) -> RpcError:
    """go-jsonrpc auth.PermissionedProxy's error (code 1, the method named without its namespace)."""
    return RpcError(f"missing permission to invoke '{method}' (need '{need}')")
