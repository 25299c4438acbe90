"""Addresses: round trips, canonical forms and rejection of every malformed form (go-address rules)."""

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.crypto.keys import KeyType, PrivateKey
from chain.encoding import dagcbor
from chain.encoding.errors import DecodeError
from chain.types import address as address_cache
from chain.types.address import (
    MAX_ADDRESS_STRING_LENGTH,
    MAX_SUBADDRESS_LENGTH,
    Address,
    Protocol,
    parse_with_network,
)
from tests.chain.hostile import canonical_or_refused
from tests.chain.type_strategies import addresses


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


@given(addresses, st.sampled_from(["f", "t"]))
def test_string_and_bytes_round_trip(address: Address, network: str) -> None:
    text = address.to_string(network)
    assert parse_with_network(text) == (address, network)
    assert Address.from_bytes(address.to_bytes()) == address
    assert Address.from_cbor(dagcbor.decode(dagcbor.encode(address.to_cbor()))) == address
    assert hash(Address.from_bytes(address.to_bytes())) == hash(address)
    assert str(address) == address.to_string("t")


@given(st.binary(max_size=80))
def test_random_bytes_decode_or_raise(data: bytes) -> None:
    canonical_or_refused(Address.from_bytes, Address.to_bytes, data)


@given(st.text(max_size=130))
def test_random_strings_parse_or_raise(text: str) -> None:
    try:
        address, network = parse_with_network(text)
    except DecodeError:
        return
    if address.protocol not in (Protocol.ID, Protocol.DELEGATED):
        assert address.to_string(network) == text


@given(addresses)
def test_truncated_and_extended_bytes(address: Address) -> None:
    data = address.to_bytes()
    for cut in range(len(data)):
        try:
            shorter = Address.from_bytes(data[:cut])
        except DecodeError:
            continue
        # Only an f4 subaddress can lose bytes and stay valid; an ID varint cut short never can.
        assert shorter.protocol == Protocol.DELEGATED
    try:
        longer = Address.from_bytes(data + b"\x00")
    except DecodeError:
        return
    assert longer.protocol == Protocol.DELEGATED


@given(addresses, st.integers(2, 120), st.integers(0, 31))
def test_changed_character_is_rejected_or_different(address: Address, position: int, value: int) -> None:
    text = address.to_string("f")
    if address.protocol == Protocol.ID or position >= len(text):
        return
    replacement = "abcdefghijklmnopqrstuvwxyz234567"[value]
    changed = text[:position] + replacement + text[position + 1 :]
    if changed == text:
        return
    with pytest.raises(DecodeError):
        Address.parse(changed)


def test_go_address_invalid_strings() -> None:
    # The kinds of input go-address's TestInvalidStringAddresses refuses, with the reason it gives.
    refused = {
        "Q2gfvuyh7v2sx3patm5k23wdzmhyhtmqctasbr23y": "network",
        "t5gfvuyh7v2sx3patm5k23wdzmhyhtmqctasbr23y": "protocol",
        "t2gfvuyh7v2sx3patm5k23wdzmhyhtmqctasbr24y": "checksum",
        "t0banananananannnnnnnnn": "length",
        "t0banananananannnnnnn": "payload",
        "t2gfvuyh7v2sx3patm1k23wdzmhyhtmqctasbr24y": "encoding",
        "t2gfvuyh7v2sx3paTm1k23wdzmhyhtmqctasbr24y": "encoding",
        "t2": "length",
        "t1234q": "length",
        "a" * (MAX_ADDRESS_STRING_LENGTH + 1): "length",
        "t": "length",
        "t0": "length",
        "": "empty",
        "t0" + "a" * 19: "payload",
        "t0" + "a" * 20: "length",
        "t1" + _b32(b"a" * 24): "checksum",
        "t1" + _b32(b"a" * 25): "length",
        "t1" + _b32(b"a" * 23): "length",
        "t2" + _b32(b"a" * 24): "checksum",
        "t3" + _b32(b"a" * 52): "checksum",
        "t3" + _b32(b"a" * 53): "length",
        "t3" + _b32(b"a" * 51): "length",
        "t0-1": "payload",
        "t0+1": "payload",
        "t0\uff11": "payload",  # a fullwidth digit one is not an ASCII digit
        "t410": "payload",
        "t4f" + _b32(b"\x00" * 24): "payload",
        "t410f" + _b32(b"\x00" * 3): "length",
        "t410f" + _b32(b"\x00" * (MAX_SUBADDRESS_LENGTH + 5)): "length",
        "t49223372036854775808f" + _b32(b"\x00" * 4): "exceeds",
    }
    for text, reason in refused.items():
        with pytest.raises(DecodeError, match=reason):
            Address.parse(text)


def test_trailing_bits_must_be_zero() -> None:
    # go-address TestTrailingBits: the same bytes, but the last character carries stray low bits.
    assert Address.parse("f1xpbyy4tkdx5si2bgo37dubc2xwv6fum5tk57mia").protocol == Protocol.SECP256K1
    with pytest.raises(DecodeError, match="not canonical"):
        Address.parse("f1xpbyy4tkdx5si2bgo37dubc2xwv6fum5tk57mid")


def test_upper_case_is_rejected() -> None:
    text = Address.new_actor(b"x").to_string("f")
    with pytest.raises(DecodeError, match="alphabet"):
        Address.parse(text.upper().replace("F2", "f2", 1))


def test_delegated_strings_from_go_address() -> None:
    # go-address TestDelegatedAddress.
    assert Address.new_delegated(32, b"\xff" * 5).to_string("f") == "f432f77777777x32lpna"
    top = (1 << 63) - 1
    assert Address.new_delegated(top, b"").to_string("f") == "f49223372036854775807fiic6zsy"
    full = Address.new_delegated(top, bytes(54))
    assert full.to_string("f") == "f49223372036854775807f" + "a" * 86 + "hwgiuam"
    for address in (Address.new_delegated(32, b"\xff" * 5), full):
        assert Address.parse(address.to_string("f")) == address


def test_leading_zeros_are_accepted_like_go_address() -> None:
    # strconv.ParseUint accepts leading zeros, in IDs and in f4 namespaces; writing back is canonical.
    assert Address.parse("t0007") == Address.new_id(7)
    assert str(Address.parse("t0007")) == "t07"
    f410 = Address.new_delegated(10, b"\x01")
    assert Address.parse(str(f410).replace("t410f", "t4010f", 1)) == f410


def test_invalid_bytes() -> None:
    # go-address TestInvalidByteAddresses and the CBOR rules of its UnmarshalCBOR.
    refused = {
        b"": "empty",
        b"\x00": "length",
        b"\x05\x04\x04": "protocol",
        b"\x01" + bytes(19): "length",
        b"\x01" + bytes(21): "length",
        b"\x02" + bytes(19): "length",
        b"\x02" + bytes(21): "length",
        b"\x03" + bytes(47): "length",
        b"\x03" + bytes(33): "length",
        b"\x04\x00" + bytes(55): "length",
        b"\x04\xff": "payload",
        b"\x00\x80": "payload",  # truncated varint
        b"\x00\x80\x00": "payload",  # non-minimal varint
        b"\x00\x01\x02": "length",  # trailing bytes after the ID
    }
    for data, reason in refused.items():
        with pytest.raises(DecodeError, match=reason):
            Address.from_bytes(data)
    with pytest.raises(DecodeError, match="exceeds the limit of 64"):
        Address.from_cbor(b"\x04\x00" + bytes(63))
    with pytest.raises(DecodeError, match="expected a byte string"):
        Address.from_cbor("t01")


def test_constructors_check_their_arguments() -> None:
    with pytest.raises(ValueError):
        Address.new_id(-1)
    with pytest.raises(ValueError):
        Address.new_delegated(1 << 63, b"")
    with pytest.raises(ValueError):
        Address.new_delegated(10, bytes(55))
    with pytest.raises(DecodeError):
        Address.new_bls(bytes(47))
    with pytest.raises(ValueError, match="unknown network"):
        Address.new_id(1).to_string("x")
    with pytest.raises(ValueError, match="not an ID"):
        _ = Address.new_actor(b"").id
    with pytest.raises(ValueError, match="not a delegated"):
        _ = Address.new_id(3).namespace


def test_key_addresses() -> None:
    for key_type, prefix in ((KeyType.SECP256K1, "t1"), (KeyType.BLS, "t3"), (KeyType.DELEGATED, "t410f")):
        key = PrivateKey.derive(key_type, b"address test")
        address = Address.of_key(key)
        assert str(address).startswith(prefix)
        assert address.is_key_address()
    assert not Address.new_id(5).is_key_address()
    assert repr(Address.new_id(5)) == "Address('t05')"


def test_a_string_parsed_again_is_the_same_address_and_a_bad_one_fails_again() -> None:
    # Parsed strings are kept (a cache): a second parse gives an equal address, and a string that
    # failed is not kept, so it fails again with its reason.
    text = Address.of_key(PrivateKey.derive(KeyType.SECP256K1, b"cached")).to_string("t")
    first, again = parse_with_network(text), parse_with_network(text)
    assert first == again == (Address.parse(text), "t")
    bad = text[:-1] + ("a" if text[-1] != "a" else "b")
    for _ in range(2):
        with pytest.raises(DecodeError, match=r"checksum|canonical"):
            parse_with_network(bad)
    with pytest.raises(DecodeError, match="expected a string"):
        parse_with_network(["not", "hashable"])  # type: ignore[arg-type]


@given(st.binary(max_size=80))
def test_bytes_parsed_again_give_what_parsing_them_afresh_gives(data: bytes) -> None:
    # Parsed bytes are kept (a cache): each parse, first or again, gives what the uncached parse
    # gives, the same address or the same refusal; bytearrays are parsed without the cache.
    def afresh() -> Address | str:
        try:
            return Address._from_bytes(data)
        except DecodeError as exc:
            return str(exc)

    def parsed(raw: bytes | bytearray) -> Address | str:
        try:
            return Address.from_bytes(raw)  # type: ignore[arg-type]
        except DecodeError as exc:
            return str(exc)

    expected = afresh()
    for raw in (data, data, bytearray(data)):
        got = parsed(raw)
        assert got == expected
        if isinstance(got, Address):
            assert type(got.protocol) is Protocol and type(got.payload) is bytes
    address_cache._DECODED.clear()
    assert parsed(data) == expected


def test_the_parsed_bytes_kept_are_bounded() -> None:
    address_cache._DECODED.clear()
    for i in range(address_cache._DECODED_MAX + 10):
        Address.from_bytes(Address.new_id(i).to_bytes())
    assert len(address_cache._DECODED) <= address_cache._DECODED_MAX
    assert Address.from_bytes(Address.new_id(7).to_bytes()) == Address.new_id(7)
