"""What the deal code reads from the chain, as Lotus's API answers it, over the node's state manager.

Every function here is synchronous (state reads hit LevelDB): trio callers run them through
`node.run_sync`. Queries at a tipset read its parent state, as every Lotus State* method does.
"""

from dataclasses import dataclass, replace
from typing import Final

from actors import builtin
from actors.market.policy import deal_provider_collateral_bounds
from actors.market.types import DealProposal
from actors.miner.state import MinerInfo, SectorOnChainInfo
from actors.reward.state import RewardState
from chain.stmgr import miners as miner_queries
from chain.stmgr.actors import read_actor_state
from chain.types.address import Address
from chain.types.tipset import TipSet
from chain.vm.circulating import circulating_supply
from node.fullnode import FullNode

# Lotus StateDealProviderCollateralBounds returns 110% of the market's floor (dealProviderCollateralNum
# / Den), so that a proposal made now still clears the floor when the supply has grown by publication.
COLLATERAL_MARGIN_NUM: Final = 110
COLLATERAL_MARGIN_DEN: Final = 100


@dataclass(frozen=True, slots=True)
class CollateralBounds:
    """Lotus api.DealCollateralBounds."""

    min: int
    max: int


def collateral_bounds(node: FullNode, piece_size: int, ts: TipSet) -> CollateralBounds:
    """StateDealProviderCollateralBounds: the market's bounds on a deal's provider collateral, from the
    network's raw power, the baseline power and the circulating supply, the floor raised by 10%."""
    tree = node.state.parent_tree(ts)
    power = miner_queries.power_state(tree)
    reward: RewardState = read_actor_state(tree, builtin.REWARD_ACTOR_ADDR, RewardState)
    low, high = deal_provider_collateral_bounds(
        node.policy,
        piece_size,
        power.this_epoch_raw_byte_power,
        reward.this_epoch_baseline_power,
        circulating_supply(tree),
    )
    return CollateralBounds(low * COLLATERAL_MARGIN_NUM // COLLATERAL_MARGIN_DEN, high)


def available_escrow(node: FullNode, address: Address, ts: TipSet) -> int:
    """Market escrow not locked in deals."""
    balance = node.state.market_balance(address, ts)
    return balance.escrow - balance.locked


def worker_key(node: FullNode, miner: Address, ts: TipSet) -> tuple[MinerInfo, Address]:
    """The miner's info and its worker's key address (what signs asks and deal messages)."""
    info = node.state.miner_info(miner, ts)
    return info, node.state.account_key(info.worker, ts)


def as_stored(node: FullNode, proposal: DealProposal, ts: TipSet) -> DealProposal:
    """The proposal as the market stores it once published: client and provider by ID address."""
    return replace(
        proposal,
        client=node.state.lookup_id(proposal.client, ts),
        provider=node.state.lookup_id(proposal.provider, ts),
    )


def sector_with_deal(
    node: FullNode, miner: Address, sector: int, deal_id: int, ts: TipSet
) -> SectorOnChainInfo | None:
    """The miner's sector on chain if it exists and holds the deal (VerifySectorExists)."""
    info = node.state.sector_info(miner, sector, ts)
    if info is None or deal_id not in info.deal_ids:
        return None
    return info
