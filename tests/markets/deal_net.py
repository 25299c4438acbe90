"""Two in-process nodes for the storage deal tests (tests/kit's ensemble): a provider's node running the
devnet genesis's pre-sealed 2 KiB miner (its blocks, its Window PoSts, its sector store) and a client's
node, each a FullNode with its own chain store, wallet, libp2p host and sync service, connected over TCP
on 127.0.0.1. Blocks and messages travel by gossip and chain sync, as between two daemons; the deal
protocols run on the same hosts.

Each node serves its RPC API on 127.0.0.1 (the client's with `/deal-data/`, where providers pull deal
data; the provider's with `/ipfs/` and `/piece/`), and runs its market services as open_markets
assembles them. `DealNet.running()` starts everything; a background task mines a tipset every
`block_time` seconds once every node has the previous one and the `settles` hooks (a sealing pipeline
catching up) are done.
"""

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import trio
from multiaddr import Multiaddr

from chain.chainstore.metadata import MemoryMetadata, MetadataStore
from chain.encoding.cid import CID
from chain.params import DEVNET, Policy
from chain.stmgr.search import MsgLookup
from chain.types.address import Address
from chain.types.message import Message, SignedMessage
from chain.types.tipset import TipSet
from node.fullnode import FullNode
from node.genesis import Genesis
from node.markets.deal_sealing import DealSealer, PublishedDeal, SealingRefused, SectorPlacement
from node.markets.deal_states import StorageDealStatus
from node.markets.deal_store import ClientDealRecord
from node.markets.deal_transfer import DealDataApp
from node.markets.deals_config import ClientConfig, ProviderConfig
from node.markets.http_retrieval import Receive, RetrievalHttpApp, Scope, Send
from node.markets.imports import Import, ImportStore
from node.markets.piecestore import PieceStore
from node.markets.services import Markets, open_markets
from node.markets.storage_ask import AskStore, set_ask
from node.markets.storage_client import DealRequest, StorageClient
from node.markets.storage_provider import StorageProvider
from node.p2p.host import Libp2pHost
from node.sealing.sectors import SectorStore
from rpc.auth import create_token, perms_up_to
from rpc.methods import full_node_registry
from rpc.server import BoundAddress, RpcServer
from tests.consensus.devchain import ALICE, genesis_of
from tests.kit.ensemble import Ensemble, KitNode

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


class FirstResponseCut(DealDataApp):
    """The client's /deal-data/ route, whose first response stops after `limit` bytes of body: the rest
    is dropped (after_cut, which returns at once here, runs on each body message), so the response ends
    short of its content-length and the server closes the connection. Later requests are served whole;
    each request's Range header (None when absent) is kept in requests."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.requests: list[str | None] = []

    async def after_cut(self) -> None:
        """What the first response does after each body message it sent (a subclass may wait here)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wanted = dict(scope.get("headers", [])).get(b"range")
        self.requests.append(wanted.decode() if wanted else None)
        if len(self.requests) > 1:
            await super().__call__(scope, receive, send)
            return
        sent = 0

        async def cut(message: dict[str, Any]) -> None:
            nonlocal sent
            if message["type"] == "http.response.body":
                body = message["body"][: max(0, self.limit - sent)]
                sent += len(body)
                if body:
                    await send({**message, "body": body, "more_body": True})
                await self.after_cut()
                return
            await send(message)

        await super().__call__(scope, receive, cut)


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
    provider_config: ProviderConfig
    client_config: ClientConfig
    provider_meta: MetadataStore
    imports: ImportStore  # the client's imports, usable before the nodes run
    sealer: DealSealer = field(default_factory=FakeSealer)
    data_app: DealDataApp | None = None  # replaces the client's /deal-data/ route
    block_time: float = 0.05
    mining: bool = True
    ens: Ensemble | None = None
    provider_rpc: BoundAddress | None = None
    client_rpc: BoundAddress | None = None
    tipsets: list[TipSet] = field(default_factory=list)
    # run after each tipset before the next is mined (a sealing pipeline catching up, say)
    settles: list[Callable[[TipSet], Awaitable[None]]] = field(default_factory=list)
    _provider_run: "Crashable | None" = None
    served_miner: Address | None = None  # the miner the provider serves, when not the genesis miner
    http_app: RetrievalHttpApp | None = None  # the provider's /ipfs/ and /piece/
    policy: Policy = DEVNET  # both nodes' (a test may shorten the devnet's waits)

    # -- the parts ----------------------------------------------------------------------------------------
    @property
    def kit(self) -> Ensemble:
        assert self.ens is not None, "the nodes run inside DealNet.running()"
        return self.ens

    @property
    def provider_kit(self) -> KitNode:
        return self.kit.nodes[0]

    @property
    def client_kit(self) -> KitNode:
        return self.kit.nodes[1]

    @property
    def provider_node(self) -> FullNode:
        return self.provider_kit.node

    @property
    def client_node(self) -> FullNode:
        return self.client_kit.node

    @property
    def provider_host(self) -> Libp2pHost:
        return self.provider_kit.p2p.host

    @property
    def client_host(self) -> Libp2pHost:
        return self.client_kit.p2p.host

    @property
    def sectors(self) -> SectorStore:
        return self.provider_kit.miners[0].sectors

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
    def genesis(self) -> Genesis:
        return genesis_of(miners=1, sectors=2)

    @property
    def miner(self) -> Address:
        """The miner the provider serves: the genesis miner unless served_miner is set (then a restarted
        provider serves that one)."""
        return self.served_miner or self.genesis.miners[0].id_address

    @property
    def head(self) -> TipSet:
        return self.provider_node.chain.head()

    # -- the chain -------------------------------------------------------------------------------------
    async def step(self) -> TipSet:
        """The next tipset, on every node; then the settle hooks. One step at a time: a test's own step
        waits for the ticker's (two at once would make two blocks of the one miner at one epoch when the
        pool changed in between, each mine_one then waiting for its own block to be every node's head)."""
        async with self._stepping:
            ts = await self.kit.mine_one()
            self.tipsets.append(ts)
            with trio.fail_after(WAIT):
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

    async def deal_reaches(self, proposal: CID, state: StorageDealStatus) -> ClientDealRecord:
        """The client's record of the deal once in state; the test fails with the deal's message when
        the deal ends in another state instead."""
        record = await self.client.wait_for(proposal, state)
        assert record.state == state, record.message
        return record

    async def landed(self, node: FullNode, cid: CID) -> MsgLookup:
        with trio.fail_after(WAIT):
            return await node.wait_msg(cid, 0)

    # -- services --------------------------------------------------------------------------------------
    @asynccontextmanager
    async def running(self, *, ask: bool = True) -> AsyncIterator[trio.Nursery]:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(WAIT):
                genesis = self.genesis
                self.ens = Ensemble(genesis, nursery, self.root / "kit", self.policy)
                self.ens.add_node(genesis.miners, keys=())
                self.ens.add_node(keys=(CLIENT_KEY,))
                for kit in self.ens.nodes:
                    await self.ens.start(kit)
                await self.ens.connect_all()
                self.provider_rpc = await self._serve(nursery, self.provider_node)
                self.client_rpc = await self._serve(nursery, self.client_node)
                self._open_markets()
                await self.start_provider(nursery)
                await nursery.start(self.client.run)
                for node in (self.provider_node, self.client_node):
                    await nursery.start(node.paych.run)  # paid retrievals' channels
                nursery.start_soon(self._ticker)
                await self.announce()
                if ask:
                    await self.post_ask()
            try:
                yield nursery
            finally:
                nursery.cancel_scope.cancel()

    async def _serve(self, nursery: trio.Nursery, node: FullNode) -> BoundAddress:
        server = RpcServer(full_node_registry(), node, secret=SECRET, host="127.0.0.1", port=0)
        self._servers[node] = server
        bound: BoundAddress = await nursery.start(server.run)
        return bound

    def _open_markets(self) -> None:
        assert self.client_rpc is not None and self.provider_rpc is not None
        client_config = self.client_config.with_overrides(transfer_url=self.client_rpc.url(""))
        cli = open_markets(
            self.client_node, self.root / "client", self.client_host, client_config=client_config
        )
        if self.data_app is not None:
            cli.data = self.data_app
            cli.client.data = self.data_app
        cli.mount(self._servers[self.client_node])
        prov = open_markets(
            self.provider_node,
            self.root / "provider",
            self.provider_host,
            miner=self.miner,
            sealer=self.sealer,
            provider_config=self.provider_config,
            retrieval_urls=(self.provider_rpc.url(""),),
            meta=self.provider_meta,
        )
        self.http_app = RetrievalHttpApp(prov.pieces, lambda: prov.retrieval_ask)
        self.http_app.mount(self._servers[self.provider_node])

    def use_sealer(self, sealer: DealSealer) -> None:
        """The provider hands pieces to sealer from now on."""
        self.sealer = sealer
        self.provider.sealer = sealer

    async def start_provider(self, nursery: trio.Nursery) -> StorageProvider:
        """Run the markets' provider in a scope of its own (stop_provider cancels it)."""
        provider = self.provider
        self._provider_run = await crashable(nursery, provider.run)
        return provider

    def stop_provider(self) -> None:
        """The provider's tasks cancelled where they are (no clean-up), as a killed process leaves them."""
        assert self._provider_run is not None
        self._provider_run.scope.cancel()

    async def kill_provider(self) -> None:
        """stop_provider, and return once its tasks (and the worker threads they wait on) are gone."""
        assert self._provider_run is not None
        await self._provider_run.kill()

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
        if self.http_app is not None:
            self.http_app.store = provider.pieces
        return await self.start_provider(nursery)

    async def post_ask(self, *, max_piece_size: int = 2048) -> None:
        """The provider's ask these deals are made at: ASK_PRICE, a tenth of it when verified."""
        await set_ask(
            self.provider_node,
            self.prov.asks,
            self.miner,
            price=ASK_PRICE,
            verified_price=ASK_PRICE // 10,
            min_piece_size=256,
            max_piece_size=max_piece_size,
        )

    async def announce(self) -> None:
        addrs = tuple(Multiaddr(a).to_bytes() for a in self.provider_host.addrs_listen().addrs)
        peer = self.provider_host.peer_id.to_bytes()
        for cid in await self.provider.announce(peer, addrs):
            await self.landed(self.provider_node, cid)
        await self.until(
            lambda: (
                self.client_node.state.miner_info(self.miner, self.client_node.chain.head()).peer_id == peer
            )
        )

    def chain_messages(self) -> list[Message]:
        """Every message on the provider's chain (signed ones unwrapped), walked from the head back and
        then reversed: tipsets oldest first."""
        node = self.provider_node
        found: list[Message] = []
        ts = node.chain.head()
        while ts.height > 0:
            found += [
                msg.message if isinstance(msg, SignedMessage) else msg
                for msg in node.chain.messages_for_tipset(ts)
            ]
            ts = node.chain.load_tipset(ts.parents)
        return list(reversed(found))

    async def deal_request(self, imported: Import, **changes: Any) -> DealRequest:
        """The client's request for a deal of imported with the miner at its ask's price: 50 epochs, the
        escrow topped up as needed; changes replace any of these fields."""
        ask = await self.client.query_ask(None, self.miner)
        fields: dict[str, Any] = {
            "root": imported.root,
            "wallet": CLIENT,
            "miner": self.miner,
            "epoch_price": ask.min_price(2048),
            "min_blocks_duration": 50,
            "add_funds": True,
        }
        fields.update(changes)
        return DealRequest(**fields)

    async def start_deal(self, imported: Import, **changes: Any) -> CID:
        """The proposal CID of a deal started with deal_request(imported, **changes)."""
        return await self.client.start_deal(await self.deal_request(imported, **changes))

    def import_file(self, path: Path) -> Import:
        """Import into the client's store (before the nodes run, or through the running client's)."""
        store = self.imports if self.ens is None or self.client_node.markets is None else self.cli.imports
        return store.import_file(path)

    def __post_init__(self) -> None:
        self._servers: dict[FullNode, RpcServer] = {}
        self._stepping = trio.Lock()


@dataclass(eq=False)
class Crashable:
    """A service run in a cancel scope of its own: `kill()` cancels it where it stands (no clean
    shutdown: as far as an in-process test gets to a killed process) and returns once it has ended."""

    scope: trio.CancelScope
    ended: trio.Event

    async def kill(self) -> None:
        self.scope.cancel()
        with trio.fail_after(WAIT):
            await self.ended.wait()


async def crashable(nursery: trio.Nursery, run: Callable[..., Any]) -> Crashable:
    """Start run (a service: `run(task_status=...)`) in nursery, killable on its own."""
    handle: Crashable = await nursery.start(_cancellable, run)
    return handle


async def _cancellable(run: Callable[..., Any], *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    ended = trio.Event()
    try:
        with trio.CancelScope() as scope:
            await run(task_status=_Started(task_status, Crashable(scope, ended)))
    finally:
        ended.set()


class _Started:
    def __init__(self, outer: Any, handle: Crashable) -> None:
        self.outer, self.handle = outer, handle

    def started(self, value: Any = None) -> None:
        self.outer.started(self.handle)


def deal_net(
    root: Path,
    *,
    sealer: DealSealer | None = None,
    provider_config: ProviderConfig | None = None,
    client_config: ClientConfig | None = None,
    provider_meta: MetadataStore | None = None,
    data_app: DealDataApp | None = None,
    policy: Policy = DEVNET,
    start_in: int | None = None,
) -> DealNet:
    """Two nodes' worth of settings (the nodes start in DealNet.running()). `start_in`: deals start that
    many epochs ahead (the devnet's default is 150) and the provider takes them (its sealing lead
    shortened to two thirds of that), for a test that waits for a deal's start or end."""
    provider = provider_config or ProviderConfig.for_policy(policy).with_overrides(publish_period=0.3)
    client = client_config or ClientConfig.for_policy(policy).with_overrides(poll_interval=0.1)
    if start_in is not None:
        lead = 2 * start_in // 3
        provider = provider.with_overrides(terms=replace(provider.terms, sealing_lead=lead))
        client = client.with_overrides(start_buffer=start_in)
    return DealNet(
        root=root,
        provider_config=provider,
        client_config=client,
        provider_meta=provider_meta if provider_meta is not None else MemoryMetadata(),
        imports=ImportStore.open(root / "client" / "imports"),
        sealer=sealer or FakeSealer(),
        data_app=data_app,
        policy=policy,
    )
