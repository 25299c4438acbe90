"""The full node's parts, assembled once: what services and RPC handlers receive.

`FullNode` holds the chain store, the state manager, the message pool and its pusher, the wallet and
the beacon of one running node, plus the few things the common RPC methods ask of a node (start time,
peer ID, a way to ask it to stop). It runs nothing itself: the services (mining, Window PoSt, RPC,
libp2p) are trio tasks started by `node/daemon.py` around it.

Everything here that touches LevelDB or executes tipsets is synchronous; async callers go through
`run_sync`, which runs it in a worker thread so the event loop keeps answering.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol, TypeVar

import structlog
import trio

from chain.chainstore.metadata import LevelDBMetadata, MemoryMetadata, MetadataStore
from chain.chainstore.store import ChainStore
from chain.consensus.beacon import MockBeacon, RandomBeacon
from chain.consensus.fullblock import FullBlock
from chain.consensus.weight import weight_of
from chain.encoding.cid import CID
from chain.mpool.pool import MessagePool
from chain.mpool.push import MessagePusher
from chain.params import Policy
from chain.stmgr.index import LevelDBStateIndex, MemoryStateIndex
from chain.stmgr.manager import StateManager
from chain.stmgr.search import MsgLookup
from chain.store.blockstore import Blockstore
from chain.store.car import CarReader
from chain.sync.state import SyncStatus
from chain.types.address import Address
from chain.types.block import BlockHeader
from chain.types.tipset import TipSet
from node.config import DatastoreConfig
from node.genesis import Genesis, load_genesis_file
from node.markets.paych import PaychManager
from node.markets.paych_store import PAYCH_NAMESPACE, PaychStore
from node.wallet import Wallet

# py-libp2p is slow to import; the markets, the sealing pipeline, create.py and local_proving.py import
# this module.
if TYPE_CHECKING:
    from node.markets.services import Markets
    from node.mining.create import LocalMinerRecord, LocalMiners
    from node.mining.local_proving import LocalProving
    from node.p2p.host import Libp2pHost
    from node.sealing.pipeline import SealingPipeline

T = TypeVar("T")
_log = structlog.get_logger(__name__)

# Where the message pool keeps the local messages it re-adds after a restart.
MPOOL_NAMESPACE: Final = b"/mpool/"
# Lotus's LookbackNoLimit: search the whole chain.
LOOKBACK_NO_LIMIT: Final = -1
# Threads for blocking work: execution and LevelDB scans of concurrent RPC calls.
WORKER_THREADS: Final = 8


class NodeError(Exception):
    """The node cannot start from what it was given (a repo of another chain, a broken genesis)."""


class MiningControl(Protocol):
    """What the devnet controls (Filpy.MineTipset, Filpy.SetMining) ask of the mining service
    (node/mining/miner.py MiningService)."""

    @property
    def enabled(self) -> bool: ...

    def set_enabled(self, enabled: bool) -> None: ...

    async def mine_now(self) -> TipSet | None: ...


class SyncControl(Protocol):
    """What the Sync* RPC methods and the mining loop ask of the sync service (node/chainsync/service.py
    SyncService, which sets itself as `FullNode.sync`)."""

    def sync_state(self) -> SyncStatus: ...

    def check_bad(self, cid: CID) -> str: ...

    def mark_bad(self, cid: CID) -> None: ...

    def unmark_bad(self, cid: CID) -> None: ...

    def unmark_all_bad(self) -> None: ...

    async def submit_block(self, block: FullBlock, *, validated: bool = False) -> bool: ...

    async def mining_base(self, epoch: int, *, wait: float | None = None) -> TipSet: ...


@dataclass(eq=False)
class FullNode:
    policy: Policy
    chain: ChainStore
    state: StateManager
    mpool: MessagePool
    pusher: MessagePusher
    wallet: Wallet
    beacon: RandomBeacon  # MockBeacon, or a DrandBeacon answering from node/beacon's store
    start_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    # The libp2p peer ID (known from the host's key before it runs); the ID method answers with it.
    peer_id: str = ""
    # The libp2p host of a node on a network (node/network.py); what the Net* methods read. None: none.
    host: "Libp2pHost | None" = field(default=None, repr=False)
    # Set by whoever runs the node (node/daemon.py) so that Shutdown can stop it.
    on_shutdown: Callable[[str], None] | None = None
    # The mining service when this node mines (filpy devnet, or mining.enabled), for the devnet controls.
    mining: MiningControl | None = None
    # The funded address Filpy.Faucet sends from (a devnet's account 0); None: this node has no faucet.
    faucet: Address | None = None
    # The sync service once the node is on a network (node/chainsync/service.py); None: no network.
    sync: SyncControl | None = None
    # The Window PoSt schedulers running for this node's miners (node/mining/local_proving.py), listed
    # by the schedulers themselves; None until one runs. The proving RPC methods read it.
    proving: "LocalProving | None" = field(default=None, repr=False)
    limiter: trio.CapacityLimiter = field(default_factory=lambda: trio.CapacityLimiter(WORKER_THREADS))
    # The sealing pipeline of each local miner (by ID address), when the node serves miners.
    sealing: "dict[Address, SealingPipeline]" = field(default_factory=dict, repr=False)
    # The payment-channel manager (node/markets/paych.py), set by assemble: it needs the node itself.
    paych: PaychManager = field(init=False, repr=False)
    # The storage client and (on a miner's node) provider, set by node/markets/services.py's
    # open_markets when the node runs them; None: no markets (the Client* methods say so).
    markets: "Markets | None" = field(default=None, repr=False)
    # The miners created from this node (node/mining/create.py LocalMiners: the chain's LevelDB, or memory
    # for an in-memory chain), set by assemble: Filpy.MinerCreate records there, Filpy.MinerList reads.
    miners: "LocalMiners" = field(init=False, repr=False)
    # Set by a daemon that serves a miner as soon as Filpy.MinerCreate has made it (its Window PoSt,
    # sealing and mining); None: the node serves it from its next start.
    on_miner_created: "Callable[[LocalMinerRecord], Awaitable[None]] | None" = field(default=None, repr=False)

    # -- identity -------------------------------------------------------------------------------------
    @property
    def network_name(self) -> str:
        return self.policy.network_name

    @property
    def address_network(self) -> str:
        """The address prefix of this network ('t' or 'f'): how addresses are written in JSON."""
        return self.policy.address_network

    @property
    def genesis(self) -> BlockHeader:
        return self.chain.genesis()

    def request_shutdown(self, reason: str = "requested over RPC") -> None:
        if self.on_shutdown is None:
            raise RuntimeError("this node was not started by a runner that can stop it")
        self.on_shutdown(reason)

    # -- running blocking work --------------------------------------------------------------------------
    async def run_sync(self, fn: Callable[..., T], *args: object) -> T:
        """Run fn(*args) in a worker thread (LevelDB, execution, proofs): the event loop stays free."""
        return await trio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    # -- waiting for a message ------------------------------------------------------------------------
    async def wait_msg(
        self, cid: CID, confidence: int, limit: int = LOOKBACK_NO_LIMIT, allow_replaced: bool = True
    ) -> MsgLookup:
        """Lotus StateWaitMsg: where the message executed, once `confidence` tipsets are on top of
        it. Searches back `limit` epochs first (-1: the whole chain), then follows head changes; a
        reorg that drops the execution tipset is followed too. Raises UnknownMessage (chain/stmgr) when
        the node has never seen the message."""
        changes = self.chain.subscribe()
        async with changes:
            head = self.chain.head()
            found = await self.run_sync(self.state.search_msg, head, cid, limit, allow_replaced)
            searched_to = head.height
            while True:
                head = self.chain.head()
                if found is not None and not self.chain.is_on_heaviest_chain(found.tipset):
                    found = None  # reverted: look again from the new head
                    searched_to = min(searched_to, head.height) - self.policy.chain_finality
                if found is None and head.height > searched_to:
                    window = head.height - searched_to
                    found = await self.run_sync(self.state.search_msg, head, cid, window, allow_replaced)
                    searched_to = head.height
                if found is not None and head.height - found.tipset.height >= confidence:
                    return found
                try:
                    await changes.receive()
                except trio.EndOfChannel:
                    # The store dropped a slow subscriber: take a new subscription and carry on.
                    changes = self.chain.subscribe()


def _metadata_store(chain: ChainStore, namespace: bytes) -> MetadataStore:
    """A namespace of the chain's LevelDB (the repo's datastore), or memory for an in-memory chain."""
    db = getattr(chain.blockstore, "db", None)
    return MemoryMetadata() if db is None else LevelDBMetadata(db, namespace=namespace)


def assemble(
    chain: ChainStore,
    wallet: Wallet,
    *,
    policy: Policy,
    persistent: bool,
    beacon: RandomBeacon | None = None,
) -> FullNode:
    """Wire the parts around a chain store that already has its genesis and head; beacon: the chain's
    (node/beacon/setup.py open_beacon), Lotus's mock when not given."""
    beacon = MockBeacon() if beacon is None else beacon
    db = getattr(chain.blockstore, "db", None)
    index = LevelDBStateIndex(db) if persistent and db is not None else MemoryStateIndex()
    state = StateManager(chain, policy=policy, beacon=beacon, index=index)
    head = chain.head()
    state.state_of(head)  # the pool reads the state after the head
    pool = MessagePool(chain, state, head, policy=policy, local_store=_metadata_store(chain, MPOOL_NAMESPACE))
    restored = pool.load_local()
    if restored:
        _log.info("mpool restored local messages", count=restored)
    chain.on_head_change(pool.head_change)
    pusher = MessagePusher(pool, state, chain, wallet)
    node = FullNode(
        policy=policy, chain=chain, state=state, mpool=pool, pusher=pusher, wallet=wallet, beacon=beacon
    )
    node.paych = PaychManager(node, PaychStore(_metadata_store(chain, PAYCH_NAMESPACE)))
    from node.mining.create import LocalMiners  # it imports this module, so not at the top

    node.miners = LocalMiners.for_chain(chain)
    return node


def open_chain_store(
    datastore: Path, genesis_car: Path, *, options: DatastoreConfig | None = None
) -> ChainStore:
    """The chain store of a repo's LevelDB datastore, with the genesis loaded on first start. A datastore
    that already holds a chain must hold this genesis: a repo never switches chains. options: the repo
    config's [datastore] (LevelDB cache, write buffer, open files, compression, synced writes)."""
    options = options or DatastoreConfig()
    chain = ChainStore.open(datastore, sync=options.sync_writes, options=options.leveldb_options())
    try:
        expected = _genesis_into(chain.blockstore, genesis_car) if not chain.has_head() else None
        if expected is not None:
            _set_genesis(chain, expected)
        else:
            _check_same_genesis(chain, genesis_car)
        return chain
    except BaseException:
        chain.close()
        raise


def open_full_node(
    datastore: Path,
    genesis_car: Path,
    wallet: Wallet,
    *,
    policy: Policy,
    options: DatastoreConfig | None = None,
    beacon: RandomBeacon | None = None,
) -> FullNode:
    """The node of a repo: its LevelDB datastore (open_chain_store) and wallet; beacon as assemble's."""
    chain = open_chain_store(datastore, genesis_car, options=options)
    try:
        return assemble(chain, wallet, policy=policy, persistent=True, beacon=beacon)
    except BaseException:
        chain.close()
        raise


def in_memory_full_node(genesis: Genesis, wallet: Wallet, *, policy: Policy) -> FullNode:
    """A node over an in-memory chain store (tests), from a genesis built in memory."""
    chain = ChainStore.in_memory()
    chain.blockstore.put_many(genesis.blocks())
    _set_genesis(chain, genesis.header)
    return assemble(chain, wallet, policy=policy, persistent=False)


def _set_genesis(chain: ChainStore, header: BlockHeader) -> None:
    chain.set_genesis(header, weight_of(chain.blockstore, TipSet((header,))))


def _genesis_into(store: Blockstore, genesis_car: Path) -> BlockHeader:
    try:
        return load_genesis_file(store, genesis_car)
    except (OSError, ValueError) as exc:
        raise NodeError(f"cannot load the genesis {genesis_car}: {exc}") from None


def _check_same_genesis(chain: ChainStore, genesis_car: Path) -> None:
    try:
        with genesis_car.open("rb") as f:
            roots = CarReader(f).roots
    except (OSError, ValueError) as exc:
        raise NodeError(f"cannot read the genesis {genesis_car}: {exc}") from None
    stored = chain.genesis().cid()
    if list(roots) != [stored]:
        found = ", ".join(map(str, roots))
        raise NodeError(f"the datastore holds the chain of genesis {stored}, not {genesis_car}'s ({found})")
