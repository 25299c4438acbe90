"""The keystore: Lotus's file names and KeyInfo content, 0600 atomic writes, bad files reported by name
without stopping the others, and no torn key after kill -9."""

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from chain.crypto.keys import KeyType, PrivateKey
from chain.encoding.errors import DecodeError
from node import keystore
from tests.node.crash import kill_while_writing

SECP = PrivateKey.derive(KeyType.SECP256K1, b"keystore-test-secp")
BLS = PrivateKey.derive(KeyType.BLS, b"keystore-test-bls")


def info(key: PrivateKey) -> keystore.KeyInfo:
    return keystore.KeyInfo(type=key.type.value, private_key=key.data)


@pytest.fixture
def store(tmp_path: Path) -> keystore.Keystore:
    return keystore.Keystore.create(tmp_path / "keystore")


def test_file_names_are_lotus_base32() -> None:
    # go-base32 RawStdEncoding: RFC 4648 alphabet, upper case, no padding (a Lotus repo's `default`
    # key file is MRSWMYLVNR2A)
    assert keystore.encode_name("default") == "MRSWMYLVNR2A"
    for name in ("default", "wallet-t1abc", "libp2p-host", "auth-jwt-private", "a", "ab", "abcde"):
        encoded = keystore.encode_name(name)
        assert encoded == base64.b32encode(name.encode()).decode().rstrip("=")
        assert "=" not in encoded and encoded.upper() == encoded
        assert keystore.decode_name(encoded) == name
    for bad in ("mrswmylvnr2a", "MRSWMYLVNR2A=", "M1", "MRSWMYLVNR2B", ""):
        with pytest.raises(ValueError, match="not a base32-encoded key name"):
            keystore.decode_name(bad)


def test_content_is_go_json_of_keyinfo(store: keystore.Keystore) -> None:
    store.put("wallet-x", info(SECP))
    data = (store.directory / keystore.encode_name("wallet-x")).read_bytes()
    # chain/crypto/keys.py writes the same JSON independently (the `lotus wallet export` form)
    assert data == SECP.to_keyinfo_json().encode()
    assert json.loads(data) == {"Type": "secp256k1", "PrivateKey": base64.b64encode(SECP.data).decode()}
    assert list(json.loads(data)) == ["Type", "PrivateKey"]


def test_put_get_list_has_delete(store: keystore.Keystore) -> None:
    assert store.list() == [] and not store.has("default")
    store.put("wallet-a", info(SECP))
    store.put("wallet-b", info(BLS))
    store.put("auth-jwt-private", keystore.KeyInfo(type="jwt-hmac-secret", private_key=b"\x01" * 32))
    assert sorted(store.list()) == ["auth-jwt-private", "wallet-a", "wallet-b"]
    assert store.get("wallet-b") == info(BLS) and store.has("wallet-a")
    with pytest.raises(keystore.KeyExists, match="key 'wallet-a' already exists"):
        store.put("wallet-a", info(BLS))
    store.put("wallet-a", info(BLS), overwrite=True)
    assert store.get("wallet-a") == info(BLS)
    store.delete("wallet-a")
    assert not store.has("wallet-a")
    with pytest.raises(keystore.KeyNotFound, match="key 'wallet-a' not found"):
        store.get("wallet-a")
    with pytest.raises(keystore.KeyNotFound, match="key 'wallet-a' not found"):
        store.delete("wallet-a")
    with pytest.raises(keystore.KeystoreError, match="a key name must be a non-empty string"):
        store.put("", info(SECP))
    with pytest.raises(keystore.KeystoreError, match="longer than 150 bytes"):
        store.put("x" * 151, info(SECP))


def test_modes(tmp_path: Path, store: keystore.Keystore) -> None:
    store.put("wallet-a", info(SECP))
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((store.directory / keystore.encode_name("wallet-a")).stat().st_mode) == 0o600
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)
    keystore.Keystore.create(loose)
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700


def test_bad_files_are_reported_by_name_and_do_not_stop_the_others(store: keystore.Keystore) -> None:
    store.put("wallet-good", info(SECP))
    store.put("wallet-open", info(BLS))
    os.chmod(store.directory / keystore.encode_name("wallet-open"), 0o644)
    (store.directory / keystore.encode_name("wallet-torn")).write_bytes(b'{"Type":"secp256k1","Priv')
    os.chmod(store.directory / keystore.encode_name("wallet-torn"), 0o600)
    (store.directory / "not-base32!").write_bytes(b"{}")
    (store.directory / keystore.encode_name("a-directory")).mkdir()
    (store.directory / ".wallet-good.abc123.tmp").write_bytes(b"half a key")  # a crashed write_atomic

    listing = store.scan()
    assert sorted(listing.names) == ["wallet-good", "wallet-torn"]
    problems = {p.file: p.reason for p in listing.problems}
    assert problems == {
        keystore.encode_name("wallet-open"): "permissions 0o644 are too open (0600 required)",
        "not-base32!": "not a base32-encoded key name",
        keystore.encode_name("a-directory"): "not a regular file",
    }
    assert store.get("wallet-good") == info(SECP)
    with pytest.raises(keystore.BadKeyFile) as torn:
        store.get("wallet-torn")
    assert torn.value.file == keystore.encode_name("wallet-torn")
    assert (
        f"keystore file {keystore.encode_name('wallet-torn')}: key 'wallet-torn': KeyInfo: not valid JSON"
        in str(torn.value)
    )
    with pytest.raises(keystore.BadKeyFile, match="permissions 0o644 are too open"):
        store.get("wallet-open")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[]", "KeyInfo: expected a JSON object, got list"),
        (b'{"Type":"secp256k1"}', "KeyInfo: missing field 'PrivateKey'"),
        (b'{"Type":7,"PrivateKey":"AA=="}', "KeyInfo.Type"),
        (b'{"Type":"secp256k1","PrivateKey":"!!"}', "KeyInfo.PrivateKey"),
        (b'{"Type":"","PrivateKey":"AA=="}', "KeyInfo.Type: empty"),
        (b'{"Type":"bls","PrivateKey":""}', "KeyInfo.PrivateKey"),
        (b"\xff", "KeyInfo: not valid JSON"),
    ],
)
def test_keyinfo_decoding_errors(content: bytes, message: str) -> None:
    with pytest.raises(DecodeError) as caught:
        keystore.keyinfo_from_bytes(content)
    assert message in str(caught.value)


def test_keyinfo_round_trip() -> None:
    secret = keystore.KeyInfo(type="jwt-hmac-secret", private_key=bytes(range(32)))
    assert keystore.keyinfo_from_bytes(keystore.keyinfo_to_bytes(secret)) == secret


def test_get_or_create_makes_a_secret_once(store: keystore.Keystore) -> None:
    made: list[bytes] = []

    def make() -> bytes:
        made.append(os.urandom(32))
        return made[-1]

    first = store.get_or_create("auth-jwt-private", "jwt-hmac-secret", make)
    again = store.get_or_create("auth-jwt-private", "jwt-hmac-secret", make)
    assert first == again and len(made) == 1 and first.private_key == made[0]
    with pytest.raises(keystore.BadKeyFile, match="has type 'jwt-hmac-secret', expected 'libp2p-host'"):
        store.get_or_create("auth-jwt-private", "libp2p-host", make)


def test_a_failed_write_keeps_the_old_key(store: keystore.Keystore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.put("default", info(SECP))

    def crash(src: str, dst: str) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(keystore.KeystoreError, match="cannot write key 'default': Input/output error"):
        store.put("default", info(BLS), overwrite=True)
    monkeypatch.undo()
    assert store.get("default") == info(SECP)
    assert [p.name for p in store.directory.iterdir()] == [keystore.encode_name("default")]


_REWRITER = """
import sys
from pathlib import Path
from chain.crypto.keys import KeyType, PrivateKey
from chain.encoding.errors import DecodeError
from node.keystore import KeyInfo, Keystore
store = Keystore(Path(sys.argv[1]))
keys = [
    PrivateKey.derive(KeyType.SECP256K1, b"keystore-test-secp"),
    PrivateKey.derive(KeyType.BLS, b"keystore-test-bls"),
]
infos = [KeyInfo(type=k.type.value, private_key=k.data) for k in keys]
print("ready", flush=True)
i = 0
while True:
    store.put("default", infos[i % 2], overwrite=True)
    i += 1
"""


def test_kill_9_while_writing_never_leaves_a_torn_key(store: keystore.Keystore) -> None:
    store.put("default", info(SECP))
    for delay in (0.05, 0.1, 0.2):
        kill_while_writing(_REWRITER, str(store.directory), delay)
        assert store.get("default") in (info(SECP), info(BLS))
        assert store.list() == ["default"]  # a leftover temporary file is not a key
