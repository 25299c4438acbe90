"""Wallet keys: secp256k1, BLS and delegated (Ethereum-style secp256k1) private keys.

The private key bytes are exactly what Lotus keeps in KeyInfo.PrivateKey: the 32-byte big-endian
scalar for secp256k1 and delegated keys, the 32-byte LITTLE-endian scalar for BLS (filecoin-ffi and
bls-signatures order; blspy takes big-endian, so the bytes are reversed at that boundary).

Formats shared with Lotus:
- KeyInfo JSON: {"Type":"secp256k1"|"bls"|"delegated","PrivateKey":"<base64 std, padded>"}, fields in
  that order, no spaces (Go json.Marshal of lotus chain/types KeyInfo).
- `lotus wallet export` / `lotus wallet import` (default format hex-lotus): hex of the KeyInfo JSON.
"""

import base64
import binascii
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import coincurve
from blspy import BasicSchemeMPL
from blspy import PrivateKey as BlsSecret

from chain.crypto.signature import (
    Signature,
    SigType,
    blake2b_256,
    eth_address_of,
    keccak_256,
    sign_secp256k1,
)
from chain.encoding.errors import DecodeError

PRIVATE_KEY_LENGTH: Final = 32
SECP256K1_ORDER: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
BLS_ORDER: Final = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001


class KeyType(StrEnum):
    """Lotus KeyInfo.Type names."""

    SECP256K1 = "secp256k1"
    BLS = "bls"
    DELEGATED = "delegated"


_SIG_TYPES: Final = {
    KeyType.SECP256K1: SigType.SECP256K1,
    KeyType.BLS: SigType.BLS,
    KeyType.DELEGATED: SigType.DELEGATED,
}


@dataclass(frozen=True, slots=True, repr=False)
class PrivateKey:
    """A private key in Lotus byte order; constructing one checks it and derives the public key."""

    type: KeyType
    data: bytes
    public_key: bytes = field(init=False, compare=False)
    _secret: Any = field(init=False, compare=False)

    def __post_init__(self) -> None:
        try:
            key_type = KeyType(self.type)
        except ValueError:
            raise DecodeError(
                f"unknown key type {self.type!r}: expected secp256k1, bls or delegated"
            ) from None
        object.__setattr__(self, "type", key_type)
        if type(self.data) is not bytes or len(self.data) != PRIVATE_KEY_LENGTH:
            raise DecodeError(f"{key_type} private key must be {PRIVATE_KEY_LENGTH} bytes")
        if key_type is KeyType.BLS:
            scalar = int.from_bytes(self.data, "little")
            if not 0 < scalar < BLS_ORDER:
                raise DecodeError("BLS private key scalar must be in 1..r-1 (little-endian bytes)")
            secret: Any = BlsSecret.from_bytes(self.data[::-1])
            public = bytes(secret.get_g1())
        else:
            scalar = int.from_bytes(self.data, "big")
            if not 0 < scalar < SECP256K1_ORDER:
                raise DecodeError(f"{key_type} private key scalar must be in 1..n-1 (big-endian bytes)")
            secret = coincurve.PrivateKey(self.data)
            public = secret.public_key.format(compressed=False)
        object.__setattr__(self, "_secret", secret)
        object.__setattr__(self, "public_key", public)

    def __repr__(self) -> str:
        return f"PrivateKey(type={self.type.value!r}, public_key={self.public_key.hex()[:16]}...)"

    # making keys ----------------------------------------------------------------------------------
    @classmethod
    def generate(cls, key_type: KeyType) -> "PrivateKey":
        """A fresh key from the operating system's randomness."""
        if key_type is KeyType.BLS:
            # blspy's IETF KeyGen over 32 random bytes; any scalar in 1..r-1 is a valid Lotus key.
            secret = BasicSchemeMPL.key_gen(secrets.token_bytes(32))
            return cls(key_type, bytes(secret)[::-1])
        return cls(key_type, coincurve.PrivateKey().secret)

    @classmethod
    def derive(cls, key_type: KeyType, seed: bytes) -> "PrivateKey":
        """A deterministic key for devnets and tests: secp256k1 sk = sha256(seed); BLS scalar =
        int_be(sha256(seed)) mod r. This is how the interop vectors' keys were made from their labels."""
        digest = hashlib.sha256(seed).digest()
        if key_type is KeyType.BLS:
            scalar = int.from_bytes(digest, "big") % BLS_ORDER
            return cls(key_type, scalar.to_bytes(PRIVATE_KEY_LENGTH, "little"))
        return cls(key_type, digest)

    # signing --------------------------------------------------------------------------------------
    @property
    def sig_type(self) -> SigType:
        return _SIG_TYPES[self.type]

    def sign(self, data: bytes) -> Signature:
        """Sign as lotus sigs.Sign: secp256k1 over blake2b-256(data), delegated over keccak-256(data),
        BLS over data itself. For a message, data is its CID bytes."""
        if self.type is KeyType.BLS:
            return Signature(SigType.BLS, bytes(BasicSchemeMPL.sign(self._secret, data)))
        digest = blake2b_256(data) if self.type is KeyType.SECP256K1 else keccak_256(data)
        return Signature(self.sig_type, sign_secp256k1(self._secret, digest))

    def eth_address(self) -> bytes:
        """The 20-byte Ethereum address of a secp256k1 or delegated key."""
        if self.type is KeyType.BLS:
            raise ValueError("a BLS key has no Ethereum address")
        return eth_address_of(self.public_key)

    # Lotus formats --------------------------------------------------------------------------------
    def to_keyinfo_json(self) -> str:
        private = base64.b64encode(self.data).decode("ascii")
        return json.dumps({"Type": self.type.value, "PrivateKey": private}, separators=(",", ":"))

    @classmethod
    def from_keyinfo_json(cls, text: str | bytes) -> "PrivateKey":
        try:
            info = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DecodeError(f"KeyInfo is not valid JSON: {exc}") from None
        if not isinstance(info, dict):
            raise DecodeError(f"KeyInfo must be a JSON object, got {type(info).__name__}")
        key_type, private = info.get("Type"), info.get("PrivateKey")
        if not isinstance(key_type, str):
            raise DecodeError("KeyInfo.Type must be a string")
        if not isinstance(private, str):
            raise DecodeError("KeyInfo.PrivateKey must be a base64 string")
        try:
            data = base64.b64decode(private, validate=True)
        except binascii.Error as exc:
            raise DecodeError(f"KeyInfo.PrivateKey is not valid base64: {exc}") from None
        try:
            kind = KeyType(key_type)
        except ValueError:
            raise DecodeError(
                f"unknown key type {key_type!r}: expected secp256k1, bls or delegated"
            ) from None
        return cls(kind, data)

    def to_lotus_export(self) -> str:
        """What `lotus wallet export` prints: hex of the KeyInfo JSON."""
        return self.to_keyinfo_json().encode("utf-8").hex()

    @classmethod
    def from_lotus_export(cls, text: str) -> "PrivateKey":
        """Read what `lotus wallet export` printed (surrounding whitespace ignored, as lotus import)."""
        try:
            raw = bytes.fromhex(text.strip())
        except ValueError as exc:
            raise DecodeError(f"exported key is not hex: {exc}") from None
        return cls.from_keyinfo_json(raw)
