"""Storage market queries on a state tree (Lotus StateMarketBalance, StateMarketDeals,
StateMarketStorageDeal)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from actors import builtin
from actors.market.state import MarketState, MarketTables
from actors.market.types import DealProposal, DealState
from chain.encoding.errors import DecodeError
from chain.encoding.schema import LotusJson, TokenAmount
from chain.state.tree import StateTree
from chain.stmgr.actors import StateQueryError, read_actor_state
from chain.store.blockstore import BlockNotFound
from chain.types.address import Address
from chain.vm.exitcode import ActorError

T = TypeVar("T")

MARKET_ACTOR: Final = builtin.STORAGE_MARKET_ACTOR_ADDR
# A deal not yet in a proven sector (Lotus market.EmptyDealState).
EMPTY_DEAL_STATE: Final = DealState(-1, -1, -1)


class MarketBalance(LotusJson):
    """A participant's escrow and the part of it locked in deals (Lotus api.MarketBalance, as the
    StateMarketBalance method returns it)."""

    escrow: TokenAmount
    locked: TokenAmount


@dataclass(frozen=True, slots=True)
class MarketDeal:
    proposal: DealProposal
    state: DealState


def _tables(tree: StateTree) -> MarketTables:
    state: MarketState = read_actor_state(tree, MARKET_ACTOR, MarketState)
    return MarketTables(tree.store, state)


def _reading(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except (ActorError, BlockNotFound, DecodeError) as exc:
        raise StateQueryError(f"{what}: {exc}") from None


def market_balance(tree: StateTree, address: Address) -> MarketBalance:
    """Escrow and locked funds of a market participant (zero for one the market does not know)."""
    tables = _tables(tree)
    resolved = tree.lookup_id(address)
    if resolved is None:
        return MarketBalance(0, 0)
    return _reading(
        "market balances", lambda: MarketBalance(tables.escrow.get(resolved), tables.locked.get(resolved))
    )


def storage_deal(tree: StateTree, deal_id: int) -> MarketDeal | None:
    """A published deal and its state, or None if there is no such deal (Lotus GetStorageDeal)."""
    tables = _tables(tree)

    def read() -> MarketDeal | None:
        proposal = tables.proposal(deal_id)
        if proposal is None:
            return None
        return MarketDeal(proposal, tables.deal_state(deal_id) or EMPTY_DEAL_STATE)

    return _reading(f"deal {deal_id}", read)


def market_deals(tree: StateTree) -> dict[int, MarketDeal]:
    """Every published deal by ID."""
    tables = _tables(tree)

    def read() -> dict[int, MarketDeal]:
        out = {}
        for deal_id, _ in tables.proposals.items():
            proposal = tables.proposal(deal_id)
            if proposal is not None:
                out[deal_id] = MarketDeal(proposal, tables.deal_state(deal_id) or EMPTY_DEAL_STATE)
        return out

    return _reading("market deals", read)
