"""`/fil/chain/xchg/0.0.1`: chain exchange as Lotus serves and asks for it (lotus chain/exchange).

A request names a tipset and asks for `Length` tipsets walking back through parents (the named one
first), with their headers, their messages, or both. Messages come compacted per tipset: each distinct
message once, and for each block the indexes of its messages.

The server answers from a `ChainView`, in a worker thread, within a budget per request (at most 900
tipsets and 64 MiB of answer; beyond that the answer is partial) and a cap on concurrent requests
(beyond it: go away), writing each header and message as the bytes its store holds rather than
decoding them to encode them again. Its status codes: 0 ok, 101 partial (fewer tipsets than asked:
genesis reached, a parent or messages missing, or the budget spent), 201 not found (the named tipset,
or its messages), 202 go away (busy), 203 internal error (the chain store failed), 204 bad request
(undecodable, no options, length 0 or over 900, no CIDs). Lotus answers an unknown tipset with 203
and closes the stream without answering an undecodable request; filpy says 201 and 204.

The client asks one peer after another (best first: fewest failures, then lowest latency; peers that
lied are left alone for ten minutes) and checks every answer as Lotus does: the status, no more tipsets
than asked, fewer only with status partial, the first tipset the one asked for, each tipset the parent
of the one before, message indexes in range, and, beyond Lotus, the messages matching their blocks'
Messages roots. A peer whose answer fails these checks is reported to `penalize` and skipped. Each
header and message decoded keeps the bytes it came in (strict decoding proved them canonical), so its
CID is their hash.
"""

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, InitVar, dataclass, field
from enum import IntEnum
from typing import Annotated, Final, TypeVar

import structlog
import trio
from libp2p.abc import INetStream

from chain.chainstore.msgmeta import msg_meta_cid
from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.schema import CachedCbor, CborTuple, MaxLen, Uint64
from chain.types.block import BlockHeader
from chain.types.message import Message, SignedMessage
from chain.types.tipset import InvalidTipSet, TipSet, TipSetKey
from node.p2p.chainview import ChainView, IncludedMessages
from node.p2p.host import Libp2pHost
from node.p2p.protocols import BLOCK_MESSAGE_LIMIT, CHAIN_EXCHANGE_PROTOCOL, PeerID
from node.p2p.streamio import (
    StreamFailure,
    TooMuchData,
    close_quietly,
    close_write,
    read_cbor,
    read_frame,
    write_cbor,
)

_log = structlog.get_logger(__name__)

MAX_REQUEST_LENGTH: Final = 900  # lotus MaxRequestLength = policy.ChainFinality
# Most messages one tipset's compacted list may hold: 15 full blocks (lotus CompactedMessagesCBOR).
MAX_TIPSET_MESSAGES: Final = 150_000
MAX_ERROR_MESSAGE: Final = 8192  # cbor-gen's string limit for ErrorMessage
MAX_REQUEST_BYTES: Final = 64 << 10
MAX_RESPONSE_BYTES: Final = (15 * 8) << 20  # lotus maxExchangeMessageSize: 120 MiB
SERVER_RESPONSE_BUDGET: Final = 64 << 20

# Client timing (lotus exchange/protocol.go): 5 s to write the request, then the answer must start
# within 5 s and keep coming at 50 KiB/s; the server has 60 s to write its answer.
OPEN_TIMEOUT: Final = 10.0
WRITE_REQUEST_TIMEOUT: Final = 5.0
READ_RESPONSE_TIMEOUT: Final = 5.0
READ_RESPONSE_MIN_RATE: Final = 50 << 10
READ_REQUEST_TIMEOUT: Final = 10.0
WRITE_RESPONSE_TIMEOUT: Final = 60.0
BAD_PEER_COOLDOWN: Final = 600.0
BUSY_PEER_COOLDOWN: Final = 10.0


class Options(IntEnum):
    HEADERS = 1
    MESSAGES = 2


class Status(IntEnum):
    OK = 0
    PARTIAL = 101
    NOT_FOUND = 201
    GO_AWAY = 202
    INTERNAL_ERROR = 203
    BAD_REQUEST = 204


# -- the wire types (lotus chain/exchange/cbor_gen.go: all tuple-encoded) ----------------------------


class Request(CborTuple):
    head: tuple[CID, ...]
    length: Uint64
    options: Uint64


MessageIndexes = Annotated[tuple[Uint64, ...], MaxLen(BLOCK_MESSAGE_LIMIT)]


class CompactedMessages(CborTuple):
    """A tipset's messages, each once; `*_includes[b]` lists the indexes of block b's messages."""

    bls: Annotated[tuple[Message, ...], MaxLen(MAX_TIPSET_MESSAGES)] = ()
    bls_includes: tuple[MessageIndexes, ...] = ()
    secpk: Annotated[tuple[SignedMessage, ...], MaxLen(MAX_TIPSET_MESSAGES)] = ()
    secpk_includes: tuple[MessageIndexes, ...] = ()


class BSTipSet(CborTuple):
    blocks: tuple[BlockHeader, ...]
    messages: CompactedMessages | None


class Response(CborTuple):
    status: Uint64
    error_message: str
    chain: tuple[BSTipSet, ...]


# -- compaction -------------------------------------------------------------------------------------

Item = TypeVar("Item")


def _compact(
    per_block: Sequence[Sequence[tuple[CID, Item]]],
) -> tuple[tuple[Item, ...], tuple[tuple[int, ...], ...]]:
    """Each distinct item once, by CID in order of first appearance, and for each block the indexes of
    its items (lotus gatherMessages)."""
    seen: dict[CID, int] = {}
    unique: list[Item] = []
    includes = []
    for items in per_block:
        indexes = []
        for cid, item in items:
            index = seen.setdefault(cid, len(unique))
            if index == len(unique):
                unique.append(item)
            indexes.append(index)
        includes.append(tuple(indexes))
    return tuple(unique), tuple(includes)


def compact(per_block: Sequence[IncludedMessages]) -> CompactedMessages:
    """One tipset's messages, block by block in the tipset's order, compacted."""
    bls, bls_includes = _compact([[(m.cid(), m) for m in messages.bls] for messages in per_block])
    secpk, secpk_includes = _compact([[(m.cid(), m) for m in messages.secpk] for messages in per_block])
    return CompactedMessages(bls, bls_includes, secpk, secpk_includes)


class BadResponse(Exception):
    """A peer's answer that breaks the protocol or does not fit the chain it claims to be."""


def expand(blocks: Sequence[BlockHeader], messages: CompactedMessages) -> tuple[IncludedMessages, ...]:
    """Each block's messages from a compacted list; BadResponse if the indexes do not fit the blocks
    (lotus validateCompressedIndices) or the messages are not those the headers commit to."""
    if len(messages.bls_includes) != len(blocks) or len(messages.secpk_includes) != len(blocks):
        raise BadResponse(
            f"message indexes for {len(messages.bls_includes)}/{len(messages.secpk_includes)} blocks,"
            f" the tipset has {len(blocks)}"
        )
    out = []
    for header, bls_idx, secpk_idx in zip(
        blocks, messages.bls_includes, messages.secpk_includes, strict=True
    ):
        if any(i >= len(messages.bls) for i in bls_idx) or any(i >= len(messages.secpk) for i in secpk_idx):
            raise BadResponse(f"a message index of block {header.cid()} is out of range")
        block = IncludedMessages(
            tuple(messages.bls[i] for i in bls_idx), tuple(messages.secpk[i] for i in secpk_idx)
        )
        root = msg_meta_cid([m.cid() for m in block.bls], [m.cid() for m in block.secpk])
        if root != header.messages:
            raise BadResponse(f"the messages sent for block {header.cid()} are not the ones it includes")
        out.append(block)
    return tuple(out)


# -- the server -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredMessages:
    """A tipset's compacted messages as the server holds them: CompactedMessages with each message as
    the bytes its store holds, written out as they are."""

    bls: tuple[bytes, ...]
    bls_includes: tuple[tuple[int, ...], ...]
    secpk: tuple[bytes, ...]
    secpk_includes: tuple[tuple[int, ...], ...]


@dataclass(frozen=True, slots=True)
class ServedTipSet:
    """BSTipSet as the server holds it: the headers (empty unless asked for), the messages (None unless
    asked for)."""

    blocks: tuple[BlockHeader, ...]
    messages: StoredMessages | None


@dataclass(frozen=True, slots=True)
class Answer:
    """A server's Response before it is written: `to_bytes()` gives the bytes of encoding that Response
    whole, built from each header's and message's own bytes (those its store holds, canonical)
    instead of decoding them to encode them again."""

    status: int
    error_message: str = ""
    chain: tuple[ServedTipSet, ...] = ()

    def to_bytes(self) -> bytes:
        out = [dagcbor.array_head(3), dagcbor.encode(self.status), dagcbor.encode(self.error_message)]
        out.append(dagcbor.array_head(len(self.chain)))
        for entry in self.chain:
            out.append(dagcbor.array_head(2))
            out.append(dagcbor.array_head(len(entry.blocks)))
            out.extend(b.to_bytes() for b in entry.blocks)
            stored = entry.messages
            if stored is None:
                out.append(dagcbor.encode(None))
                continue
            out.append(dagcbor.array_head(4))
            out.append(dagcbor.array_head(len(stored.bls)))
            out.extend(stored.bls)
            out.append(dagcbor.encode(stored.bls_includes))
            out.append(dagcbor.array_head(len(stored.secpk)))
            out.extend(stored.secpk)
            out.append(dagcbor.encode(stored.secpk_includes))
        return b"".join(out)


def _error(status: Status, message: str) -> Answer:
    return Answer(int(status), message[:MAX_ERROR_MESSAGE])


def check_request(request: Request) -> Answer | None:
    """The error answer a request deserves, or None if it can be served (lotus validateRequest)."""
    if not request.options & (Options.HEADERS | Options.MESSAGES):
        return _error(Status.BAD_REQUEST, "no options set")
    if request.length > MAX_REQUEST_LENGTH:
        return _error(Status.BAD_REQUEST, f"request length over maximum allowed ({MAX_REQUEST_LENGTH})")
    if request.length == 0:
        return _error(Status.BAD_REQUEST, "invalid request length of zero")
    if not request.head:
        return _error(Status.BAD_REQUEST, "no cids in request")
    return None


def serve(chain: ChainView, request: Request, budget: int = SERVER_RESPONSE_BUDGET) -> Answer:
    """The answer to a request, read from the chain (blocking: call it from a worker thread)."""
    refusal = check_request(request)
    if refusal is not None:
        return refusal
    key = TipSetKey(request.head)
    try:
        tipset = chain.load_tipset(key)
    except LookupError:
        return _error(Status.NOT_FOUND, f"tipset {key} not found")
    headers = bool(request.options & Options.HEADERS)
    messages = bool(request.options & Options.MESSAGES)
    out: list[ServedTipSet] = []
    spent = 0
    while True:
        stored = None
        if messages:
            try:
                stored = _stored_messages(chain, tipset)
            except LookupError:
                if not out:
                    return _error(Status.NOT_FOUND, f"messages of tipset {tipset.key} not found")
                break
        entry = ServedTipSet(tipset.blocks if headers else (), stored)
        spent += sum(len(b.to_bytes()) for b in entry.blocks)
        if stored is not None:
            spent += sum(len(m) for m in stored.bls) + sum(len(m) for m in stored.secpk)
        if out and spent > budget:
            break
        out.append(entry)
        if len(out) >= request.length or tipset.height == 0:
            break
        try:
            tipset = chain.load_tipset(tipset.parents)
        except LookupError:
            break
    status = Status.OK if len(out) >= request.length else Status.PARTIAL
    return Answer(int(status), "", tuple(out))


def _stored_messages(chain: ChainView, tipset: TipSet) -> StoredMessages:
    per_block = [chain.message_blocks(block) for block in tipset.blocks]
    bls, bls_includes = _compact([bls for bls, _ in per_block])
    secpk, secpk_includes = _compact([secpk for _, secpk in per_block])
    return StoredMessages(bls, bls_includes, secpk, secpk_includes)


@dataclass(eq=False, repr=False)
class ChainExchangeServer:
    """Answers chain exchange requests; registers its handler when constructed."""

    host: InitVar[Libp2pHost]
    chain: ChainView
    _: KW_ONLY
    max_concurrent: int = 16
    max_per_peer: int = 2
    budget: int = SERVER_RESPONSE_BUDGET
    _active: dict[PeerID, int] = field(init=False, default_factory=dict)

    def __post_init__(self, host: Libp2pHost) -> None:
        host.set_stream_handler(CHAIN_EXCHANGE_PROTOCOL, self._handle)

    async def _handle(self, stream: INetStream) -> None:
        peer: PeerID = stream.muxed_conn.peer_id
        busy = (
            sum(self._active.values()) >= self.max_concurrent
            or self._active.get(peer, 0) >= self.max_per_peer
        )
        self._active[peer] = self._active.get(peer, 0) + 1
        try:
            response = await self._answer(stream, peer, busy)
            if response is None:
                return
            await write_cbor(stream, response.to_bytes(), timeout=WRITE_RESPONSE_TIMEOUT)
        except StreamFailure as exc:
            _log.info("chainxchg.serve_failed", peer=str(peer), error=str(exc))
        finally:
            self._active[peer] -= 1
            if not self._active[peer]:
                del self._active[peer]
            await close_quietly(stream)

    async def _answer(self, stream: INetStream, peer: PeerID, busy: bool) -> Answer | None:
        try:
            raw = await read_cbor(stream, max_bytes=MAX_REQUEST_BYTES, timeout=READ_REQUEST_TIMEOUT)
            request = Request.from_cbor(raw)
        except DecodeError as exc:
            return _error(Status.BAD_REQUEST, f"undecodable request: {exc}")
        except TooMuchData as exc:
            return _error(Status.BAD_REQUEST, f"request too large: {exc}")
        except StreamFailure as exc:
            _log.info("chainxchg.request_unreadable", peer=str(peer), error=str(exc))
            return None
        if busy:
            return _error(Status.GO_AWAY, "too many requests at once, try later")
        _log.debug("chainxchg.request", peer=str(peer), length=request.length, options=request.options)
        try:
            return await trio.to_thread.run_sync(serve, self.chain, request, self.budget)
        except Exception as exc:  # the chain store failed: the peer did nothing wrong
            _log.exception("chainxchg.internal_error", peer=str(peer))
            return _error(Status.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")


# -- the client -------------------------------------------------------------------------------------


class ChainExchangeError(Exception):
    """No peer gave a usable answer; the message lists what each said."""


@dataclass(frozen=True, slots=True)
class FullBlock:
    header: BlockHeader
    bls_messages: tuple[Message, ...]
    secpk_messages: tuple[SignedMessage, ...]


@dataclass(frozen=True, slots=True)
class FullTipSet:
    blocks: tuple[FullBlock, ...]

    def tipset(self) -> TipSet:
        return TipSet(tuple(b.header for b in self.blocks))


@dataclass(frozen=True, slots=True)
class Segment:
    """A checked answer: tipsets (if headers were asked for) and their messages (if asked for), both
    head first."""

    tipsets: tuple[TipSet, ...]
    messages: tuple[tuple[IncludedMessages, ...], ...]
    status: Status


@dataclass(slots=True)
class _PeerRecord:
    successes: int = 0
    failures: int = 0
    latency: float = 1.0
    avoid_until: float = 0.0


@dataclass
class PeerTracker:
    """Who answered well (lotus bsPeerTracker, simplified): failures first, then average latency."""

    clock: Callable[[], float] = time.monotonic
    records: dict[PeerID, _PeerRecord] = field(default_factory=dict)

    def order(self, peers: Sequence[PeerID]) -> list[PeerID]:
        now = self.clock()
        usable = [p for p in peers if self.records.get(p, _PeerRecord()).avoid_until <= now]
        random.shuffle(usable)  # peers that rank equal take turns
        return sorted(
            usable,
            key=lambda p: (
                self.records.get(p, _PeerRecord()).failures,
                self.records.get(p, _PeerRecord()).latency,
            ),
        )

    def success(self, peer: PeerID, seconds: float) -> None:
        record = self.records.setdefault(peer, _PeerRecord())
        record.successes += 1
        record.failures = max(0, record.failures - 1)
        record.latency = 0.8 * record.latency + 0.2 * seconds

    def failure(self, peer: PeerID, *, avoid_for: float = 0.0) -> None:
        record = self.records.setdefault(peer, _PeerRecord())
        record.failures += 1
        record.avoid_until = max(record.avoid_until, self.clock() + avoid_for)


class ChainExchangeClient:
    def __init__(
        self,
        host: Libp2pHost,
        *,
        penalize: Callable[[PeerID, str], None] | None = None,
        tracker: PeerTracker | None = None,
    ) -> None:
        self.host = host
        self.penalize = penalize
        self.tracker = tracker or PeerTracker()

    def candidates(self) -> list[PeerID]:
        """Connected peers that said (identify) they serve chain exchange, best first."""
        peers = [p for p in self.host.connected_peers() if self.host.supports(p, CHAIN_EXCHANGE_PROTOCOL)]
        return self.tracker.order(peers)

    async def get_blocks(
        self, head: TipSetKey, count: int, *, peers: Sequence[PeerID] | None = None
    ) -> list[TipSet]:
        """count tipsets from head back (head first), in requests of at most 900 (lotus GetBlocks)."""
        out: list[TipSet] = []
        key = head
        while len(out) < count:
            request = Request(key.cids, min(count - len(out), MAX_REQUEST_LENGTH), Options.HEADERS)
            segment = await self.fetch(request, peers=peers)
            out.extend(segment.tipsets)
            last = segment.tipsets[-1]
            if last.height <= 1:  # the genesis is known to everyone on this network
                break
            key = last.parents
        return out

    async def get_full_tipset(self, peer: PeerID, key: TipSetKey) -> FullTipSet:
        """A tipset with its messages, from one peer (lotus GetFullTipSet)."""
        segment = await self.fetch(Request(key.cids, 1, Options.HEADERS | Options.MESSAGES), peers=[peer])
        tipset, messages = segment.tipsets[0], segment.messages[0]
        return FullTipSet(
            tuple(FullBlock(h, m.bls, m.secpk) for h, m in zip(tipset.blocks, messages, strict=True))
        )

    async def get_chain_messages(
        self, tipsets: Sequence[TipSet], *, peers: Sequence[PeerID] | None = None
    ) -> tuple[tuple[IncludedMessages, ...], ...]:
        """The messages of consecutive tipsets (head first), checked against their headers."""
        if not tipsets:
            return ()
        if len(tipsets) > MAX_REQUEST_LENGTH:
            raise ValueError(f"at most {MAX_REQUEST_LENGTH} tipsets per request, got {len(tipsets)}")
        request = Request(tipsets[0].cids, len(tipsets), Options.MESSAGES)
        return (await self.fetch(request, peers=peers, known=tipsets)).messages

    async def fetch(
        self, request: Request, *, peers: Sequence[PeerID] | None = None, known: Sequence[TipSet] = ()
    ) -> Segment:
        """Ask peers in turn until one answers well; `known` are the tipsets a messages-only request
        is about (to check the messages against)."""
        refusal = check_request(request)
        if refusal is not None:
            raise ValueError(f"invalid request: {refusal.error_message}")
        candidates = list(peers) if peers is not None else self.candidates()
        if not candidates:
            raise ChainExchangeError("no peer to ask")
        failures = []
        for peer in candidates:
            started = time.monotonic()
            try:
                response = await self.request_from(peer, request)
            except (StreamFailure, DecodeError) as exc:
                self.tracker.failure(peer)
                failures.append(f"{peer}: {exc}")
                continue
            if response.status in (
                Status.NOT_FOUND,
                Status.GO_AWAY,
                Status.INTERNAL_ERROR,
                Status.BAD_REQUEST,
            ):
                self.tracker.failure(
                    peer, avoid_for=BUSY_PEER_COOLDOWN if response.status == Status.GO_AWAY else 0
                )
                failures.append(f"{peer}: {Status(response.status).name} {response.error_message}")
                continue
            try:
                segment = validate_response(request, response, known)
            except BadResponse as exc:
                self.tracker.failure(peer, avoid_for=BAD_PEER_COOLDOWN)
                failures.append(f"{peer}: {exc}")
                _log.warning("chainxchg.bad_response", peer=str(peer), reason=str(exc))
                if self.penalize is not None:
                    self.penalize(peer, f"chain exchange: {exc}")
                continue
            self.tracker.success(peer, time.monotonic() - started)
            return segment
        raise ChainExchangeError("; ".join(failures))

    async def request_from(self, peer: PeerID, request: Request) -> Response:
        """Send one request and read the answer (unchecked)."""
        stream = await self.host.open_stream(peer, CHAIN_EXCHANGE_PROTOCOL, timeout=OPEN_TIMEOUT)
        try:
            await write_cbor(stream, request.to_bytes(), timeout=WRITE_REQUEST_TIMEOUT)
            await close_write(stream)
            data = await read_frame(
                stream,
                max_bytes=MAX_RESPONSE_BYTES,
                timeout=READ_RESPONSE_TIMEOUT,
                min_rate=READ_RESPONSE_MIN_RATE,
            )
        finally:
            await close_quietly(stream)
        return decode_response(data)


# Where a Response's headers and messages are: [Status, ErrorMessage, [[Blocks, Messages | null]...]]
# with Messages [Bls, BlsIncludes, Secpk, SecpkIncludes].
_RESPONSE_PARTS: Final[dagcbor.Shape] = (
    None,
    None,
    [([dagcbor.PART], ([dagcbor.PART], None, [dagcbor.PART], None))],
)


def decode_response(data: bytes) -> Response:
    """Response.from_bytes(data), each header and message keeping the very bytes it was read from, so
    that its CID is their hash (decode_parts proves them canonical, as strict decoding of the whole
    does) rather than the hash of encoding it again."""
    raw, parts = dagcbor.decode_parts(data, _RESPONSE_PARTS)
    response = Response.from_cbor(raw)
    items: list[CachedCbor] = []
    for entry in response.chain:
        items.extend(entry.blocks)
        if entry.messages is not None:
            items.extend(entry.messages.bls)
            items.extend(entry.messages.secpk)
    if len(items) != len(parts):  # cannot happen while the shape above fits Response's declaration
        raise DecodeError(f"{len(parts)} encodings found for {len(items)} headers and messages")
    for item, part in zip(items, parts, strict=True):
        item.keep_bytes(part)
    return response


def validate_response(request: Request, response: Response, known: Sequence[TipSet] = ()) -> Segment:
    """Check an answer with status ok or partial against the request (lotus processResponse)."""
    if response.status not in (Status.OK, Status.PARTIAL):
        raise BadResponse(f"status {response.status} is not a success")
    chain = response.chain
    if not chain:
        raise BadResponse("no tipsets in a successful response")
    if len(chain) > request.length:
        raise BadResponse(f"{len(chain)} tipsets for a request of {request.length}")
    if len(chain) < request.length and response.status != Status.PARTIAL:
        raise BadResponse(f"{len(chain)} of {request.length} tipsets without status partial")
    tipsets: list[TipSet] = []
    if request.options & Options.HEADERS:
        for i, entry in enumerate(chain):
            try:
                tipsets.append(TipSet(entry.blocks))
            except InvalidTipSet as exc:
                raise BadResponse(f"tipset {i}: {exc}") from None
        if tipsets[0].cids != request.head and set(tipsets[0].cids) != set(request.head):
            raise BadResponse("the first tipset is not the one asked for")
        for i in range(len(tipsets) - 1):
            if not tipsets[i].is_child_of(tipsets[i + 1]):
                raise BadResponse(f"tipset {i + 1} is not the parent of tipset {i}")
    else:
        if len(known) < len(chain):
            raise ValueError(f"{len(known)} tipsets given to check {len(chain)} answers against")
        tipsets = list(known[: len(chain)])
    messages: list[tuple[IncludedMessages, ...]] = []
    if request.options & Options.MESSAGES:
        for i, (entry, tipset) in enumerate(zip(chain, tipsets, strict=True)):
            if entry.messages is None:
                raise BadResponse(f"no messages for tipset {i}")
            try:
                messages.append(expand(tipset.blocks, entry.messages))
            except BadResponse as exc:
                raise BadResponse(f"tipset {i}: {exc}") from None
    return Segment(
        tuple(tipsets) if request.options & Options.HEADERS else (), tuple(messages), Status(response.status)
    )
