"""The circulating supply the VM reports to actors (rt.total_fil_circ_supply), from the state alone.

Lotus computes CirculatingSupply = Vested + Mined + ReserveDisbursed - Burnt - Locked
(lotus chain/stmgr/supply.go). filpy's simplification: every attoFIL not held by the reward actor
(not yet mined), the reserve (f090, not yet disbursed) or the burnt-funds actor, and not locked,
counts as vested and circulating; i.e.

    circulating = TotalFilecoin - reward - reserve - burnt - locked

with locked = the power actor's TotalPledgeCollateral + the market actor's client and provider
collateral and client storage fees (as Lotus's GetFilLocked). Those totals are read from the power and
market states by their go-state-types field positions (power State field 4; market State fields 8, 9,
10); a state that cannot be read that way counts as nothing locked. This matches Lotus on a network
whose genesis allocates the whole supply; a devnet genesis that allocates less reports more.
"""

from typing import Final

import structlog

from actors import builtin
from actors.market.state import MarketState
from actors.power.state import PowerState
from chain.encoding.errors import DecodeError
from chain.encoding.expect import expect_bigint, expect_list
from chain.encoding.schema import CborTuple, fields
from chain.state.tree import StateTree
from chain.store.blockcache import cache_of
from chain.store.blockstore import BlockNotFound, get_cbor
from chain.types.address import Address
from chain.types.message import TOTAL_FILECOIN

POWER_TOTAL_PLEDGE_FIELD: Final = 4
MARKET_LOCKED_FIELDS: Final = (8, 9, 10)

_log = structlog.get_logger(__name__)


def _balance(tree: StateTree, address: Address) -> int:
    actor = tree.get_actor(address)
    return 0 if actor is None else actor.balance


def _state_fields(
    tree: StateTree, address: Address, state_type: type[CborTuple], positions: tuple[int, ...]
) -> int:
    """The sum of the fields at those positions of the actor's state.

    Every VM (one per tipset, and per null round) reads them when it starts, and both states change
    every epoch (the power actor's cron, the market's LastCron): nothing to remember by state CID. But
    the actor wrote its state last epoch as a declared type (chain/store/blockstore.put_declared), so
    the store's block cache most often holds it decoded: its fields are taken from there. Otherwise the
    raw fields are read by position, so that a state the declared type cannot decode still counts."""
    actor = tree.get_actor(address)
    if actor is None:
        return 0
    store = tree.store
    data = store.get(actor.head)
    cache = cache_of(store)
    if data is not None and cache is not None:
        state = cache.get(state_type.from_cbor, actor.head, data)
        if isinstance(state, state_type):
            declared = fields(state_type)
            return sum(getattr(state, declared[i].name) for i in positions)
    try:
        raw = expect_list(get_cbor(store, actor.head), "actor state")
        return sum(expect_bigint(raw[i], f"actor state field {i}") for i in positions)
    except (BlockNotFound, DecodeError, IndexError) as exc:
        _log.warning("cannot read locked funds", actor=str(address), error=str(exc))
        return 0


def locked_funds(tree: StateTree) -> int:
    power = _state_fields(tree, builtin.STORAGE_POWER_ACTOR_ADDR, PowerState, (POWER_TOTAL_PLEDGE_FIELD,))
    market = _state_fields(tree, builtin.STORAGE_MARKET_ACTOR_ADDR, MarketState, MARKET_LOCKED_FIELDS)
    return power + market


def circulating_supply(tree: StateTree) -> int:
    held = sum(
        _balance(tree, a)
        for a in (
            builtin.REWARD_ACTOR_ADDR,
            builtin.RESERVE_ACTOR_ADDR,
            builtin.BURNT_FUNDS_ACTOR_ADDR,
        )
    )
    return max(0, TOTAL_FILECOIN - held - locked_funds(tree))
