"""State methods about the storage market actor (lotus node/impl/full/state.go)."""

from chain.encoding.schema import Uint64
from chain.stmgr import market as market_queries
from chain.stmgr.market import MarketBalance
from chain.types.address import Address
from chain.types.tipset import TipSet, TipSetKey
from node.fullnode import FullNode
from rpc.errors import RpcError
from rpc.methods.query import at_tipset
from rpc.methods.state_types import MarketDeal, MarketDeals, MarketDealState
from rpc.registry import READ, method


def api_deal(deal: market_queries.MarketDeal) -> MarketDeal:
    """A deal as the API writes it (api.MakeDealState: filpy's market keeps no sector number)."""
    state = deal.state
    return MarketDeal(
        deal.proposal,
        MarketDealState(0, state.sector_start_epoch, state.last_updated_epoch, state.slash_epoch),
    )


@method("StateMarketBalance", perm=READ)
async def state_market_balance(node: FullNode, address: Address, tsk: TipSetKey) -> MarketBalance:
    """A market participant's escrow and locked funds (zero for an address the market does not know)."""
    return await at_tipset(node, tsk, lambda ts: node.state.market_balance(address, ts))


@method("StateMarketDeals", perm=READ)
async def state_market_deals(node: FullNode, tsk: TipSetKey) -> MarketDeals:
    """Every published deal and its state, by deal ID."""

    def read(ts: TipSet) -> MarketDeals:
        return MarketDeals({deal_id: api_deal(d) for deal_id, d in node.state.market_deals(ts).items()})

    return await at_tipset(node, tsk, read)


@method("StateMarketStorageDeal", perm=READ)
async def state_market_storage_deal(node: FullNode, deal_id: Uint64, tsk: TipSetKey) -> MarketDeal:
    """A published deal and its state."""
    deal = await at_tipset(node, tsk, lambda ts: node.state.storage_deal(deal_id, ts))
    if deal is None:
        # Lotus's words (stmgr.GetStorageDeal).
        raise RpcError(
            f"deal {deal_id} not found - deal may not have completed sealing before deal proposal "
            "start epoch, or deal may have been slashed"
        )
    return api_deal(deal)
