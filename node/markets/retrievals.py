"""The client's retrievals (ClientRetrieve, ClientRetrieveWait, ClientExport): a DAG fetched from a
provider, verified block by block, kept as a CAR in the repo's `retrievals/` until exported.

A `RetrievalOrder` (Lotus v1.26's) that pays nothing is fetched over HTTP: the provider's endpoint
comes from `/fil/retrieval/transports/1.0.0` (node/markets/retrieval_transports.py), the fetch is
node/markets/retrieval_client.py's `retrieve_http`. An order with a Total (or an UnsealPrice) is a paid
retrieval deal, as Lotus's ClientRetrieve makes it: the provider's query answer gives its payment
address; the price per byte is (Total - UnsealPrice) / Size; the client gets a payment channel from its
wallet (`Client`, else the wallet's default) to that address with Total in it (created, or reused and
topped up, by the payment-channel manager), allocates a lane for the deal, and pays each interval with
a voucher on it, never more than Total (node/markets/retrieval_deals.py).

Retrieval IDs count up from 1 for the node's lifetime; the CARs stay in `retrievals/` (the client's to
delete). Export writes a CAR as it is, or the UnixFS file (every block checked again against its CID);
the export of a file holds the DAG's blocks in memory.
"""

import itertools
import shutil
from dataclasses import dataclass
from pathlib import Path

import httpx
import structlog
from multiaddr import Multiaddr

from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.schema import BigInt, LotusJson, Uint64
from chain.stmgr.actors import ActorNotFound, StateQueryError
from chain.store.car import CarReader
from chain.types.address import Address
from node.fullnode import FullNode
from node.markets.imports import ImportStore
from node.markets.paych_retrieval import voucher_source
from node.markets.paych_types import PaychError
from node.markets.retrieval_client import RetrievalError as FetchError
from node.markets.retrieval_client import RetrievalPeer, retrieve_http
from node.markets.retrieval_deals import retrieve_paid
from node.markets.retrieval_payment import ClientPayments, DealProposal, RetrievalParams
from node.markets.retrieval_query import QueryError, QueryResponseStatus, query
from node.markets.retrieval_transports import TransportsError, http_urls, query_transports
from node.markets.traversal import VerificationError, export_file
from node.p2p.host import AddrInfo, Libp2pHost
from node.p2p.protocols import PeerID
from node.p2p.streamio import StreamFailure

_log = structlog.get_logger(__name__)


class RetrievalError(Exception):
    """A retrieval or export that cannot be done; the message says why."""


class RetrievalOrder(LotusJson, kw_only=True):
    """lotus api.RetrievalOrder (v0's has no DataSelector/RemoteStore; filpy reads what both carry)."""

    root: CID
    piece: CID | None = None
    size: Uint64 = 0
    total: BigInt = 0
    unseal_price: BigInt = 0
    payment_interval: Uint64 = 0
    payment_interval_increase: Uint64 = 0
    client: Address | None = None
    miner: Address
    miner_peer: RetrievalPeer | None = None

    @property
    def paid(self) -> bool:
        return self.total > 0 or self.unseal_price > 0


@dataclass(frozen=True, slots=True)
class Retrieval:
    deal_id: int
    root: CID
    miner: Address
    car: Path
    bytes_received: int = 0
    paid: int = 0  # attoFIL paid by vouchers
    channel: Address | None = None  # the payment channel of a paid retrieval
    lane: int | None = None


class Retrievals:
    def __init__(self, node: FullNode, host: Libp2pHost, directory: Path, imports: ImportStore) -> None:
        self.node = node
        self.host = host
        self.directory = Path(directory)
        self.imports = imports
        self._done: dict[int, Retrieval] = {}
        self._ids = itertools.count(1)

    async def provider_peer(self, miner: Address, peer: PeerID | None) -> PeerID:
        """The miner's peer (its on-chain one when None), connected at the addresses on chain (a provider
        restarted on another port is found there, not at the address this host last knew)."""
        try:
            info = await self.node.run_sync(self.node.state.miner_info, miner, self.node.chain.head())
        except (ActorNotFound, StateQueryError) as exc:
            raise RetrievalError(f"miner {miner}: {exc}") from None
        if peer is None:
            if not info.peer_id:
                raise RetrievalError(f"miner {miner} has no peer ID on chain")
            peer = PeerID(info.peer_id)
        if not self.host.is_connected(peer):
            addrs = tuple(str(Multiaddr(raw)) for raw in info.multiaddrs)
            try:
                await self.host.connect(AddrInfo(peer.to_base58(), addrs))
            except StreamFailure as exc:
                raise RetrievalError(f"cannot reach {peer}: {exc}") from None
        return peer

    async def retrieve(self, order: RetrievalOrder) -> int:
        """Fetch the order's DAG (see the module's docstring); the retrieval's ID."""
        peer = None
        if order.miner_peer is not None and order.miner_peer.id:
            try:
                peer = PeerID.from_base58(order.miner_peer.id)
            except Exception:  # py-libp2p raises several kinds for bad base58
                raise RetrievalError(f"MinerPeer.ID {order.miner_peer.id!r} is not a peer ID") from None
        peer = await self.provider_peer(order.miner, peer)
        if order.paid:
            return await self._retrieve_paid(order, peer)
        root, miner = order.root, order.miner
        try:
            urls = http_urls(await query_transports(self.host, peer))
        except TransportsError as exc:
            raise RetrievalError(str(exc)) from None
        if not urls:
            raise RetrievalError(f"{peer} offers no HTTP retrieval endpoint")
        self.directory.mkdir(parents=True, exist_ok=True)
        deal_id = next(self._ids)
        car = self.directory / f"{deal_id}.car"
        failures = []
        for url in urls:
            try:
                result = await retrieve_http(url, root, car, car=True)
            except (FetchError, httpx.HTTPError) as exc:
                failures.append(f"{url}: {exc}")
                continue
            _log.info("retrieval.done", id=deal_id, root=str(root), url=url, blocks=result.blocks)
            self._done[deal_id] = Retrieval(deal_id, root, miner, car, result.bytes_received)
            return deal_id
        raise RetrievalError("; ".join(failures))

    async def _retrieve_paid(self, order: RetrievalOrder, peer: PeerID) -> int:
        root = order.root
        try:
            answer = await query(self.host, peer, root, order.piece)
        except QueryError as exc:
            raise RetrievalError(str(exc)) from None
        if answer.status != QueryResponseStatus.Available:
            raise RetrievalError(f"{order.miner} cannot serve {root}: {answer.message}")
        size = order.size or answer.size
        if size == 0:
            raise RetrievalError(f"{order.miner} quotes no size for {root}: give the order's Size")
        if order.total < order.unseal_price:
            raise RetrievalError(
                f"the order's Total {order.total} is below its UnsealPrice {order.unseal_price}"
            )
        params = RetrievalParams(
            piece_cid=order.piece,
            price_per_byte=(order.total - order.unseal_price) // size,
            payment_interval=order.payment_interval or answer.max_payment_interval,
            payment_interval_increase=order.payment_interval_increase or answer.max_payment_interval_increase,
            unseal_price=order.unseal_price,
        )
        wallet = order.client or self.node.wallet.default()
        if wallet is None:
            raise RetrievalError("the order names no Client wallet and this node's wallet has no default")
        paych = self.node.paych
        try:
            got = await paych.get_paych(wallet, answer.payment_address, order.total)
            channel = got.channel
            if got.wait_sentinel is not None:
                channel = await paych.get_wait_ready(got.wait_sentinel)
            if channel is None:
                raise RetrievalError(f"no payment channel from {wallet} to {answer.payment_address}")
            lane = await paych.allocate_lane(channel)
        except PaychError as exc:
            raise RetrievalError(f"cannot pay {answer.payment_address}: {exc}") from None
        deal_id = next(self._ids)
        payer = ClientPayments(params, voucher_source(paych, channel, lane, deal_id), max_total=order.total)
        self.directory.mkdir(parents=True, exist_ok=True)
        car = self.directory / f"{deal_id}.car"
        try:
            result = await retrieve_paid(self.host, peer, DealProposal(root, deal_id, params), payer, car)
        except FetchError as exc:
            raise RetrievalError(f"retrieval deal {deal_id} with {order.miner}: {exc}") from None
        self._done[deal_id] = Retrieval(
            deal_id, root, order.miner, car, result.bytes_received, payer.paid, channel, lane
        )
        return deal_id

    def get(self, deal_id: int) -> Retrieval:
        found = self._done.get(deal_id)
        if found is None:
            raise RetrievalError(f"no retrieval {deal_id}")
        return found

    async def export(self, deal_id: int | None, root: CID, out: Path, *, car: bool) -> None:
        """Write a retrieval's DAG (or, without an ID, an import's) to out: the CAR, or the file."""
        if deal_id is not None:
            source = self.get(deal_id).car
        else:
            found = self.imports.by_root(root)
            if not found:
                raise RetrievalError(f"nothing retrieved or imported has root {root}")
            source = found[-1].car_path
        try:
            await self.node.run_sync(_export, source, root, Path(out), car)
        except (OSError, DecodeError, VerificationError) as exc:
            raise RetrievalError(f"cannot export {root} to {out}: {exc}") from None


def _export(source: Path, root: CID, out: Path, car: bool) -> None:
    if out.is_dir():  # refused before anything is written, in words rather than a rename's errno
        raise IsADirectoryError(f"{out} is a directory: name the file to write")
    partial = out.with_name(f".{out.name}.partial")
    try:
        if car:
            shutil.copyfile(source, partial)
        else:
            with source.open("rb") as f:
                blocks = dict(CarReader(f))
            with partial.open("w+b") as f:
                export_file(blocks.get, root, f)
        partial.replace(out)
    except BaseException:
        partial.unlink(missing_ok=True)  # whole or not at all: no .partial left beside out
        raise
