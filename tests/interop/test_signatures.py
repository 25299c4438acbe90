"""signatures.json: secp256k1 and BLS signed messages, their bytes, CIDs and Lotus JSON."""

from typing import Any

import pytest

from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.signature import (
    Signature,
    SignatureError,
    SigType,
    aggregate_bls,
    blake2b_256,
    recover_secp256k1,
    verify,
    verify_bls_aggregate,
)
from chain.encoding.cid import CID
from chain.types.address import Address
from chain.types.message import Message, SignedMessage, sign_message
from tests.vectors import cases, require


@pytest.mark.parametrize("case", cases("signatures.json"))
def test_signed_message_case(case: dict[str, Any]) -> None:
    sig_type = SigType(case["signature_type"])
    key_type = KeyType.SECP256K1 if sig_type is SigType.SECP256K1 else KeyType.BLS
    key = PrivateKey(key_type, bytes.fromhex(case["signer_private_key_hex"]))
    assert key.public_key.hex() == case["signer_public_key_hex"]
    signer = Address.parse(case["signer_address"])
    assert Address.of_key(key) == signer

    message = Message.from_json(case["message"])
    assert str(message.cid()) == case["message_cid"]
    assert message.from_ == signer

    # Signing is deterministic for both types (RFC 6979 for secp256k1), so bytes must match exactly.
    signed = sign_message(message, key)
    assert signed.signature.type == sig_type
    assert signed.signature.data.hex() == case["signature_hex"]
    assert signed.signature.to_bytes().hex() == case["signature_bytes_field_hex"]
    assert signed.signature.to_json() == case["signature_lotus_json"]
    assert Signature.from_json(case["signature_lotus_json"]) == signed.signature

    data = bytes.fromhex(case["signed_message_cbor_hex"])
    assert signed.to_bytes() == data
    assert str(CID.hash_of(data)) == case["signed_message_cbor_cid"]
    assert str(signed.cid()) == case["lotus_signed_message_cid"]
    if sig_type is SigType.BLS:
        assert case["lotus_signed_message_cid"] == case["message_cid"]
    else:
        assert case["lotus_signed_message_cid"] == case["signed_message_cbor_cid"]

    decoded = SignedMessage.from_bytes(data)
    assert decoded == signed
    assert decoded.cid() == signed.cid()
    decoded.verify_signature(signer)
    if sig_type is SigType.SECP256K1:
        digest = blake2b_256(message.cid().bytes)
        assert recover_secp256k1(signed.signature.data, digest) == key.public_key

    written = decoded.to_json("f")
    assert written["CID"] == {"/": case["lotus_signed_message_cid"]}
    assert written["Signature"] == case["signature_lotus_json"]
    assert SignedMessage.from_json(written) == signed

    # Any change to what was signed, or to the signature, must fail.
    fields = message.to_cbor()
    fields[3] = message.nonce + 1
    changed = SignedMessage(Message.from_cbor(fields), signed.signature)
    with pytest.raises(SignatureError):
        changed.verify_signature(signer)
    flipped = bytearray(signed.signature.data)
    flipped[5] ^= 0x01
    with pytest.raises(SignatureError):
        verify(Signature(sig_type, bytes(flipped)), signer, message.cid().bytes)


def test_bls_aggregate_of_vector_signatures() -> None:
    data = require("signatures.json")
    bls = [case for case in data["cases"] if case["signature_type"] == SigType.BLS]
    assert bls
    signatures = [Signature(SigType.BLS, bytes.fromhex(case["signature_hex"])) for case in bls]
    public_keys = [bytes.fromhex(case["signer_public_key_hex"]) for case in bls]
    messages = [CID.parse(case["message_cid"]).bytes for case in bls]
    aggregate = aggregate_bls(signatures)
    verify_bls_aggregate(aggregate, public_keys, messages)
    with pytest.raises(SignatureError):
        verify_bls_aggregate(aggregate, public_keys[:-1], messages[:-1])
    with pytest.raises(SignatureError):
        verify_bls_aggregate(aggregate, public_keys[1:] + public_keys[:1], messages)
