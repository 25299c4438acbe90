"""The cron actor (f03): calls a fixed list of actor methods at the end of every epoch.

State (builtin-actors cron State, tuple): [Entries], each entry [Receiver, MethodNum]. Genesis sets
the entries: the power actor's OnEpochTickEnd and the market actor's CronTick. Methods (builtin-actors
actors/cron/src/lib.rs): Constructor (1), EpochTick (2), both callable by the system actor only.
"""

from dataclasses import dataclass
from typing import Any, Final

import structlog

from actors import builtin
from actors.dispatch import METHOD_CONSTRUCTOR, ActorDef, MethodDef
from chain.encoding.expect import expect_list, expect_tuple, expect_uint
from chain.types.address import Address
from chain.vm.runtime import Runtime

METHOD_EPOCH_TICK: Final = 2
# Cron entries of a network's genesis (the power and market actors' method numbers, builtin-actors).
POWER_ON_EPOCH_TICK_END: Final = 5
MARKET_CRON_TICK: Final = 9
MAX_ENTRIES: Final = 256

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class CronEntry:
    receiver: Address
    method_num: int

    def to_cbor(self) -> list[Any]:
        return [self.receiver.to_bytes(), self.method_num]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "CronEntry") -> "CronEntry":
        receiver, method = expect_tuple(raw, 2, what)
        return cls(Address.from_cbor(receiver, f"{what}.Receiver"), expect_uint(method, f"{what}.MethodNum"))


def _entries_cbor(entries: tuple[CronEntry, ...]) -> list[Any]:
    return [entry.to_cbor() for entry in entries]


def _entries_from_cbor(raw: Any, what: str) -> tuple[CronEntry, ...]:
    return tuple(
        CronEntry.from_cbor(entry, f"{what}[{i}]")
        for i, entry in enumerate(expect_list(raw, what, MAX_ENTRIES))
    )


@dataclass(frozen=True, slots=True)
class CronState:
    entries: tuple[CronEntry, ...]

    def to_cbor(self) -> list[Any]:
        return [_entries_cbor(self.entries)]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "CronState") -> "CronState":
        (entries,) = expect_tuple(raw, 1, what)
        return cls(_entries_from_cbor(entries, f"{what}.Entries"))


@dataclass(frozen=True, slots=True)
class ConstructorParams:
    entries: tuple[CronEntry, ...]

    def to_cbor(self) -> list[Any]:
        return [_entries_cbor(self.entries)]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "cron.ConstructorParams") -> "ConstructorParams":
        (entries,) = expect_tuple(raw, 1, what)
        return cls(_entries_from_cbor(entries, f"{what}.Entries"))


GENESIS_ENTRIES: Final = (
    CronEntry(builtin.STORAGE_POWER_ACTOR_ADDR, POWER_ON_EPOCH_TICK_END),
    CronEntry(builtin.STORAGE_MARKET_ACTOR_ADDR, MARKET_CRON_TICK),
)


def constructor(rt: Runtime, params: ConstructorParams) -> None:
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    rt.set_state(CronState(params.entries))


def epoch_tick(rt: Runtime) -> None:
    """Call every entry with no params and no value; a failing entry is logged and skipped."""
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    for entry in rt.state(CronState).entries:
        result = rt.send(entry.receiver, entry.method_num, b"", 0)
        if not result.ok:
            _log.error(
                "cron entry failed",
                receiver=str(entry.receiver),
                method=entry.method_num,
                exit_code=int(result.exit_code),
                epoch=rt.curr_epoch,
            )


ACTOR = ActorDef(
    code=builtin.CRON_ACTOR_CODE,
    name="cron",
    state_type=CronState,
    methods=(
        MethodDef(METHOD_CONSTRUCTOR, "Constructor", constructor, ConstructorParams.from_cbor),
        MethodDef(METHOD_EPOCH_TICK, "EpochTick", epoch_tick),
    ),
)
