"""`/fil/hello/1.0.0` as Lotus speaks it (lotus node/hello/hello.go).

Once a connection is identified and the peer speaks hello, we say hello (both sides do, so each peer
learns the other's head): write `HelloMessage [HeaviestTipSet [cid], HeaviestTipSetHeight,
HeaviestTipSetWeight, GenesisHash]`, close our write side, read the `LatencyMessage [TArrival,
TSent]` (nanoseconds since the epoch) and keep the round trip and clock offset.

The other side reads the hello (10 s, bounded bytes), disconnects a peer whose genesis differs or
whose hello cannot be read, otherwise answers the latency message and hands the announced head to the
`HelloSink` (the syncer fetches it by chain exchange).
"""

import time
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Final

import structlog
import trio
from libp2p.abc import INetStream

from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.schema import BigInt, CborTuple, ChainEpoch, Int64
from chain.types.tipset import TipSetKey
from node.p2p.chainview import ChainView
from node.p2p.host import Libp2pHost
from node.p2p.protocols import HELLO_PROTOCOL, PeerID
from node.p2p.streamio import StreamFailure, close_quietly, close_write, read_cbor, reset_quietly, write_cbor

if TYPE_CHECKING:
    from trio_typing import TaskStatus  # trio-stubs (installed with trio-typing) shadow trio's own types

_log = structlog.get_logger(__name__)

STREAM_TIMEOUT: Final = 10.0  # lotus streamDeadline
MAX_HELLO_BYTES: Final = 64 << 10
MAX_LATENCY_BYTES: Final = 64
# A clock further off than this is worth a log line (lotus logs offsets beyond 5 s).
CLOCK_OFFSET_WARNING_NS: Final = 5_000_000_000


class HelloMessage(CborTuple):
    heaviest_tip_set: tuple[CID, ...]
    heaviest_tip_set_height: ChainEpoch
    heaviest_tip_set_weight: BigInt
    genesis_hash: CID

    def head(self) -> TipSetKey:
        return TipSetKey(self.heaviest_tip_set)


class LatencyMessage(CborTuple):
    t_arrival: Int64
    t_sent: Int64


HelloSink = Callable[[PeerID, HelloMessage], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Latency:
    """What one hello taught us about a peer: the round trip and how far its clock is from ours."""

    round_trip_ns: int
    clock_offset_ns: int | None  # None when the peer did not say when it received and sent


@dataclass(eq=False, repr=False)
class HelloService:
    host: Libp2pHost
    chain: ChainView
    on_hello: HelloSink | None = None
    _: KW_ONLY
    timeout: float = STREAM_TIMEOUT
    clock_ns: Callable[[], int] = time.time_ns
    latency: dict[PeerID, Latency] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.host.set_stream_handler(HELLO_PROTOCOL, self._handle)

    async def run(self, *, task_status: "TaskStatus[None]" = trio.TASK_STATUS_IGNORED) -> None:
        """Say hello to every identified peer that speaks hello (as lotus RunHello)."""
        identified = self.host.subscribe_identified()
        async with trio.open_nursery() as nursery:
            task_status.started()
            async for peer in identified:
                if self.host.supports(peer, HELLO_PROTOCOL):
                    nursery.start_soon(self._greet, peer)

    async def _greet(self, peer: PeerID) -> None:
        try:
            await self.say_hello(peer)
        except (StreamFailure, DecodeError) as exc:
            _log.info("hello.failed", peer=str(peer), error=str(exc))

    def our_hello(self) -> HelloMessage:
        head = self.chain.head()
        return HelloMessage(head.cids, head.height, self.chain.head_weight(), self.chain.genesis().cid())

    async def say_hello(self, peer: PeerID) -> Latency:
        """Send our hello and read the latency answer; StreamFailure or DecodeError if that fails."""
        hello = self.our_hello()
        stream = await self.host.open_stream(peer, HELLO_PROTOCOL, timeout=self.timeout)
        try:
            t0 = self.clock_ns()
            await write_cbor(stream, hello.to_bytes(), timeout=self.timeout)
            await close_write(stream)
            raw = await read_cbor(stream, max_bytes=MAX_LATENCY_BYTES, timeout=self.timeout)
            answer = LatencyMessage.from_cbor(raw)
            t3 = self.clock_ns()
        finally:
            await close_quietly(stream)
        offset = None
        if answer.t_arrival and answer.t_sent:
            offset = ((t0 - answer.t_arrival) + (t3 - answer.t_sent)) // 2
            if abs(offset) > CLOCK_OFFSET_WARNING_NS:
                _log.info("hello.clock_offset", peer=str(peer), offset_s=offset / 1e9)
        latency = Latency(t3 - t0, offset)
        self.latency[peer] = latency
        return latency

    async def _handle(self, stream: INetStream) -> None:
        peer: PeerID = stream.muxed_conn.peer_id
        try:
            raw = await read_cbor(stream, max_bytes=MAX_HELLO_BYTES, timeout=self.timeout)
            hello = HelloMessage.from_cbor(raw)
        except (StreamFailure, DecodeError) as exc:
            _log.info("hello.unreadable", peer=str(peer), error=str(exc))
            await reset_quietly(stream)
            self.host.hang_up(peer)
            return
        arrived = self.clock_ns()
        genesis = self.chain.genesis().cid()
        if hello.genesis_hash != genesis:
            _log.info(
                "hello.other_genesis", peer=str(peer), theirs=str(hello.genesis_hash), ours=str(genesis)
            )
            await reset_quietly(stream)
            self.host.hang_up(peer)
            return
        try:
            answer = LatencyMessage(arrived, self.clock_ns())
            await write_cbor(stream, answer.to_bytes(), timeout=self.timeout)
        except StreamFailure as exc:
            _log.debug("hello.latency_not_sent", peer=str(peer), error=str(exc))
        finally:
            await close_quietly(stream)
        _log.debug("hello.received", peer=str(peer), height=hello.heaviest_tip_set_height)
        if self.on_hello is not None and hello.heaviest_tip_set:
            try:
                await self.on_hello(peer, hello)
            except Exception:  # the sink's failure is the node's, not the peer's
                _log.exception("hello.sink_failed", peer=str(peer))
