"""One CBOR value per stream direction: framing, size and time limits, strict decoding."""

from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from libp2p.network.stream.exceptions import StreamEOF

from chain.encoding import dagcbor
from chain.encoding.errors import DecodeError
from node.p2p.streamio import FrameScan, StreamFailure, TooMuchData, cbor_item_end, read_cbor
from tests.chain.type_strategies import dag_cbor_values


@given(dag_cbor_values, st.binary(max_size=8))
def test_the_end_of_a_value_is_found_exactly(value: Any, tail: bytes) -> None:
    data = dagcbor.encode(value)
    assert cbor_item_end(data + tail) == len(data)
    for cut in range(len(data)):
        assert cbor_item_end(data[:cut]) is None


@given(dag_cbor_values, st.binary(max_size=8), st.lists(st.integers(1, 40), max_size=12))
def test_the_end_is_found_the_same_when_the_value_comes_in_chunks(
    value: Any, tail: bytes, sizes: list[int]
) -> None:
    """FrameScan resumes where it stopped (inside a head, a string, nested arrays): scanning a growing
    buffer finds the end at the chunk that completes the value, and only then."""
    data = dagcbor.encode(value) + tail
    scan, buf = FrameScan(), bytearray()
    for size in [*sizes, len(data)]:
        buf += data[len(buf) : len(buf) + size]
        end = scan.end(buf)
        complete = len(buf) >= len(data) - len(tail)
        assert end == (len(data) - len(tail) if complete else None)
        if complete:
            break


def test_framing_refuses_what_dag_cbor_never_uses() -> None:
    with pytest.raises(DecodeError, match="indefinite"):
        cbor_item_end(b"\x9f\x01\xff")
    with pytest.raises(DecodeError, match="deeper"):
        cbor_item_end(b"\x81" * 100 + b"\x00")


class ChunkStream:
    """A stream that yields its chunks, then ends (or stalls, with `stall`)."""

    def __init__(self, chunks: list[bytes], *, stall: bool = False) -> None:
        self.chunks = list(chunks)
        self.stall = stall

    async def read(self, n: int | None = None) -> bytes:
        if self.chunks:
            return self.chunks.pop(0)
        if self.stall:
            await trio.sleep_forever()
        raise StreamEOF()


async def test_reads_until_the_value_is_complete_or_the_writer_closes() -> None:
    value = [b"\x00" * 100, "x", [1, 2, {"a": None}]]
    data = dagcbor.encode(value)
    # Complete in the middle of a stalled stream: no need to wait for the end.
    chunks = [data[:7], data[7:50], data[50:]]
    assert await read_cbor(ChunkStream(chunks, stall=True), max_bytes=1000, timeout=5) == value  # type: ignore[arg-type]
    assert await read_cbor(ChunkStream([data]), max_bytes=1000, timeout=5) == value  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("chunks", "error", "says"),
    [
        ([b"\x82\x01"], DecodeError, "stream ended inside"),
        ([], DecodeError, "0 bytes read"),
        ([dagcbor.encode([1]) + b"\x00"], DecodeError, "1 bytes after"),
        ([b"\xa2\x61b\x01\x61a\x02"], DecodeError, "order"),  # keys out of order: not canonical
        ([bytes(600)], TooMuchData, "more than 500"),
    ],
)
async def test_bad_input_is_refused(chunks: list[bytes], error: type[Exception], says: str) -> None:
    with pytest.raises(error, match=says):
        await read_cbor(ChunkStream(chunks), max_bytes=500, timeout=5)  # type: ignore[arg-type]


async def test_slow_peers_get_time_in_proportion_to_what_they_send(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(StreamFailure, match="deadline"):
        await read_cbor(ChunkStream([b"\x82"], stall=True), max_bytes=500, timeout=0.2)  # type: ignore[arg-type]
    # 0.2 s, plus 0.3 s for the 300 bytes received at 1000 bytes a second.
    big = dagcbor.encode(bytes(300))
    start = trio.current_time()
    with pytest.raises(StreamFailure, match="deadline"):
        await read_cbor(ChunkStream([big[:-1]], stall=True), max_bytes=1000, timeout=0.2, min_rate=1000)  # type: ignore[arg-type]
    assert trio.current_time() - start == pytest.approx(0.2 + len(big[:-1]) / 1000)
