"""Two in-process nodes for the storage deal tests: a client and a provider, each a FullNode with its own
chain store, wallet and libp2p host, connected over TCP on 127.0.0.1.

The provider's node mines the chain with the devnet genesis's pre-sealed 2 KiB miner (its Window PoSt
scheduler keeps the miner's power) and is the storage provider for that miner. Each tipset it makes is
handed to the client's node as a syncing node would take it (its blocks and messages stored, its state
computed, made the head), and the client's pending messages reach the provider's pool before each block,
as gossip would carry them. (tests/kit's ensemble will replace this hand-over once the syncer lands.)

The client's node serves its RPC API on 127.0.0.1 with `/deal-data/` mounted, where providers pull deal
data. `DealNet.running()` starts everything; a background task mines a tipset every `block_time`
seconds once the previous one has been taken in.
"""

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import trio
from multiaddr import Multiaddr

from chain.chainstore.metadata import MemoryMetadata, MetadataStore
from chain.consensus.producer import produce_block
from chain.consensus.validation import validate_block
from chain.consensus.weight import weight_of
from chain.encoding.cid import CID
from chain.mpool.errors import MpoolError
from chain.params import DEVNET
from chain.stmgr.search import MsgLookup
from chain.types.address import Address
from chain.types.tipset import TipSet
from node.config import Libp2pConfig
from node.fullnode import FullNode, in_memory_full_node
from node.genesis import Genesis
from node.keystore import Keystore
from node.markets.deal_sealing import DealSealer, PublishedDeal, SealingRefused, SectorPlacement
from node.markets.deals_config import ClientConfig, ProviderConfig
from node.markets.http_retrieval import RetrievalHttpApp
from node.markets.imports import Import
from node.markets.piecestore import PieceStore
from node.markets.retrieval_transports import TransportsProvider
from node.markets.services import Markets, open_markets
from node.markets.storage_ask import AskStore, set_ask
from node.markets.storage_client import StorageClient
from node.markets.storage_provider import StorageProvider
from node.mining.wdpost import WindowPoStScheduler
from node.p2p.host import Libp2pHost
from node.p2p.identity import MemoryIdentity, load_or_create_identity
from node.preseal import write_presealed
from node.sealing.sectors import SectorStore
from node.wallet import Wallet
from rpc.auth import create_token, perms_up_to
from rpc.methods import full_node_registry
from rpc.server import BoundAddress, RpcServer
from tests.consensus.devchain import ALICE, genesis_of

WAIT: Final = 120  # seconds any one wait of a test may take
FIL: Final = 10**18
CLIENT_KEY: Final = ALICE
CLIENT: Final = Address.of_key(CLIENT_KEY)
SECRET: Final = b"d" * 32
ADMIN: Final = create_token(SECRET, perms_up_to("admin"))
ASK_PRICE: Final = 500_000_000  # attoFIL per GiB per epoch: 953 per epoch for a 2 KiB piece


def deal_file(path: Path, size: int = 1500, seed: bytes = b"") -> Path:
    """A file whose CAR makes a 2 KiB piece (a 2 KiB sector holds 2,032 bytes of CAR)."""
    path.write_bytes((seed + os.urandom(size))[:size])
    return path


class FakeSealer:
    """A stand-in for the sealing pipeline: takes pieces into sector numbers from 1000 up, never seals.
    Records what it was handed, refuses on demand."""

    def __init__(self) -> None:
        self.added: list[tuple[PublishedDeal, Path, bytes]] = []
        self.refuse = ""
        self._placements: dict[int, SectorPlacement] = {}

    async def add_deal(self, deal: PublishedDeal, car: Path) -> SectorPlacement:
        if self.refuse:
            raise SealingRefused(self.refuse)
        if deal.deal_id in self._placements:
            raise SealingRefused(f"deal {deal.deal_id} is already in a sector")
        self.added.append((deal, car, car.read_bytes()))
        placement = SectorPlacement(1000 + len(self.added), 0, "WaitDeals")
        self._placements[deal.deal_id] = placement
        return placement

    async def placement(self, deal_id: int) -> SectorPlacement | None:
        return self._placements.get(deal_id)


@dataclass
class DealNet:
    root: Path
    genesis: Genesis
    provider_node: FullNode
    client_node: FullNode
    provider_host: Libp2pHost
    client_host: Libp2pHost
    sectors: SectorStore
    sealer: DealSealer
    provider_config: ProviderConfig
    client_config: ClientConfig
    provider_meta: MetadataStore
    block_time: float = 0.05
    wdpost: WindowPoStScheduler | None = None
    mining: bool = True
    provider_rpc: BoundAddress | None = None
    client_rpc: BoundAddress | None = None
    tipsets: list[TipSet] = field(default_factory=list)
    # run after each tipset before the next is mined (a sealing pipeline catching up, say)
    settles: list[Callable[[TipSet], Awaitable[None]]] = field(default_factory=list)
    _provider_scope: trio.CancelScope | None = None

    @property
    def prov(self) -> Markets:
        assert self.provider_node.markets is not None
        return self.provider_node.markets

    @property
    def cli(self) -> Markets:
        assert self.client_node.markets is not None
        return self.client_node.markets

    @property
    def provider(self) -> StorageProvider:
        assert self.prov.provider is not None
        return self.prov.provider

    @property
    def client(self) -> StorageClient:
        return self.cli.client

    @property
    def miner(self) -> Address:
        (miner,) = self.genesis.miners
        return miner.id_address

    @property
    def head(self) -> TipSet:
        return self.provider_node.chain.head()

    # -- the chain -------------------------------------------------------------------------------------
    def _mine(self) -> TipSet:
        """The next tipset on the provider's node (the client's messages gossiped in first), then taken
        in by the client's node."""
        (miner,) = self.genesis.miners
        provider, client = self.provider_node, self.client_node
        for message in client.mpool.pending()[0]:
            with contextlib.suppress(MpoolError):  # already there, or refused: the client's pool keeps it
                provider.mpool.add(message)
        head = provider.chain.head()
        for epoch in range(head.height + 1, head.height + 50):
            block = produce_block(
                provider.state,
                provider.beacon,
                parent=head,
                miner=miner.id_address,
                worker_key=miner.worker_key,
                epoch=epoch,
                messages=provider.mpool.select(head),
                read_sector=lambda m, s: self.sectors.proving_sector(m, s.sector_number),
            )
            if block is None:
                continue
            validate_block(provider.state, provider.beacon, block, now=block.header.timestamp)
            ts = TipSet((block.header,))
            for node in (provider, client):
                node.chain.put_messages(block.bls_messages, block.secp_messages)
                node.state.state_of(ts)
                node.chain.set_head(ts, weight_of(node.chain.blockstore, ts))
            return ts
        raise AssertionError("the genesis miner won no block in 50 epochs")

    async def step(self) -> TipSet:
        ts = await self.provider_node.run_sync(self._mine)
        self.tipsets.append(ts)
        with trio.fail_after(WAIT):
            if self.wdpost is not None:
                await self.wdpost.wait_processed(ts)
            for settle in self.settles:
                await settle(ts)
        return ts

    async def _ticker(self) -> None:
        while True:
            await trio.sleep(self.block_time)
            if self.mining:
                await self.step()

    async def until(self, cond: Callable[[], bool], *, timeout: float = WAIT) -> None:
        """Wait (the chain going on) until cond() holds."""
        with trio.fail_after(timeout):
            while not cond():
                await trio.sleep(0.02)

    async def landed(self, node: FullNode, cid: CID) -> MsgLookup:
        with trio.fail_after(WAIT):
            return await node.wait_msg(cid, 0)

    # -- services --------------------------------------------------------------------------------------
    @asynccontextmanager
    async def running(self, *, ask: bool = True) -> AsyncIterator[trio.Nursery]:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(WAIT):
                for host in (self.provider_host, self.client_host):
                    await nursery.start(host.run)
                await self.client_host.connect(self.provider_host.addrs_listen())
                self.provider_rpc = await self._serve(nursery, self.provider_node)
                self.client_rpc = await self._serve(nursery, self.client_node)
                self.client.config = self.client.config.with_overrides(transfer_url=self.client_rpc.url(""))
                self.prov.transports = TransportsProvider((self.provider_rpc.url(""),))
                self.prov.transports.register(self.provider_host)
                RetrievalHttpApp(self.prov.pieces).mount(self._servers[self.provider_node])
                self.cli.mount(self._servers[self.client_node])
                (miner,) = self.genesis.miners
                self.wdpost = WindowPoStScheduler.for_node(self.provider_node, miner.id_address, self.sectors)
                await nursery.start(self.wdpost.run)
                await self.start_provider(nursery)
                await nursery.start(self.client.run)
                nursery.start_soon(self._ticker)
                await self.announce()
                if ask:
                    await set_ask(
                        self.provider_node,
                        self.prov.asks,
                        self.miner,
                        price=ASK_PRICE,
                        verified_price=ASK_PRICE // 10,
                        min_piece_size=256,
                        max_piece_size=2048,
                    )
            try:
                yield nursery
            finally:
                nursery.cancel_scope.cancel()

    async def _serve(self, nursery: trio.Nursery, node: FullNode) -> BoundAddress:
        server = RpcServer(full_node_registry(), node, secret=SECRET, host="127.0.0.1", port=0)
        self._servers[node] = server
        bound: BoundAddress = await nursery.start(server.run)
        return bound

    def open_markets(self) -> None:
        open_markets(
            self.client_node, self.root / "client", self.client_host, client_config=self.client_config
        )
        open_markets(
            self.provider_node,
            self.root / "provider",
            self.provider_host,
            miner=self.miner,
            sealer=self.sealer,
            provider_config=self.provider_config,
            meta=self.provider_meta,
        )

    async def start_provider(self, nursery: trio.Nursery) -> StorageProvider:
        """Run the markets' provider in a scope of its own (stop_provider cancels it)."""
        provider = self.provider
        self._provider_scope = await nursery.start(_cancellable, provider.run)
        return provider

    def stop_provider(self) -> None:
        """The provider's tasks cancelled where they are (no clean-up), as a killed process leaves them."""
        assert self._provider_scope is not None
        self._provider_scope.cancel()

    async def restart_provider(self, nursery: trio.Nursery, meta: MetadataStore) -> StorageProvider:
        """A new provider over the deal records in meta, serving the same host."""
        self.provider_meta = meta
        provider = StorageProvider(
            self.provider_node,
            self.miner,
            store=StorageProvider.open_store(meta),
            asks=AskStore(meta),
            pieces=PieceStore.open(self.root / "provider" / "pieces"),
            staging=self.root / "provider" / "deal-staging",
            sealer=self.sealer,
            config=self.provider_config,
        )
        self.prov.asks = provider.asks
        self.prov.new_provider(provider)
        return await self.start_provider(nursery)

    async def announce(self) -> None:
        addrs = tuple(Multiaddr(a).to_bytes() for a in self.provider_host.addrs_listen().addrs)
        for cid in await self.provider.announce(self.provider_host.peer_id.to_bytes(), addrs):
            await self.landed(self.provider_node, cid)
        await self.until(
            lambda: bool(self.client_node.state.miner_info(self.miner, self.client_node.chain.head()).peer_id)
        )

    def import_file(self, path: Path) -> Import:
        return self.cli.imports.import_file(path)

    def __post_init__(self) -> None:
        self._servers: dict[FullNode, RpcServer] = {}


async def _cancellable(run: Callable[..., Any], *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    with trio.CancelScope() as scope:
        await run(task_status=_Started(task_status, scope))


class _Started:
    def __init__(self, outer: Any, scope: trio.CancelScope) -> None:
        self.outer, self.scope = outer, scope

    def started(self, value: Any = None) -> None:
        self.outer.started(self.scope)


def wallet_of(directory: Path, *keys: Any) -> Wallet:
    wallet = Wallet(Keystore.create(directory))
    for key in keys:
        wallet.ensure_key(key)
    return wallet


def new_host() -> Libp2pHost:
    return Libp2pHost(Libp2pConfig(), load_or_create_identity(MemoryIdentity()))


def deal_net(
    root: Path,
    *,
    sealer: DealSealer | None = None,
    provider_config: ProviderConfig | None = None,
    client_config: ClientConfig | None = None,
    provider_meta: MetadataStore | None = None,
) -> DealNet:
    genesis = genesis_of(miners=1, sectors=2)
    (miner,) = genesis.miners
    provider_node = in_memory_full_node(
        genesis, wallet_of(root / "provider-keys", miner.worker_key), policy=DEVNET
    )
    client_node = in_memory_full_node(genesis, wallet_of(root / "client-keys", CLIENT_KEY), policy=DEVNET)
    write_presealed(root / "sectors", miner, "t")
    sectors = SectorStore.open(root / "sectors")
    sectors.import_presealed(root / "sectors", miner.id_address, "t")
    net = DealNet(
        root=root,
        genesis=genesis,
        provider_node=provider_node,
        client_node=client_node,
        provider_host=new_host(),
        client_host=new_host(),
        sectors=sectors,
        sealer=sealer or FakeSealer(),
        provider_config=provider_config
        or ProviderConfig.for_policy(DEVNET).with_overrides(publish_period=0.3),
        client_config=client_config or ClientConfig.for_policy(DEVNET).with_overrides(poll_interval=0.1),
        provider_meta=provider_meta if provider_meta is not None else MemoryMetadata(),
    )
    net.open_markets()
    return net
