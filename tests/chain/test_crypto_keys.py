"""Wallet keys: checks on construction, generation, signing, and Lotus KeyInfo / export parsing."""

import base64
import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.crypto.keys import BLS_ORDER, SECP256K1_ORDER, KeyType, PrivateKey
from chain.crypto.signature import SigType, is_valid
from chain.encoding.errors import DecodeError
from chain.types.address import Address


def test_invalid_private_keys() -> None:
    for key_type in KeyType:
        for data in (b"", bytes(31), bytes(33), bytes(32)):
            with pytest.raises(DecodeError):
                PrivateKey(key_type, data)
    with pytest.raises(DecodeError, match=r"1\.\.n-1"):
        PrivateKey(KeyType.SECP256K1, SECP256K1_ORDER.to_bytes(32, "big"))
    with pytest.raises(DecodeError, match=r"1\.\.r-1"):
        PrivateKey(KeyType.BLS, BLS_ORDER.to_bytes(32, "little"))
    # The largest valid BLS scalar works; written big-endian it would be out of range.
    top = PrivateKey(KeyType.BLS, (BLS_ORDER - 1).to_bytes(32, "little"))
    assert len(top.public_key) == 48
    with pytest.raises(DecodeError, match="unknown key type"):
        PrivateKey("ed25519", bytes(31) + b"\x01")  # type: ignore[arg-type]


@pytest.mark.parametrize("key_type", list(KeyType))
def test_generate_sign_verify(key_type: KeyType) -> None:
    key = PrivateKey.generate(key_type)
    assert key != PrivateKey.generate(key_type)
    address = Address.of_key(key)
    signature = key.sign(b"payload")
    assert signature.type == key.sig_type
    assert is_valid(signature, address, b"payload")
    assert not is_valid(signature, address, b"other payload")
    assert key.data.hex() not in repr(key)
    assert PrivateKey.from_keyinfo_json(key.to_keyinfo_json()) == key
    assert PrivateKey.from_lotus_export(key.to_lotus_export()) == key


@given(st.binary(max_size=40))
@settings(max_examples=25)
def test_derive_is_deterministic(seed: bytes) -> None:
    for key_type in KeyType:
        assert PrivateKey.derive(key_type, seed) == PrivateKey.derive(key_type, seed)


def test_keyinfo_shape() -> None:
    key = PrivateKey.derive(KeyType.BLS, b"shape")
    text = key.to_keyinfo_json()
    assert text.startswith('{"Type":"bls","PrivateKey":"') and " " not in text
    assert base64.b64decode(json.loads(text)["PrivateKey"]) == key.data


def test_delegated_key_address() -> None:
    # The well-known Ethereum address of private key 1.
    key = PrivateKey(KeyType.DELEGATED, (1).to_bytes(32, "big"))
    assert key.eth_address().hex() == "7e5f4552091a69125d5dfcb7b8c2659029395bdf"
    address = Address.of_key(key)
    assert address.namespace == 10 and address.subaddress == key.eth_address()
    assert key.sign(b"x").type == SigType.DELEGATED
    with pytest.raises(ValueError, match="no Ethereum address"):
        PrivateKey.derive(KeyType.BLS, b"x").eth_address()


def test_bad_keyinfo_is_rejected() -> None:
    good = base64.b64encode(bytes(31) + b"\x01").decode()
    refused = {
        "not json": "not valid JSON",
        "[]": "JSON object",
        f'{{"PrivateKey": "{good}"}}': "Type must be a string",
        '{"Type": "bls"}': "PrivateKey must be a base64 string",
        '{"Type": "bls", "PrivateKey": "***"}': "not valid base64",
        f'{{"Type": "rsa", "PrivateKey": "{good}"}}': "unknown key type",
        '{"Type": "bls", "PrivateKey": "AAAA"}': "32 bytes",
    }
    for text, reason in refused.items():
        with pytest.raises(DecodeError, match=reason):
            PrivateKey.from_keyinfo_json(text)
    with pytest.raises(DecodeError, match="not hex"):
        PrivateKey.from_lotus_export("7b2z")
    with pytest.raises(DecodeError, match="not valid JSON"):
        PrivateKey.from_lotus_export("ff")


@given(st.binary(max_size=100))
def test_random_exports_never_crash(data: bytes) -> None:
    for text in (data.hex(), data.decode("latin-1")):
        with contextlib.suppress(DecodeError):
            PrivateKey.from_lotus_export(text)
        with contextlib.suppress(DecodeError):
            PrivateKey.from_keyinfo_json(text)
