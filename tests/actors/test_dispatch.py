"""The method-table machinery every actor uses, exercised with a toy actor on the mock runtime."""

from dataclasses import dataclass
from typing import Any

import pytest

from actors import builtin
from actors.dispatch import ActorDef, MethodDef
from chain.encoding.expect import expect_tuple, expect_uint
from chain.types.address import Address
from chain.vm.exitcode import ActorError, ExitCode
from chain.vm.runtime import Runtime
from tests.actors.mock_runtime import MockFailure, MockRuntime


@dataclass(frozen=True, slots=True)
class CounterState:
    count: int

    def to_cbor(self) -> list[Any]:
        return [self.count]

    @classmethod
    def from_cbor(cls, raw: Any) -> "CounterState":
        (count,) = expect_tuple(raw, 1, "CounterState")
        return cls(expect_uint(count, "CounterState.count"))


def _construct(rt: Runtime) -> None:
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    rt.set_state(CounterState(0))


def _add(rt: Runtime, amount: int) -> int:
    rt.validate_immediate_caller_accept_any()
    if amount == 0:
        raise ActorError(ExitCode.ErrIllegalArgument, "amount must be positive")
    state = rt.state(CounterState)
    rt.set_state(CounterState(state.count + amount))
    return state.count + amount


COUNTER = ActorDef(
    code=builtin.ACCOUNT_ACTOR_CODE,
    name="counter",
    state_type=CounterState,
    methods=(
        MethodDef(1, "Constructor", _construct),
        MethodDef(2, "Add", _add, lambda raw: expect_uint(raw, "amount")),
    ),
)

ME = Address.new_id(1000)


def test_constructor_then_method_returns_cbor() -> None:
    rt = MockRuntime(receiver=ME)
    rt.expect_validate_caller_addr(builtin.SYSTEM_ACTOR_ADDR)
    assert rt.call(COUNTER, 1) == b""
    rt.expect_validate_caller_any()
    assert rt.call_decoded(COUNTER, 2, 5) == 5
    rt.verify()
    assert rt.state(CounterState) == CounterState(5)


def test_bad_params_are_serialization_errors() -> None:
    rt = MockRuntime(receiver=ME)
    with pytest.raises(ActorError) as err:
        COUNTER.invoke(rt, 2, b"\x40")  # a byte string where an integer is expected
    assert err.value.exit_code == ExitCode.ErrSerialization
    assert "amount" in err.value.message


def test_unknown_method_and_unexpected_params() -> None:
    rt = MockRuntime(receiver=ME)
    with pytest.raises(ActorError) as err:
        COUNTER.invoke(rt, 99, b"")
    assert err.value.exit_code == ExitCode.ErrUnhandledMessage
    with pytest.raises(ActorError) as err:
        COUNTER.invoke(rt, 1, b"\x01")
    assert err.value.exit_code == ExitCode.ErrSerialization


def test_actor_error_carries_exit_code() -> None:
    rt = MockRuntime(receiver=ME)
    rt.expect_validate_caller_any()
    with pytest.raises(ActorError) as err:
        rt.call(COUNTER, 2, 0)
    assert err.value.exit_code == ExitCode.ErrIllegalArgument
    assert str(err.value) == "ErrIllegalArgument(16): amount must be positive"


def test_mock_rejects_unexpected_calls_and_unvalidated_callers() -> None:
    rt = MockRuntime(receiver=ME)
    with pytest.raises(MockFailure, match="unexpected validate_addr"):
        rt.call(COUNTER, 1)
    rt.expect_validate_caller_any()
    with pytest.raises(MockFailure, match="not met"):
        rt.verify()


def test_wrong_caller_is_forbidden() -> None:
    rt = MockRuntime(receiver=ME, caller=Address.new_id(500))
    rt.expect_validate_caller_addr(builtin.SYSTEM_ACTOR_ADDR)
    with pytest.raises(ActorError) as err:
        rt.call(COUNTER, 1)
    assert err.value.exit_code == ExitCode.SysErrForbidden


def test_duplicate_method_numbers_rejected() -> None:
    with pytest.raises(ValueError, match="twice"):
        ActorDef(
            builtin.ACCOUNT_ACTOR_CODE,
            "x",
            CounterState,
            (MethodDef(1, "a", _construct), MethodDef(1, "b", _construct)),
        )
