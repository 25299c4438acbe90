"""The sync service: what the node does with blocks, messages and hellos from peers, and with the
blocks and messages it makes itself (Lotus chain/sub/incoming.go, node/hello, SyncSubmitBlock).

Wiring (set on construction, before the P2PNode runs):

- gossip `block_check`: node/chainsync/checks.py (the checks that need no execution);
- gossip `block_sink`: a block that passed them gets its messages from the local store (the message
  pool stores every message it accepts there); when its parent is validated (we follow the chain) and
  some are missing, from the peer that sent it, then any other, by chain exchange (a request for the
  one-block tipset with messages). The block is stored and given to the sync manager as a target:
  applied at once when its parent is validated, else synced back to what we have (when we are behind,
  only its header is stored: the syncer fetches messages in batches);
- gossip `message_sink`: the message pool's `add`, its refusals mapped onto Reject and Ignore as Lotus
  does; `key_resolver`: ID senders resolved in the state after our head;
- hello: a peer's head heavier than ours is fetched (from the store, else from that peer with its
  messages) and becomes a sync target;
- messages the pool accepts from this node (pushes, MpoolPushMessage, the Window PoSt scheduler) are
  published on `/fil/msgs/<network>`: every pool addition not received from the network;
- `submit_block(block)` (Lotus SyncSubmitBlock): a block our miner made is validated (unless the miner
  did), tracked for fork choice, made part of the head if heavier, and published;
- `block_observers`: called with the header of every block gossip accepts (its header checks passed,
  whether or not its messages can be had) and of every block submitted (Lotus SyncIncomingBlocks):
  the slasher's `observe` (node/slasher.py);
- `mining_base(epoch)`: the round cutoff (Lotus miner.go): the heaviest tipset we have, once the
  blocks received for earlier epochs have been dealt with (validated and, with our own, formed into
  one tipset), waiting at most `cutoff_wait` seconds for them;
- `sync_state()` (SyncState), `check_bad`, `mark_bad`, `unmark_bad`, `unmark_all_bad`
  (SyncCheckBad, SyncMarkBad, SyncUnmarkBad, SyncUnmarkAllBad).
"""

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import structlog
import trio

from chain.consensus.fullblock import FullBlock
from chain.consensus.validation import validate_block
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.mpool.errors import MpoolError
from chain.mpool.pool import MpoolChange
from chain.store.blockstore import BlockNotFound
from chain.sync.badblocks import BadBlockCache
from chain.sync.exchange import ExchangeError, Peer
from chain.sync.manager import DEFAULT_WORKERS, SyncManager
from chain.sync.state import SyncStatus
from chain.sync.syncer import DEFAULT_MESSAGE_BATCH, Syncer
from chain.types.address import Address
from chain.types.block import BlockHeader, BlockMsg
from chain.types.message import Message, SignedMessage
from chain.types.tipset import TipSet, TipSetKey
from node.chainsync.checks import check_block_header, message_verdict
from node.chainsync.exchange import XchgExchange
from node.fullnode import FullNode
from node.p2p.hello import HelloMessage
from node.p2p.protocols import PeerID
from node.p2p.service import P2PNode

if TYPE_CHECKING:
    from trio_typing import TaskStatus

_log = structlog.get_logger(__name__)

# Message CIDs received from the network, so that only our own are published.
_FROM_NETWORK: Final = 8192
# The pool's updates buffered for the publisher before it is dropped (and subscribes again).
_PUBLISH_BUFFER: Final = 1024


class _RecentCids:
    def __init__(self, size: int) -> None:
        self._size = size
        self._cids: OrderedDict[CID, None] = OrderedDict()

    def add(self, cid: CID) -> None:
        self._cids[cid] = None
        self._cids.move_to_end(cid)
        while len(self._cids) > self._size:
            self._cids.popitem(last=False)

    def __contains__(self, cid: object) -> bool:
        return cid in self._cids


class SyncService:
    """See the module docstring. A node service (`run`)."""

    name = "sync"

    def __init__(
        self,
        node: FullNode,
        p2p: P2PNode,
        *,
        workers: int = DEFAULT_WORKERS,
        message_batch: int = DEFAULT_MESSAGE_BATCH,
        cutoff_wait: float | None = None,
        bad: BadBlockCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.node = node
        self.p2p = p2p
        self.exchange = XchgExchange(p2p.xchg)
        self.syncer = Syncer(
            node.chain,
            node.state,
            node.beacon,
            self.exchange,
            penalize=self._penalize,
            bad=bad,
            message_batch=message_batch,
            limiter=node.limiter,
            clock=clock,
        )
        self.manager = SyncManager(self.syncer, workers=workers)
        delay = node.policy.block_delay_secs
        # By default a quarter of the block delay, as the mining loop's propagation delay.
        self.cutoff_wait = delay / 4 if cutoff_wait is None else cutoff_wait
        self._block_wait = max(2.0 * delay, 10.0)
        self._clock = clock
        self._in_flight: dict[CID, int] = {}  # gossiped blocks being dealt with -> height
        self._settled = trio.Event()
        self._from_network = _RecentCids(_FROM_NETWORK)
        self._nursery: trio.Nursery | None = None
        self.published_messages = 0
        self.published_blocks = 0
        self.block_observers: list[Callable[[BlockHeader], None]] = []
        gossip = p2p.gossip
        gossip.block_check = self._check_block
        gossip.block_sink = self._on_block
        gossip.message_sink = self._on_message
        gossip.key_resolver = self._resolve_key
        p2p.hello.on_hello = self._on_hello
        node.sync = self

    # -- the service ----------------------------------------------------------------------------------
    async def run(self, *, task_status: "TaskStatus[None]" = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.manager.run)
            nursery.start_soon(self._publish_local_messages)
            self._nursery = nursery
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    def _penalize(self, peer: Peer, reason: str) -> None:
        if isinstance(peer, PeerID):
            self.p2p.gossip.penalize_invalid_block(peer, reason)

    # -- gossip: blocks -------------------------------------------------------------------------------
    async def _check_block(self, block: BlockMsg) -> None:
        header = block.header
        assert header is not None  # gossip checked
        head = self.node.chain.head()
        # In flight from now on: the mining cutoff waits for it (the sink takes over if it passes).
        self._in_flight[header.cid()] = header.height
        try:
            await self.node.run_sync(
                lambda: check_block_header(
                    self.node.state,
                    self.node.beacon,
                    self.syncer.bad,
                    header,
                    head,
                    self.syncer.is_validated_key,
                    now=self._clock(),
                )
            )
        except BaseException:
            self._settle(header.cid())
            raise

    async def _on_block(self, block: BlockMsg, source: PeerID) -> None:
        header = block.header
        assert header is not None
        self._observed(header)
        self._in_flight[header.cid()] = header.height
        if self._nursery is None:
            self._settle(header.cid())
            return
        self._nursery.start_soon(self._receive_block, block, source)

    async def _receive_block(self, msg: BlockMsg, source: PeerID) -> None:
        header = msg.header
        assert header is not None
        cid = header.cid()
        try:
            full = await self.node.run_sync(self._local_block, msg)
            following = await self.node.run_sync(self.syncer.is_validated_key, TipSetKey(header.parents))
            if full is None and following:
                # The block applies at once: its messages are needed now, from the sender first.
                try:
                    full = await self.exchange.block(header, prefer=[source])
                except ExchangeError as exc:
                    _log.warning(
                        "sync.block_messages_unavailable", block=str(cid), peer=str(source), error=str(exc)
                    )
                    return
            if full is not None:
                await self.node.run_sync(self.syncer.store_block, full)
            else:
                # We are behind: the header goes to the syncer, which fetches messages in batches.
                await self.node.run_sync(self.node.chain.put_block, header)
            done = self.manager.set_peer_head(source, TipSet((header,)))
            with trio.move_on_after(self._block_wait):
                await done.wait()
        finally:
            self._settle(cid)

    def _local_block(self, msg: BlockMsg) -> FullBlock | None:
        """The block with its messages from the local store (blocking), or None if one is missing."""
        assert msg.header is not None
        chain = self.node.chain
        try:
            bls = [chain.get_message(cid) for cid in msg.bls_messages]
            secpk = [chain.get_message(cid) for cid in msg.secpk_messages]
        except (BlockNotFound, DecodeError):
            return None
        bls_messages = [m for m in bls if isinstance(m, Message)]
        secpk_messages = [m for m in secpk if isinstance(m, SignedMessage)]
        if len(bls_messages) != len(bls) or len(secpk_messages) != len(secpk):
            return None
        return FullBlock(msg.header, tuple(bls_messages), tuple(secpk_messages))

    def _settle(self, cid: CID) -> None:
        self._in_flight.pop(cid, None)
        self._settled.set()
        self._settled = trio.Event()

    # -- gossip: messages -----------------------------------------------------------------------------
    async def _on_message(self, message: SignedMessage, source: PeerID) -> None:
        self._from_network.add(message.cid())
        try:
            await self.node.run_sync(lambda: self.node.mpool.add(message))
        except MpoolError as exc:
            raise message_verdict(exc) from None

    async def _resolve_key(self, address: Address) -> Address | None:
        head = self.node.chain.head()
        return await self.node.run_sync(self.node.state.resolve_to_key, address, head)

    async def _publish_local_messages(self) -> None:
        while True:
            updates = self.node.mpool.subscribe(_PUBLISH_BUFFER)
            async with updates:
                async for update in updates:
                    cid = update.message.cid()
                    if update.type != MpoolChange.ADD or cid in self._from_network:
                        continue
                    self._from_network.add(cid)  # once
                    await self.p2p.gossip.publish_message(update.message)
                    self.published_messages += 1
            _log.warning("sync.publisher_fell_behind: subscribing to the message pool again")

    # -- hello ----------------------------------------------------------------------------------------
    async def _on_hello(self, peer: PeerID, hello: HelloMessage) -> None:
        if hello.heaviest_tip_set_weight <= self.node.chain.head_weight():
            return
        if self._nursery is not None:
            self._nursery.start_soon(self._follow_hello, peer, hello.head())

    async def _follow_hello(self, peer: PeerID, key: TipSetKey) -> None:
        ts = await self.node.run_sync(self.syncer.load_local_tipset, key)
        if ts is None:
            try:
                blocks = await self.exchange.full_tipset(key, prefer=[peer])
            except ExchangeError as exc:
                _log.info("sync.hello_head_unavailable", peer=str(peer), error=str(exc))
                return
            for block in blocks:
                await self.node.run_sync(self.syncer.store_block, block)
            ts = TipSet(tuple(b.header for b in blocks))
        self.manager.set_peer_head(peer, ts)

    # -- our own blocks -------------------------------------------------------------------------------
    async def submit_block(self, block: FullBlock, *, validated: bool = False) -> bool:
        """A block this node made (Lotus SyncSubmitBlock): validated unless `validated` says the miner
        did (raises BlockValidationError), tracked for fork choice, made part of the head if heavier,
        then published. Whether the head changed."""
        if not validated and not self.syncer.is_validated_block(block.cid()):
            await self.node.run_sync(
                lambda: validate_block(self.node.state, self.node.beacon, block, now=self._clock())
            )
        await self.node.run_sync(self.syncer.note_validated, block)
        changed = await self.node.run_sync(self.syncer.take_heaviest, TipSet((block.header,)))
        await self.p2p.gossip.publish_block(block.block_msg())
        self.published_blocks += 1
        self._observed(block.header)
        return changed

    def _observed(self, header: BlockHeader) -> None:
        for observe in self.block_observers:
            observe(header)

    async def mining_base(self, epoch: int, *, wait: float | None = None) -> TipSet:
        """The round cutoff: the heaviest tipset to mine `epoch` on, once the blocks received for
        earlier epochs are dealt with (at most `wait` seconds, default `cutoff_wait`)."""
        with trio.move_on_after(self.cutoff_wait if wait is None else wait):
            while any(height < epoch for height in self._in_flight.values()):
                await self._settled.wait()
        return self.node.chain.head()

    # -- what RPC asks ----------------------------------------------------------------------------------
    def sync_state(self) -> SyncStatus:
        return self.manager.state()

    def check_bad(self, cid: CID) -> str:
        """Why a block is bad, or "" (SyncCheckBad)."""
        reason = self.syncer.bad.get(cid)
        return "" if reason is None else str(reason)

    def mark_bad(self, cid: CID) -> None:
        self.syncer.bad.mark([cid], "manually marked bad", (cid,))

    def unmark_bad(self, cid: CID) -> None:
        self.syncer.bad.remove(cid)

    def unmark_all_bad(self) -> None:
        self.syncer.bad.clear()
