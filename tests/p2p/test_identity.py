"""The host key kept as Lotus keeps it: go-libp2p's marshalling inside a KeyInfo of type libp2p-host."""

import base64
import json
from pathlib import Path

import pytest
from libp2p.crypto.ed25519 import create_new_key_pair as new_ed25519
from libp2p.crypto.pb import crypto_pb2
from libp2p.crypto.secp256k1 import create_new_key_pair as new_secp256k1

from chain.encoding.errors import DecodeError
from node.keystore import KeyInfo, Keystore
from node.p2p.identity import (
    KEY_NAME,
    KeystoreIdentity,
    MemoryIdentity,
    load_or_create_identity,
    marshal_private_key,
    peer_id_of,
    unmarshal_private_key,
)

SEED = bytes(range(32))


def test_ed25519_is_marshalled_in_go_layout() -> None:
    pair = new_ed25519(SEED)
    marshalled = marshal_private_key(pair.private_key)
    # protobuf: field 1 (Type) = 1 (Ed25519), field 2 (Data) = 64 bytes: seed, then the public key
    assert marshalled[:4] == bytes([0x08, 0x01, 0x12, 0x40])
    assert marshalled[4:36] == SEED and marshalled[36:] == pair.public_key.to_bytes()
    again = unmarshal_private_key(marshalled)
    assert peer_id_of(again) == peer_id_of(pair)
    # The 96-byte layout of old go-libp2p versions, and a bare seed, are read as well.
    old = crypto_pb2.PrivateKey(key_type=1, data=SEED + pair.public_key.to_bytes() * 2).SerializeToString()
    bare = crypto_pb2.PrivateKey(key_type=1, data=SEED).SerializeToString()
    assert (
        peer_id_of(unmarshal_private_key(old)) == peer_id_of(unmarshal_private_key(bare)) == peer_id_of(pair)
    )


def test_secp256k1_keys_round_trip() -> None:
    pair = new_secp256k1()
    assert peer_id_of(unmarshal_private_key(marshal_private_key(pair.private_key))) == peer_id_of(pair)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"\xff\xff\xff", "not a key protobuf"),
        (crypto_pb2.PrivateKey(key_type=1, data=bytes(40)).SerializeToString(), "40 bytes"),
        (crypto_pb2.PrivateKey(key_type=1, data=SEED + bytes(32)).SerializeToString(), "does not match"),
        (crypto_pb2.PrivateKey(key_type=2, data=bytes(31)).SerializeToString(), "31 bytes"),
        (crypto_pb2.PrivateKey(key_type=0, data=bytes(32)).SerializeToString(), "unsupported key type"),
    ],
)
def test_bad_keys_are_refused(data: bytes, says: str) -> None:
    with pytest.raises(DecodeError, match=says):
        unmarshal_private_key(data)


def test_the_key_is_kept_in_the_keystore_as_lotus_keeps_it(tmp_path: Path) -> None:
    keystore = Keystore.create(tmp_path / "keystore")
    store = KeystoreIdentity(keystore)
    assert store.load() is None
    first = load_or_create_identity(store)
    path = tmp_path / "keystore" / "NRUWE4BSOAWWQ33TOQ"  # base32 of "libp2p-host", as Lotus names it
    info = json.loads(path.read_bytes())
    assert list(info) == ["Type", "PrivateKey"] and info["Type"] == KEY_NAME
    assert base64.b64decode(info["PrivateKey"]) == marshal_private_key(first.private_key)
    assert path.stat().st_mode & 0o777 == 0o600
    reopened = KeystoreIdentity(Keystore(tmp_path / "keystore"))
    assert peer_id_of(load_or_create_identity(reopened)) == peer_id_of(first)


def test_a_bad_stored_key_is_refused_not_replaced(tmp_path: Path) -> None:
    keystore = Keystore.create(tmp_path / "keystore")
    keystore.put(KEY_NAME, KeyInfo(type="secp256k1", private_key=bytes(32)))
    with pytest.raises(DecodeError, match="has type 'secp256k1'"):
        load_or_create_identity(KeystoreIdentity(keystore))
    keystore.put(KEY_NAME, KeyInfo(type=KEY_NAME, private_key=b"\xff\xff"), overwrite=True)
    with pytest.raises(DecodeError, match="not a key protobuf"):
        load_or_create_identity(KeystoreIdentity(keystore))
    assert keystore.get(KEY_NAME).private_key == b"\xff\xff"  # still there, for the operator to see


def test_memory_identity() -> None:
    store = MemoryIdentity()
    assert peer_id_of(load_or_create_identity(store)) == peer_id_of(load_or_create_identity(store))
