"""Signatures: byte form, verification against addresses, BLS aggregation, malformed input."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.signature import (
    BLS_G1_INFINITY,
    BLS_G2_INFINITY,
    SIGNATURE_MAX_LENGTH,
    Signature,
    SignatureError,
    SigType,
    aggregate_bls,
    blake2b_256,
    bls_public_key,
    is_valid,
    recover_secp256k1,
    verify,
    verify_bls_aggregate,
)
from chain.encoding import dagcbor
from chain.encoding.errors import DecodeError
from chain.types.address import Address

SECP = PrivateKey.derive(KeyType.SECP256K1, b"secp")
BLS = PrivateKey.derive(KeyType.BLS, b"bls")
ETH = PrivateKey.derive(KeyType.DELEGATED, b"eth")


@given(st.sampled_from(list(SigType)), st.binary(max_size=SIGNATURE_MAX_LENGTH - 1))
def test_byte_form_round_trip(sig_type: SigType, data: bytes) -> None:
    signature = Signature(sig_type, data)
    assert Signature.from_bytes(signature.to_bytes()) == signature
    assert Signature.from_cbor(dagcbor.decode(dagcbor.encode(signature.to_cbor()))) == signature


def test_byte_form_errors() -> None:
    with pytest.raises(DecodeError, match="empty"):
        Signature.from_bytes(b"")
    with pytest.raises(DecodeError, match="invalid signature type 0"):
        Signature.from_bytes(b"\x00")
    with pytest.raises(DecodeError, match="exceeds the limit of 200"):
        Signature.from_bytes(b"\x02" + bytes(200))
    with pytest.raises(DecodeError, match="expected a byte string"):
        Signature.from_cbor([1, b""])
    with pytest.raises(ValueError):
        Signature(256, b"")
    with pytest.raises(ValueError):
        Signature(SigType.BLS, bytes(200))
    assert Signature(0, b"").to_bytes() == b"\x00"  # lotus's zero Signature{} can still be written


@pytest.mark.parametrize("key", [SECP, BLS, ETH], ids=["secp256k1", "bls", "delegated"])
def test_verify_against_address(key: PrivateKey) -> None:
    address = Address.of_key(key)
    signature = key.sign(b"data")
    verify(signature, address, b"data")
    with pytest.raises(SignatureError):
        verify(signature, address, b"datA")
    with pytest.raises(SignatureError, match="resolved"):
        verify(signature, Address.new_id(10), b"data")
    with pytest.raises(SignatureError, match=r"protocol|not an f410"):
        verify(signature, Address.new_actor(b"actor"), b"data")
    for length in (0, len(signature.data) - 1, len(signature.data) + 1):
        with pytest.raises(SignatureError, match="must be"):
            verify(Signature(signature.type, bytes(length)), address, b"data")


def test_secp256k1_details() -> None:
    signature = SECP.sign(b"data")
    digest = blake2b_256(b"data")
    assert recover_secp256k1(signature.data, digest) == SECP.public_key
    assert signature.data[64] in (0, 1)
    assert (
        int.from_bytes(signature.data[32:64], "big")
        <= 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
    )
    with pytest.raises(SignatureError, match="recovery id 4"):
        recover_secp256k1(signature.data[:64] + b"\x04", digest)
    with pytest.raises(SignatureError, match="does not recover"):
        recover_secp256k1(bytes(64) + b"\x00", digest)
    with pytest.raises(SignatureError, match="does not recover"):
        recover_secp256k1(b"\xff" * 64 + b"\x00", digest)
    other = Address.of_key(PrivateKey.derive(KeyType.SECP256K1, b"other"))
    with pytest.raises(SignatureError, match="not made by"):
        verify(signature, other, b"data")


def test_bls_details() -> None:
    address = Address.of_key(BLS)
    signature = BLS.sign(b"data")
    with pytest.raises(SignatureError, match="invalid BLS signature point"):
        verify(Signature(SigType.BLS, b"\x00" * 96), address, b"data")
    with pytest.raises(SignatureError, match="infinity"):
        verify(Signature(SigType.BLS, BLS_G2_INFINITY), Address.new_bls(BLS_G1_INFINITY), b"data")
    with pytest.raises(SignatureError, match="invalid BLS public key"):
        verify(signature, Address.new_bls(b"\x80" + bytes(46) + b"\x01"), b"data")
    with pytest.raises(SignatureError, match="does not verify"):
        verify(Signature(SigType.BLS, BLS_G2_INFINITY), address, b"data")
    with pytest.raises(SignatureError):
        bls_public_key(bytes(47))
    with pytest.raises(SignatureError, match="unsupported type 0"):
        verify(Signature(0, b""), address, b"data")


def test_bls_aggregate() -> None:
    keys = [PrivateKey.derive(KeyType.BLS, bytes([i])) for i in range(5)]
    messages = [f"message {i}".encode() for i in range(5)]
    signatures = [key.sign(m) for key, m in zip(keys, messages, strict=True)]
    public_keys = [key.public_key for key in keys]
    aggregate = aggregate_bls(signatures)
    verify_bls_aggregate(aggregate, public_keys, messages)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_bls_aggregate(aggregate, public_keys, [*messages[:4], b"changed"])
    with pytest.raises(SignatureError, match="more than once"):
        verify_bls_aggregate(aggregate, [*public_keys, public_keys[0]], [*messages, messages[0]])
    with pytest.raises(SignatureError, match="4 public keys for 5 messages"):
        verify_bls_aggregate(aggregate, public_keys[:4], messages)
    with pytest.raises(SignatureError, match="not BLS"):
        aggregate_bls([SECP.sign(b"x")])
    with pytest.raises(SignatureError, match="not BLS"):
        verify_bls_aggregate(SECP.sign(b"x"), [], [])
    # No messages: the aggregate is the identity point and there is nothing to check (lotus).
    empty = aggregate_bls([])
    assert empty == Signature(SigType.BLS, BLS_G2_INFINITY)
    verify_bls_aggregate(empty, [], [])
    # One signature aggregates to itself.
    assert aggregate_bls(signatures[:1]) == signatures[0]


@given(st.sampled_from([0, 1, 2, 3, 4, 9]), st.binary(max_size=120), st.binary(max_size=60))
@settings(max_examples=60)
def test_random_signatures_never_crash(sig_type: int, data: bytes, payload: bytes) -> None:
    for address in (Address.of_key(SECP), Address.of_key(BLS), Address.of_key(ETH), Address.new_id(3)):
        assert is_valid(Signature(sig_type, data), address, payload) is False
