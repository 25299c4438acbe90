"""The init actor (f01): creates actors and gives them ID addresses."""

from typing import Final

from actors import builtin
from actors.dispatch import METHOD_CONSTRUCTOR, ActorDef, exported, exports
from actors.init.types import ConstructorParams, ExecParams, ExecReturn, InitMethod
from chain.encoding.cid import CID
from chain.state.init_state import AddressAlreadyMapped, InitState
from chain.vm.exitcode import ActorError, forbidden, illegal_argument, illegal_state
from chain.vm.runtime import Runtime

MAX_NETWORK_NAME: Final = 256


def can_exec(caller_code: CID, exec_code: CID) -> bool:
    """Who may create what (builtin-actors can_exec): anyone a multisig or a payment channel; only
    the power actor a miner; nobody a singleton or an account (the VM creates accounts itself)."""
    if exec_code in (builtin.MULTISIG_ACTOR_CODE, builtin.PAYCH_ACTOR_CODE):
        return True
    return exec_code == builtin.MINER_ACTOR_CODE and caller_code == builtin.POWER_ACTOR_CODE


@exports(InitMethod.Constructor)
def constructor(rt: Runtime, params: ConstructorParams) -> None:
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    if len(params.network_name.encode()) > MAX_NETWORK_NAME:
        raise illegal_argument("network name is too long")
    rt.set_state(InitState.new(rt.store, params.network_name))


@exports(InitMethod.Exec, InitMethod.ExecExported)
def exec_(rt: Runtime, params: ExecParams) -> ExecReturn:
    """Create an actor of params.code_cid, give it an ID and a robust address, run its constructor
    with the message's value; fails with the constructor's exit code if the constructor fails."""
    rt.validate_immediate_caller_accept_any()
    caller_code = rt.get_actor_code_cid(rt.caller)
    if caller_code is None:
        raise illegal_state(f"no code for caller {rt.caller}")
    if not can_exec(caller_code, params.code_cid):
        raise forbidden(f"caller type {caller_code} cannot exec actor type {params.code_cid}")
    # A re-org-stable address for the new actor, whose ID may differ on another fork.
    robust_address = rt.new_actor_address()
    state = rt.state(InitState)
    try:
        new_state, id_address = state.map_address_to_new_id(rt.store, robust_address)
    except AddressAlreadyMapped as exc:
        raise forbidden(str(exc)) from None
    rt.set_state(new_state)
    rt.create_actor(params.code_cid, id_address)
    result = rt.send(id_address, METHOD_CONSTRUCTOR, params.constructor_params, rt.value_received)
    if not result.ok:
        raise ActorError(result.exit_code, f"constructor of {id_address} failed")
    return ExecReturn(id_address, robust_address)


ACTOR = ActorDef.of(builtin.INIT_ACTOR_CODE, "init", InitState, exported(InitMethod, globals()))
