"""addresses.json: every protocol's string and bytes forms, as iso-filecoin and glif write them."""

from typing import Any

import pytest
from Crypto.Hash import keccak

from chain.encoding import dagcbor
from chain.encoding.errors import DecodeError
from chain.types.address import Address, Protocol, parse_with_network
from tests.vectors import cases, require

# What each "invalid" entry's reason means in our error messages; an entry with a reason not listed
# here is still checked to be rejected.
_REASONS = {
    "checksum mismatch": "checksum",
    "unknown protocol 9": "protocol",
    "unknown network prefix": "network",
    "empty payload": "length",
    "truncated BLS address": "encoding",
}


def _eip55(address: bytes) -> str:
    lower = address.hex()
    digest = keccak.new(digest_bits=256, data=lower.encode("ascii")).hexdigest()
    return "0x" + "".join(
        ch.upper() if int(d, 16) >= 8 else ch for ch, d in zip(lower, digest[:40], strict=True)
    )


@pytest.mark.parametrize("case", cases("addresses.json"))
def test_address_case(case: dict[str, Any]) -> None:
    mainnet, network = parse_with_network(case["mainnet"])
    assert network == "f"
    testnet, network = parse_with_network(case["testnet"])
    assert network == "t"
    assert mainnet == testnet
    address = mainnet
    assert address.protocol == case["protocol"]
    assert address.payload.hex() == case["payload_hex"]
    assert address.to_bytes().hex() == case["bytes_hex"]
    assert address.to_string("f") == case["mainnet"]
    assert address.to_string("t") == case["testnet"]
    assert str(address) == case["testnet"]
    assert Address.from_bytes(bytes.fromhex(case["bytes_hex"])) == address
    assert Address.parse(case["mainnet"], network="f") == address
    with pytest.raises(DecodeError, match="network"):
        Address.parse(case["mainnet"], network="t")
    # CBOR form: a byte string of the address bytes.
    encoded = dagcbor.encode(address.to_cbor())
    assert Address.from_cbor(dagcbor.decode(encoded)) == address

    protocol = Protocol(case["protocol"])
    if protocol == Protocol.ID:
        assert address.id == int(case["id"])
        assert Address.new_id(int(case["id"])) == address
    elif protocol == Protocol.SECP256K1:
        assert case["note"] == "payload = blake2b-160(public_key)"
        assert Address.new_secp256k1(bytes.fromhex(case["public_key_hex"])) == address
    elif protocol == Protocol.ACTOR:
        assert "blake2b-160" in case["note"]
        assert Address.new_actor(bytes.fromhex(case["actor_data_hex"])) == address
    elif protocol == Protocol.BLS:
        assert "public key" in case["note"] or "public_key" in case["note"]
        assert Address.new_bls(bytes.fromhex(case["public_key_hex"])) == address
    else:
        assert address.namespace == case["namespace"]
        assert address.subaddress.hex() == case["subaddress_hex"]
        assert Address.new_delegated(case["namespace"], bytes.fromhex(case["subaddress_hex"])) == address
        if "eth_address" in case:
            assert case["namespace"] == 10
            assert _eip55(address.subaddress) == case["eth_address"]
        if "source" in case:
            assert "glif" in case["source"]


@pytest.mark.parametrize("case", cases("addresses.json", "invalid"))
def test_invalid_address(case: dict[str, Any]) -> None:
    # Every entry is rejected, including "f0" that iso-filecoin wrongly accepts (go-address refuses it).
    assert case["rejected_by_glif"] is True
    with pytest.raises(DecodeError) as info:
        Address.parse(case["s"])
    reason = _REASONS.get(case["why"])
    if reason is None and "length" in case["why"]:
        reason = "length"
    if reason is not None:
        assert reason in str(info.value)


def test_id_2_64_minus_1_is_rejected() -> None:
    # Decision (see chain/types/address.py): follow go-address since 2021, which refuses IDs >= 2^63
    # in strings (ParseUint bit size 63), in bytes (newAddress) and in the constructor.
    fact = require("addresses.json")["id_2_64_minus_1"]
    assert fact["string"] == "f018446744073709551615"
    assert fact["glif"] == "rejected"
    with pytest.raises(DecodeError, match=r"length|exceeds"):
        Address.parse(fact["string"])
    with pytest.raises(DecodeError):
        Address.from_bytes(bytes.fromhex(fact["iso_filecoin"]))
    with pytest.raises(ValueError):
        Address.new_id(2**64 - 1)
    assert Address.parse("f09223372036854775807").id == 2**63 - 1
    with pytest.raises(DecodeError, match="exceeds"):
        Address.parse("f09223372036854775808")
