"""Content identifiers: CIDv0 (bare sha2-256 multihash, base58btc) and CIDv1 (version, codec, multihash).

Text forms: CIDv1 as multibase base32 lower ('b', no padding), CIDv0 as base58btc 'Qm...'. Parsing also
accepts multibase base58btc ('z') and base32 upper ('B') for CIDv1.
"""

import base64
import builtins
import hashlib
from typing import Final

import base58

from chain.encoding.errors import DecodeError
from chain.encoding.multihash import BLAKE2B_256, SHA2_256, Multihash
from chain.encoding.varint import decode_uvarint, encode_uvarint

RAW: Final = 0x55
DAG_PB: Final = 0x70
DAG_CBOR: Final = 0x71
FIL_COMMITMENT_UNSEALED: Final = 0xF101
FIL_COMMITMENT_SEALED: Final = 0xF102


# CIDv1, dag-cbor, blake2b-256 multihash (varint 0xb220), 32-byte digest.
_FILECOIN_CID_PREFIX: Final = b"\x01\x71\xa0\xe4\x02\x20"


def b32_encode(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def b32_decode(text: str) -> bytes:
    if text != text.lower() and text != text.upper():
        raise DecodeError("base32 text mixes upper and lower case")
    upper = text.upper()
    try:
        return base64.b32decode(upper + "=" * (-len(upper) % 8))
    except ValueError as exc:
        raise DecodeError(f"invalid base32 text: {exc}") from None


class CID:
    """An immutable CID, held as its binary form; equal CIDs have equal bytes."""

    __slots__ = ("_bytes", "_hash", "_text")

    _bytes: bytes
    _hash: int
    _text: str  # the string form, set on first use

    def __init__(self, raw: bytes) -> None:
        """Wrap already validated CID bytes; use CID.decode for untrusted input."""
        object.__setattr__(self, "_bytes", bytes(raw))
        object.__setattr__(self, "_hash", hash(self._bytes))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("CID is immutable")

    # construction -------------------------------------------------------------------------------
    @classmethod
    def v1(cls, codec: int, multihash: Multihash) -> "CID":
        return cls(b"\x01" + encode_uvarint(codec) + multihash.to_bytes())

    @classmethod
    def v0(cls, digest: bytes) -> "CID":
        if len(digest) != 32:
            raise ValueError("CIDv0 needs a 32-byte sha2-256 digest")
        return cls(b"\x12\x20" + digest)

    @classmethod
    def hash_of(cls, data: bytes, codec: int = DAG_CBOR, mh_code: int = BLAKE2B_256) -> "CID":
        """The CIDv1 of a block: Filecoin's default is dag-cbor with blake2b-256."""
        if codec == DAG_CBOR and mh_code == BLAKE2B_256:
            # The CID of nearly every block written (state, messages, headers): its prefix is fixed.
            return cls(_FILECOIN_CID_PREFIX + hashlib.blake2b(data, digest_size=32).digest())
        return cls.v1(codec, Multihash.digest_of(mh_code, data))

    @classmethod
    def decode(cls, data: bytes) -> "CID":
        """Parse binary CID bytes, rejecting anything malformed or trailing."""
        if len(data) == 38 and data[:6] == _FILECOIN_CID_PREFIX:
            # Nearly every link in chain data: the prefix fixes every field, nothing left to check.
            return cls(data)
        cid, end = cls.read(data, 0)
        if end != len(data):
            raise DecodeError(f"CID has {len(data) - end} trailing bytes")
        return cid

    @classmethod
    def read(cls, data: bytes, offset: int = 0) -> tuple["CID", int]:
        """Parse a CID at offset (as in a CAR section); return it and the offset after it."""
        if len(data) - offset >= 34 and data[offset] == 0x12 and data[offset + 1] == 0x20:
            return cls(data[offset : offset + 34]), offset + 34
        version, pos = decode_uvarint(data, offset)
        if version != 1:
            raise DecodeError(f"unsupported CID version {version}")
        _codec, pos = decode_uvarint(data, pos)
        _mh, pos = Multihash.read(data, pos)
        return cls(data[offset:pos]), pos

    @classmethod
    def parse(cls, text: str) -> "CID":
        """Parse the text form of a CID."""
        if not isinstance(text, str):
            raise DecodeError(f"CID text must be a string, got {type(text).__name__}")
        if not text:
            raise DecodeError("CID text is empty")
        if len(text) == 46 and text.startswith("Qm"):
            try:
                raw = base58.b58decode(text)
            except ValueError as exc:
                raise DecodeError(f"invalid base58 in CIDv0 {text!r}: {exc}") from None
            cid = cls.decode(raw)
            if cid.version != 0:
                raise DecodeError(f"{text!r} is not a CIDv0")
            return cid
        prefix, body = text[0], text[1:]
        if prefix in ("b", "B"):
            if (prefix == "b" and body != body.lower()) or (prefix == "B" and body != body.upper()):
                raise DecodeError(f"CID {text!r} has characters in the wrong case for its multibase")
            raw = b32_decode(body)
        elif prefix == "z":
            try:
                raw = base58.b58decode(body)
            except ValueError as exc:
                raise DecodeError(f"invalid base58 in CID {text!r}: {exc}") from None
        else:
            raise DecodeError(f"unsupported multibase prefix {prefix!r} in CID {text!r}")
        cid = cls.decode(raw)
        if cid.version == 0:
            raise DecodeError(f"CIDv0 must be written in base58btc without prefix, not {text!r}")
        return cid

    # accessors ----------------------------------------------------------------------------------
    def __bytes__(self) -> bytes:
        return self._bytes

    @property
    def bytes(self) -> bytes:
        return self._bytes

    @property
    def version(self) -> int:
        return 0 if self._bytes[0] == 0x12 else 1

    @property
    def codec(self) -> int:
        if self.version == 0:
            return DAG_PB
        codec, _ = decode_uvarint(self._bytes, 1)
        return codec

    @property
    def multihash(self) -> Multihash:
        if self.version == 0:
            return Multihash(SHA2_256, self._bytes[2:])
        _, pos = decode_uvarint(self._bytes, 1)
        mh, _ = Multihash.read(self._bytes, pos)
        return mh

    def to_v1(self) -> "CID":
        return self if self.version == 1 else CID.v1(DAG_PB, self.multihash)

    def encode(self) -> str:
        # Kept once computed: the stdlib's base32 is pure Python (about 7 us a CID), and the RPC writes
        # the same CIDs (the head's blocks and parents) over and over.
        try:
            return self._text
        except AttributeError:
            pass
        if self.version == 0:
            text = str(base58.b58encode(self._bytes).decode("ascii"))
        else:
            text = "b" + b32_encode(self._bytes)
        object.__setattr__(self, "_text", text)
        return text

    def __str__(self) -> str:
        return self.encode()

    def __repr__(self) -> str:
        return f"CID({self.encode()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CID) and other._bytes == self._bytes

    def __hash__(self) -> int:
        return self._hash

    def __lt__(self, other: "CID") -> bool:
        return self._bytes < other._bytes

    def __reduce__(self) -> tuple[type["CID"], tuple[builtins.bytes]]:
        return (CID, (self._bytes,))
