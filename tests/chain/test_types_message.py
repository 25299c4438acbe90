"""Messages and signed messages: round trips, CID rules, strict decoding and inclusion rules."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.signature import Signature, SignatureError, SigType
from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.types.address import Address
from chain.types.message import (
    BLOCK_GAS_LIMIT,
    MAX_PARAMS_LENGTH,
    TOTAL_FILECOIN,
    ZERO_ADDRESS,
    InvalidMessage,
    Message,
    SignedMessage,
    sign_message,
)
from tests.chain.hostile import decodes_or_refuses, names_the_bad_field, refuses_cut_or_extended
from tests.chain.messages import ALICE, transfer
from tests.chain.type_strategies import dag_cbor_values, messages, signed_messages

BOB = PrivateKey.derive(KeyType.BLS, b"bob")


@given(messages())
def test_message_round_trip(message: Message) -> None:
    data = message.to_bytes()
    assert data == dagcbor.encode(message.to_cbor())
    decoded = Message.from_bytes(data)
    assert decoded == message
    assert decoded.to_bytes() == data
    assert message.cid() == CID.hash_of(data) == decoded.cid()
    assert message.signing_bytes() == message.cid().bytes
    assert message.chain_length() == len(data)


@given(signed_messages)
def test_signed_message_round_trip(signed: SignedMessage) -> None:
    data = signed.to_bytes()
    assert data == dagcbor.encode(signed.to_cbor())
    decoded = SignedMessage.from_bytes(data)
    assert decoded == signed
    # from_bytes keeps the message's slice of the input as its encoding; it must be the real one.
    assert decoded.message.to_bytes() == dagcbor.encode(signed.message.to_cbor())
    assert decoded.message.cid() == signed.message.cid()
    if signed.signature.type == SigType.BLS:
        assert decoded.cid() == signed.message.cid()
        assert decoded.chain_length() == signed.message.chain_length()
    else:
        assert decoded.cid() == CID.hash_of(data)
        assert decoded.chain_length() == len(data)


@given(messages())
@settings(max_examples=30)
def test_truncated_and_extended_messages_are_rejected(message: Message) -> None:
    data = message.to_bytes()
    refuses_cut_or_extended(Message.from_bytes, data, cuts=40, extra=b"\x00")
    with pytest.raises(DecodeError):
        SignedMessage.from_bytes(data)


@given(st.binary(max_size=200))
def test_random_bytes_never_crash(data: bytes) -> None:
    decodes_or_refuses((Message.from_bytes, SignedMessage.from_bytes), data)


@given(dag_cbor_values)
def test_random_cbor_never_crashes(value: object) -> None:
    decodes_or_refuses((Message.from_cbor, SignedMessage.from_cbor), value)


def test_decoding_names_the_bad_field() -> None:
    fields = transfer().to_cbor()
    bad = {
        1: (b"", "Message.To: empty address"),
        2: (b"\x09\x01", "Message.From: unknown address protocol 9"),
        3: (-1, "Message.Nonce"),
        4: (b"\x00\x00\x01", "Message.Value: magnitude has a leading zero"),
        5: (1 << 63, "Message.GasLimit"),
        6: ("1", "Message.GasFeeCap"),
        7: (b"\x02\x01", "Message.GasPremium: invalid sign byte"),
        8: (None, "Message.Method"),
        9: ([], "Message.Params"),
    }
    names_the_bad_field(Message.from_bytes, fields, bad)
    with pytest.raises(DecodeError, match="expected an array of 10 fields, got 9"):
        Message.from_bytes(dagcbor.encode(fields[:9]))
    with pytest.raises(DecodeError, match="Params: 2097153 bytes exceeds"):
        Message.from_cbor([*fields[:9], bytes(MAX_PARAMS_LENGTH + 1)])
    version_one = dagcbor.encode([1, *fields[1:]])
    with pytest.raises(DecodeError, match="unsupported message version 1"):
        Message.from_bytes(version_one)
    assert (
        Message.from_cbor(dagcbor.decode(version_one)).version == 1
    )  # structure is fine, lotus DecodeMessage is not
    with pytest.raises(DecodeError, match=r"non-minimal|canonical"):
        Message.from_bytes(bytes.fromhex("8a1800") + dagcbor.encode(fields)[2:])


def test_signed_message_decoding_errors() -> None:
    message = transfer().to_cbor()
    for signature, reason in (
        (b"", "empty signature"),
        (b"\x00\x01", "invalid signature type 0"),
        (b"\x04" + bytes(65), "invalid signature type 4"),
        (b"\x01" + bytes(200), "exceeds the limit of 200"),
        (5, "expected a byte string"),
    ):
        with pytest.raises(DecodeError, match=reason):
            SignedMessage.from_cbor([message, signature])
    with pytest.raises(DecodeError, match=r"SignedMessage\.Message\.Nonce"):
        SignedMessage.from_cbor([[*message[:3], "x", *message[4:]], b"\x01" + bytes(65)])


def test_sign_and_verify_both_key_types() -> None:
    for key in (ALICE, BOB):
        message = transfer(from_=Address.of_key(key))
        signed = sign_message(message, key)
        signed.verify_signature(Address.of_key(key))
        decoded = SignedMessage.from_bytes(signed.to_bytes())
        decoded.verify_signature(Address.of_key(key))
        other = Address.of_key(PrivateKey.derive(key.type, b"mallory"))
        with pytest.raises(SignatureError):
            decoded.verify_signature(other)
        with pytest.raises(SignatureError, match="resolved"):
            decoded.verify_signature(Address.new_id(1000))


def test_cid_cache_is_not_part_of_equality() -> None:
    a, b = transfer(), transfer()
    a.cid()
    assert a == b and hash(a) == hash(b)
    assert transfer(nonce=1) != a


def test_constructor_ranges() -> None:
    for changes in ({"nonce": -1}, {"method": 1 << 64}, {"gas_limit": 1 << 63}, {"version": -1}):
        with pytest.raises(ValueError):
            transfer(**changes)
    with pytest.raises(TypeError):
        transfer(params="text")
    with pytest.raises(ValueError, match="128-byte limit"):
        transfer(value=1 << 1100).to_bytes()


def test_block_inclusion_rules() -> None:
    transfer().validate_for_block_inclusion(min_gas=100)
    refused: list[tuple[dict[str, object], str]] = [
        ({"version": 1}, "version"),
        ({"to": ZERO_ADDRESS}, "zero address"),
        ({"value": -1}, "negative"),
        ({"value": TOTAL_FILECOIN + 1}, "total Filecoin supply"),
        ({"gas_fee_cap": -1, "gas_premium": -2}, "GasFeeCap' cannot be negative"),
        ({"gas_premium": -1}, "GasPremium' cannot be negative"),
        ({"gas_premium": 201}, "less than 'GasPremium'"),
        ({"gas_limit": BLOCK_GAS_LIMIT + 1}, "block gas limit"),
        ({"gas_limit": 0}, "must be positive"),
        ({"gas_limit": 99}, "cost of storing"),
    ]
    for changes, reason in refused:
        with pytest.raises(InvalidMessage, match=reason):
            transfer(**changes).validate_for_block_inclusion(min_gas=100)
    transfer(value=TOTAL_FILECOIN, gas_limit=BLOCK_GAS_LIMIT).validate_for_block_inclusion(min_gas=100)


def test_gas_economics() -> None:
    message = transfer(gas_limit=1000, gas_fee_cap=300, gas_premium=50)
    assert message.required_funds() == 300_000
    assert message.effective_gas_premium(base_fee=100) == 50
    assert message.effective_gas_premium(base_fee=280) == 20
    assert message.effective_gas_premium(base_fee=400) == 0


def test_bls_signed_message_uses_unsigned_cid() -> None:
    message = transfer(from_=Address.of_key(BOB))
    signed = sign_message(message, BOB)
    assert signed.cid() == message.cid()
    secp = SignedMessage(message, Signature(SigType.SECP256K1, bytes(65)))
    assert secp.cid() == CID.hash_of(secp.to_bytes()) != message.cid()


@given(signed_messages)
def test_a_decoded_signed_message_keeps_its_messages_own_bytes(signed: SignedMessage) -> None:
    # keep_bytes cuts the message's encoding out of the signed message's bytes: it must be the very
    # encoding of the message (signatures of every length, one- and two-byte heads).
    data = signed.to_bytes()
    decoded = SignedMessage.from_bytes(data)
    assert decoded.message.to_bytes() == dagcbor.encode(signed.message.to_cbor())
    assert decoded.message.cid() == CID.hash_of(dagcbor.encode(signed.message.to_cbor()))
    assert decoded.to_bytes() == data
