"""keys.json: private key -> public key -> address, and Lotus's KeyInfo and `wallet export` forms."""

from typing import Any

import coincurve
import pytest

from chain.crypto.keys import KeyType, PrivateKey
from chain.types.address import Address
from tests.vectors import cases


@pytest.mark.parametrize("case", cases("keys.json"))
def test_key_case(case: dict[str, Any]) -> None:
    key_type = KeyType(case["type"])
    data = bytes.fromhex(case["private_key_hex"])
    key = PrivateKey(key_type, data)
    assert key.public_key.hex() == case["public_key_hex"]
    if key_type is KeyType.SECP256K1:
        assert "big-endian" in case["private_key_byte_order"]
        compressed = coincurve.PublicKey(key.public_key).format(compressed=True)
        assert compressed.hex() == case["public_key_compressed_hex"]
    else:
        assert "little-endian" in case["private_key_byte_order"]
        assert data[::-1].hex() == case["private_key_big_endian_hex"]

    address = Address.of_key(key)
    assert address.to_string("f") == case["address_mainnet"]
    assert address.to_string("t") == case["address_testnet"]
    assert address.to_bytes().hex() == case["address_bytes_hex"]

    assert key.to_keyinfo_json() == case["lotus_keyinfo_json"]
    assert key.to_lotus_export() == case["lotus_wallet_export_hex"]
    assert PrivateKey.from_keyinfo_json(case["lotus_keyinfo_json"]) == key
    assert PrivateKey.from_lotus_export(case["lotus_wallet_export_hex"]) == key
    assert PrivateKey.from_lotus_export(case["lotus_wallet_export_hex"].upper() + "\n") == key
    # The vectors' keys were made from their labels; derive() reproduces that.
    assert PrivateKey.derive(key_type, case["label"].encode()) == key
