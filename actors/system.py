"""The system actor (f00): the sender of implicit messages, holding the registry of built-in actors.

State (builtin-actors system State, tuple): [BuiltinActors], the CID of the registry: a CBOR list of
[name, code CID] pairs, the payload of an actor bundle's manifest. filpy's actors are Python, so the
registry lists the code CIDs of actors/builtin.py under builtin-actors' manifest names; the
constructor writes it (builtin-actors writes an empty list and Lotus's genesis fills in the bundle's).
"""

from dataclasses import dataclass
from typing import Any, Final

from actors import builtin
from actors.dispatch import METHOD_CONSTRUCTOR, ActorDef, MethodDef
from chain.encoding.cid import CID
from chain.encoding.expect import expect_cid, expect_tuple
from chain.store.blockstore import put_cbor
from chain.vm.runtime import Runtime

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


@dataclass(frozen=True, slots=True)
class SystemState:
    builtin_actors: CID

    def to_cbor(self) -> list[Any]:
        return [self.builtin_actors]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "SystemState") -> "SystemState":
        (registry,) = expect_tuple(raw, 1, what)
        return cls(expect_cid(registry, f"{what}.BuiltinActors"))


def registry_cbor() -> list[list[Any]]:
    return [[name, code] for name, code in BUILTIN_ACTORS]


def constructor(rt: Runtime) -> None:
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    rt.set_state(SystemState(put_cbor(rt.store, registry_cbor())))


ACTOR = ActorDef(
    code=builtin.SYSTEM_ACTOR_CODE,
    name="system",
    state_type=SystemState,
    methods=(MethodDef(METHOD_CONSTRUCTOR, "Constructor", constructor),),
)
