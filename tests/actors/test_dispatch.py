"""The method-table machinery every actor uses, exercised with a toy actor on the mock runtime: one enum
member and one typed handler per method (marked with `exports`), the params and return codecs read from
the annotations."""

from enum import IntEnum

import pytest

from actors import builtin
from actors.dispatch import ActorDef, MethodDef, exported, exports
from chain.encoding import dagcbor
from chain.encoding.schema import CborTuple, Uint64
from chain.types.address import Address
from chain.vm.exitcode import ActorError, ExitCode
from chain.vm.runtime import Runtime
from tests.actors.aborts import aborts
from tests.actors.mock_runtime import MockFailure, MockRuntime


class CounterMethod(IntEnum):
    Constructor = 1
    Add = 2
    Snapshot = 3


class CounterState(CborTuple):
    count: Uint64


@exports(CounterMethod.Constructor)
def _construct(rt: Runtime) -> None:
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    rt.set_state(CounterState(0))


@exports(CounterMethod.Add)
def _add(rt: Runtime, amount: Uint64) -> Uint64:
    rt.validate_immediate_caller_accept_any()
    if amount == 0:
        raise ActorError(ExitCode.ErrIllegalArgument, "amount must be positive")
    state = rt.state(CounterState)
    rt.set_state(CounterState(state.count + amount))
    return state.count + amount


@exports(CounterMethod.Snapshot)
def _snapshot(rt: Runtime) -> CounterState:
    rt.validate_immediate_caller_accept_any()
    return rt.state(CounterState)


COUNTER = ActorDef.of(builtin.ACCOUNT_ACTOR_CODE, "counter", CounterState, exported(CounterMethod, globals()))

ME = Address.new_id(1000)


def test_methods_are_read_from_enum_and_annotations() -> None:
    constructor, add, snapshot = COUNTER.methods
    assert (constructor.number, constructor.name, constructor.params, constructor.returns) == (
        1,
        "Constructor",
        None,
        None,
    )
    assert (add.number, add.name) == (2, "Add")
    assert add.params is not None and add.params.decode(7, "x") == 7
    assert snapshot.params is None and snapshot.returns is not None
    assert COUNTER.method(3) is snapshot and COUNTER.method(4) is None


def test_constructor_then_method_returns_cbor() -> None:
    rt = MockRuntime(receiver=ME)
    rt.expect_validate_caller_addr(builtin.SYSTEM_ACTOR_ADDR)
    assert rt.call(COUNTER, CounterMethod.Constructor) == b""
    rt.expect_validate_caller_any()
    assert rt.call_decoded(COUNTER, CounterMethod.Add, 5) == 5
    rt.expect_validate_caller_any()
    assert rt.call(COUNTER, CounterMethod.Snapshot) == dagcbor.encode([5])
    rt.verify()
    assert rt.state(CounterState) == CounterState(5)


def test_bad_params_are_serialization_errors() -> None:
    rt = MockRuntime(receiver=ME)
    for params in (b"\x40", b"\x3a\x00\x01\x00\x00"):  # a byte string, a negative integer
        with aborts(ExitCode.ErrSerialization) as err:
            COUNTER.invoke(rt, CounterMethod.Add, params)
        assert "counter.Add" in err.value.message


def test_unknown_method_and_unexpected_or_missing_params() -> None:
    rt = MockRuntime(receiver=ME)
    with aborts(ExitCode.ErrUnhandledMessage):
        COUNTER.invoke(rt, 99, b"")
    with aborts(ExitCode.ErrSerialization):
        COUNTER.invoke(rt, CounterMethod.Constructor, b"\x01")
    with aborts(ExitCode.ErrSerialization):
        COUNTER.invoke(rt, CounterMethod.Add, b"")


def test_actor_error_carries_exit_code() -> None:
    rt = MockRuntime(receiver=ME)
    rt.expect_validate_caller_any()
    with aborts(ExitCode.ErrIllegalArgument) as err:
        rt.call(COUNTER, CounterMethod.Add, 0)
    assert str(err.value) == "ErrIllegalArgument(16): amount must be positive"


def test_mock_rejects_unexpected_calls_and_unvalidated_callers() -> None:
    rt = MockRuntime(receiver=ME)
    with pytest.raises(MockFailure, match="unexpected validate_addr"):
        rt.call(COUNTER, CounterMethod.Constructor)
    rt.expect_validate_caller_any()
    with pytest.raises(MockFailure, match="not met"):
        rt.verify()


def test_wrong_caller_is_forbidden() -> None:
    rt = MockRuntime(receiver=ME, caller=Address.new_id(500))
    rt.expect_validate_caller_addr(builtin.SYSTEM_ACTOR_ADDR)
    with aborts(ExitCode.SysErrForbidden):
        rt.call(COUNTER, CounterMethod.Constructor)


def test_duplicate_method_numbers_rejected() -> None:
    with pytest.raises(ValueError, match="twice"):
        ActorDef(
            builtin.ACCOUNT_ACTOR_CODE,
            "x",
            CounterState,
            (
                MethodDef.of(CounterMethod.Constructor, _construct),
                MethodDef.of(CounterMethod.Constructor, _add),
            ),
        )


def test_handlers_must_be_typed_and_take_rt_and_at_most_params() -> None:
    def untyped(rt: Runtime, amount: int) -> None:
        return None

    def too_many(rt: Runtime, a: Uint64, b: Uint64) -> None:
        return None

    with pytest.raises(TypeError, match="Uint64, Int64 or BigInt"):
        MethodDef.of(CounterMethod.Add, untyped)
    with pytest.raises(TypeError, match="takes"):
        MethodDef.of(CounterMethod.Add, too_many)


class OtherMethod(IntEnum):
    Constructor = 1
    Extra = 7


@exports(OtherMethod.Extra, OtherMethod.Constructor)
def _other(rt: Runtime) -> None:
    return None


def test_exported_collects_one_enums_marked_handlers_in_number_order() -> None:
    assert exported(CounterMethod, globals()) == (
        (CounterMethod.Constructor, _construct),
        (CounterMethod.Add, _add),
        (CounterMethod.Snapshot, _snapshot),
    )
    # A handler may serve several members; another enum's handlers in the same namespace stay out.
    assert exported(OtherMethod, globals(), {"again": _other}) == (
        (OtherMethod.Constructor, _other),
        (OtherMethod.Extra, _other),
    )


def test_two_handlers_for_one_member_are_refused() -> None:
    @exports(CounterMethod.Add)
    def another_add(rt: Runtime, amount: Uint64) -> None:
        return None

    with pytest.raises(ValueError, match="method number 2 declared twice"):
        ActorDef.of(
            builtin.ACCOUNT_ACTOR_CODE,
            "x",
            CounterState,
            exported(CounterMethod, globals(), {"another_add": another_add}),
        )
