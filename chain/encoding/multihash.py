"""Multihashes: <varint code><varint digest length><digest>."""

import hashlib
from dataclasses import dataclass

from chain.encoding.errors import DecodeError
from chain.encoding.varint import decode_uvarint, encode_uvarint

IDENTITY = 0x00
SHA2_256 = 0x12
BLAKE2B_256 = 0xB220
SHA2_256_TRUNC254_PADDED = 0x1012

# Identity multihashes inline their data; Filecoin (go-state-types) bounds inline CIDs at 128 bytes.
MAX_IDENTITY_DIGEST = 128
_DIGEST_SIZES = {SHA2_256: 32, BLAKE2B_256: 32, SHA2_256_TRUNC254_PADDED: 32}
NAMES = {
    IDENTITY: "identity",
    SHA2_256: "sha2-256",
    BLAKE2B_256: "blake2b-256",
    SHA2_256_TRUNC254_PADDED: "sha2-256-trunc254-padded",
}


def blake2b_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


@dataclass(frozen=True, slots=True)
class Multihash:
    code: int
    digest: bytes

    def to_bytes(self) -> bytes:
        return encode_uvarint(self.code) + encode_uvarint(len(self.digest)) + self.digest

    @classmethod
    def from_bytes(cls, data: bytes) -> "Multihash":
        mh, end = cls.read(data, 0)
        if end != len(data):
            raise DecodeError(f"multihash has {len(data) - end} trailing bytes")
        return mh

    @classmethod
    def read(cls, data: bytes, offset: int) -> tuple["Multihash", int]:
        """Parse a multihash at offset; return it and the offset after it."""
        code, pos = decode_uvarint(data, offset)
        length, pos = decode_uvarint(data, pos)
        if pos + length > len(data):
            raise DecodeError(f"multihash digest is truncated: needs {length} bytes, has {len(data) - pos}")
        expected = _DIGEST_SIZES.get(code)
        if expected is not None and length != expected:
            raise DecodeError(f"multihash {NAMES[code]} digest must be {expected} bytes, got {length}")
        if code == IDENTITY and length > MAX_IDENTITY_DIGEST:
            raise DecodeError(f"identity multihash of {length} bytes exceeds {MAX_IDENTITY_DIGEST}")
        return cls(code, bytes(data[pos : pos + length])), pos + length

    @classmethod
    def digest_of(cls, code: int, data: bytes) -> "Multihash":
        """Hash data with the named function (identity inlines it).

        sha2-256-trunc254-padded is absent on purpose: its digest is a piece commitment (a Merkle root
        over fr32-padded data, see proofs.commp), not a hash of the bytes given.
        """
        if code == BLAKE2B_256:
            return cls(code, blake2b_256(data))
        if code == SHA2_256:
            return cls(code, hashlib.sha256(data).digest())
        if code == IDENTITY:
            if len(data) > MAX_IDENTITY_DIGEST:
                raise ValueError(f"identity multihash of {len(data)} bytes exceeds {MAX_IDENTITY_DIGEST}")
            return cls(code, bytes(data))
        raise ValueError(f"unsupported multihash code 0x{code:x}")
