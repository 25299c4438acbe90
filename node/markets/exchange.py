"""One CBOR request and its CBOR answer on a libp2p stream: the shape of the markets' small protocols
(storage deals and status, the storage ask, the retrieval query), each declared once for both sides.

    QUERY = CborExchange(QUERY_PROTOCOL, Query.from_cbor, QueryResponse.from_cbor, 4 << 10, 64 << 10)
    QUERY.serve(host, answer, event="retrieval.query")     # the provider: answer(request, peer)
    response = await QUERY.ask(host, peer, query, what="the query", error=QueryError)

The provider reads the request (bounded in bytes and time), writes its answer and closes the stream; a
request it cannot read resets the stream. The client opens the stream, writes, reads the answer within
its timeout and closes; any failure is the caller's own error type, with a message saying what was
asked of whom.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

import structlog
import trio
from libp2p.abc import INetStream
from libp2p.custom_types import TProtocol

from chain.encoding.errors import DecodeError
from node.p2p.host import Libp2pHost
from node.p2p.protocols import PeerID
from node.p2p.streamio import StreamFailure, close_quietly, read_cbor, reset_quietly, write_cbor

_log = structlog.get_logger(__name__)
Q = TypeVar("Q")
R = TypeVar("R")


class Message(Protocol):
    def to_bytes(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class CborExchange(Generic[Q, R]):
    """A protocol of one request and one answer: its ID, how each side's message reads, how large each
    may be, and how long a side waits by default."""

    protocol: TProtocol
    decode_request: Callable[[Any], Q]
    decode_response: Callable[[Any], R]
    max_request: int
    max_response: int
    timeout: float = 10.0

    def serve(self, host: Libp2pHost, answer: Callable[[Q, str], Awaitable[Message]], *, event: str) -> None:
        """Answer the protocol on host with `answer(request, peer)`; `event` names it in the logs."""
        host.set_stream_handler(self.protocol, partial(self._answer, answer, event))

    async def _answer(
        self, answer: Callable[[Q, str], Awaitable[Message]], event: str, stream: INetStream
    ) -> None:
        peer = str(stream.muxed_conn.peer_id)
        try:
            request = self.decode_request(
                await read_cbor(stream, max_bytes=self.max_request, timeout=self.timeout)
            )
        except (StreamFailure, DecodeError) as exc:
            _log.info(f"{event}_unreadable", peer=peer, error=str(exc))
            await reset_quietly(stream)
            return
        response = await answer(request, peer)
        try:
            await write_cbor(stream, response.to_bytes(), timeout=self.timeout)
        except StreamFailure as exc:
            _log.info(f"{event}_answer_failed", peer=peer, error=str(exc))
        finally:
            await close_quietly(stream)

    async def ask(
        self,
        host: Libp2pHost,
        peer: PeerID,
        request: Message,
        *,
        what: str,
        error: Callable[[str], Exception],
        timeout: float | None = None,
        dial: bool = True,
    ) -> R:
        """Write `request` on a new stream to peer and read the answer; `error(message)` if the stream
        cannot be had or the answer is late or unreadable, the message naming `what` was asked of whom.
        Without `dial`, only over an existing connection."""
        wait = self.timeout if timeout is None else timeout
        try:
            stream = await host.open_stream(peer, self.protocol, timeout=wait, dial=dial)
            try:
                with trio.fail_after(wait):
                    await write_cbor(stream, request.to_bytes(), timeout=wait)
                    return self.decode_response(
                        await read_cbor(stream, max_bytes=self.max_response, timeout=wait)
                    )
            finally:
                await close_quietly(stream)
        except trio.TooSlowError:
            raise error(f"{peer} did not answer {what} within {wait} s") from None
        except (StreamFailure, DecodeError) as exc:
            raise error(f"{what} to {peer} failed: {exc}") from None
