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
from chain.encoding.errors import DecodeError
from chain.encoding.expect import expect_bigint, expect_list
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


def _state_fields(tree: StateTree, address: Address, fields: tuple[int, ...], *, remember: bool) -> int:
    """The sum of those fields of the actor's state; with remember, remembered by the state's CID in the
    store's block cache: every VM (one per tipset, and per null round) reads them when it starts, and
    the market's state rarely changes (the power actor's changes every epoch: nothing to share)."""
    actor = tree.get_actor(address)
    if actor is None:
        return 0
    cache = cache_of(tree.store) if remember else None
    kind = ("locked-fields", fields)
    if cache is not None:
        found = cache.derived(kind, actor.head)
        if isinstance(found, int):
            return found
    try:
        state = expect_list(get_cbor(tree.store, actor.head), f"state of {address}")
        total = sum(expect_bigint(state[i], f"state of {address} field {i}") for i in fields)
    except (BlockNotFound, DecodeError, IndexError) as exc:
        _log.warning("cannot read locked funds", actor=str(address), error=str(exc))
        return 0
    if cache is not None:
        cache.remember(kind, actor.head, total)
    return total


def locked_funds(tree: StateTree) -> int:
    power = _state_fields(tree, builtin.STORAGE_POWER_ACTOR_ADDR, (POWER_TOTAL_PLEDGE_FIELD,), remember=False)
    market = _state_fields(tree, builtin.STORAGE_MARKET_ACTOR_ADDR, MARKET_LOCKED_FIELDS, remember=True)
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
