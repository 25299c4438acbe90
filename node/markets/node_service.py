"""The markets as one service of a running node (`filpy daemon`, `filpy devnet`): opened once the RPC
server listens, since the deal-data and retrieval URLs that peers are given are that server's.

    service = MarketsService(node, repo.path, network.p2p.host, repo.keystore, config.libp2p,
                             server=api.server, base_url=api.base_url)
    runner = ServiceRunner([..., *network.services(), *miner_services, api, service])

On start it opens the markets (node/markets/services.py) in the repo; the client side always, on the
node's libp2p host; a storage provider for every miner whose sealing pipeline the node runs
(`provider_miners(node)`, `node.sealing`), each with that pipeline as its deal sealer. They share one
provider host (node/markets/provider_router.py routes each proposal and status request to its miner's
provider); the first, `provider_miner(node)` (the newest created miner, else a genesis miner), is the one
lotus-miner's single-miner methods (MarketGetAsk) are about. A miner created while the node runs is
handed to `take_miner` (node/mining/services.py ServeCreated): a provider for it joins the others at
once, takes that place (as the next start would give it), and is announced once it has an ask. The
providers get a libp2p host of their own, as a `lotus-miner` has one beside its full node: its identity
in the keystore as `libp2p-provider`, listening where config.toml's `[markets] listen` says, else on a
free port of each IP the node's host listens on;
that is what the miner's peer ID and addresses on chain name (`[markets] announce` when set, e.g. an
address in front of a NAT, else the addresses it listens on), so that clients, this node's own among
them (a host cannot dial itself), reach it.

It mounts the client's `/deal-data/` route and, on a provider, the `/ipfs/` and `/piece/` retrieval
routes on the RPC server, starts the market services in a nursery of its own, and announces each
provider (its host's peer ID and addresses in the miner's info on chain, when they differ) once it has
an ask: at start if it has one, else when MarketSetAsk sets one (`Markets.announce_provider`), so that
a node whose miners take no deals sends nothing (a devnet that mines on demand stays at height 0). A failed
announcement is logged and retried, the node running on meanwhile (a new miner's worker may have no FIL
for the messages yet).
"""

from collections.abc import Callable
from pathlib import Path
from typing import Final

import structlog
import trio
from multiaddr import Multiaddr

from chain.types.address import Address
from node.config import Libp2pConfig, MarketsConfig
from node.daemon import TaskStatus
from node.fullnode import FullNode
from node.keystore import Keystore
from node.markets.deals_config import ClientConfig, ProviderConfig
from node.markets.http_retrieval import Mountable, RetrievalHttpApp
from node.markets.sealing_adapter import PipelineSealer
from node.markets.services import Markets, add_provider, open_markets
from node.markets.storage_provider import StorageProvider
from node.p2p.host import Libp2pHost
from node.p2p.identity import KeystoreIdentity, load_or_create_identity

log = structlog.get_logger("markets")

PROVIDER_KEY: Final = "libp2p-provider"
ANNOUNCE_RETRY_MIN: Final = 5.0  # seconds
ANNOUNCE_RETRY_MAX: Final = 120.0


def provider_miner(node: FullNode) -> Address | None:
    """The first miner a node's storage provider serves (the one lotus-miner's single-miner methods are
    about): the one most recently created from this node that it seals for, else the first miner it
    seals for (a genesis miner), else None (a client-only node)."""
    if not node.sealing:
        return None
    created = [r.id_address for r in node.miners.list() if r.id_address in node.sealing]
    return created[-1] if created else next(iter(node.sealing))


def provider_miners(node: FullNode) -> list[Address]:
    """Every miner the node provides for: each it seals for, `provider_miner` first."""
    first = provider_miner(node)
    return [] if first is None else [first, *(m for m in node.sealing if m != first)]


class MarketsService:
    """The node's storage and retrieval markets (see the module docstring)."""

    name = "markets"

    def __init__(
        self,
        node: FullNode,
        repo_dir: Path,
        host: Libp2pHost,
        keystore: Keystore,
        libp2p: Libp2pConfig,
        *,
        server: Mountable,
        base_url: Callable[[], str],
        client_config: ClientConfig | None = None,
        provider_config: ProviderConfig | None = None,
        markets_config: MarketsConfig | None = None,
    ) -> None:
        self.node = node
        self.repo_dir = repo_dir
        self.host = host
        self.keystore = keystore
        self.libp2p = libp2p
        self.markets_config = markets_config or MarketsConfig()
        self.provider_host: Libp2pHost | None = None
        self._announcing: set[Address] = set()
        self.server = server
        self.base_url = base_url  # the RPC server's http://host:port, once it listens
        self.client_config = client_config or ClientConfig.for_policy(node.policy)
        self.provider_config = provider_config
        self.markets: Markets | None = None
        self._nursery: trio.Nursery | None = None

    def new_provider_host(self) -> Libp2pHost:
        """The provider's own host (see the module docstring); not yet listening."""
        key = load_or_create_identity(KeystoreIdentity(self.keystore, PROVIDER_KEY))
        listen = self.markets_config.listen or tuple(
            dict.fromkeys(_any_port(addr) for addr in self.libp2p.listen)
        )
        return Libp2pHost(Libp2pConfig(listen=listen, bootstrap=()), key)

    def announced_addrs(self, host: Libp2pHost) -> tuple[str, ...]:
        """The addresses the provider announces on chain: [markets] announce, else where it listens."""
        return self.markets_config.announce or host.addrs_listen().addrs

    def open(self, provider_host: Libp2pHost | None) -> Markets:
        url = self.base_url()
        miners = provider_miners(self.node) if provider_host is not None else []
        markets = open_markets(
            self.node,
            self.repo_dir,
            self.host,
            client_config=self.client_config.with_overrides(transfer_url=url),
            miner=miners[0] if miners else None,
            sealer=PipelineSealer(self.node.sealing[miners[0]]) if miners else None,
            provider_config=self.provider_config,
            retrieval_urls=(url,) if miners else (),
            provider_host=provider_host,
        )
        for miner in miners[1:]:
            self._add_provider(markets, miner)
        markets.mount(self.server)
        if markets.provider is not None:
            # the gateway serves free data; priced data (MarketSetRetrievalAsk) only by retrieval deal
            RetrievalHttpApp(markets.pieces, lambda: markets.retrieval_ask).mount(self.server)
        self.markets = markets
        return markets

    def _add_provider(self, markets: Markets, miner: Address) -> StorageProvider:
        return add_provider(
            markets,
            self.node,
            self.repo_dir,
            miner,
            PipelineSealer(self.node.sealing[miner]),
            config=self.provider_config,
            retrieval_urls=(self.base_url(),),
        )

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            if provider_miner(self.node) is not None:
                self.provider_host = self.new_provider_host()
                await nursery.start(self.provider_host.run)
            markets = self.open(self.provider_host)
            for service in markets.services():
                await nursery.start(service.run)
            self._nursery = nursery
            markets.announce_provider = lambda: nursery.start_soon(self._announce_all, markets)
            await self._announce_all(markets)
            log.info(
                "markets started",
                provider=None if markets.provider is None else str(markets.provider.miner),
                providers=[str(m) for m in markets.providers],
                deal_data=self.base_url(),
            )
            task_status.started()
            await trio.sleep_forever()

    async def _announce_all(self, markets: Markets) -> None:
        """Announce every provider that has an ask (at start, and when MarketSetAsk sets one), so that a
        miner that takes no deals sends nothing."""
        nursery = self._nursery
        assert nursery is not None
        for provider in list(markets.providers.values()):
            if await self.node.run_sync(provider.asks.get, provider.miner) is not None:
                self._start_announcing(nursery, provider)

    async def take_miner(self, miner: Address) -> None:
        """A miner the node has just begun to serve (node/mining/services.py ServeCreated): a provider for
        it joins the others on the provider's host (made now if the node provided for no miner yet), and
        is announced once it has an ask. A miner created from this node becomes `markets.provider` (what
        MarketGetAsk is about), as `provider_miner` makes it at the next start."""
        markets, nursery = self.markets, self._nursery
        if markets is None or nursery is None or miner in markets.providers or miner not in self.node.sealing:
            return  # not running yet (its start provides for every miner), or already served
        first = markets.provider is None
        if self.provider_host is None:
            self.provider_host = self.new_provider_host()
            await nursery.start(self.provider_host.run)
            markets.provider_host = self.provider_host
        provider = self._add_provider(markets, miner)
        if first:
            RetrievalHttpApp(markets.pieces, lambda: markets.retrieval_ask).mount(self.server)
        await nursery.start(provider.run)
        if provider_miner(self.node) == miner:
            # the newest created miner: the single-miner methods are about it from now on, as after a
            # restart (once it runs: its worker is what a query for data not here names)
            markets.provider = provider
        await self._announce_all(markets)
        log.info(
            "provider serves a created miner", miner=str(miner), providers=[str(m) for m in markets.providers]
        )

    def _start_announcing(self, nursery: trio.Nursery, provider: StorageProvider) -> None:
        if provider.miner not in self._announcing:
            self._announcing.add(provider.miner)
            nursery.start_soon(self._announce, provider)

    async def _announce(self, provider: StorageProvider) -> None:
        """Announce the provider, retried with a growing pause while it fails (the miner's worker may
        have no funds yet: it is announced once it has)."""
        host = self.provider_host
        assert host is not None
        addrs = tuple(Multiaddr(a).to_bytes() for a in self.announced_addrs(host))
        pause = ANNOUNCE_RETRY_MIN
        while True:
            try:
                await provider.announce(host.peer_id.to_bytes(), addrs)
                self._announcing.discard(provider.miner)
                return
            except Exception as exc:  # any failure: the node serves on (see the module docstring)
                error = str(exc) or type(exc).__name__
                log.warning("provider not announced", miner=str(provider.miner), error=error, retry_in=pause)
            await trio.sleep(pause)
            pause = min(pause * 2, ANNOUNCE_RETRY_MAX)


def _any_port(listen: str) -> str:
    """The listen address with its TCP port made 0 (a free one): `/ip4/127.0.0.1/tcp/4001` ->
    `/ip4/127.0.0.1/tcp/0`."""
    parts = listen.split("/")
    if "tcp" in parts:
        at = parts.index("tcp") + 1
        if at < len(parts):
            parts[at] = "0"
    return "/".join(parts)
