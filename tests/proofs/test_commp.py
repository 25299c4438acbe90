"""CommP (streaming, threaded, both hashing paths), sizes, zero commitments and CommD from pieces."""

import io
import itertools
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proofs import commp, fr32, merkle


def reference_commp(data: bytes) -> bytes:
    """CommP straight from its definition: zero-fill, fr32-pad, hash level by level (pure Python)."""
    padded_size = commp.padded_piece_size(len(data))
    filled = data + bytes(fr32.unpadded_size(padded_size) - len(data))
    level = fr32.pad_python(filled)
    while len(level) > 32:
        level = merkle.hash_level_python(level)
    return level


# sizes -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "padded"),
    [(0, 128), (1, 128), (127, 128), (128, 256), (254, 256), (255, 512), (1016, 1024), (1017, 2048)],
)
def test_padded_piece_size(payload: int, padded: int) -> None:
    assert commp.padded_piece_size(payload) == padded


def test_padded_piece_size_of_large_payloads() -> None:
    assert commp.padded_piece_size((32 << 30) // 128 * 127) == 32 << 30
    assert commp.padded_piece_size((32 << 30) // 128 * 127 + 1) == 64 << 30
    with pytest.raises(commp.PieceError, match="negative"):
        commp.padded_piece_size(-1)


@pytest.mark.parametrize("bad", [0, 64, 100, 129, 384, -128])
def test_check_piece_size_rejects(bad: int) -> None:
    with pytest.raises(commp.PieceError, match="power of two >= 128"):
        commp.check_piece_size(bad)


def test_heights_and_unpadded_sizes() -> None:
    assert commp.height_of(128) == 2
    assert commp.height_of(2048) == 6
    assert commp.height_of(32 << 30) == 30
    assert commp.unpadded_piece_size(2048) == 2032


# zero commitments --------------------------------------------------------------------------------------


def test_zero_commitments_are_hashes_of_the_level_below() -> None:
    assert commp.zero_commitment(0) == bytes(32)
    for height in range(1, 40):
        below = commp.zero_commitment(height - 1)
        assert commp.zero_commitment(height) == merkle.hash_node(below, below)
    with pytest.raises(commp.PieceError):
        commp.zero_commitment(commp.MAX_HEIGHT + 1)


@pytest.mark.parametrize("padded", [128, 256, 1024, 8192])
def test_zero_piece_commitment_matches_zero_data(padded: int) -> None:
    zeros = bytes(fr32.unpadded_size(padded))
    assert commp.zero_piece_commitment(padded) == reference_commp(zeros)
    assert commp.commp_of_bytes(zeros).commitment == commp.zero_piece_commitment(padded)


def test_zero_pad_commitment() -> None:
    data = os.urandom(200)
    small = commp.commp_of_bytes(data)
    assert small.padded_size == 256
    for target in (256, 512, 4096):
        grown = commp.zero_pad_commitment(small.commitment, 256, target)
        assert grown == reference_commp(data + bytes(fr32.unpadded_size(target) - 200))
    with pytest.raises(commp.PieceError, match="down to"):
        commp.zero_pad_commitment(small.commitment, 256, 128)
    with pytest.raises(commp.PieceError, match="32 bytes"):
        commp.zero_pad_commitment(b"short", 256, 512)


# streaming CommP ---------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=6),
    chunk_blocks=st.sampled_from([1, 2, 4, 8]),
    threads=st.sampled_from([1, 2]),
    native=st.sampled_from([None, False]),
)
def test_streaming_matches_the_definition(
    data: bytes, cuts: list[int], chunk_blocks: int, threads: int, native: bool | None
) -> None:
    expected = reference_commp(data)
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    with commp.CommPWriter(threads=threads, native=native, chunk_size=127 * chunk_blocks) as writer:
        for start, end in itertools.pairwise(bounds):
            # A bytearray input must be copied before it goes to a worker thread: reuse it to check.
            scratch = bytearray(data[start:end])
            writer.write(scratch)
            scratch[:] = bytes(len(scratch))
        result = writer.finish()
    assert result.commitment == expected
    assert result.payload_size == len(data)
    assert result.padded_size == commp.padded_piece_size(len(data))


@pytest.mark.parametrize("delta", [-1, 0, 1, 127, 3 * 127 * 8])
def test_chunk_boundaries(delta: int) -> None:
    chunk = 127 * 8
    data = random.Random(delta).randbytes(4 * chunk + delta)
    expected = reference_commp(data)
    for threads in (1, 2):
        with commp.CommPWriter(threads=threads, chunk_size=chunk) as writer:
            writer.write(data)
            assert writer.finish().commitment == expected


def test_default_chunk_size_with_a_tail_on_two_threads() -> None:
    data = random.Random(7).randbytes(2 * commp.CHUNK_SIZE + 5000)
    with commp.CommPWriter(chunk_size=127 * 1024) as small_chunks:
        small_chunks.write(data)
        expected = small_chunks.finish()
    assert commp.commp_of_stream(io.BytesIO(data), threads=2) == expected
    assert expected.padded_size == 16 << 20


def test_native_and_python_paths_agree() -> None:
    if not commp.native_available():
        pytest.skip("proofs._native not built")
    data = os.urandom(127 * 64 + 33)
    assert commp.commp_of_bytes(data, native=True) == commp.commp_of_bytes(data, native=False)
    aligned = os.urandom(127 * 256)
    assert commp.subtree_root(aligned) == commp.subtree_root_python(aligned)


def test_subtree_root_needs_127_times_a_power_of_two() -> None:
    for bad in (0, 126, 127 * 3, 127 * 6):
        for fn in (commp.subtree_root, commp.subtree_root_python):
            with pytest.raises(commp.PieceError, match="127 \\* 2\\^k"):
                fn(bytes(bad))


def test_stream_with_declared_size_reads_only_that_much() -> None:
    data = os.urandom(5000)
    stream = io.BytesIO(data)
    seen: list[int] = []
    result = commp.commp_of_stream(stream, size=3000, progress=seen.append)
    assert result.commitment == reference_commp(data[:3000])
    assert stream.tell() == 3000
    assert sum(seen) == 3000
    with pytest.raises(commp.PieceError, match="ended after 5000 of the 6000 bytes"):
        commp.commp_of_stream(io.BytesIO(data), size=6000)
    with pytest.raises(commp.PieceError, match="negative"):
        commp.commp_of_stream(io.BytesIO(data), size=-1)


def test_commp_of_chunks() -> None:
    parts = [os.urandom(n) for n in (10, 500, 0, 3000)]
    assert commp.commp_of_chunks(iter(parts), threads=2).commitment == reference_commp(b"".join(parts))


def test_writer_lifecycle() -> None:
    writer = commp.CommPWriter(threads=2)
    writer.write(b"abc")
    first = writer.finish()
    assert writer.finish() is first
    with pytest.raises(ValueError, match="after finish"):
        writer.write(b"more")
    with pytest.raises(ValueError, match="threads"):
        commp.CommPWriter(threads=0)
    with pytest.raises(commp.PieceError, match="chunk size"):
        commp.CommPWriter(chunk_size=127 * 3)


def test_writer_asks_for_the_extension_when_native_is_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commp, "_native_subtree_root", None)
    assert not commp.native_available()
    with pytest.raises(RuntimeError, match="make ext"):
        commp.CommPWriter(native=True)
    # Without the extension the default path is the pure-Python one and still right.
    data = os.urandom(1000)
    assert commp.commp_of_bytes(data).commitment == reference_commp(data)
    assert commp.subtree_root(bytes(127)) == commp.zero_commitment(2)


def test_piece_commitment_fields() -> None:
    result = commp.commp_of_bytes(bytes(1000))
    assert (result.padded_size, result.unpadded_size, result.padding, result.height) == (1024, 1016, 16, 5)
    assert result.piece_info() == commp.PieceInfo(1024, result.commitment)


# CommD from pieces -------------------------------------------------------------------------------------


def test_place_pieces_aligns_each_piece_to_its_size() -> None:
    sizes = [128, 512, 256, 128, 1024]
    pieces = [commp.PieceInfo(s, bytes([i]) * 32) for i, s in enumerate(sizes)]
    placed = commp.place_pieces(pieces, 4096)
    assert [p.offset for p in placed] == [0, 512, 1024, 1280, 2048]
    with pytest.raises(commp.PieceError, match=r"piece 4 \(1024 bytes\) does not fit"):
        commp.place_pieces(pieces, 2048)


def test_piece_info_validates() -> None:
    with pytest.raises(commp.PieceError):
        commp.PieceInfo(100, bytes(32))
    with pytest.raises(commp.PieceError):
        commp.PieceInfo(128, bytes(31))


def test_comm_d_of_empty_and_full_sectors() -> None:
    assert commp.comm_d([], 2048) == commp.zero_piece_commitment(2048)
    full = commp.commp_of_bytes(os.urandom(2032))
    assert commp.comm_d([full.piece_info()], 2048) == full.commitment
    with pytest.raises(commp.PieceError):
        commp.comm_d([], 1000)


def _sector_bytes(payloads: list[bytes], sector_size: int) -> tuple[list[commp.PieceInfo], bytes]:
    """Pieces of the payloads, and the fr32-padded sector image the layout describes."""
    pieces = [commp.commp_of_bytes(p).piece_info() for p in payloads]
    image = bytearray(sector_size)
    for placed, data in zip(commp.place_pieces(pieces, sector_size), payloads, strict=True):
        filled = data + bytes(fr32.unpadded_size(placed.piece.padded_size) - len(data))
        image[placed.offset : placed.end] = fr32.pad(filled)
    return pieces, bytes(image)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=1100), min_size=0, max_size=6), st.integers(0, 2**32))
def test_comm_d_equals_the_root_over_the_sector_image(sizes: list[int], seed: int) -> None:
    rnd = random.Random(seed)
    payloads = [rnd.randbytes(n) for n in sizes]
    sector_size = 8192
    total = 0
    for n in sizes:
        size = commp.padded_piece_size(n)
        total = -(-total // size) * size + size
    if total > sector_size:
        with pytest.raises(commp.PieceError, match="does not fit"):
            commp.place_pieces([commp.PieceInfo(commp.padded_piece_size(n), bytes(32)) for n in sizes], 8192)
        return
    pieces, image = _sector_bytes(payloads, sector_size)
    assert commp.comm_d(pieces, sector_size) == merkle.root_of(image)


def test_layout_commitment_rejects_ranges_inside_a_piece() -> None:
    pieces = [commp.PieceInfo(1024, bytes([1]) * 32)]
    placed = commp.place_pieces(pieces, 2048)
    assert commp.layout_commitment(placed, 0, 1024) == bytes([1]) * 32
    assert commp.layout_commitment(placed, 1024, 1024) == commp.zero_piece_commitment(1024)
    with pytest.raises(commp.PieceError, match="inside a piece"):
        commp.layout_commitment(placed, 512, 512)
    with pytest.raises(commp.PieceError, match="inside a piece"):
        commp.layout_commitment(placed, 0, 512)
    with pytest.raises(commp.PieceError, match="multiple of its size"):
        commp.layout_commitment(placed, 100, 512)
