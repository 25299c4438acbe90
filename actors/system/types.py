"""The system actor's method and state (builtin-actors actors/system).

State (tuple): [BuiltinActors], the CID of the registry: a CBOR list of [name, code CID] pairs, the
payload of an actor bundle's manifest. filpy's actors are Python, so the registry lists the code CIDs
of actors/builtin.py under builtin-actors' manifest names.
"""

from enum import IntEnum
from typing import Any, Final

from actors import builtin
from chain.encoding.cid import CID
from chain.encoding.schema import CborTuple


class SystemMethod(IntEnum):
    Constructor = 1


class SystemState(CborTuple):
    builtin_actors: CID


# builtin-actors manifest names of the actors filpy has code CIDs for.
BUILTIN_ACTORS: Final[tuple[tuple[str, CID], ...]] = (
    ("system", builtin.SYSTEM_ACTOR_CODE),
    ("init", builtin.INIT_ACTOR_CODE),
    ("cron", builtin.CRON_ACTOR_CODE),
    ("account", builtin.ACCOUNT_ACTOR_CODE),
    ("storagepower", builtin.POWER_ACTOR_CODE),
    ("storageminer", builtin.MINER_ACTOR_CODE),
    ("storagemarket", builtin.MARKET_ACTOR_CODE),
    ("paymentchannel", builtin.PAYCH_ACTOR_CODE),
    ("multisig", builtin.MULTISIG_ACTOR_CODE),
    ("reward", builtin.REWARD_ACTOR_CODE),
)


def registry_cbor() -> list[list[Any]]:
    return [[name, code] for name, code in BUILTIN_ACTORS]
