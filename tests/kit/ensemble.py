"""An in-process network of full nodes for tests (as Lotus's itests kit): N nodes from one genesis with
M genesis miners, each node a FullNode (in-memory chain store, state manager, message pool, wallet)
with a P2PNode on 127.0.0.1 and its sync service; a miner node also runs its miner's Window PoSt
scheduler over a sector store of the miner's pre-sealed sectors.

```python
async with ensemble(nodes=3, miners=2) as ens:  # miner i on node i
    await ens.mine_one()  # every mining node makes its block for the next epoch; all converge
    signed = await ens.nodes[2].push(message)
    await ens.mine(3)
    async with ens.running(interval=1.0):  # miners mine on the wall clock, at the round cutoff
        await ens.wait_height(20)
```

`mine_one()` is deterministic (also across processes: each node's gas premium noise is seeded by its
index): the nodes converge first, every miner node makes its block at the next epoch on that head
(epochs where none wins are null rounds, tried in turn), blocks are submitted through the nodes' sync
services (validated, gossiped) and the call returns once every node of the group has the tipset of
all of them as its head. `running()` lets each miner mine on its own at every
epoch's cutoff (SyncService.mining_base), as a daemon's mining loop does. `partition(...)` and `heal()`
disconnect and reconnect groups. Everything runs in one trio nursery and a temporary directory, both
gone when the context exits.
"""

import random
import tempfile
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

import trio

from chain.crypto.keys import PrivateKey
from chain.params import DEVNET, Policy
from chain.stmgr.chain import LOOKBACK_NO_LIMIT
from chain.stmgr.search import MsgLookup
from chain.types.block import BlockHeader
from chain.types.message import Message, SignedMessage
from chain.types.tipset import TipSet
from node.chainsync.service import SyncService
from node.config import Libp2pConfig
from node.fullnode import FullNode, in_memory_full_node
from node.genesis import Genesis
from node.keystore import Keystore
from node.p2p.addrinfo import AddrInfo
from node.p2p.host import HostOptions
from node.p2p.identity import MemoryIdentity, load_or_create_identity
from node.p2p.protocols import PeerID
from node.p2p.service import P2PNode
from node.preseal import PresealedMiner
from node.wallet import Wallet
from tests.consensus.devchain import ALICE, BOB, CAROL, genesis_of
from tests.kit.miner import KitMiner
from tests.polling import WAIT, wait_until

ACCOUNT_KEYS: Final = (ALICE, BOB, CAROL)


@dataclass(eq=False)
class KitNode:
    index: int
    node: FullNode
    p2p: P2PNode
    sync: SyncService
    miners: list[KitMiner] = field(default_factory=list)
    scope: trio.CancelScope | None = None
    stopped: bool = False

    @property
    def head(self) -> TipSet:
        return self.node.chain.head()

    @property
    def peer_id(self) -> PeerID:
        return self.p2p.host.peer_id

    @property
    def multiaddr(self) -> str:
        """The address a peer dials this node by: its first listen address with /p2p/<peer ID>."""
        info = self.p2p.host.addrs_listen()
        return f"{info.addrs[0]}/p2p/{info.id}"

    @property
    def running(self) -> bool:
        return self.scope is not None and not self.stopped

    def connected_to(self, other: "KitNode") -> bool:
        return self.p2p.host.is_connected(other.peer_id)

    def score_of(self, other: "KitNode") -> float:
        """The gossip score this node gives the other."""
        return self.p2p.gossip.score(other.peer_id)

    async def push(self, message: Message) -> SignedMessage:
        """MpoolPushMessage on this node (nonce, gas, the wallet's signature); published by the sync
        service."""
        return await self.node.run_sync(self.node.pusher.push_message, message)

    def __repr__(self) -> str:
        return f"KitNode({self.index}, height={self.head.height})"


class Ensemble:
    def __init__(
        self, genesis: Genesis, nursery: trio.Nursery, directory: Path, policy: Policy = DEVNET
    ) -> None:
        self.genesis = genesis
        self.policy = policy
        self.nodes: list[KitNode] = []
        self._nursery = nursery
        self._directory = directory
        self._groups: list[set[int]] | None = None  # a partition, if any

    # -- nodes --------------------------------------------------------------------------------------
    def add_node(
        self, miners: Sequence[PresealedMiner] = (), *, keys: Iterable[PrivateKey] = ACCOUNT_KEYS
    ) -> KitNode:
        """A node (not started) holding these genesis miners and wallet keys."""
        index = len(self.nodes)
        directory = self._directory / f"node{index}"
        directory.mkdir(parents=True, exist_ok=True)
        wallet = Wallet(Keystore.create(directory / "keystore"))
        for key in keys:
            wallet.ensure_key(key)
        node = in_memory_full_node(self.genesis, wallet, policy=self.policy)
        # The noise of the gas premium estimate (Lotus's) comes from a generator seeded by the node's
        # index, so that a node's messages, and a chain mined on it, are the same in any process.
        node.pusher = replace(node.pusher, rng=random.Random(index))
        p2p = P2PNode(
            Libp2pConfig(),
            load_or_create_identity(MemoryIdentity()),
            node.chain,
            self.policy,
            options=HostOptions(dial_timeout=10.0),
        )
        sync = SyncService(node, p2p)
        kit = KitNode(index, node, p2p, sync)
        for miner in miners:
            kit.miners.append(
                KitMiner.create(miner, node, sync, directory / f"sectors-{miner.id_address.id}")
            )
        self.nodes.append(kit)
        return kit

    async def start(self, kit: KitNode) -> None:
        with trio.fail_after(WAIT):
            await self._nursery.start(self._run_node, kit)
        kit.node.peer_id = kit.p2p.host.id()

    async def _run_node(
        self, kit: KitNode, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        with trio.CancelScope() as scope:
            kit.scope = scope
            async with trio.open_nursery() as nursery:
                await nursery.start(kit.sync.run)
                await nursery.start(kit.p2p.run)
                for miner in kit.miners:
                    await nursery.start(miner.scheduler.run)
                task_status.started()

    def stop(self, kit: KitNode) -> None:
        """Stop a node for good (its host closes; its peers see it go)."""
        if kit.scope is not None:
            kit.scope.cancel()
        kit.stopped = True

    def running_nodes(self) -> list[KitNode]:
        return [k for k in self.nodes if k.running]

    # -- connections ----------------------------------------------------------------------------------
    async def connect(self, a: KitNode, b: KitNode) -> None:
        """Dial b from a; returns once each knows the other's gossip subscriptions."""
        await self.connect_peer(a, b.multiaddr)
        await wait_until(
            lambda: _knows_subscriptions(b, a.peer_id),
            what=f"nodes {a.index} and {b.index} subscribed to each other",
        )

    async def connect_peer(self, kit: KitNode, multiaddr: str) -> PeerID:
        """Dial a peer by its multiaddr ending in /p2p/<peer ID> (one outside the ensemble, such as a
        node in another process); returns its ID once kit knows its gossip subscriptions."""
        info = AddrInfo.parse(multiaddr)
        peer = info.peer_id()
        with trio.fail_after(WAIT):
            await kit.p2p.host.connect(info)
        await wait_until(
            lambda: _knows_subscriptions(kit, peer),
            what=f"node {kit.index} seeing the gossip subscriptions of {multiaddr}",
        )
        return peer

    async def connect_all(self, nodes: Sequence[KitNode] | None = None) -> None:
        nodes = self.running_nodes() if nodes is None else list(nodes)
        for i, a in enumerate(nodes):
            for b in nodes[i + 1 :]:
                if not a.connected_to(b):
                    await self.connect(a, b)

    async def disconnect(self, a: KitNode, b: KitNode) -> None:
        await a.p2p.host.disconnect(b.peer_id)
        await wait_until(
            lambda: not a.connected_to(b) and not b.connected_to(a),
            what=f"nodes {a.index} and {b.index} disconnected",
        )

    async def partition(self, *groups: Sequence[int]) -> None:
        """Cut every connection between the groups (node indexes); nodes within a group stay linked."""
        self._groups = [set(g) for g in groups]
        for i, group in enumerate(self._groups):
            for other in self._groups[i + 1 :]:
                for a in group:
                    for b in other:
                        if self.nodes[a].connected_to(self.nodes[b]):
                            await self.disconnect(self.nodes[a], self.nodes[b])

    async def heal(self) -> None:
        """Reconnect every running node with every other (hello then tells each side the other's head)."""
        self._groups = None
        await self.connect_all()

    def group_of(self, kit: KitNode) -> list[KitNode]:
        if self._groups is None:
            return self.running_nodes()
        for group in self._groups:
            if kit.index in group:
                return [self.nodes[i] for i in sorted(group) if self.nodes[i].running]
        return [kit]

    # -- the chain ------------------------------------------------------------------------------------
    async def wait_converged(
        self, nodes: Sequence[KitNode] | None = None, *, timeout: float = WAIT
    ) -> TipSet:
        """Until the nodes (default: all running) have the same head; that head."""
        nodes = self.running_nodes() if nodes is None else list(nodes)
        await wait_until(
            lambda: len({k.head.key for k in nodes}) == 1,
            timeout=timeout,
            what=f"nodes {[k.index for k in nodes]} converging (heads {[k.head.height for k in nodes]})",
        )
        return nodes[0].head

    async def wait_height(
        self, height: int, nodes: Sequence[KitNode] | None = None, *, timeout: float = WAIT
    ) -> None:
        nodes = self.running_nodes() if nodes is None else list(nodes)
        await wait_until(
            lambda: all(k.head.height >= height for k in nodes),
            timeout=timeout,
            what=f"nodes {[k.index for k in nodes]} reaching height {height}",
        )

    async def mine_one(self, nodes: Sequence[KitNode] | None = None, *, max_nulls: int = 20) -> TipSet:
        """One tipset made by every miner of the nodes (default: all running; they must be linked):
        they converge, each miner makes its block at the next epoch it can win on that head, the
        blocks are submitted and gossiped, and this returns once every node has their tipset as head."""
        group = self.running_nodes() if nodes is None else list(nodes)
        miners = [m for k in group for m in k.miners]
        if not miners:
            raise ValueError("no miner among these nodes")
        base = await self.wait_converged(group)
        for miner in miners:
            await miner.pace(base)
        for epoch in range(base.height + 1, base.height + 2 + max_nulls):
            made = [(m, b) for m in miners if (b := await m.produce(base, epoch)) is not None]
            if made:
                break
        else:
            raise AssertionError(f"no miner won in {max_nulls + 1} epochs after {base.height}")
        for miner, block in made:
            await miner.submit(block)
        expected = TipSet(tuple(b.header for _, b in made))
        await wait_until(
            lambda: all(k.head.key == expected.key for k in group),
            what=f"nodes {[k.index for k in group]} taking the tipset at {expected.height} as head"
            f" (heads {[k.head.height for k in group]})",
        )
        return expected

    async def mine(self, tipsets: int, nodes: Sequence[KitNode] | None = None) -> TipSet:
        head = None
        for _ in range(tipsets):
            head = await self.mine_one(nodes)
        assert head is not None
        return head

    async def mine_until_executed(self, kit: KitNode, signed: SignedMessage) -> MsgLookup:
        """Tipsets mined (mine_one) until kit's node finds signed executed on its chain; where."""
        with trio.fail_after(WAIT):
            while True:
                await self.mine_one()
                lookup = await kit.node.run_sync(
                    kit.node.state.search_msg, kit.head, signed.cid(), LOOKBACK_NO_LIMIT, True
                )
                if lookup is not None:
                    return lookup

    @asynccontextmanager
    async def running(self, interval: float = 1.0, cutoff: float = 0.25) -> AsyncIterator[None]:
        """Every running miner mines on its own: epoch e starts `interval` seconds after e-1; at
        `cutoff` of the interval into it, the miner takes SyncService.mining_base(e) (the heaviest
        tipset, with the blocks received for earlier epochs dealt with) and makes its block there.
        On exit each miner finishes the epoch it is in (its block published), then stops."""
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            start = trio.current_time()
            first = max(k.head.height for k in self.running_nodes()) + 1
            for kit in self.running_nodes():
                for miner in kit.miners:
                    nursery.start_soon(self._mine_on_clock, miner, stop, start, first, interval, cutoff)
            try:
                yield
            finally:
                stop.set()

    async def _mine_on_clock(
        self, miner: KitMiner, stop: trio.Event, start: float, first: int, interval: float, cutoff: float
    ) -> None:
        epoch = first
        while True:
            with trio.move_on_at(start + (epoch - first + cutoff) * interval):
                await stop.wait()
            if stop.is_set():
                return
            base = await miner.sync.mining_base(epoch, wait=cutoff * interval)
            if base.height >= epoch:
                epoch = base.height + 1
                continue
            with trio.move_on_after(interval / 2):
                await miner.pace(base)
            block = await miner.produce(base, epoch)
            if block is not None:
                await miner.submit(block)
            epoch += 1


def _knows_subscriptions(kit: KitNode, peer: PeerID) -> bool:
    """Whether kit has heard the peer subscribe to the blocks and the messages topics."""
    gossip = kit.p2p.gossip
    return all(peer in gossip.topic_peers(t) for t in (gossip.blocks_topic, gossip.messages_topic))


def miners_of_node(genesis: Genesis, nodes: int, index: int) -> list[PresealedMiner]:
    """Genesis miner i runs on node i modulo the number of nodes."""
    return [m for i, m in enumerate(genesis.miners) if i % nodes == index]


def blocks_by_miner(ts: TipSet) -> dict[int, BlockHeader]:
    return {b.miner.id: b for b in ts.blocks}


@asynccontextmanager
async def ensemble(
    nodes: int = 2,
    miners: int = 1,
    *,
    start: Iterable[int] | None = None,
    connect: bool = True,
    genesis: Genesis | None = None,
) -> AsyncIterator[Ensemble]:
    """N nodes from one genesis with M genesis miners (miner i on node i mod N), the ones in `start`
    (default: all) started and, with `connect`, linked to each other. Stopped and removed on exit."""
    if nodes < 1 or miners < 1:
        raise ValueError("an ensemble needs at least one node and one miner")
    genesis = genesis_of(miners) if genesis is None else genesis
    started = set(range(nodes)) if start is None else set(start)
    with tempfile.TemporaryDirectory(prefix="filpy-kit-") as tmp:
        async with trio.open_nursery() as nursery:
            ens = Ensemble(genesis, nursery, Path(tmp))
            for i in range(nodes):
                ens.add_node(miners_of_node(genesis, nodes, i))
            for kit in ens.nodes:
                if kit.index in started:
                    await ens.start(kit)
            if connect:
                await ens.connect_all()
            try:
                yield ens
            finally:
                nursery.cancel_scope.cancel()
