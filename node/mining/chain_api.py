"""What the miner's services need of the rest of the node, as protocols.

The Window PoSt scheduler reads the chain and sends messages only through these, so it can run against
the node's chain store, state manager and message pool, or against a chain on the VM in tests. The
method names and shapes are those of the node's parts (docs/node.md), so those implement them as they
are (`_conforms` below has mypy check that): the chain store's `subscribe`, the state manager's queries
at a tipset (which read the tipset's parent state, as Lotus's StateMinerProvingDeadline and friends do)
and randomness draws, the message pusher's `push_message` (Lotus MpoolPushMessage: nonce, gas and
signature filled in), the pool's `pending_for` and the state manager's message search.

Every method but `subscribe` is synchronous and may block (LevelDB, execution): the services call them
with `trio.to_thread.run_sync`.
"""

from collections.abc import Sequence
from typing import Final, Protocol

import trio

from actors.miner.deadlines import Deadline, Partition
from actors.miner.policy import DeadlineInfo
from actors.miner.state import MinerInfo, SectorOnChainInfo
from chain.chainstore.store import ChainStore
from chain.encoding.cid import CID
from chain.mpool.pool import MessagePool
from chain.mpool.push import MessagePusher, SendSpec
from chain.stmgr.manager import StateManager
from chain.stmgr.search import MsgLookup
from chain.types.address import Address
from chain.types.bitfield import BitField
from chain.types.message import Message, SignedMessage
from chain.types.tipset import TipSet

# Lotus's api.HeadChange types.
APPLY: Final = "apply"
REVERT: Final = "revert"
CURRENT: Final = "current"


class HeadChangeEvent(Protocol):
    """One step of a head change (chain/chainstore/reorg.py's HeadChange): "current" (the head when
    subscribing), "revert" or "apply", and the tipset."""

    @property
    def type(self) -> str: ...

    @property
    def tipset(self) -> TipSet: ...


class HeadChanges(Protocol):
    def subscribe(self) -> trio.MemoryReceiveChannel[Sequence[HeadChangeEvent]]:
        """From a trio task: a channel whose first value is [current head], then one list per head
        change (reverts newest first, then applies oldest first). A subscriber that falls behind is
        dropped: its channel ends."""
        ...


class MinerChainState(Protocol):
    """The miner's state and the chain's randomness at a tipset (chain/stmgr's StateManager)."""

    def proving_deadline(self, miner: Address, ts: TipSet) -> DeadlineInfo:
        """The miner's current deadline at ts.height, or the next one not yet elapsed (Lotus
        StateMinerProvingDeadline)."""
        ...

    def miner_info(self, miner: Address, ts: TipSet) -> MinerInfo: ...

    def miner_deadlines(self, miner: Address, ts: TipSet) -> Sequence[Deadline]: ...

    def miner_partitions(self, miner: Address, deadline: int, ts: TipSet) -> Sequence[Partition]: ...

    def miner_sectors(
        self, miner: Address, ts: TipSet, numbers: BitField | None = None
    ) -> Sequence[SectorOnChainInfo]:
        """The miner's sectors numbered in numbers (or all), in sector-number order."""
        ...

    def lookup_id(self, address: Address, ts: TipSet) -> Address: ...

    def draw_chain_randomness(self, ts: TipSet, tag: int, epoch: int, entropy: bytes) -> bytes:
        """Lotus StateGetRandomnessFromTickets on the chain ending at ts."""
        ...

    def draw_beacon_randomness(self, ts: TipSet, tag: int, epoch: int, entropy: bytes) -> bytes:
        """Lotus StateGetRandomnessFromBeacon on the chain ending at ts."""
        ...


class MessagePush(Protocol):
    def push_message(self, msg: Message, spec: SendSpec | None = None, /) -> SignedMessage:
        """Lotus MpoolPushMessage: msg (nonce 0, gas unset) gets its sender's next nonce and estimated
        gas (its fees capped at spec.max_fee), is signed with the sender's key from the node's wallet,
        and enters the message pool. Raises (the pool's MpoolError) with the reason when refused."""
        ...


class MessageSearch(Protocol):
    def search_msg(
        self, head: TipSet, cid: CID, limit: int = ..., allow_replaced: bool = ...
    ) -> MsgLookup | None:
        """Where the message executed on the chain ending at head, looking back at most limit epochs
        (Lotus StateSearchMsg); None if not (yet). Raises UnknownMessage for a message the node has
        never seen in a block, MessageReplaced when another took its nonce."""
        ...


class PendingMessages(Protocol):
    def pending_for(self, address: Address, /) -> Sequence[SignedMessage]:
        """A sender's messages waiting in the message pool, in nonce order."""
        ...


def _conforms(
    chain: ChainStore, state: StateManager, pusher: MessagePusher, pool: MessagePool
) -> tuple[HeadChanges, MinerChainState, MessagePush, PendingMessages, MessageSearch]:
    """The node's parts implement these protocols as they are (checked by mypy here)."""
    return chain, state, pusher, pool, state
