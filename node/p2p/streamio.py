"""One DAG-CBOR value per direction of a libp2p stream, as Lotus's cborutil.ReadCborRPC/WriteCborRPC.

Hello and chain exchange send a bare CBOR value, no length prefix: the reader knows the value is
complete when its CBOR structure is (`cbor_item_end`), or when the writer closes its side. Every read is
bounded in bytes and in time; a slow peer gets `timeout` plus one second per `min_rate` bytes received
(Lotus's chain exchange client reads at no less than 50 KiB/s).
"""

import contextlib
import math
from typing import Any, Final

import trio
from libp2p.abc import INetStream
from libp2p.io.exceptions import IOException

from chain.encoding import dagcbor
from chain.encoding.errors import DecodeError

# The most one read takes from a stream: everything buffered, up to several yamux frames (node/p2p/host.py
# writes frames of up to 256 KiB), since each read costs a window update to the peer.
_CHUNK: Final = 1 << 20


class StreamFailure(Exception):
    """The stream broke, timed out, or carried more than allowed; the message says which."""


class TooMuchData(StreamFailure):
    """The peer sent more bytes than the value may take."""


class FrameScan:
    """Finds where the first CBOR item of a growing buffer ends, reading only the framing (heads and
    lengths; dagcbor.decode checks the content afterwards). Each call resumes where the previous one
    stopped, so a value arriving in many chunks is scanned once, not once per chunk. Raises
    DecodeError for framing DAG-CBOR never uses (indefinite lengths, reserved values, nesting past
    max_depth)."""

    __slots__ = ("_max_depth", "_pending", "_pos", "_stack")

    def __init__(self, max_depth: int = dagcbor.MAX_DEPTH) -> None:
        self._max_depth = max_depth
        self._pos = 0  # where the next item's head starts (past the buffer: inside a string's bytes)
        self._pending = 1  # items still to read at the current nesting level
        self._stack: list[int] = []

    def end(self, buf: bytes | bytearray) -> int | None:
        """The length of the first complete CBOR item in buf (the same buffer, grown since the last
        call), or None while it is incomplete."""
        n = len(buf)
        pos, pending, stack = self._pos, self._pending, self._stack
        try:
            while True:
                if pending == 0:
                    if not stack:
                        return pos if pos <= n else None
                    pending = stack.pop()
                    continue
                if pos >= n:
                    return None
                first = buf[pos]
                major, info = first >> 5, first & 0x1F
                at = pos + 1
                if info < 24:
                    arg = info
                elif info <= 27:
                    size = 1 << (info - 24)
                    if at + size > n:
                        return None  # the head is incomplete: read it again, whole, next time
                    arg = int.from_bytes(buf[at : at + size], "big")
                    at += size
                else:
                    raise DecodeError(f"indefinite-length or reserved CBOR item at offset {pos}")
                pos = at
                pending -= 1
                if major == 2 or major == 3:
                    pos += arg
                elif major == 4 or major == 5:
                    count = arg if major == 4 else 2 * arg
                    if count:
                        if len(stack) >= self._max_depth:
                            raise DecodeError(f"CBOR nesting deeper than {self._max_depth}")
                        stack.append(pending)
                        pending = count
                elif major == 6:
                    pending += 1  # a tag wraps the next item
        finally:
            self._pos, self._pending = pos, pending


def cbor_item_end(buf: bytes | bytearray, max_depth: int = dagcbor.MAX_DEPTH) -> int | None:
    """The length of the first complete CBOR item in buf, or None while it is incomplete (FrameScan,
    from the start)."""
    return FrameScan(max_depth).end(buf)


async def write_cbor(stream: INetStream, data: bytes, *, timeout: float) -> None:
    """Write an encoded value within timeout seconds."""
    with trio.move_on_after(timeout) as scope:
        try:
            await stream.write(data)
        except IOException as exc:
            raise StreamFailure(f"writing failed: {exc or type(exc).__name__}") from None
    if scope.cancelled_caught:
        raise StreamFailure(f"writing {len(data)} bytes took longer than {timeout} s")


async def read_frame(
    stream: INetStream, *, max_bytes: int, timeout: float, min_rate: float = math.inf
) -> bytes:
    """Read the bytes of one CBOR value, framing checked only (decode them strictly: read_cbor does);
    StreamFailure if the stream breaks, is too slow or sends too much, DecodeError if the bytes are
    not one CBOR value."""
    buf = bytearray()
    scan = FrameScan()
    start = trio.current_time()
    end: int | None = None
    with trio.CancelScope(deadline=start + timeout) as scope:
        while end is None:
            try:
                chunk = await stream.read(_CHUNK)
            except EOFError:
                break
            except IOException as exc:
                raise StreamFailure(f"reading failed: {exc or type(exc).__name__}") from None
            if not chunk:
                break
            buf += chunk
            if len(buf) > max_bytes:
                raise TooMuchData(f"peer sent more than {max_bytes} bytes")
            end = scan.end(buf)
            if min_rate != math.inf:
                scope.deadline = start + timeout + len(buf) / min_rate
    if scope.cancelled_caught:
        raise StreamFailure(f"no complete value within the deadline ({len(buf)} bytes read)")
    if end is None:
        end = scan.end(buf)
        if end is None:
            raise DecodeError(f"stream ended inside a CBOR value ({len(buf)} bytes read)")
    if end != len(buf):
        raise DecodeError(f"{len(buf) - end} bytes after the CBOR value")
    return bytes(buf)


async def read_cbor(stream: INetStream, *, max_bytes: int, timeout: float, min_rate: float = math.inf) -> Any:
    """Read one DAG-CBOR value; StreamFailure if the stream breaks, is too slow or sends too much,
    DecodeError if the bytes are not exactly one canonical DAG-CBOR value."""
    frame = await read_frame(stream, max_bytes=max_bytes, timeout=timeout, min_rate=min_rate)
    return dagcbor.decode(frame)


async def close_write(stream: INetStream) -> None:
    """Close our side (yamux FIN): the peer reads to the end, we can still read its answer."""
    try:
        await stream.close_write()  # type: ignore[attr-defined]
    except Exception as exc:  # the peer may already have gone
        raise StreamFailure(f"closing our side failed: {exc or type(exc).__name__}") from None


async def close_quietly(stream: INetStream) -> None:
    with contextlib.suppress(Exception):  # closing a stream the peer already reset
        await stream.close()


async def reset_quietly(stream: INetStream) -> None:
    with contextlib.suppress(Exception):  # resetting a stream that is already gone
        await stream.reset()
