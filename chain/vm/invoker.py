"""The one place mapping actor code CIDs to the actors/ modules that implement them.

Each built-in actor's `actors/<name>/actor.py` ends with `ACTOR = ActorDef.of(...)`; list it in
BUILTIN_ACTORS below. The VM
looks an actor's code up here to run a method, and to check that create_actor names a code it can run.
"""

from collections.abc import Iterable
from typing import Final

from actors import builtin
from actors.account import actor as account
from actors.cron import actor as cron
from actors.dispatch import ActorDef
from actors.init import actor as init
from actors.market import actor as market
from actors.miner import actor as miner
from actors.multisig import actor as multisig
from actors.paych import actor as paych
from actors.power import actor as power
from actors.reward import actor as reward
from actors.system import actor as system
from chain.encoding.cid import CID

BUILTIN_ACTORS: Final[tuple[ActorDef, ...]] = (
    system.ACTOR,
    init.ACTOR,
    cron.ACTOR,
    account.ACTOR,
    market.ACTOR,
    paych.ACTOR,
    multisig.ACTOR,
    power.ACTOR,
    reward.ACTOR,
    miner.ACTOR,
)

# Actors that exist once, made at genesis: create_actor refuses their codes.
SINGLETON_CODES: Final = frozenset(
    {
        builtin.SYSTEM_ACTOR_CODE,
        builtin.INIT_ACTOR_CODE,
        builtin.REWARD_ACTOR_CODE,
        builtin.CRON_ACTOR_CODE,
        builtin.POWER_ACTOR_CODE,
        builtin.MARKET_ACTOR_CODE,
    }
)


class Invoker:
    """Code CID -> ActorDef. The default has the built-in actors; tests may add or replace some."""

    __slots__ = ("_by_code",)

    def __init__(self, actors: Iterable[ActorDef] = BUILTIN_ACTORS) -> None:
        table: dict[CID, ActorDef] = {}
        for actor in actors:
            table[actor.code] = actor
        self._by_code = table

    def actor(self, code: CID) -> ActorDef | None:
        return self._by_code.get(code)

    def with_actors(self, *actors: ActorDef) -> "Invoker":
        """A copy whose table also has (or, for a code already present, uses instead) these actors."""
        return Invoker((*self._by_code.values(), *actors))

    def codes(self) -> frozenset[CID]:
        return frozenset(self._by_code)


DEFAULT_INVOKER: Final = Invoker()


def is_singleton(code: CID) -> bool:
    return code in SINGLETON_CODES
