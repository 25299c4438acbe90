"""The cron actor's methods, state and params (builtin-actors actors/cron).

State (tuple): [Entries], each entry [Receiver, MethodNum]. Genesis sets the entries: the power actor's
OnEpochTickEnd and the market actor's CronTick. Methods: Constructor (1), EpochTick (2), both callable
by the system actor only.
"""

from enum import IntEnum
from typing import Annotated, Final

from actors import builtin
from actors.market.types import MarketMethod
from actors.power.types import PowerMethod
from chain.encoding.schema import CborTuple, MaxLen, Uint64
from chain.types.address import Address

MAX_ENTRIES: Final = 256


class CronMethod(IntEnum):
    Constructor = 1
    EpochTick = 2


class CronEntry(CborTuple):
    receiver: Address
    method_num: Uint64


Entries = Annotated[tuple[CronEntry, ...], MaxLen(MAX_ENTRIES)]


class CronState(CborTuple):
    entries: Entries


class ConstructorParams(CborTuple):
    entries: Entries


# The entries of a network's genesis.
GENESIS_ENTRIES: Final = (
    CronEntry(builtin.STORAGE_POWER_ACTOR_ADDR, PowerMethod.OnEpochTickEnd),
    CronEntry(builtin.STORAGE_MARKET_ACTOR_ADDR, MarketMethod.CronTick),
)
