"""The node's market services, assembled: what `FullNode.markets` holds for the Client* and provider RPC
methods, and what the daemon starts.

`open_markets(node, repo_dir, host, ...)` lays the parts out in the repo: the client's imports in
`imports/`, the provider's pieces in `pieces/` and the deals' data in `deal-staging/`, the deal records
and asks in the node's LevelDB under `/markets/` (in memory for an in-memory node). The client is always
there; a provider for each miner the node seals for (`miner` with its sealing pipeline as `sealer`,
then `add_provider` for each other). The providers' protocols are served on `provider_host` when one is
given (a host of its own, as a `lotus-miner` has: the node's client cannot dial its own host), else on
`host`.
`services()` lists the trio services to start after the libp2p host and the RPC server (whose
`/deal-data/` route `mount(server)` adds). Paid retrieval pays and is paid through `node.paych`, whose
service the node runs.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from chain.chainstore.metadata import LevelDBMetadata, MemoryMetadata, MetadataStore
from chain.types.address import Address
from node.fullnode import FullNode
from node.markets.deal_sealing import DealSealer
from node.markets.deal_transfer import DealDataApp
from node.markets.deals_config import ClientConfig, ProviderConfig
from node.markets.imports import ImportStore
from node.markets.piecestore import FREE_ASK, PieceStore, RetrievalAsk, StoredPiece
from node.markets.retrieval_deals import RetrievalDealProvider
from node.markets.retrieval_query import RetrievalQueryProvider
from node.markets.retrieval_transports import TransportsProvider
from node.markets.retrievals import Retrievals
from node.markets.storage_ask import AskStore
from node.markets.storage_client import StorageClient
from node.markets.storage_provider import StorageProvider
from node.p2p.host import Libp2pHost

MARKETS_NAMESPACE: Final = b"/markets/"
RETRIEVAL_ASK_KEY: Final = b"retrieval-ask"  # in the markets' namespace, beside the deal records


def markets_store(node: FullNode) -> MetadataStore:
    """The markets' namespace of the node's LevelDB, or memory for an in-memory node."""
    db = getattr(node.chain.blockstore, "db", None)
    return MemoryMetadata() if db is None else LevelDBMetadata(db, namespace=MARKETS_NAMESPACE, sync=True)


@dataclass(eq=False)
class Markets:
    """The client and (on a miner's node) the provider, with the stores they share with retrieval."""

    host: Libp2pHost
    imports: ImportStore
    data: DealDataApp
    client: StorageClient
    pieces: PieceStore
    asks: AskStore
    retrievals: Retrievals
    # the provider of each miner the node provides for, in the order the node took them, and the one
    # lotus-miner's single-miner methods (MarketGetAsk) are about: node_service.provider_miner's
    providers: dict[Address, StorageProvider] = field(default_factory=dict)
    provider: StorageProvider | None = None
    transports: TransportsProvider | None = None
    retrieval_query: RetrievalQueryProvider | None = None
    retrieval_deals: RetrievalDealProvider | None = None
    # the provider's retrieval terms (free unless set): quoted by the query protocol, enforced by the
    # retrieval deals and the HTTP gateway (mounted with `lambda: markets.retrieval_ask`)
    retrieval_ask: RetrievalAsk = FREE_ASK
    meta: MetadataStore | None = None  # where the retrieval ask is kept
    provider_host: Libp2pHost | None = None  # where the provider's protocols are served (else host)
    # (re)announce the provider on chain, called when its ask is set (node/markets/node_service.py
    # sets it on a running node; None: nobody announces it)
    announce_provider: Callable[[], None] | None = None
    extra_services: list[Any] = field(default_factory=list)

    def set_retrieval_ask(self, ask: RetrievalAsk) -> None:
        """MarketSetRetrievalAsk: the provider's retrieval terms from now on, kept across restarts;
        ValueError for terms no retrieval could be paid under."""
        if ask.payment_interval == 0 and not ask.free:
            raise ValueError("a priced retrieval ask needs a payment interval of at least one byte")
        if self.meta is not None:
            self.meta.put(RETRIEVAL_ASK_KEY, ask.to_bytes())
        self.retrieval_ask = ask

    def mount(self, server: Any) -> None:
        """The client's `/deal-data/` route on the node's RPC server."""
        self.data.mount(server)

    def new_provider(self, provider: StorageProvider) -> None:
        """Serve with another provider of the same miner (a restarted one): it takes the old one's
        deals (and its place as `provider` if it had it), and retrieval serves from its pieces."""
        self.providers[provider.miner] = provider
        if self.provider is None or self.provider.miner == provider.miner:
            self.provider = provider
        self.pieces = provider.pieces
        for retrieval in (self.retrieval_query, self.retrieval_deals):
            if retrieval is not None:
                retrieval.store = provider.pieces
        provider.register(self.provider_host or self.host)

    def holder_of(self, piece: StoredPiece) -> StorageProvider | None:
        """The provider of the miner whose deal `piece` is served from: the deal whose CAR the piece
        store reads, else the oldest deal of that piece with a miner the node provides for (several
        miners may have taken the same piece); None when no provider has a deal of it."""
        if self.provider is None:
            return None
        deals = [
            r
            for r in self.provider.store.all()  # one store for every provider's deals (add_provider)
            if r.client_deal_proposal.proposal.piece_cid == piece.piece_cid
            and r.client_deal_proposal.proposal.provider in self.providers
        ]
        if not deals:
            return None
        # all() is oldest first, and min keeps the first of equals
        served = min(deals, key=lambda r: not r.car_path or Path(r.car_path).absolute() != piece.car_path)
        return self.providers[served.client_deal_proposal.proposal.provider]

    def payment_address(self, piece: StoredPiece | None) -> Address:
        """Where a retrieval of piece is paid: the worker of the miner whose deal it is served from
        (`holder_of`); with no piece (a query for data not here), or none holding it, the worker of
        `provider`'s miner. ProviderError while that provider has not started."""
        holder = None if piece is None else self.holder_of(piece)
        provider = holder or self.provider
        if provider is None:
            raise ValueError("this node provides for no miner")
        return provider.info.worker

    def services(self) -> list[Any]:
        return [self.client, *self.providers.values(), *self.extra_services]


def open_markets(
    node: FullNode,
    repo_dir: Path,
    host: Libp2pHost,
    *,
    client_config: ClientConfig | None = None,
    miner: Address | None = None,
    sealer: DealSealer | None = None,
    provider_config: ProviderConfig | None = None,
    retrieval_urls: tuple[str, ...] = (),
    meta: MetadataStore | None = None,
    provider_host: Libp2pHost | None = None,
) -> Markets:
    """The markets of a node (see the module's docstring); sets `node.markets`. `meta` replaces the
    node's LevelDB namespace (tests keep deals in a store of their own)."""
    meta = meta if meta is not None else markets_store(node)
    imports = ImportStore.open(repo_dir / "imports")
    pieces = PieceStore.open(repo_dir / "pieces")
    asks = AskStore(meta)
    data = DealDataApp()
    client = StorageClient(
        node,
        host=host,
        store=StorageClient.open_store(meta),
        imports=imports,
        data=data,
        config=client_config,
    )
    retrievals = Retrievals(node, host, repo_dir / "retrievals", imports)
    markets = Markets(
        host, imports, data, client, pieces, asks, retrievals, meta=meta, provider_host=provider_host
    )
    stored_ask = meta.get(RETRIEVAL_ASK_KEY)
    if stored_ask is not None:
        markets.retrieval_ask = RetrievalAsk.from_bytes(stored_ask)
    if miner is not None:
        if sealer is None:
            raise ValueError("a provider needs the miner's sealing pipeline")
        add_provider(
            markets, node, repo_dir, miner, sealer, config=provider_config, retrieval_urls=retrieval_urls
        )
    node.markets = markets
    return markets


def add_provider(
    markets: Markets,
    node: FullNode,
    repo_dir: Path,
    miner: Address,
    sealer: DealSealer,
    *,
    config: ProviderConfig | None = None,
    retrieval_urls: tuple[str, ...] = (),
) -> StorageProvider:
    """The storage provider of `miner`, served on the markets' provider host (else their host) beside
    the providers of the node's other miners (node/markets/provider_router.py); the first provider
    becomes `markets.provider` and brings the retrieval protocols, which serve every miner's pieces and
    are paid to the worker of the miner holding the piece (`Markets.payment_address`)."""
    serving = markets.provider_host or markets.host
    provider = StorageProvider(
        node,
        miner,
        # one deal store for the node's providers: each drives its own miner's deals in it, and a status
        # request finds its deal whichever miner it is with
        store=markets.provider.store
        if markets.provider is not None
        else StorageProvider.open_store(markets.meta if markets.meta is not None else markets_store(node)),
        asks=markets.asks,
        pieces=markets.pieces,
        staging=repo_dir / "deal-staging",
        sealer=sealer,
        config=config,
    )
    markets.providers[miner] = provider
    provider.register(serving)
    if markets.provider is not None:
        return provider
    markets.provider = provider
    markets.retrieval_query = RetrievalQueryProvider(
        markets.pieces, payment_address=markets.payment_address, ask=lambda: markets.retrieval_ask
    )
    markets.retrieval_query.register(serving)
    markets.retrieval_deals = RetrievalDealProvider(
        markets.pieces,
        node.paych,
        payment_address=markets.payment_address,
        ask=lambda: markets.retrieval_ask,
    )
    markets.retrieval_deals.register(serving)
    if retrieval_urls:
        markets.transports = TransportsProvider(retrieval_urls)
        markets.transports.register(serving)
    return provider
