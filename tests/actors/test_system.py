"""The system actor: its constructor and its registry of built-in actors."""

from actors import builtin
from actors.system import types as system
from actors.system.actor import ACTOR
from chain.store.blockstore import get_cbor
from chain.types.address import Address
from chain.vm.exitcode import ExitCode
from tests.actors.aborts import aborts
from tests.actors.mock_runtime import MockRuntime


def test_constructor_writes_the_builtin_registry() -> None:
    rt = MockRuntime(receiver=builtin.SYSTEM_ACTOR_ADDR)
    rt.expect_validate_caller_addr(builtin.SYSTEM_ACTOR_ADDR)
    assert rt.call(ACTOR, 1) == b""
    rt.verify()
    state = rt.state(system.SystemState)
    registry = get_cbor(rt.store, state.builtin_actors)
    assert ["account", builtin.ACCOUNT_ACTOR_CODE] in registry
    assert ["storageminer", builtin.MINER_ACTOR_CODE] in registry
    assert len({name for name, _ in registry}) == len(registry) == len(system.BUILTIN_ACTORS)


def test_constructor_only_from_the_system_actor() -> None:
    rt = MockRuntime(receiver=builtin.SYSTEM_ACTOR_ADDR)
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, Address.new_id(100))
    rt.expect_validate_caller_addr(builtin.SYSTEM_ACTOR_ADDR)
    with aborts(ExitCode.SysErrForbidden):
        rt.call(ACTOR, 1)


def test_state_round_trip_and_no_other_methods() -> None:
    rt = MockRuntime(receiver=builtin.SYSTEM_ACTOR_ADDR)
    state = system.SystemState(builtin.SYSTEM_ACTOR_CODE)
    assert system.SystemState.from_cbor(state.to_cbor()) == state
    with aborts(ExitCode.ErrUnhandledMessage):
        ACTOR.invoke(rt, 2, b"")
