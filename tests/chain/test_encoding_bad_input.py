"""Every decoder in chain.encoding, fed truncated, oversized or random input, raises DecodeError only.

A decoder that lets another exception out (IndexError, struct.error, MemoryError, UnicodeError...) would
crash whatever read peer bytes; these tests make any such leak fail loudly.
"""

import time
from collections.abc import Callable
from typing import Any, TypeVar

import base58
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.encoding import dagcbor
from chain.encoding.bigint import MAX_BIGINT_BYTES, decode_bigint, encode_bigint
from chain.encoding.cid import CID, DAG_CBOR, RAW
from chain.encoding.errors import DecodeError
from chain.encoding.multihash import IDENTITY, SHA2_256, Multihash
from chain.encoding.varint import decode_uvarint, encode_uvarint

_CID = CID.hash_of(b"sample")
_CIDS = [
    _CID,
    CID.hash_of(b"raw", codec=RAW, mh_code=SHA2_256),
    CID.v1(RAW, Multihash.digest_of(IDENTITY, b"inline")),
    CID.v0(Multihash.digest_of(SHA2_256, b"v0").digest),
]

# Decoders of bytes, each called the way code reading peer input calls it.
BYTE_DECODERS: dict[str, Callable[[bytes], object]] = {
    "dagcbor.decode": dagcbor.decode,
    "CID.decode": CID.decode,
    "CID.read": lambda data: CID.read(data, 0),
    "CID.read@3": lambda data: CID.read(data, 3),
    "Multihash.from_bytes": Multihash.from_bytes,
    "Multihash.read@1": lambda data: Multihash.read(data, 1),
    "decode_uvarint": decode_uvarint,
    "decode_uvarint@2": lambda data: decode_uvarint(data, 2),
    "decode_bigint": decode_bigint,
}

_VALUES: list[Any] = [
    {"a": [1, -(2**64), 2**64 - 1], "bb": {"c": 1.5, "d": b"\x00" * 30}, "link": _CID},
    "héllo ✓" * 10,
    [None, True, False, [], {}],
    b"\xff" * 300,
]

# Valid encodings per decoder: their truncations and extensions are the interesting bad inputs.
VALID: dict[str, list[bytes]] = {
    "dagcbor.decode": [dagcbor.encode(v) for v in _VALUES],
    "CID.decode": [c.bytes for c in _CIDS],
    "CID.read": [c.bytes for c in _CIDS],
    "CID.read@3": [b"xyz" + c.bytes for c in _CIDS],
    "Multihash.from_bytes": [c.multihash.to_bytes() for c in _CIDS],
    "Multihash.read@1": [b"\x00" + c.multihash.to_bytes() for c in _CIDS],
    "decode_uvarint": [encode_uvarint(n) for n in (0, 127, 128, 300, 2**32, 2**63 - 1)],
    "decode_uvarint@2": [b"ab" + encode_uvarint(n) for n in (0, 128, 2**63 - 1)],
    "decode_bigint": [encode_bigint(n) for n in (0, 1, -1, 255, -256, 2**1000, -(2**1000))],
}

# Decoders whose valid inputs are prefix-free: every proper prefix is an error, never a shorter value.
PREFIX_FREE = {name for name in BYTE_DECODERS if name != "decode_bigint"}


T = TypeVar("T")


def _call(decode: Callable[[T], object], data: T) -> object | DecodeError:
    """Run decode; return its result or the DecodeError, letting any other exception fail the test."""
    try:
        return decode(data)
    except DecodeError as exc:
        assert str(exc), "DecodeError without a message"
        return exc


def test_valid_samples_decode() -> None:
    for name, samples in VALID.items():
        for sample in samples:
            result = _call(BYTE_DECODERS[name], sample)
            assert not isinstance(result, DecodeError), f"{name} rejected its own valid sample: {result}"


@pytest.mark.parametrize("name", sorted(BYTE_DECODERS))
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=120))
def test_random_bytes(name: str, data: bytes) -> None:
    _call(BYTE_DECODERS[name], data)


@pytest.mark.parametrize("name", sorted(BYTE_DECODERS))
def test_every_truncation(name: str) -> None:
    decode = BYTE_DECODERS[name]
    for sample in VALID[name]:
        for cut in range(len(sample)):
            result = _call(decode, sample[:cut])
            if name in PREFIX_FREE:
                assert isinstance(result, DecodeError), f"{name} accepted {sample[:cut].hex()}"


@pytest.mark.parametrize("name", sorted(BYTE_DECODERS))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_mutated_valid_inputs(name: str, data: st.DataObject) -> None:
    sample = bytearray(data.draw(st.sampled_from(VALID[name])))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "append"]))
        at = data.draw(st.integers(0, max(len(sample) - 1, 0)))
        byte = data.draw(st.integers(0, 255))
        if op == "flip" and sample:
            sample[at] = byte
        elif op == "insert":
            sample.insert(at, byte)
        elif op == "delete" and sample:
            del sample[at]
        else:
            sample.append(byte)
    _call(BYTE_DECODERS[name], bytes(sample))


# oversized input: huge declared lengths must be refused without trying to allocate them ---------------

_HUGE = [2**64 - 1, 2**63, 2**32, 2**31]
OVERSIZED: dict[str, list[bytes]] = {
    "dagcbor.decode": [
        *(bytes([major << 5 | 27]) + n.to_bytes(8, "big") for major in (2, 3, 4, 5) for n in _HUGE),
        *(bytes([major << 5 | 26]) + (2**32 - 1).to_bytes(4, "big") for major in (2, 3, 4, 5)),
        b"\x81" * 200_000 + b"\x00",
        b"\xa1\x61k" * 50_000 + b"\x00",
        b"\xd8\x2a" * 100_000 + b"\x40",
        b"\xc6" * 100_000 + b"\x00",
        b"\x9f" * 100_000,
        b"\x5b" + b"\xff" * 8 + b"\x00" * 1000,
        dagcbor.encode(b"\x00" * 1_000_000) + b"\x00",
    ],
    "CID.decode": [
        b"\x01" + b"\xff" * 9 + b"\x01" + b"\x12\x20" + b"\x00" * 32,  # codec varint of 10 bytes
        b"\x01\x71" + b"\xff" * 9 + b"\x01",  # varint longer than 9 bytes
        b"\x01\x71\x00" + encode_uvarint(2**62) + b"\x00" * 100,  # identity digest claiming 2^62 bytes
        b"\x01\x71\x00\x81\x01" + b"\x00" * 129,  # identity over the 128-byte cap
        _CID.bytes + b"\x00" * 100_000,
    ],
    "Multihash.from_bytes": [
        b"\x12" + encode_uvarint(2**63 - 1),
        b"\x00" + encode_uvarint(2**40) + b"\x00" * 1000,
        b"\xa0\xe4\x02\x40" + b"\x00" * 64,  # blake2b-256 with a 64-byte digest
    ],
    "decode_uvarint": [b"\xff" * 100, b"\x80" * 9 + b"\x01", b"\xff" * 8 + b"\x80\x01"],
    "decode_bigint": [
        b"\x00" + b"\xff" * MAX_BIGINT_BYTES,
        b"\x01" + b"\x01" * 10_000,
        b"\x00" * 1_000_000,
    ],
}


@pytest.mark.parametrize(
    ("name", "data"),
    [
        pytest.param(name, data, id=f"{name}:{i}")
        for name, cases in OVERSIZED.items()
        for i, data in enumerate(cases)
    ],
)
def test_oversized_input_is_refused_quickly(name: str, data: bytes) -> None:
    start = time.perf_counter()
    result = _call(BYTE_DECODERS[name], data)
    assert isinstance(result, DecodeError), f"{name} accepted oversized input"
    # Generous bound: the point is that nothing tries to allocate or walk the claimed size.
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("offset", [len(_CID.bytes), len(_CID.bytes) + 10])
def test_reading_at_or_past_the_end(offset: int) -> None:
    with pytest.raises(DecodeError, match="varint is truncated"):
        CID.read(_CID.bytes, offset)
    with pytest.raises(DecodeError, match="varint is truncated"):
        Multihash.read(_CID.bytes, offset)
    with pytest.raises(DecodeError, match="varint is truncated"):
        decode_uvarint(_CID.bytes, offset)


def test_decoders_accept_bytearray_and_memoryview() -> None:
    data = dagcbor.encode({"x": [1, _CID]})
    # The signatures say bytes; peers' buffers often arrive as bytearray or memoryview all the same.
    assert dagcbor.decode(bytearray(data)) == dagcbor.decode(memoryview(data))  # type: ignore[arg-type]
    assert CID.decode(bytearray(_CID.bytes)) == _CID  # type: ignore[arg-type]
    assert decode_bigint(bytearray(b"\x00\x01")) == 1  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [None, 5, "text", [b"x"], 1.5])
def test_non_bytes_input_is_a_decode_error(value: Any) -> None:
    with pytest.raises(DecodeError, match="expected bytes"):
        dagcbor.decode(value)
    with pytest.raises(DecodeError, match="expected bytes"):
        decode_bigint(value)


# CID text --------------------------------------------------------------------------------------------------

_CID_TEXT = [str(c) for c in _CIDS] + ["z" + base58.b58encode(_CID.bytes).decode()]


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80) | st.sampled_from(["b", "B", "z", "Qm", "", "bafy", "Qm" + "1" * 44]))
def test_cid_parse_random_text(text: str) -> None:
    _call(CID.parse, text)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_CID_TEXT), st.data())
def test_cid_parse_mutated_text(text: str, data: st.DataObject) -> None:
    chars = list(text)
    at = data.draw(st.integers(0, len(chars) - 1))
    chars[at] = data.draw(st.characters())
    if data.draw(st.booleans()):
        chars = chars[: data.draw(st.integers(0, len(chars)))]
    result = _call(CID.parse, "".join(chars))
    if not isinstance(result, DecodeError):
        assert isinstance(result, CID)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "CID text is empty"),
        ("b" + "a" * 100_000, "unsupported CID version 0"),
        ("z" + "2" * 5_000, "unsupported CID version"),
        ("bafyé", "invalid base32 text"),
        ("bAFY", "wrong case"),
        ("Qm" + "0" * 44, "invalid base58"),
        ("m" + "A" * 10, "unsupported multibase prefix 'm'"),
        (_CID_TEXT[0][:-3], "truncated"),
    ],
)
def test_cid_parse_bad_text_messages(text: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        CID.parse(text)


def test_cid_parse_non_text_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="CID text must be a string, got bytes"):
        CID.parse(_CID.bytes)  # type: ignore[arg-type]


def test_identity_and_other_codecs_survive_round_trips() -> None:
    # Sanity for the samples above: the CIDs used as valid inputs really are what they claim.
    assert [c.codec for c in _CIDS] == [DAG_CBOR, RAW, RAW, 0x70]
    assert all(CID.decode(c.bytes) == c and CID.parse(str(c)) == c for c in _CIDS)
