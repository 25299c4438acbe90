"""The retrieval client: find who has a payload, and fetch it over HTTP verifying every block.

`retrieve_http(base_url, root, out)` asks a provider's trustless gateway for
`/ipfs/<root>?format=car&dag-scope=all` (`order=dfs; dups=y`), checks each block against its CID and its
place in the DAG as it streams in (node/markets/traversal.py), and writes either the UnixFS file or the
CAR (`car=True`: each block once, roots = [root]) through a temporary file that is renamed into place
only when the whole DAG arrived and verified. A refused, interrupted or tampered transfer raises a
`RetrievalError` subclass saying which, and leaves nothing at `out`.

`find_data(host, root, piece, candidates)` is ClientFindData: it queries each candidate provider over
`/fil/retrieval/qry/1.0.0` and returns Lotus's QueryOffers (an offer's Err says why a provider cannot
serve). Which providers to ask comes from the caller (the deals the client made for root).
"""

import os
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, BinaryIO, Final

import httpx
import structlog
import trio

from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.schema import BigInt, LotusJson, Name, Uint64
from chain.store.car import encode_header, encode_section
from chain.types.address import Address
from node.markets.carstream import CarStreamParser
from node.markets.retrieval_query import QueryError, QueryResponseStatus, query
from node.markets.traversal import (
    DagScope,
    DagVerifier,
    FileOutput,
    IncompleteDag,
    TamperedBlock,
    VerificationError,
    VerifiedDag,
)
from node.p2p.host import Libp2pHost
from node.p2p.protocols import PeerID

_log = structlog.get_logger(__name__)

CAR_ACCEPT: Final = "application/vnd.ipld.car; version=1; order=dfs; dups=y"
READ_TIMEOUT: Final = 30.0  # the trustless gateway spec's safe default: 30 s without a new byte


class RetrievalError(Exception):
    """A retrieval that did not give the data; the message says why."""


class ProviderRefused(RetrievalError):
    """The provider answered with an error status (unknown CID, priced data, bad request)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"the provider answered {status}: {message.strip()}")
        self.status = status


class TransferInterrupted(RetrievalError):
    """The stream ended before the DAG was complete."""


class BadData(RetrievalError):
    """The provider sent a block that does not verify, or does not belong where it came."""


@dataclass(frozen=True, slots=True)
class RetrievalResult:
    root: CID
    path: Path
    blocks: int
    bytes_received: int  # response body bytes
    file_size: int | None  # bytes of file written (None for a CAR)


class _CarOutput:
    """The CAR a client keeps: each block once, in arrival order."""

    def __init__(self, out: BinaryIO, root: CID) -> None:
        self.out = out
        out.write(encode_header([root]))

    def write(self, cid: CID, data: bytes) -> None:
        self.out.write(encode_section(cid, data))


class CarReceiver:
    """A CAR arriving in chunks of any size: every block verified (its CID, its place in root's DAG)
    as it completes, then written to sink as the UnixFS file or (car=True) as a CAR with each block
    once. What both the HTTP fetch and the paid retrieval transport feed. `feed` and `finish` raise
    the RetrievalError that says what is wrong."""

    def __init__(self, root: CID, sink: BinaryIO, *, car: bool) -> None:
        self.root = root
        self.received = 0
        self._car = _CarOutput(sink, root) if car else None
        self._verifier = DagVerifier(root, DagScope.ALL, output=None if car else FileOutput(sink))
        self._parser = CarStreamParser()

    @property
    def blocks(self) -> int:
        return self._verifier.blocks

    async def feed(self, chunk: bytes) -> None:
        self.received += len(chunk)
        with self._translated():
            sections = self._parser.feed(chunk)
            if sections:
                await trio.to_thread.run_sync(self._verify, sections)

    async def finish(self) -> VerifiedDag:
        """The DAG's figures once the stream ended; TransferInterrupted if it is incomplete."""
        with self._translated():
            self._parser.close()
            verified: VerifiedDag = await trio.to_thread.run_sync(self._verifier.finish)
        return verified

    def _verify(self, sections: list[tuple[CID, bytes]]) -> None:
        for cid, data in sections:
            new = self._verifier.is_new(cid)
            self._verifier.feed(cid, data)
            if self._car is not None and new:
                self._car.write(cid, data)

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except IncompleteDag as exc:
            raise TransferInterrupted(str(exc)) from None
        except TamperedBlock as exc:
            raise BadData(f"refused a tampered block: {exc}") from None
        except VerificationError as exc:
            raise BadData(str(exc)) from None
        except DecodeError as exc:
            raise BadData(f"the provider's CAR is malformed after {self.received} bytes: {exc}") from None


@contextmanager
def partial_output(out: Path) -> Iterator[BinaryIO]:
    """A temporary file beside out, synced and renamed to out when the block exits normally; removed
    otherwise (nothing unverified is left at out)."""
    tmp = out.with_name(f".{out.name}.partial")
    try:
        with tmp.open("w+b") as sink:
            yield sink
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


async def retrieve_http(
    base_url: str,
    root: CID,
    out: Path,
    *,
    car: bool = False,
    client: httpx.AsyncClient | None = None,
    read_timeout: float = READ_TIMEOUT,
) -> RetrievalResult:
    """Fetch root's DAG from the provider at base_url (`http://host:port`) into out (see the module)."""
    out = Path(out)
    url = f"{base_url.rstrip('/')}/ipfs/{root}"
    params = {"format": "car", "dag-scope": "all"}
    own = client is None
    http = client or httpx.AsyncClient(timeout=httpx.Timeout(read_timeout))
    try:
        with partial_output(out) as sink:
            receiver = CarReceiver(root, sink, car=car)
            try:
                async with http.stream("GET", url, params=params, headers={"Accept": CAR_ACCEPT}) as response:
                    if response.status_code != 200:
                        text = (await response.aread()).decode("utf-8", "replace")[:500]
                        raise ProviderRefused(response.status_code, text)
                    media = response.headers.get("content-type", "")
                    if not media.startswith("application/vnd.ipld.car") or "version=1" not in media.replace(
                        " ", ""
                    ):
                        raise BadData(f"the provider sent {media or 'no content type'}, not a CAR v1")
                    async for chunk in response.aiter_raw():
                        await receiver.feed(chunk)
                verified = await receiver.finish()
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.ReadTimeout) as exc:
                raise TransferInterrupted(
                    f"the transfer of {root} broke off after {receiver.received} bytes and "
                    f"{receiver.blocks} verified blocks: {exc}"
                ) from None
            except httpx.HTTPError as exc:
                raise RetrievalError(f"cannot retrieve {root} from {base_url}: {exc}") from None
    finally:
        if own:
            await http.aclose()
    _log.info("retrieval.done", root=str(root), blocks=verified.blocks, bytes=receiver.received, out=str(out))
    return RetrievalResult(root, out, verified.blocks, receiver.received, verified.file_size)


# ClientFindData ----------------------------------------------------------------------------------


class RetrievalPeer(LotusJson):
    """go-fil-markets retrievalmarket.RetrievalPeer: QueryOffer.MinerPeer, and RetrievalOrder.MinerPeer
    (where the ID may be left out)."""

    address: Address
    id: Annotated[str, Name("ID")] = ""
    piece_cid: Annotated[CID | None, Name("PieceCID")] = None


class QueryOffer(LotusJson, kw_only=True):
    """What ClientFindData returns per provider (lotus api.QueryOffer)."""

    err: str = ""
    root: CID
    piece: CID | None = None
    size: Uint64 = 0
    min_price: BigInt = 0
    unseal_price: BigInt = 0
    price_per_byte: BigInt = 0
    payment_interval: Uint64 = 0
    payment_interval_increase: Uint64 = 0
    miner: Address
    miner_peer: RetrievalPeer


@dataclass(frozen=True, slots=True)
class Candidate:
    """A provider that may hold the payload: its miner address and peer (and the piece, if known)."""

    miner: Address
    peer: PeerID
    piece_cid: CID | None = None


async def offer_from(host: Libp2pHost, candidate: Candidate, root: CID, piece: CID | None) -> QueryOffer:
    wanted = piece if piece is not None else candidate.piece_cid
    peer = RetrievalPeer(candidate.miner, candidate.peer.to_base58(), wanted)
    offer = partial(QueryOffer, root=root, piece=wanted, miner=candidate.miner, miner_peer=peer)
    try:
        answer = await query(host, candidate.peer, root, wanted)
    except QueryError as exc:
        return offer(err=str(exc))
    if answer.status != QueryResponseStatus.Available:
        return offer(err=f"retrieval query offer was unavailable: {answer.message}")
    return offer(
        size=answer.size,
        min_price=answer.piece_retrieval_price(),
        unseal_price=answer.unseal_price,
        price_per_byte=answer.min_price_per_byte,
        payment_interval=answer.max_payment_interval,
        payment_interval_increase=answer.max_payment_interval_increase,
    )


async def find_data(
    host: Libp2pHost,
    root: CID,
    piece: CID | None,
    candidates: Sequence[Candidate],
    connect: Callable[[Candidate], Awaitable[None]] | None = None,
) -> list[QueryOffer]:
    """ClientFindData: one offer per candidate, asked concurrently, in the candidates' order; connect
    (when given) reaches each candidate first, inside its own task, so a slow dial holds up no other."""
    offers: list[QueryOffer | None] = [None] * len(candidates)

    async def ask(index: int, candidate: Candidate) -> None:
        if connect is not None:
            await connect(candidate)
        offers[index] = await offer_from(host, candidate, root, piece)

    async with trio.open_nursery() as nursery:
        for index, candidate in enumerate(candidates):
            nursery.start_soon(ask, index, candidate)
    return [offer for offer in offers if offer is not None]
