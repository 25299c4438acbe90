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

import os
from collections.abc import AsyncIterator, Callable
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
from node.markets.deal_store import ClientDealRecord, DealStore, ProviderDealRecord
from node.markets.deal_transfer import DealDataApp
from node.markets.deals_config import ClientConfig, ProviderConfig
from node.markets.imports import Import, ImportStore
from node.markets.piecestore import PieceStore
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
class ProviderSide:
    node: FullNode
    host: Libp2pHost
    miner: Address
    meta: MetadataStore
    asks: AskStore
    pieces: PieceStore
    staging: Path
    sealer: DealSealer
    config: ProviderConfig
    provider: StorageProvider | None = None

    def make(self) -> StorageProvider:
        store: DealStore[ProviderDealRecord] = StorageProvider.open_store(self.meta)
        self.provider = StorageProvider(
            self.node,
            self.miner,
            store=store,
            asks=self.asks,
            pieces=self.pieces,
            staging=self.staging,
            sealer=self.sealer,
            config=self.config,
        )
        self.provider.register(self.host)
        return self.provider


@dataclass
class ClientSide:
    node: FullNode
    host: Libp2pHost
    meta: MetadataStore
    imports: ImportStore
    data: DealDataApp
    config: ClientConfig
    rpc: BoundAddress | None = None
    client: StorageClient | None = None

    def make(self) -> StorageClient:
        store: DealStore[ClientDealRecord] = StorageClient.open_store(self.meta)
        self.client = StorageClient(
            self.node, host=self.host, store=store, imports=self.imports, data=self.data, config=self.config
        )
        return self.client


@dataclass
class DealNet:
    root: Path
    genesis: Genesis
    prov: ProviderSide
    cli: ClientSide
    sectors: SectorStore
    block_time: float = 0.05
    wdpost: WindowPoStScheduler | None = None
    mining: bool = True
    tipsets: list[TipSet] = field(default_factory=list)

    @property
    def provider(self) -> StorageProvider:
        assert self.prov.provider is not None
        return self.prov.provider

    @property
    def client(self) -> StorageClient:
        assert self.cli.client is not None
        return self.cli.client

    @property
    def miner(self) -> Address:
        return self.prov.miner

    @property
    def head(self) -> TipSet:
        return self.prov.node.chain.head()

    # -- the chain -------------------------------------------------------------------------------------
    def _mine(self) -> TipSet:
        """The next tipset on the provider's node (the client's messages gossiped in first), then taken
        in by the client's node."""
        (miner,) = self.genesis.miners
        provider, client = self.prov.node, self.cli.node
        for message in client.mpool.pending()[0]:
            try:
                provider.mpool.add(message)
            except MpoolError:
                pass  # already there, or refused: the client's pool keeps it
        head = provider.chain.head()
        sectors = {s.number: s.proving_sector() for s in miner.sectors}
        for epoch in range(head.height + 1, head.height + 50):
            block = produce_block(
                provider.state,
                provider.beacon,
                parent=head,
                miner=miner.id_address,
                worker_key=miner.worker_key,
                epoch=epoch,
                messages=provider.mpool.select(head),
                read_sector=lambda _, s: sectors[s.sector_number],
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
        ts = await self.prov.node.run_sync(self._mine)
        self.tipsets.append(ts)
        if self.wdpost is not None:
            with trio.fail_after(WAIT):
                await self.wdpost.wait_processed(ts)
        return ts

    async def _ticker(self) -> None:
        while True:
            await trio.sleep(self.block_time)
            if self.mining:
                await self.step()

    async def until(self, cond: Callable[[], bool], *, what: str = "", timeout: float = WAIT) -> None:
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
                await nursery.start(self.prov.host.run)
                await nursery.start(self.cli.host.run)
                await self.cli.host.connect(self.prov.host.addrs_listen())
                server = RpcServer(
                    full_node_registry(), self.cli.node, secret=SECRET, host="127.0.0.1", port=0
                )
                self.cli.data.mount(server)
                self.cli.rpc = await nursery.start(server.run)
                self.cli.config = self.cli.config.with_overrides(transfer_url=self.cli.rpc.url(""))
                (miner,) = self.genesis.miners
                self.wdpost = WindowPoStScheduler.for_node(self.prov.node, miner.id_address, self.sectors)
                await nursery.start(self.wdpost.run)
                await self.start_provider(nursery)
                await self.start_client(nursery)
                nursery.start_soon(self._ticker)
                await self.announce()
                if ask:
                    await set_ask(
                        self.prov.node,
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

    async def start_provider(self, nursery: trio.Nursery) -> StorageProvider:
        provider = self.prov.make()
        await nursery.start(provider.run)
        return provider

    async def start_client(self, nursery: trio.Nursery) -> StorageClient:
        client = self.cli.make()
        await nursery.start(client.run)
        return client

    async def announce(self) -> None:
        addrs = tuple(Multiaddr(a).to_bytes() for a in self.prov.host.addrs_listen().addrs)
        for cid in await self.provider.announce(self.prov.host.peer_id.to_bytes(), addrs):
            await self.landed(self.prov.node, cid)
        await self.until(
            lambda: bool(self.cli.node.state.miner_info(self.miner, self.cli.node.chain.head()).peer_id)
        )

    def import_file(self, path: Path) -> Import:
        return self.cli.imports.import_file(path)


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
    meta = provider_meta if provider_meta is not None else MemoryMetadata()
    prov = ProviderSide(
        node=provider_node,
        host=new_host(),
        miner=miner.id_address,
        meta=meta,
        asks=AskStore(meta),
        pieces=PieceStore.open(root / "pieces"),
        staging=root / "staging",
        sealer=sealer or FakeSealer(),
        config=provider_config or ProviderConfig.for_policy(DEVNET).with_overrides(publish_period=0.3),
    )
    cli = ClientSide(
        node=client_node,
        host=new_host(),
        meta=MemoryMetadata(),
        imports=ImportStore.open(root / "imports"),
        data=DealDataApp(),
        config=client_config or ClientConfig.for_policy(DEVNET).with_overrides(poll_interval=0.1),
    )
    return DealNet(root, genesis, prov, cli, sectors)
