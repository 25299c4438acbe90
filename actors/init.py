"""The init actor (f01): creates actors and gives them ID addresses.

State: chain/state/init_state.py (the state tree resolves addresses through it). Methods
(builtin-actors actors/init/src/lib.rs): Constructor (1), Exec (2, and its FRC-42 export). Exec4 (3,
for f4 addresses made by the Ethereum address manager) is not supported: filpy has no EAM.
"""

from dataclasses import dataclass
from typing import Any, Final

from actors import builtin
from actors.dispatch import METHOD_CONSTRUCTOR, ActorDef, MethodDef
from chain.encoding.cid import CID
from chain.encoding.expect import expect_bytes, expect_cid, expect_str, expect_tuple
from chain.state.init_state import AddressAlreadyMapped, InitState
from chain.types.address import Address
from chain.vm.exitcode import ActorError, ExitCode
from chain.vm.runtime import Runtime

__all__ = ["ACTOR", "ConstructorParams", "ExecParams", "ExecReturn", "InitState"]

METHOD_EXEC: Final = 2
METHOD_EXEC_EXPORTED: Final = 81225168  # frc42 method_hash("Exec")

_MAX_BYTES: Final = 2 << 20
_MAX_NETWORK_NAME: Final = 256


@dataclass(frozen=True, slots=True)
class ConstructorParams:
    network_name: str

    def to_cbor(self) -> list[Any]:
        return [self.network_name]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "init.ConstructorParams") -> "ConstructorParams":
        (name,) = expect_tuple(raw, 1, what)
        return cls(expect_str(name, f"{what}.NetworkName"))


@dataclass(frozen=True, slots=True)
class ExecParams:
    code_cid: CID
    constructor_params: bytes

    def to_cbor(self) -> list[Any]:
        return [self.code_cid, self.constructor_params]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "ExecParams") -> "ExecParams":
        code, params = expect_tuple(raw, 2, what)
        return cls(
            expect_cid(code, f"{what}.CodeCID"),
            expect_bytes(params, f"{what}.ConstructorParams", max_len=_MAX_BYTES),
        )


@dataclass(frozen=True, slots=True)
class ExecReturn:
    id_address: Address
    robust_address: Address

    def to_cbor(self) -> list[Any]:
        return [self.id_address.to_bytes(), self.robust_address.to_bytes()]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "ExecReturn") -> "ExecReturn":
        id_address, robust = expect_tuple(raw, 2, what)
        return cls(
            Address.from_cbor(id_address, f"{what}.IDAddress"),
            Address.from_cbor(robust, f"{what}.RobustAddress"),
        )


def can_exec(caller_code: CID, exec_code: CID) -> bool:
    """Who may create what (builtin-actors can_exec): anyone a multisig or a payment channel; only
    the power actor a miner; nobody a singleton or an account (the VM creates accounts itself)."""
    if exec_code in (builtin.MULTISIG_ACTOR_CODE, builtin.PAYCH_ACTOR_CODE):
        return True
    return exec_code == builtin.MINER_ACTOR_CODE and caller_code == builtin.POWER_ACTOR_CODE


def constructor(rt: Runtime, params: ConstructorParams) -> None:
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    if len(params.network_name.encode()) > _MAX_NETWORK_NAME:
        raise ActorError(ExitCode.ErrIllegalArgument, "network name is too long")
    rt.set_state(InitState.new(rt.store, params.network_name))


def exec_(rt: Runtime, params: ExecParams) -> ExecReturn:
    """Create an actor of params.code_cid, give it an ID and a robust address, run its constructor
    with the message's value; fails with the constructor's exit code if the constructor fails."""
    rt.validate_immediate_caller_accept_any()
    caller_code = rt.get_actor_code_cid(rt.caller)
    if caller_code is None:
        raise ActorError(ExitCode.ErrIllegalState, f"no code for caller {rt.caller}")
    if not can_exec(caller_code, params.code_cid):
        raise ActorError(
            ExitCode.ErrForbidden, f"caller type {caller_code} cannot exec actor type {params.code_cid}"
        )
    # A re-org-stable address for the new actor, whose ID may differ on another fork.
    robust_address = rt.new_actor_address()
    state = rt.state(InitState)
    try:
        new_state, id_address = state.map_address_to_new_id(rt.store, robust_address)
    except AddressAlreadyMapped as exc:
        raise ActorError(ExitCode.ErrForbidden, str(exc)) from None
    rt.set_state(new_state)
    rt.create_actor(params.code_cid, id_address)
    result = rt.send(id_address, METHOD_CONSTRUCTOR, params.constructor_params, rt.value_received)
    if not result.ok:
        raise ActorError(result.exit_code, f"constructor of {id_address} failed")
    return ExecReturn(id_address, robust_address)


ACTOR = ActorDef(
    code=builtin.INIT_ACTOR_CODE,
    name="init",
    state_type=InitState,
    methods=(
        MethodDef(METHOD_CONSTRUCTOR, "Constructor", constructor, ConstructorParams.from_cbor),
        MethodDef(METHOD_EXEC, "Exec", exec_, ExecParams.from_cbor),
        MethodDef(METHOD_EXEC_EXPORTED, "ExecExported", exec_, ExecParams.from_cbor),
    ),
)
