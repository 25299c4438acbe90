"""BitField: set algebra against a Python set model, the RLE+ codec's canonical form and rejections."""

from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.encoding.errors import DecodeError
from chain.types.bitfield import MAX_BIT, MAX_ENCODED_SIZE, BitField, NoBitsSet, encode_runs
from tests.chain.hostile import canonical_or_refused

small_sets = st.frozensets(st.integers(0, 300), max_size=120)


def _reference_decode(data: bytes) -> set[int] | None:
    """A bit-at-a-time reading of fvm_ipld_bitfield's rules, independent of the module's string tricks.
    Returns None where the encoding must be rejected."""
    if not data:
        return set()
    if data[-1] == 0:
        return None
    total_bits = len(data) * 8

    def bit(i: int) -> int:
        return (data[i // 8] >> (i % 8)) & 1 if i < total_bits else 0

    def read(pos: int, n: int) -> int:
        return sum(bit(pos + k) << k for k in range(n))

    def more(pos: int) -> bool:
        return any(bit(i) for i in range(pos, total_bits))

    if read(0, 2) != 0:
        return None
    value = bit(2) == 1
    pos, index = 3, 0
    out: set[int] = set()
    while more(pos):
        if bit(pos):
            length, pos = 1, pos + 1
        elif bit(pos + 1):
            length, pos = read(pos + 2, 4), pos + 6
            if length < 2:
                return None
        else:
            pos += 2
            length = 0
            for i in range(10):
                byte = read(pos, 8)
                pos += 8
                length |= (byte & 0x7F) << (7 * i)
                if not byte & 0x80:
                    if (i == 9 and byte > 1) or (byte == 0 and i != 0):
                        return None
                    break
            else:
                return None
            if length < 16:
                return None
        if index + length > (1 << 64) - 1:
            return None
        if value:
            if length > 10_000:
                return None  # keep the model small; such inputs are skipped by the caller
            out.update(range(index, index + length))
        index += length
        value = not value
    return None if value else out


def _model_cut(a: Iterable[int], b: set[int]) -> set[int]:
    return {x - sum(1 for y in b if y < x) for x in a if x not in b}


@settings(max_examples=150, deadline=None)
@given(small_sets)
def test_round_trip_and_queries(bits: frozenset[int]) -> None:
    bf = BitField.from_bits(bits)
    data = bf.to_bytes()
    assert BitField.from_bytes(data) == bf
    assert BitField.from_cbor(bf.to_cbor()) == bf
    assert list(bf) == sorted(bits)
    assert bf.count() == len(bits)
    assert bf.is_empty() == (not bits)
    assert _reference_decode(data) == set(bits)
    for probe in range(0, 305, 7):
        assert (probe in bf) == (probe in bits)
    if bits:
        assert bf.first() == min(bits)
        assert bf.last() == max(bits)
    else:
        assert data == b""
        with pytest.raises(NoBitsSet):
            bf.first()
        with pytest.raises(NoBitsSet):
            bf.last()
    rebuilt: set[int] = set()
    index = 0
    for value, length in bf.runs():
        assert length > 0
        if value:
            rebuilt.update(range(index, index + length))
        index += length
    assert rebuilt == set(bits)
    assert BitField.from_runs(bf.runs()) == bf
    assert encode_runs(bf.runs()) == data
    assert BitField.from_json_runs(bf.to_json_runs()) == bf
    assert BitField(bf.ranges()) == bf


@settings(max_examples=150, deadline=None)
@given(small_sets, small_sets)
def test_set_algebra_matches_python_sets(a: frozenset[int], b: frozenset[int]) -> None:
    x, y = BitField.from_bits(a), BitField.from_bits(b)
    assert set(x | y) == a | b
    assert set(x.union(y, BitField.from_bits({500}))) == a | b | {500}
    assert set(x & y) == a & b
    assert set(x - y) == a - b
    assert set(x.subtract(y)) == a - b
    assert x.issubset(y) == a.issubset(b)
    assert x.isdisjoint(y) == a.isdisjoint(b)
    assert set(x.cut(y)) == _model_cut(a, set(b))
    assert set(x.with_set(7)) == a | {7}
    assert set(x.with_unset(7)) == a - {7}
    assert (x == y) == (a == b)
    if a == b:
        assert hash(x) == hash(y)
    for result in (x | y, x & y, x - y, x.cut(y)):
        assert BitField.from_bytes(result.to_bytes()) == result  # results are normalised


@settings(max_examples=100, deadline=None)
@given(small_sets, st.integers(0, 130), st.integers(0, 130))
def test_slice(bits: frozenset[int], start: int, count: int) -> None:
    ordered = sorted(bits)
    bf = BitField.from_bits(bits)
    if start + count > len(ordered) and count > 0:
        with pytest.raises(ValueError, match="not enough bits"):
            bf.slice(start, count)
    else:
        assert list(bf.slice(start, count)) == ordered[start : start + count]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=24))
def test_decoder_accepts_exactly_the_canonical_encodings(data: bytes) -> None:
    expected = _reference_decode(data)
    bf = canonical_or_refused(BitField.from_bytes, BitField.to_bytes, data)
    if bf is None:
        assert expected is None
    elif expected is not None:
        assert set(bf) == expected
    else:
        assert bf.count() > 10_000  # only the model's size cap can disagree


def test_dense_large_sets_stay_cheap() -> None:
    huge = BitField.from_range(0, 10**15)
    holes = BitField.from_bits(range(0, 10**15, 10**13))
    combined = huge - holes
    assert combined.count() == 10**15 - 100
    assert len(combined.ranges()) == 100
    assert (10**13 + 1) in combined and 10**13 not in combined
    assert combined.cut(holes).count() == 10**15 - 100
    assert combined.cut(holes) == BitField.from_range(0, 10**15 - 100)
    assert BitField.from_bytes(combined.to_bytes()) == combined
    assert (combined | holes) == huge
    # 11 holes (0, 10^13, ..., 10^14) lie at or below the 10^14-th kept bit.
    assert combined.slice(10**14, 5) == BitField.from_range(10**14 + 11, 10**14 + 16)
    top = BitField.from_range(MAX_BIT - 2, MAX_BIT + 1)
    assert top.last() == MAX_BIT
    assert BitField.from_bytes(top.to_bytes()) == top


def test_bounds_and_bad_input() -> None:
    with pytest.raises(ValueError):
        BitField.from_bits([MAX_BIT + 1])
    with pytest.raises(ValueError):
        BitField.from_bits([-1])
    with pytest.raises(ValueError):
        BitField([(5, 3)])
    with pytest.raises(ValueError):
        BitField.from_range(0, MAX_BIT + 2)
    with pytest.raises(TypeError):
        BitField([(0.5, 3)])  # type: ignore[list-item]
    with pytest.raises(DecodeError):
        BitField.from_cbor("not bytes")
    with pytest.raises(DecodeError, match="exceeds"):
        BitField.from_cbor(b"\x01" * (MAX_ENCODED_SIZE + 1))
    with pytest.raises(DecodeError):
        BitField.from_bytes(b"\x04")  # header says the first run is ones, then nothing follows
    with pytest.raises(ValueError, match="positive"):
        encode_runs([(True, 0), (False, 3)])
    assert encode_runs([(False, 10)]) == b""
    assert BitField.from_json_runs([]) == BitField()
    assert BitField.from_json_runs([0]) == BitField()
    with pytest.raises(DecodeError):
        BitField.from_json_runs([0, 0])
    with pytest.raises(DecodeError):
        BitField.from_json_runs([3, -1])
    assert BitField().to_json_runs() == [0]
    assert BitField.from_bits([0, 1]).to_json_runs() == [0, 2]


def test_encoding_size_limit() -> None:
    sparse = BitField((2 * i, 2 * i + 1) for i in range(140_000))
    assert len(sparse.to_bytes()) > MAX_ENCODED_SIZE
    with pytest.raises(ValueError, match="exceeds"):
        sparse.to_cbor()
    assert sparse.to_list(140_000)[:3] == [0, 2, 4]
    with pytest.raises(ValueError, match="limit"):
        sparse.to_list(10)


def test_normalising_constructor() -> None:
    bf = BitField([(10, 20), (0, 5), (5, 7), (15, 25), (30, 30)])
    assert bf.ranges() == ((0, 7), (10, 25))
    assert repr(bf) == "BitField({0..6, 10..24})"
    assert BitField.from_bits([3, 1, 2, 2]).ranges() == ((1, 4),)
