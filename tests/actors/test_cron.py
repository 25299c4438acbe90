"""The cron actor on the mock runtime."""

import pytest

from actors import builtin
from actors.cron import types as cron
from actors.cron.actor import ACTOR
from actors.market.types import MarketMethod
from actors.power.types import PowerMethod
from chain.encoding import dagcbor
from chain.types.address import Address
from chain.vm.exitcode import ExitCode
from tests.actors.aborts import aborts
from tests.actors.mock_runtime import MockRuntime

ENTRIES = (
    cron.CronEntry(builtin.STORAGE_POWER_ACTOR_ADDR, PowerMethod.OnEpochTickEnd),
    cron.CronEntry(builtin.STORAGE_MARKET_ACTOR_ADDR, MarketMethod.CronTick),
)


def constructed(entries: tuple[cron.CronEntry, ...] = ENTRIES) -> MockRuntime:
    rt = MockRuntime(receiver=builtin.CRON_ACTOR_ADDR)
    rt.expect_validate_caller_addr(builtin.SYSTEM_ACTOR_ADDR)
    rt.call(ACTOR, 1, cron.ConstructorParams(entries))
    rt.verify()
    return rt


def test_constructor_stores_entries() -> None:
    rt = constructed()
    assert rt.state(cron.CronState).entries == ENTRIES
    assert cron.GENESIS_ENTRIES == ENTRIES
    empty = constructed(())
    assert empty.state(cron.CronState).entries == ()


def test_epoch_tick_calls_every_entry_and_ignores_failures() -> None:
    rt = constructed()
    rt.expect_validate_caller_addr(builtin.SYSTEM_ACTOR_ADDR)
    rt.expect_send(builtin.STORAGE_POWER_ACTOR_ADDR, 5, None, 0, exit_code=ExitCode.ErrIllegalState)
    rt.expect_send(builtin.STORAGE_MARKET_ACTOR_ADDR, 9, None, 0)
    assert rt.call(ACTOR, cron.CronMethod.EpochTick) == b""
    rt.verify()


@pytest.mark.parametrize("method", [1, cron.CronMethod.EpochTick])
def test_only_the_system_actor_may_call(method: int) -> None:
    rt = constructed()
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, Address.new_id(100))
    rt.expect_validate_caller_addr(builtin.SYSTEM_ACTOR_ADDR)
    params = cron.ConstructorParams(()) if method == 1 else None
    with aborts(ExitCode.SysErrForbidden):
        rt.call(ACTOR, method, params)


def test_bad_constructor_params() -> None:
    rt = MockRuntime(receiver=builtin.CRON_ACTOR_ADDR)
    for bad in ([[[b"\x00\x04"]]], [[[b"\xff", 2]]], [1]):
        with aborts(ExitCode.ErrSerialization):
            ACTOR.invoke(rt, 1, dagcbor.encode(bad))
