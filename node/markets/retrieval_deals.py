"""Retrieval deals over libp2p (`/filpy/retrieval/deal/1.0.0`): the transport that carries
node/markets/retrieval_payment.py's messages, the provider that answers it, and the client's side.

Free data is fetched over HTTP (node/markets/retrieval_client.py). Priced data goes through a deal: the
client opens a stream, sends its `DealProposal` (go-fil-markets' terms: price per byte, payment
interval and its increase, unseal price), and the provider checks it against its retrieval ask and its
pieces. A refusal is a `Rejected` (or `DealNotFound`) response with the reason; otherwise `Accepted`,
then the CAR of the payload's DAG (CAR v1, depth-first, each block once) as data messages, pausing at
each payment interval until the client's voucher arrives (`provider_transfer`). The client verifies
every block as it arrives (`CarReceiver`) and pays only for bytes received (`client_transfer`); the
priced bytes are the CAR's bytes as sent.

Filecoin's retrieval market carried these messages in go-data-transfer over graphsync, which filpy does
not speak; this protocol is filpy's own, with go-fil-markets' message types and arithmetic. On the
stream every message is a uvarint length, then a DAG-CBOR `[kind, body]`: kind `proposal`, `response`
or `payment` with the message's CBOR as body, or `data` with CAR bytes.
"""

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final

import structlog
import trio
from libp2p.abc import INetStream
from libp2p.custom_types import TProtocol
from libp2p.io.exceptions import IOException

from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.schema import BytesMax, CborTuple
from chain.encoding.varint import encode_uvarint
from chain.store.blockstore import BlockNotFound
from chain.store.car import encode_header, encode_section
from chain.types.address import Address
from node.markets.http_retrieval import next_chunk
from node.markets.paych import PaychManager
from node.markets.paych_retrieval import payment_check
from node.markets.piecestore import BlockSource, PieceStore, RetrievalAsk, StoredPiece
from node.markets.retrieval_client import (
    CarReceiver,
    RetrievalError,
    RetrievalResult,
    TransferInterrupted,
    partial_output,
)
from node.markets.retrieval_payment import (
    ClientPayments,
    DealPayment,
    DealProposal,
    DealResponse,
    DealStatus,
    PaymentError,
    ProviderPayments,
    client_transfer,
    provider_transfer,
)
from node.markets.retrieval_query import best_piece
from node.markets.traversal import DagScope, dfs_blocks
from node.p2p.host import Libp2pHost
from node.p2p.protocols import PeerID
from node.p2p.streamio import StreamFailure, close_quietly, reset_quietly, write_cbor

_log = structlog.get_logger(__name__)

RETRIEVAL_DEAL_PROTOCOL: Final = TProtocol("/filpy/retrieval/deal/1.0.0")
DATA_CHUNK: Final = 1 << 20  # CAR bytes per data message (less at an interval boundary)
MAX_FRAME: Final = DATA_CHUNK + (64 << 10)
MESSAGE_TIMEOUT: Final = 60.0  # the longest either side waits for the other's next message
_READ: Final = 256 << 10


class Frame(CborTuple):
    kind: str
    body: Annotated[bytes, BytesMax(MAX_FRAME)]


_MESSAGES: Final[dict[str, Any]] = {
    "proposal": DealProposal,
    "response": DealResponse,
    "payment": DealPayment,
}


class StreamChannel:
    """A MessageChannel over a libp2p stream (framing in the module's docstring). StreamFailure when
    the stream breaks or stays silent for `timeout` seconds, DecodeError for a malformed message."""

    def __init__(self, stream: INetStream, *, timeout: float = MESSAGE_TIMEOUT) -> None:
        self.stream = stream
        self.timeout = timeout
        self._buf = bytearray()

    async def send(self, message: Any) -> None:
        kind, value = message
        body = value if kind == "data" else value.to_bytes()
        frame = Frame(kind, body).to_bytes()
        await write_cbor(self.stream, encode_uvarint(len(frame)) + frame, timeout=self.timeout)

    async def receive(self) -> Any:
        with trio.move_on_after(self.timeout) as scope:
            length = await self._length()
            if length > MAX_FRAME + 16:
                raise StreamFailure(f"the peer sent a message of {length} bytes (at most {MAX_FRAME})")
            await self._fill(length)
        if scope.cancelled_caught:
            raise StreamFailure(f"no message from the peer within {self.timeout} s")
        raw = bytes(self._buf[:length])
        del self._buf[:length]
        frame = Frame.from_bytes(raw)
        if frame.kind == "data":
            return ("data", frame.body)
        kind = _MESSAGES.get(frame.kind)
        if kind is None:
            raise DecodeError(f"unknown retrieval message kind {frame.kind!r}")
        return (frame.kind, kind.from_bytes(frame.body))

    async def _length(self) -> int:
        value, shift, at = 0, 0, 0
        while True:
            await self._fill(at + 1)
            byte = self._buf[at]
            value |= (byte & 0x7F) << shift
            at += 1
            if not byte & 0x80:
                del self._buf[:at]
                return value
            shift += 7
            if shift > 28:
                raise DecodeError("a message length longer than 4 bytes")

    async def _fill(self, n: int) -> None:
        while len(self._buf) < n:
            try:
                chunk = await self.stream.read(_READ)
            except EOFError:
                chunk = b""
            except IOException as exc:
                raise StreamFailure(f"reading failed: {exc or type(exc).__name__}") from None
            if not chunk:
                raise StreamFailure("the peer closed the stream")
            self._buf += chunk


# -- the provider ----------------------------------------------------------------------------------------


@dataclass(eq=False)
class ProviderRetrieval:
    """A retrieval deal as the provider saw it (kept in memory for the node's lifetime)."""

    peer: str
    proposal: DealProposal
    status: DealStatus = DealStatus.New
    message: str = ""
    gate: ProviderPayments | None = None
    done: trio.Event = field(default_factory=trio.Event)

    @property
    def sent(self) -> int:
        return 0 if self.gate is None else self.gate.sent

    @property
    def funds_received(self) -> int:
        return 0 if self.gate is None else self.gate.funds_received


def refusal(proposal: DealProposal, ask: RetrievalAsk) -> str | None:
    """Why the proposal's terms are not acceptable under ask, or None (go-fil-markets'
    CheckDealParams)."""
    params = proposal.params
    if params.price_per_byte < ask.price_per_byte:
        return f"price per byte too low: {params.price_per_byte} attoFIL, the ask is {ask.price_per_byte}"
    if params.unseal_price < ask.unseal_price:
        return f"unseal price too low: {params.unseal_price} attoFIL, the ask is {ask.unseal_price}"
    if params.payment_interval > ask.payment_interval:
        return f"payment interval too large: {params.payment_interval} bytes, at most {ask.payment_interval}"
    if params.payment_interval_increase > ask.payment_interval_increase:
        return (
            f"payment interval increase too large: {params.payment_interval_increase} bytes, at most "
            f"{ask.payment_interval_increase}"
        )
    if params.payment_interval == 0 and params.price_per_byte > 0:
        return "a priced retrieval needs a payment interval of at least one byte"
    return None


@dataclass(eq=False, repr=False)
class RetrievalDealProvider:
    """Answers RETRIEVAL_DEAL_PROTOCOL from the piece store, paid through the node's payment-channel
    manager to `payment_address(piece)` (the worker of the miner holding the piece, as the query
    protocol quotes)."""

    store: PieceStore
    paych: PaychManager
    _: KW_ONLY
    payment_address: Callable[[StoredPiece], Address]
    ask: Callable[[], RetrievalAsk]
    payment_timeout: float = MESSAGE_TIMEOUT
    chunk_size: int = DATA_CHUNK
    deals: list[ProviderRetrieval] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.chunk_size = min(self.chunk_size, DATA_CHUNK)

    def register(self, host: Libp2pHost) -> None:
        host.set_stream_handler(RETRIEVAL_DEAL_PROTOCOL, self._handle)

    def ask_of(self, piece: StoredPiece) -> RetrievalAsk:
        return piece.ask if piece.ask is not None else self.ask()

    def _piece_for(self, proposal: DealProposal) -> StoredPiece | None:
        pieces = self.store.pieces_with(proposal.payload_cid)
        wanted = proposal.params.piece_cid
        if wanted is not None:
            pieces = [p for p in pieces if p.piece_cid == wanted]
        return best_piece(pieces, self.ask_of) if pieces else None

    async def _handle(self, stream: INetStream) -> None:
        peer = str(stream.muxed_conn.peer_id)
        channel = StreamChannel(stream, timeout=self.payment_timeout)
        try:
            kind, proposal = await channel.receive()
            if kind != "proposal":
                raise DecodeError(f"a retrieval deal starts with a proposal, not {kind}")
        except (StreamFailure, DecodeError) as exc:
            _log.info("retrieval.deal_unreadable", peer=peer, error=str(exc))
            await reset_quietly(stream)
            return
        deal = ProviderRetrieval(peer, proposal)
        self.deals.append(deal)
        try:
            await self._serve(deal, channel)
        except (StreamFailure, DecodeError, PaymentError) as exc:
            deal.status, deal.message = DealStatus.Errored, str(exc)
            _log.info("retrieval.deal_failed", peer=peer, deal=proposal.id, error=str(exc))
        except (BlockNotFound, OSError) as exc:  # our pieces failed us: the client hears why
            deal.status, deal.message = DealStatus.Errored, f"the provider cannot read the data: {exc}"
            _log.warning("retrieval.deal_read_failed", peer=peer, deal=proposal.id, error=str(exc))
            with trio.move_on_after(5), contextlib.suppress(StreamFailure):
                ended = DealResponse(status=DealStatus.Errored, id=proposal.id, message=deal.message)
                await channel.send(("response", ended))
        finally:
            deal.done.set()
            await close_quietly(stream)

    async def _serve(self, deal: ProviderRetrieval, channel: StreamChannel) -> None:
        proposal = deal.proposal
        piece = self._piece_for(proposal)
        if piece is None:
            where = f" in piece {proposal.params.piece_cid}" if proposal.params.piece_cid else ""
            deal.status = DealStatus.DealNotFound
            deal.message = f"payload {proposal.payload_cid}{where} is not here"
        else:
            reason = refusal(proposal, self.ask_of(piece))
            if reason is not None:
                deal.status, deal.message = DealStatus.Rejected, reason
        if deal.status != DealStatus.New:
            refused = DealResponse(status=deal.status, id=proposal.id, message=deal.message)
            await channel.send(("response", refused))
            _log.info("retrieval.deal_refused", peer=deal.peer, deal=proposal.id, reason=deal.message)
            return
        await channel.send(("response", DealResponse(status=DealStatus.Accepted, id=proposal.id)))
        deal.status = DealStatus.Ongoing
        assert piece is not None  # no piece: refused above
        recipient = self.payment_address(piece)
        deal.gate = ProviderPayments(proposal, payment_check(self.paych, lambda: recipient))
        sent = await provider_transfer(
            deal.gate, self._car(proposal.payload_cid), channel, payment_timeout=self.payment_timeout
        )
        deal.status = DealStatus.Completed
        _log.info(
            "retrieval.deal_completed",
            peer=deal.peer,
            deal=proposal.id,
            bytes=sent,
            paid=deal.gate.funds_received,
            channel=str(deal.gate.channel),
        )

    async def _car(self, root: CID) -> AsyncIterator[bytes]:
        """The CAR of root's DAG in chunks, read from the pieces in a worker thread."""
        source = BlockSource(self.store)
        try:
            sections = _car_sections(source, root)
            while True:
                chunk = await trio.to_thread.run_sync(next_chunk, sections, self.chunk_size)
                if chunk is None:
                    return
                yield chunk
        finally:
            source.close()


def _car_sections(source: BlockSource, root: CID) -> Iterator[bytes]:
    yield encode_header([root])
    for cid, data in dfs_blocks(source, root, DagScope.ALL):
        yield encode_section(cid, data)


# -- the client ------------------------------------------------------------------------------------------


class RetrievalRefused(RetrievalError):
    """The provider refused the deal, or ended it (its reason in the message)."""


async def retrieve_paid(
    host: Libp2pHost,
    peer: PeerID,
    proposal: DealProposal,
    payer: ClientPayments,
    out: Path,
    *,
    timeout: float = MESSAGE_TIMEOUT,
) -> RetrievalResult:
    """Make the retrieval deal with peer and write the DAG's CAR (each block once, verified) to out;
    nothing is left at out unless the whole DAG arrived and verified. RetrievalRefused when the
    provider refuses or ends the deal (or asks for what is not due), TransferInterrupted when the
    stream breaks, BadData for a block that does not verify."""
    root = proposal.payload_cid
    try:
        stream = await host.open_stream(peer, RETRIEVAL_DEAL_PROTOCOL, timeout=timeout, dial=True)
    except StreamFailure as exc:
        raise RetrievalError(f"cannot open a retrieval deal with {peer}: {exc}") from None
    channel = StreamChannel(stream, timeout=timeout)
    try:
        with partial_output(Path(out)) as sink:
            receiver = CarReceiver(root, sink, car=True)
            try:
                await channel.send(("proposal", proposal))
                await client_transfer(payer, channel, receiver.feed)
            except PaymentError as exc:
                raise RetrievalRefused(str(exc)) from None
            except (StreamFailure, DecodeError) as exc:
                raise TransferInterrupted(
                    f"retrieval deal {proposal.id} for {root} broke off after {receiver.received} bytes "
                    f"({payer.paid} attoFIL paid): {exc}"
                ) from None
            verified = await receiver.finish()
    finally:
        await close_quietly(stream)
    _log.info(
        "retrieval.paid_done", root=str(root), deal=proposal.id, bytes=receiver.received, paid=payer.paid
    )
    return RetrievalResult(root, Path(out), verified.blocks, receiver.received, None)
