"""The host's persistent libp2p identity, kept as Lotus keeps it.

Lotus stores the key in the repo keystore under the name `libp2p-host` as a KeyInfo
`{"Type": "libp2p-host", "PrivateKey": <base64>}` whose bytes are the key marshalled by go-libp2p
(`crypto.MarshalPrivateKey`: protobuf `{Type, Data}`), and makes an Ed25519 key on first start.
go-libp2p writes an Ed25519 key's Data as seed || public key (64 bytes) and refuses the 32-byte seed
alone, which is what py-libp2p writes, so the marshalling here is done to Go's layout. secp256k1 keys
(Data = the 32-byte secret) are read as well.

The keystore (node/keystore.py) owns files, names and the KeyInfo JSON; this module needs only an
`IdentityStore` that loads and saves the marshalled bytes: `KeystoreIdentity` over the repo keystore,
`MemoryIdentity` for tests and throwaway hosts.
"""

from typing import Final, Protocol

from google.protobuf.message import DecodeError as ProtobufDecodeError
from libp2p.crypto.ed25519 import Ed25519PrivateKey
from libp2p.crypto.ed25519 import create_new_key_pair as new_ed25519
from libp2p.crypto.keys import KeyPair, KeyType, PrivateKey
from libp2p.crypto.pb import crypto_pb2
from libp2p.crypto.secp256k1 import Secp256k1PrivateKey

from chain.encoding.errors import DecodeError
from node.keystore import KeyInfo, KeyNotFound, Keystore
from node.p2p.protocols import PeerID

KEY_NAME: Final = "libp2p-host"  # the keystore entry's name and its KeyInfo.Type (lotus KLibp2pHost)
_ED25519_SEED: Final = 32


class IdentityStore(Protocol):
    """Where the marshalled host key lives (the repo keystore, a file, memory)."""

    def load(self) -> bytes | None:
        """The marshalled key, or None when there is none yet."""

    def save(self, marshalled: bytes) -> None:
        """Keep the marshalled key durably (written atomically, readable by the owner only)."""


def marshal_private_key(key: PrivateKey) -> bytes:
    """go-libp2p's MarshalPrivateKey: protobuf {Type, Data}, Ed25519 Data = seed || public key."""
    kind = key.get_type()
    if kind == KeyType.Ed25519:
        data = key.to_bytes() + key.get_public_key().to_bytes()
    elif kind == KeyType.Secp256k1:
        data = key.to_bytes()
    else:
        raise ValueError(f"host keys are Ed25519 or secp256k1, not {kind.name}")
    return crypto_pb2.PrivateKey(key_type=kind.value, data=data).SerializeToString()


def unmarshal_private_key(marshalled: bytes) -> KeyPair:
    """Read a key written by marshal_private_key or by go-libp2p; DecodeError says what is wrong."""
    try:
        proto = crypto_pb2.PrivateKey.FromString(marshalled)
    except ProtobufDecodeError as exc:
        raise DecodeError(f"libp2p private key: not a key protobuf: {exc}") from None
    data = bytes(proto.data)
    private: PrivateKey
    if proto.key_type == KeyType.Ed25519.value:
        # 64 bytes: seed || public key (Go); 96 bytes: an old Go layout with the public key repeated.
        if len(data) not in (_ED25519_SEED, 64, 96):
            raise DecodeError(f"libp2p private key: Ed25519 data of {len(data)} bytes, expected 64")
        private = Ed25519PrivateKey.from_bytes(data[:_ED25519_SEED])
        public = private.get_public_key().to_bytes()
        if len(data) > _ED25519_SEED and data[_ED25519_SEED:64] != public:
            raise DecodeError("libp2p private key: the Ed25519 public half does not match the seed")
    elif proto.key_type == KeyType.Secp256k1.value:
        if len(data) != 32:
            raise DecodeError(f"libp2p private key: secp256k1 data of {len(data)} bytes, expected 32")
        try:
            private = Secp256k1PrivateKey.from_bytes(data)
        except ValueError as exc:
            raise DecodeError(f"libp2p private key: invalid secp256k1 secret: {exc}") from None
    else:
        raise DecodeError(f"libp2p private key: unsupported key type {proto.key_type}")
    return KeyPair(private, private.get_public_key())


def load_or_create_identity(store: IdentityStore) -> KeyPair:
    """The stored key, or a new Ed25519 key saved to the store first (as lotus lp2p.PrivKey)."""
    marshalled = store.load()
    if marshalled is not None:
        return unmarshal_private_key(marshalled)
    pair = new_ed25519()
    store.save(marshal_private_key(pair.private_key))
    return pair


def peer_id_of(pair: KeyPair) -> PeerID:
    return PeerID.from_pubkey(pair.public_key)


class KeystoreIdentity:
    """A host key in the repo keystore, under `libp2p-host` (node/keystore.py writes the KeyInfo), or
    under another name for another host of the node (the storage provider's, `libp2p-provider`)."""

    def __init__(self, keystore: Keystore, name: str = KEY_NAME) -> None:
        self.keystore = keystore
        self.name = name

    def load(self) -> bytes | None:
        try:
            info = self.keystore.get(self.name)
        except KeyNotFound:
            return None
        if info.type != KEY_NAME:
            raise DecodeError(f"keystore key {self.name!r} has type {info.type!r}, expected {KEY_NAME!r}")
        return info.private_key

    def save(self, marshalled: bytes) -> None:
        self.keystore.put(self.name, KeyInfo(type=KEY_NAME, private_key=marshalled))


class MemoryIdentity:
    """An IdentityStore in memory (tests, and hosts that need no persistent identity)."""

    def __init__(self, marshalled: bytes | None = None) -> None:
        self.marshalled = marshalled

    def load(self) -> bytes | None:
        return self.marshalled

    def save(self, marshalled: bytes) -> None:
        self.marshalled = marshalled
