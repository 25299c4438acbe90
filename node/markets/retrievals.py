"""The client's retrievals (ClientRetrieve, ClientRetrieveWait, ClientExport): a DAG fetched from a
provider over HTTP, verified block by block, kept as a CAR in the repo's `retrievals/` until exported.

The provider's HTTP endpoint comes from `/fil/retrieval/transports/1.0.0` (node/markets/
retrieval_transports.py); the fetch is node/markets/retrieval_client.py's `retrieve_http`, which keeps
nothing unverified. Only free data is retrieved this way: priced data needs a paid retrieval deal, whose
transport is not written yet (docs/retrieval.md), and is refused with that reason.

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
from chain.stmgr.actors import ActorNotFound, StateQueryError
from chain.store.car import CarReader
from chain.types.address import Address
from node.fullnode import FullNode
from node.markets.imports import ImportStore
from node.markets.retrieval_client import RetrievalError as FetchError
from node.markets.retrieval_client import retrieve_http
from node.markets.retrieval_transports import TransportsError, http_urls, query_transports
from node.markets.traversal import VerificationError, export_file
from node.p2p.host import AddrInfo, Libp2pHost
from node.p2p.protocols import PeerID
from node.p2p.streamio import StreamFailure

_log = structlog.get_logger(__name__)


class RetrievalError(Exception):
    """A retrieval or export that cannot be done; the message says why."""


@dataclass(frozen=True, slots=True)
class Retrieval:
    deal_id: int
    root: CID
    miner: Address
    car: Path


class Retrievals:
    def __init__(self, node: FullNode, host: Libp2pHost, directory: Path, imports: ImportStore) -> None:
        self.node = node
        self.host = host
        self.directory = Path(directory)
        self.imports = imports
        self._done: dict[int, Retrieval] = {}
        self._ids = itertools.count(1)

    async def _provider_peer(self, miner: Address, peer: PeerID | None) -> PeerID:
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

    async def retrieve(self, root: CID, miner: Address, peer: PeerID | None, total: int) -> int:
        """Fetch root's DAG from the miner's HTTP endpoint; the retrieval's ID."""
        if total > 0:
            raise RetrievalError(
                f"the order pays {total} attoFIL: paid retrievals need a retrieval deal, whose transport "
                "filpy does not have yet; free data is fetched over HTTP"
            )
        peer = await self._provider_peer(miner, peer)
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
            self._done[deal_id] = Retrieval(deal_id, root, miner, car)
            return deal_id
        raise RetrievalError("; ".join(failures))

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
    partial = out.with_name(f".{out.name}.partial")
    if car:
        shutil.copyfile(source, partial)
    else:
        with source.open("rb") as f:
            blocks = dict(CarReader(f))
        with partial.open("w+b") as f:
            export_file(blocks.get, root, f)
    partial.replace(out)
