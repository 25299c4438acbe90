"""The init actor on the mock runtime (cases of builtin-actors' init_actor_test.rs)."""

import pytest

from actors import builtin
from actors.init import types as init
from actors.init.actor import ACTOR
from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.state.init_state import InitState
from chain.types.address import Address
from chain.vm.exitcode import ExitCode
from tests.actors.aborts import aborts
from tests.actors.mock_runtime import MockRuntime

CALLER = Address.new_id(1000)
POWER = builtin.STORAGE_POWER_ACTOR_ADDR


def constructed() -> MockRuntime:
    rt = MockRuntime(receiver=builtin.INIT_ACTOR_ADDR)
    rt.expect_validate_caller_addr(builtin.SYSTEM_ACTOR_ADDR)
    rt.call(ACTOR, 1, init.ConstructorParams("mock"))
    rt.verify()
    return rt


def test_constructor() -> None:
    rt = constructed()
    state = rt.state(InitState)
    assert state.next_id == builtin.FIRST_NON_SINGLETON_ID == 100
    assert state.network_name == "mock"
    assert state.load_map(rt.store).is_empty()


def test_constructor_only_from_system() -> None:
    rt = MockRuntime(receiver=builtin.INIT_ACTOR_ADDR, caller=CALLER)
    rt.expect_validate_caller_addr(builtin.SYSTEM_ACTOR_ADDR)
    with aborts(ExitCode.SysErrForbidden):
        rt.call(ACTOR, 1, init.ConstructorParams("mock"))


def exec_ok(rt: MockRuntime, code: CID, expected_id: int, value: int = 0) -> init.ExecReturn:
    robust = Address.new_actor(rt.origin.to_bytes() + rt.next_actor_nonce.to_bytes(8, "big"))
    id_address = Address.new_id(expected_id)
    ctor_params = [b"signer", 2]
    rt.value_received = value
    rt.balance += value
    rt.expect_validate_caller_any()
    rt.expect_create_actor(code, id_address)
    rt.expect_send(id_address, 1, ctor_params, value)
    out = init.ExecReturn.from_cbor(
        rt.call_decoded(ACTOR, init.InitMethod.Exec, init.ExecParams(code, dagcbor.encode(ctor_params)))
    )
    rt.verify()
    assert out == init.ExecReturn(id_address, robust)
    assert rt.state(InitState).resolve(rt.store, robust) == id_address
    return out


def test_exec_multisig_and_paych_from_any_caller() -> None:
    rt = constructed()
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, CALLER)
    first = exec_ok(rt, builtin.MULTISIG_ACTOR_CODE, 100, value=5)
    second = exec_ok(rt, builtin.PAYCH_ACTOR_CODE, 101)
    assert first.robust_address != second.robust_address
    assert rt.state(InitState).next_id == 102
    assert rt.balance == 0  # the value went on to the constructor


def test_exec_miner_only_from_power() -> None:
    rt = constructed()
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, CALLER)
    rt.expect_validate_caller_any()
    with aborts(ExitCode.ErrForbidden):
        rt.call(ACTOR, init.InitMethod.Exec, init.ExecParams(builtin.MINER_ACTOR_CODE, b""))
    rt.set_caller(builtin.POWER_ACTOR_CODE, POWER)
    exec_ok(rt, builtin.MINER_ACTOR_CODE, 100)


@pytest.mark.parametrize(
    "code",
    [builtin.ACCOUNT_ACTOR_CODE, builtin.POWER_ACTOR_CODE, builtin.CRON_ACTOR_CODE],
    ids=["account", "power", "cron"],
)
def test_exec_refuses_accounts_and_singletons(code: CID) -> None:
    rt = constructed()
    rt.set_caller(builtin.POWER_ACTOR_CODE, POWER)
    rt.expect_validate_caller_any()
    with aborts(ExitCode.ErrForbidden):
        rt.call(ACTOR, init.InitMethod.Exec, init.ExecParams(code, b""))


def test_exec_fails_with_the_constructors_exit_code() -> None:
    rt = constructed()
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, CALLER)
    rt.expect_validate_caller_any()
    rt.expect_create_actor(builtin.MULTISIG_ACTOR_CODE, Address.new_id(100))
    rt.expect_send(Address.new_id(100), 1, [1], 0, exit_code=ExitCode.ErrIllegalArgument)
    with aborts(ExitCode.ErrIllegalArgument):
        rt.call(
            ACTOR, init.InitMethod.Exec, init.ExecParams(builtin.MULTISIG_ACTOR_CODE, dagcbor.encode([1]))
        )
    rt.verify()


def test_exec_exported_number_and_caller_without_code() -> None:
    rt = constructed()
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, CALLER)
    exec_params = init.ExecParams(builtin.PAYCH_ACTOR_CODE, dagcbor.encode([1]))
    rt.expect_validate_caller_any()
    rt.expect_create_actor(builtin.PAYCH_ACTOR_CODE, Address.new_id(100))
    rt.expect_send(Address.new_id(100), 1, [1], 0)
    rt.call(ACTOR, init.InitMethod.ExecExported, exec_params)
    rt.verify()
    rt.caller = Address.new_id(4242)  # an actor the runtime knows no code for
    rt.expect_validate_caller_any()
    with aborts(ExitCode.ErrIllegalState):
        rt.call(ACTOR, init.InitMethod.Exec, exec_params)


def test_exec_with_an_already_mapped_robust_address() -> None:
    rt = constructed()
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, CALLER)
    robust = Address.new_actor(rt.origin.to_bytes() + rt.next_actor_nonce.to_bytes(8, "big"))
    state, _ = rt.state(InitState).map_address_to_new_id(rt.store, robust)
    rt.set_state(state)
    rt.expect_validate_caller_any()
    with aborts(ExitCode.ErrForbidden):
        rt.call(ACTOR, init.InitMethod.Exec, init.ExecParams(builtin.PAYCH_ACTOR_CODE, b""))


def test_bad_params() -> None:
    rt = constructed()
    for method, bad in ((1, [5]), (init.InitMethod.Exec, [b"not a cid", b""]), (init.InitMethod.Exec, [1])):
        with aborts(ExitCode.ErrSerialization):
            ACTOR.invoke(rt, method, dagcbor.encode(bad))
    rt.expect_validate_caller_addr(builtin.SYSTEM_ACTOR_ADDR)
    with aborts(ExitCode.ErrIllegalArgument):
        rt.call(ACTOR, 1, init.ConstructorParams("x" * 300))
