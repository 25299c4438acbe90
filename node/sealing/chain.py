"""What the sealing pipeline asks of the chain, as one protocol, and its implementation on a FullNode.

The pipeline reads the chain and sends messages only through `SealingChain`, so the node's parts are
behind one narrow interface (tests wrap it to make the chain misbehave). Reads are of the state *after*
the given tipset (the head, normally): "is this sector pre-committed?" must see a pre-commit the head's
own messages made, or a restart could send it again.

Every method but `subscribe` is synchronous and may block (LevelDB, execution): the pipeline calls them
in worker threads.
"""

from collections.abc import Sequence
from typing import Protocol

import trio

from actors import builtin
from actors.miner.policy import initial_pledge_for_power, pre_commit_deposit_for_power, qa_power_max
from actors.miner.state import MinerInfo, PreCommits, SectorOnChainInfo, SectorPreCommitOnChainInfo, Sectors
from actors.power.state import PowerState
from actors.reward.state import RewardState
from chain.crypto.randomness import DomainSeparationTag
from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.mpool.push import SendSpec
from chain.params import Policy
from chain.state.tree import StateTree
from chain.stmgr import market as market_queries
from chain.stmgr import miners as miner_queries
from chain.stmgr.actors import read_actor_state
from chain.stmgr.search import MessageReplaced, MsgLookup, UnknownMessage
from chain.types.address import Address
from chain.types.bitfield import BitField
from chain.types.message import Message, SignedMessage
from chain.types.tipset import TipSet
from chain.vm.circulating import circulating_supply
from node.fullnode import FullNode
from node.mining.chain_api import HeadChangeEvent


class SealingChain(Protocol):
    policy: Policy

    def head(self) -> TipSet: ...

    def subscribe(self) -> trio.MemoryReceiveChannel[Sequence[HeadChangeEvent]]:
        """Head changes, as the chain store's subscribe (first [current], then one list per change)."""
        ...

    def miner_info(self, miner: Address, ts: TipSet) -> MinerInfo: ...

    def precommit_info(self, miner: Address, number: int, ts: TipSet) -> SectorPreCommitOnChainInfo | None:
        """Lotus StateSectorPreCommitInfo."""
        ...

    def sector_info(self, miner: Address, number: int, ts: TipSet) -> SectorOnChainInfo | None:
        """Lotus StateSectorGetInfo."""
        ...

    def allocated_sectors(self, miner: Address, ts: TipSet) -> BitField:
        """The sector numbers the miner actor has given out (pre-committed at least once)."""
        ...

    def miner_faults(self, miner: Address, ts: TipSet) -> BitField:
        """The miner's faulty sectors (Lotus StateMinerFaults)."""
        ...

    def draw_ticket(self, miner: Address, epoch: int, ts: TipSet) -> bytes:
        """SealRandomness at epoch, as the miner actor draws it when it checks the seal."""
        ...

    def draw_seed(self, miner: Address, epoch: int, ts: TipSet) -> bytes:
        """InteractiveSealChallengeSeed at epoch, as the miner actor draws it."""
        ...

    def pre_commit_deposit(self, sector_size: int, ts: TipSet) -> int:
        """The deposit the actor locks per pre-committed sector (it assumes the maximum quality)."""
        ...

    def initial_pledge(self, qa_power: int, ts: TipSet) -> int:
        """The initial pledge of a sector of this quality-adjusted power."""
        ...

    def available_balance(self, miner: Address, ts: TipSet) -> int:
        """Lotus StateMinerAvailableBalance."""
        ...

    def deal(self, deal_id: int, ts: TipSet) -> market_queries.MarketDeal | None: ...

    def push(self, msg: Message, spec: SendSpec) -> SignedMessage:
        """MpoolPushMessage; raises with the reason when the pool or the gas estimate refuses."""
        ...

    def pending_for(self, address: Address) -> Sequence[SignedMessage]:
        """The sender's messages waiting in the pool (address: any address of the sender)."""
        ...

    def search(self, cid: CID, ts: TipSet) -> MsgLookup | None:
        """Where the message executed on the chain ending at ts (None: not (yet) on it)."""
        ...


def _entropy(miner: Address) -> bytes:
    return dagcbor.encode(miner.to_cbor())


class NodeChain:
    """SealingChain over a FullNode's chain store, state manager, message pool and pusher."""

    def __init__(self, node: FullNode) -> None:
        self.node = node
        self.policy = node.policy

    def _after(self, ts: TipSet) -> StateTree:
        state = self.node.state
        return state.tree(state.state_of(ts).state_root)

    def head(self) -> TipSet:
        return self.node.chain.head()

    def subscribe(self) -> trio.MemoryReceiveChannel[Sequence[HeadChangeEvent]]:
        return self.node.chain.subscribe()

    def miner_info(self, miner: Address, ts: TipSet) -> MinerInfo:
        return miner_queries.miner_info(self._after(ts), miner)

    def precommit_info(self, miner: Address, number: int, ts: TipSet) -> SectorPreCommitOnChainInfo | None:
        tree = self._after(ts)
        state = miner_queries.miner_state(tree, miner)
        return PreCommits.load(tree.store, state.pre_committed_sectors).get(number)

    def sector_info(self, miner: Address, number: int, ts: TipSet) -> SectorOnChainInfo | None:
        tree = self._after(ts)
        state = miner_queries.miner_state(tree, miner)
        return Sectors.load(tree.store, state.sectors).get(number)

    def allocated_sectors(self, miner: Address, ts: TipSet) -> BitField:
        tree = self._after(ts)
        return miner_queries.miner_state(tree, miner).get_allocated(tree.store)

    def miner_faults(self, miner: Address, ts: TipSet) -> BitField:
        return miner_queries.miner_faults(self._after(ts), miner)

    def draw_ticket(self, miner: Address, epoch: int, ts: TipSet) -> bytes:
        return self.node.state.draw_chain_randomness(
            ts, DomainSeparationTag.SealRandomness, epoch, _entropy(miner)
        )

    def draw_seed(self, miner: Address, epoch: int, ts: TipSet) -> bytes:
        return self.node.state.draw_beacon_randomness(
            ts, DomainSeparationTag.InteractiveSealChallengeSeed, epoch, _entropy(miner)
        )

    def _pricing(self, ts: TipSet) -> tuple[StateTree, RewardState, PowerState]:
        """The state after ts and the reward and power actors' states in it: what the actor prices a
        sector's deposit and pledge from."""
        tree = self._after(ts)
        reward: RewardState = read_actor_state(tree, builtin.REWARD_ACTOR_ADDR, RewardState)
        return tree, reward, miner_queries.power_state(tree)

    def pre_commit_deposit(self, sector_size: int, ts: TipSet) -> int:
        _, reward, power = self._pricing(ts)
        return pre_commit_deposit_for_power(
            self.policy,
            reward.this_epoch_reward_smoothed,
            power.this_epoch_qa_power_smoothed,
            qa_power_max(sector_size),
        )

    def initial_pledge(self, qa_power: int, ts: TipSet) -> int:
        tree, reward, power = self._pricing(ts)
        return initial_pledge_for_power(
            self.policy,
            qa_power,
            reward.this_epoch_baseline_power,
            reward.this_epoch_reward_smoothed,
            power.this_epoch_qa_power_smoothed,
            circulating_supply(tree),
        )

    def available_balance(self, miner: Address, ts: TipSet) -> int:
        return miner_queries.available_balance(self._after(ts), miner, ts.height + 1)

    def deal(self, deal_id: int, ts: TipSet) -> market_queries.MarketDeal | None:
        return market_queries.storage_deal(self._after(ts), deal_id)

    def push(self, msg: Message, spec: SendSpec) -> SignedMessage:
        return self.node.pusher.push_message(msg, spec)

    def pending_for(self, address: Address) -> Sequence[SignedMessage]:
        key = self.node.state.resolve_to_key(address, self.node.mpool.head)
        return self.node.mpool.pending_for(address if key is None else key)

    def search(self, cid: CID, ts: TipSet) -> MsgLookup | None:
        try:
            return self.node.state.search_msg(ts, cid)
        except (UnknownMessage, MessageReplaced):
            return None


def _conforms(node: FullNode) -> SealingChain:
    """NodeChain implements the protocol (checked by mypy here)."""
    return NodeChain(node)
