"""DAG-CBOR properties: round trip, canonical form, and rejection of every non-canonical variant.

Each rejection test builds a non-canonical item, embeds it among canonical neighbours (inside an array
or as a map value) and checks that decode raises a DecodeError whose message names the problem.
"""

import re
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chain.encoding import dagcbor
from chain.encoding.cid import CID, DAG_CBOR, DAG_PB, FIL_COMMITMENT_SEALED, RAW
from chain.encoding.errors import DecodeError
from chain.encoding.multihash import (
    BLAKE2B_256,
    IDENTITY,
    SHA2_256,
    SHA2_256_TRUNC254_PADDED,
    Multihash,
)

_INT_EDGES = [
    0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1,
    -1, -24, -25, -256, -257, -65536, -65537, -(2**32), -(2**32) - 1, -(2**63), -(2**63) - 1, -(2**64),
]  # fmt: skip

ints = st.integers(-(2**64), 2**64 - 1) | st.sampled_from(_INT_EDGES)
floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.0, -0.0, 5e-324, -5e-324, 1.7976931348623157e308, -1.7976931348623157e308, 0.1, 1.5]
)


@st.composite
def cids(draw: st.DrawFn) -> CID:
    kind = draw(st.sampled_from(["blake2b", "sha256", "identity", "v0", "commitment"]))
    data = draw(st.binary(max_size=64))
    if kind == "v0":
        return CID.v0(Multihash.digest_of(SHA2_256, data).digest)
    if kind == "commitment":
        return CID.v1(FIL_COMMITMENT_SEALED, Multihash(SHA2_256_TRUNC254_PADDED, data.ljust(32, b"\0")[:32]))
    codec = draw(st.sampled_from([DAG_CBOR, RAW, DAG_PB]))
    code = {"blake2b": BLAKE2B_256, "sha256": SHA2_256, "identity": IDENTITY}[kind]
    return CID.v1(codec, Multihash.digest_of(code, data))


leaves = st.none() | st.booleans() | ints | floats | st.binary(max_size=80) | st.text(max_size=40) | cids()
values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=40,
)


def _same(a: Any, b: Any) -> bool:
    """Equality that also requires the same types (1 != 1.0 != True) and float bit patterns."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return struct.pack(">d", a) == struct.pack(">d", b)
    if type(a) is list:
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _canonical_order(d: dict[str, Any]) -> dict[str, Any]:
    return {k: d[k] for k in sorted(d, key=lambda k: (len(k.encode()), k.encode()))}


def _normalise(value: Any) -> Any:
    """What decode gives back for value: maps in canonical key order, recursively."""
    if type(value) is list:
        return [_normalise(v) for v in value]
    if type(value) is dict:
        return _canonical_order({k: _normalise(v) for k, v in value.items()})
    return value


# round trip and canonical form ----------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(values)
def test_round_trip(value: Any) -> None:
    data = dagcbor.encode(value)
    decoded = dagcbor.decode(data)
    assert _same(decoded, _normalise(value))
    assert dagcbor.encode(decoded) == data


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=10), leaves, min_size=2, max_size=10), st.randoms())
def test_map_encoding_ignores_insertion_order_and_sorts_length_first(d: dict[str, Any], rnd: Any) -> None:
    items = list(d.items())
    rnd.shuffle(items)
    data = dagcbor.encode(dict(items))
    assert data == dagcbor.encode(d)
    keys = [k.encode() for k in dagcbor.decode(data)]
    assert keys == sorted(keys, key=lambda k: (len(k), k))


def test_length_first_beats_bytewise_order() -> None:
    # "b" sorts before "aa" in DAG-CBOR (shorter first) though "aa" < "b" bytewise.
    assert dagcbor.encode({"aa": 1, "b": 2}) == b"\xa2\x61b\x02\x62aa\x01"
    assert list(dagcbor.decode(b"\xa2\x61b\x02\x62aa\x01")) == ["b", "aa"]


@settings(max_examples=200, deadline=None)
@given(ints)
def test_integers_use_the_shortest_head(n: int) -> None:
    data = dagcbor.encode(n)
    magnitude = n if n >= 0 else -1 - n
    expected_len = 1 if magnitude < 24 else 2 if magnitude < 256 else 3 if magnitude < 65536 else 5
    expected_len = 9 if magnitude >= 2**32 else expected_len
    assert len(data) == expected_len
    assert data[0] >> 5 == (0 if n >= 0 else 1)
    assert dagcbor.decode(data) == n


@settings(max_examples=200, deadline=None)
@given(floats)
def test_floats_are_always_64_bit(x: float) -> None:
    data = dagcbor.encode(x)
    assert data[0] == 0xFB and len(data) == 9
    assert _same(dagcbor.decode(data), x)


@pytest.mark.parametrize("n", [2**64, -(2**64) - 1, 2**100])
def test_integers_beyond_64_bits_do_not_encode(n: int) -> None:
    with pytest.raises(ValueError, match="does not fit in 64 bits"):
        dagcbor.encode(n)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, dagcbor.MAX_DEPTH), leaves, st.booleans())
def test_nesting_up_to_the_limit_round_trips(depth: int, leaf: Any, maps: bool) -> None:
    value = leaf
    for _ in range(depth):
        value = {"k": value} if maps else [value]
    data = dagcbor.encode(value)
    assert _same(dagcbor.decode(data), value)


def test_cid_at_the_deepest_level_round_trips() -> None:
    value: Any = CID.hash_of(b"deep")
    for _ in range(dagcbor.MAX_DEPTH):
        value = [value]
    assert dagcbor.decode(dagcbor.encode(value)) == value


# rejection of non-canonical bytes ---------------------------------------------------------------------


def _head(major: int, n: int, width: int) -> bytes:
    """A CBOR head with the argument in exactly `width` extra bytes (0 = in the first byte)."""
    if width == 0:
        return bytes([major << 5 | n])
    info = {1: 24, 2: 25, 4: 26, 8: 27}[width]
    return bytes([major << 5 | info]) + n.to_bytes(width, "big")


def _minimal_width(n: int) -> int:
    return 0 if n < 24 else 1 if n < 256 else 2 if n < 65536 else 4 if n < 2**32 else 8


@st.composite
def contexts(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """Canonical bytes to put before and after a bad item so that the whole is one value."""
    before = draw(st.lists(leaves, max_size=3))
    after = draw(st.lists(leaves, max_size=3))
    if draw(st.booleans()):
        # As an array element.
        prefix = _head(4, len(before) + 1 + len(after), _minimal_width(len(before) + 1 + len(after)))
        return prefix + b"".join(dagcbor.encode(v) for v in before), b"".join(
            dagcbor.encode(v) for v in after
        )
    if draw(st.booleans()):
        return b"", b""  # at the top level
    # As the value of the last key of a map with canonical keys.
    keys = [f"k{i}" for i in range(len(before))]
    prefix = _head(5, len(keys) + 1, 0) + b"".join(
        dagcbor.encode(k) + dagcbor.encode(v) for k, v in zip(keys, before, strict=True)
    )
    return prefix + dagcbor.encode("zzzzz"), b""


# Shapes for dagcbor.decode_parts, which must refuse what decode refuses, with the same errors.
_SHAPES: list[dagcbor.Shape] = [[dagcbor.PART], ([dagcbor.PART], None), [[dagcbor.PART]], dagcbor.PART]


def _assert_rejected(data: bytes, pattern: str) -> None:
    for shape in (None, *_SHAPES):
        with pytest.raises(DecodeError) as info:
            dagcbor.decode(data) if shape is None else dagcbor.decode_parts(data, shape)
        assert re.search(pattern, str(info.value)), f"{str(info.value)!r} does not match {pattern!r}"


def _marked(value: Any, shape: dagcbor.Shape) -> list[Any]:
    """The sub-values of value that shape marks, in order (as decode_parts finds them)."""
    if shape is dagcbor.PART:
        return [value]
    if type(value) is list and type(shape) is list:
        return [part for item in value for part in _marked(item, shape[0])]
    if type(value) is list and type(shape) is tuple and len(shape) == len(value):
        return [part for item, sub in zip(value, shape, strict=True) for part in _marked(item, sub)]
    return []


@settings(max_examples=300, deadline=None)
@given(values, st.sampled_from(_SHAPES))
def test_decode_parts_gives_what_decode_gives_and_each_part_as_its_slice(value: Any, shape: Any) -> None:
    data = dagcbor.encode(value)
    decoded, parts = dagcbor.decode_parts(data, shape)
    assert _same(decoded, dagcbor.decode(data))
    assert parts == [dagcbor.encode(v) for v in _marked(decoded, shape)]
    at = 0
    for part in parts:  # each the very slice of data the sub-value was read from, in order
        at = data.index(part, at) + len(part)


_settings = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(contexts(), ints, st.sampled_from([1, 2, 4, 8]))
def test_non_minimal_integers_are_rejected(ctx: tuple[bytes, bytes], n: int, width: int) -> None:
    magnitude = n if n >= 0 else -1 - n
    assume(width > _minimal_width(magnitude) and magnitude < 256**width)
    bad = _head(0 if n >= 0 else 1, magnitude, width)
    _assert_rejected(ctx[0] + bad + ctx[1], r"non-minimal integer encoding at offset \d+")


@_settings
@given(contexts(), st.sampled_from([2, 3, 4, 5]), st.integers(0, 30), st.sampled_from([1, 2, 4, 8]))
def test_non_minimal_lengths_are_rejected(ctx: tuple[bytes, bytes], major: int, n: int, width: int) -> None:
    assume(width > _minimal_width(n))
    body = {
        2: b"\x01" * n,
        3: b"a" * n,
        4: b"\x00" * n,
        5: b"".join(dagcbor.encode(f"{i:02d}") + b"\x00" for i in range(n)),
    }[major]
    _assert_rejected(ctx[0] + _head(major, n, width) + body + ctx[1], r"non-minimal length encoding")


@_settings
@given(contexts(), st.dictionaries(st.text(max_size=8), leaves, min_size=2, max_size=6))
def test_unsorted_map_keys_are_rejected(ctx: tuple[bytes, bytes], d: dict[str, Any]) -> None:
    ordered = list(_canonical_order(d).items())
    swap = len(ordered) - 2
    ordered[swap], ordered[swap + 1] = ordered[swap + 1], ordered[swap]
    bad = _head(5, len(ordered), 0) + b"".join(dagcbor.encode(k) + dagcbor.encode(v) for k, v in ordered)
    _assert_rejected(ctx[0] + bad + ctx[1], r"map keys not in length-first order at offset \d+")


@_settings
@given(contexts(), st.text(max_size=8), leaves, leaves)
def test_duplicate_map_keys_are_rejected(ctx: tuple[bytes, bytes], key: str, v1: Any, v2: Any) -> None:
    k = dagcbor.encode(key)
    bad = b"\xa2" + k + dagcbor.encode(v1) + k + dagcbor.encode(v2)
    _assert_rejected(ctx[0] + bad + ctx[1], r"duplicate map key .* at offset \d+")


@_settings
@given(contexts(), ints | st.binary(max_size=4) | st.booleans() | st.none() | floats | cids(), leaves)
def test_non_string_map_keys_are_rejected(ctx: tuple[bytes, bytes], key: Any, value: Any) -> None:
    bad = b"\xa1" + dagcbor.encode(key) + dagcbor.encode(value)
    _assert_rejected(ctx[0] + bad + ctx[1], r"map key at offset \d+ is not a text string")


@_settings
@given(contexts(), st.sampled_from([2, 3, 4, 5]))
def test_indefinite_lengths_are_rejected(ctx: tuple[bytes, bytes], major: int) -> None:
    body = {2: b"\x41x", 3: b"\x61x", 4: b"\x01", 5: b"\x61a\x01"}[major]
    bad = bytes([major << 5 | 31]) + body + b"\xff"
    _assert_rejected(ctx[0] + bad + ctx[1], r"indefinite-length item at offset \d+ is not allowed")


@_settings
@given(contexts(), st.integers(0, 2**64 - 1) | st.sampled_from([0, 1, 2, 3, 24, 55799, 41, 43]), leaves)
def test_tags_other_than_42_are_rejected(ctx: tuple[bytes, bytes], tag: int, inner: Any) -> None:
    assume(tag != 42)
    bad = _head(6, tag, _minimal_width(tag)) + dagcbor.encode(inner)
    _assert_rejected(ctx[0] + bad + ctx[1], rf"CBOR tag {tag} .*is not allowed")


@_settings
@given(contexts(), cids(), st.integers(1, 255))
def test_tag_42_without_the_zero_prefix_is_rejected(ctx: tuple[bytes, bytes], cid: CID, first: int) -> None:
    for payload in (cid.bytes, bytes([first]) + cid.bytes):
        bad = b"\xd8\x2a" + _head(2, len(payload), _minimal_width(len(payload))) + payload
        _assert_rejected(ctx[0] + bad + ctx[1], r"tag 42 CID bytes must start with the 0x00 multibase prefix")


@_settings
@given(contexts(), ints | st.text(max_size=4) | st.lists(leaves, max_size=2))
def test_tag_42_around_a_non_byte_string_is_rejected(ctx: tuple[bytes, bytes], inner: Any) -> None:
    _assert_rejected(
        ctx[0] + b"\xd8\x2a" + dagcbor.encode(inner) + ctx[1], r"tag 42 .*must wrap a byte string"
    )


@_settings
@given(contexts(), st.binary(min_size=1, max_size=40))
def test_tag_42_with_a_malformed_cid_is_rejected(ctx: tuple[bytes, bytes], junk: bytes) -> None:
    try:
        CID.decode(junk)
    except DecodeError:
        pass
    else:
        assume(False)
    payload = b"\x00" + junk
    bad = b"\xd8\x2a" + _head(2, len(payload), _minimal_width(len(payload))) + payload
    _assert_rejected(ctx[0] + bad + ctx[1], r"invalid CID in tag 42: ")


@_settings
@given(contexts())
def test_undefined_is_rejected(ctx: tuple[bytes, bytes]) -> None:
    _assert_rejected(ctx[0] + b"\xf7" + ctx[1], r"'undefined' at offset \d+ is not allowed")


@_settings
@given(contexts(), st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 19, 32, 255]))
def test_other_simple_values_are_rejected(ctx: tuple[bytes, bytes], n: int) -> None:
    bad = bytes([0xE0 | n]) if n < 20 else bytes([0xF8, n])
    _assert_rejected(ctx[0] + bad + ctx[1], r"simple value \d+ at offset \d+ is not allowed")


@_settings
@given(contexts(), st.integers(0, 2**32 - 1), st.sampled_from([16, 32]))
def test_short_floats_are_rejected(ctx: tuple[bytes, bytes], bits: int, width: int) -> None:
    # Any bit pattern: normal, subnormal, zero, infinities and NaNs are all refused for their width.
    bad = b"\xf9" + (bits & 0xFFFF).to_bytes(2, "big") if width == 16 else b"\xfa" + bits.to_bytes(4, "big")
    _assert_rejected(ctx[0] + bad + ctx[1], rf"float{width} at offset \d+ is not allowed")


@_settings
@given(contexts(), st.sampled_from([float("nan"), float("inf"), float("-inf")]))
def test_non_finite_floats_are_rejected(ctx: tuple[bytes, bytes], x: float) -> None:
    _assert_rejected(ctx[0] + struct.pack(">Bd", 0xFB, x) + ctx[1], r"float (nan|inf|-inf) at offset \d+")


@_settings
@given(values, st.binary(min_size=1, max_size=20))
def test_trailing_bytes_are_rejected(value: Any, extra: bytes) -> None:
    data = dagcbor.encode(value) + extra
    _assert_rejected(data, rf"{len(extra)} trailing bytes after the CBOR value")


@_settings
@given(contexts(), st.binary(min_size=1, max_size=4).filter(lambda b: not _is_utf8(b)))
def test_invalid_utf8_text_is_rejected(ctx: tuple[bytes, bytes], raw: bytes) -> None:
    bad = _head(3, len(raw), 0) + raw
    _assert_rejected(ctx[0] + bad + ctx[1], r"text string at offset \d+ is not valid UTF-8")


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@_settings
@given(leaves, st.integers(dagcbor.MAX_DEPTH + 1, 300), st.booleans())
def test_nesting_too_deep_is_rejected(leaf: Any, depth: int, maps: bool) -> None:
    wrapper = b"\xa1\x61k" if maps else b"\x81"
    data = wrapper * depth + dagcbor.encode(leaf)
    _assert_rejected(data, rf"nesting deeper than {dagcbor.MAX_DEPTH} at offset \d+")
    value: Any = leaf
    for _ in range(depth):
        value = {"k": value} if maps else [value]
    with pytest.raises(ValueError, match="nesting deeper than"):
        dagcbor.encode(value)


@_settings
@given(values, st.data())
def test_truncated_encodings_are_rejected(value: Any, data: st.DataObject) -> None:
    full = dagcbor.encode(value)
    cut = data.draw(st.integers(0, len(full) - 1))
    _assert_rejected(full[:cut], r"truncated input|empty input")


@settings(max_examples=300, deadline=None)
@given(values, st.data())
def test_mutated_encodings_are_rejected_unless_canonical(value: Any, data: st.DataObject) -> None:
    full = bytearray(dagcbor.encode(value))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(full) - 1))
        full[at] = data.draw(st.integers(0, 255))
    try:
        decoded = dagcbor.decode(bytes(full))
    except DecodeError as exc:
        assert str(exc)
        return
    assert dagcbor.encode(decoded) == bytes(full)
