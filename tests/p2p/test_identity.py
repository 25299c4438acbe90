"""The host key kept as Lotus keeps it: go-libp2p's marshalling inside a KeyInfo of type libp2p-host."""

import base64
import json
from pathlib import Path

import pytest
from libp2p.crypto.ed25519 import create_new_key_pair as new_ed25519
from libp2p.crypto.pb import crypto_pb2
from libp2p.crypto.secp256k1 import create_new_key_pair as new_secp256k1

from chain.encoding.errors import DecodeError
from node.p2p.identity import (
    KEY_NAME,
    KeyInfoFile,
    MemoryIdentity,
    keyinfo_json,
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


def test_keyinfo_file_creates_once_and_keeps_the_key(tmp_path: Path) -> None:
    path = tmp_path / "keystore" / "NRUWE4BSOAWWQ33TOQ"
    store = KeyInfoFile(path)
    assert store.load() is None
    first = load_or_create_identity(store)
    info = json.loads(path.read_bytes())
    assert list(info) == ["Type", "PrivateKey"] and info["Type"] == KEY_NAME
    assert base64.b64decode(info["PrivateKey"]) == marshal_private_key(first.private_key)
    assert path.stat().st_mode & 0o777 == 0o600
    assert peer_id_of(load_or_create_identity(KeyInfoFile(path))) == peer_id_of(first)
    assert path.read_bytes() == keyinfo_json(marshal_private_key(first.private_key))


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"{", "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (b'{"Type":"bls","PrivateKey":"AAAA"}', "expected 'libp2p-host'"),
        (b'{"Type":"libp2p-host","PrivateKey":7}', "base64 string"),
        (b'{"Type":"libp2p-host","PrivateKey":"***"}', "not valid base64"),
    ],
)
def test_bad_keyinfo_files_are_refused(tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "key"
    path.write_bytes(content)
    with pytest.raises(DecodeError, match=says):
        load_or_create_identity(KeyInfoFile(path))
    assert path.read_bytes() == content  # a bad key is never replaced by a new one


def test_memory_identity() -> None:
    store = MemoryIdentity()
    assert peer_id_of(load_or_create_identity(store)) == peer_id_of(load_or_create_identity(store))
