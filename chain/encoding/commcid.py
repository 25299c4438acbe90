"""Piece CIDs: commitments (32-byte tree roots, see proofs.commp) as CIDs, and back.

v1 (go-fil-commcid): CIDv1, codec fil-commitment-unsealed 0xf101, multihash sha2-256-trunc254-padded
0x1012 whose digest is the root. The same form names a sector's CommD. It carries no size.

v2 (FRC-0069): CIDv1, codec raw 0x55, multihash fr32-sha2-256-trunc254-padded-binary-tree 0x1011 whose
digest is uvarint(padding) || uint8(height) || root. height is log2 of the padded piece size over 32;
padding is how many zero bytes were appended to the payload to reach the 127/128 of that size.

Decoders raise DecodeError naming what is wrong (wrong codec, wrong multihash, bad digest, bad sizes).
"""

from dataclasses import dataclass
from typing import Final

from chain.encoding.cid import CID, FIL_COMMITMENT_UNSEALED, RAW
from chain.encoding.errors import DecodeError
from chain.encoding.multihash import SHA2_256_TRUNC254_PADDED, Multihash
from chain.encoding.varint import decode_uvarint, encode_uvarint

FR32_SHA2_256_TRUNC254_PADDED_BINARY_TREE: Final = 0x1011
COMMITMENT_SIZE: Final = 32
_MIN_HEIGHT: Final = 2  # the smallest piece, 128 padded bytes, is four 32-byte leaves
_MAX_HEIGHT: Final = 255  # one byte
_MAX_PADDING: Final = (1 << 63) - 1  # the multiformats varint limit


def _check_commitment(commitment: bytes) -> None:
    if not isinstance(commitment, bytes) or len(commitment) != COMMITMENT_SIZE:
        raise ValueError(f"a commitment is {COMMITMENT_SIZE} bytes, got {commitment!r:.80}")


def piece_cid_v1(commitment: bytes) -> CID:
    """The v1 piece CID (or unsealed sector CID) of a 32-byte commitment."""
    _check_commitment(commitment)
    return CID.v1(FIL_COMMITMENT_UNSEALED, Multihash(SHA2_256_TRUNC254_PADDED, commitment))


def commitment_of_v1(cid: CID) -> bytes:
    """The commitment a v1 piece CID names; DecodeError if the CID is not one."""
    if cid.version != 1 or cid.codec != FIL_COMMITMENT_UNSEALED:
        raise DecodeError(f"unexpected commitment codec 0x{cid.codec:x} in {cid}: want 0xf101")
    mh = cid.multihash
    if mh.code != SHA2_256_TRUNC254_PADDED:
        raise DecodeError(f"incorrect hashing function 0x{mh.code:x} for a data commitment in {cid}")
    if len(mh.digest) != COMMITMENT_SIZE:
        raise DecodeError(f"a commitment is {COMMITMENT_SIZE} bytes, {cid} holds {len(mh.digest)}")
    return mh.digest


@dataclass(frozen=True, slots=True)
class PieceCidV2:
    """What a v2 piece CID holds: root, tree height and payload padding."""

    commitment: bytes
    height: int
    padding: int

    def __post_init__(self) -> None:
        _check_commitment(self.commitment)
        if not _MIN_HEIGHT <= self.height <= _MAX_HEIGHT:
            raise ValueError(
                f"a piece tree height must be within {_MIN_HEIGHT}..{_MAX_HEIGHT}, got {self.height}"
            )
        unpadded = self.unpadded_size
        # FRC-0069: padding stays below half the tree (else a smaller tree would do), except in the
        # smallest tree, which any payload under 127 bytes fills up.
        limit = unpadded if self.height == _MIN_HEIGHT else unpadded // 2 - 1
        if not 0 <= self.padding <= min(limit, _MAX_PADDING):
            raise ValueError(
                f"padding {self.padding} is out of range for a tree of height {self.height} "
                f"({unpadded} unpadded bytes): at most {min(limit, _MAX_PADDING)}"
            )

    @property
    def padded_size(self) -> int:
        return COMMITMENT_SIZE << self.height

    @property
    def unpadded_size(self) -> int:
        return self.padded_size - self.padded_size // 128

    @property
    def payload_size(self) -> int:
        return self.unpadded_size - self.padding

    @classmethod
    def for_payload(cls, commitment: bytes, payload_size: int) -> "PieceCidV2":
        """The v2 fields for a CommP over payload_size bytes (zero-padded to 127 * 2^k, k >= 0)."""
        if payload_size < 0:
            raise ValueError(f"a payload size cannot be negative, got {payload_size}")
        blocks = max(1, -(-payload_size // 127))
        padded = 128 << (blocks - 1).bit_length()
        height = padded.bit_length() - 6
        return cls(commitment, height, padded - padded // 128 - payload_size)

    def multihash(self) -> Multihash:
        digest = encode_uvarint(self.padding) + bytes([self.height]) + self.commitment
        return Multihash(FR32_SHA2_256_TRUNC254_PADDED_BINARY_TREE, digest)

    def cid(self) -> CID:
        return CID.v1(RAW, self.multihash())

    def v1(self) -> CID:
        return piece_cid_v1(self.commitment)


def piece_cid_v2(commitment: bytes, payload_size: int) -> CID:
    """The FRC-0069 piece CID of a CommP over payload_size bytes."""
    return PieceCidV2.for_payload(commitment, payload_size).cid()


def parse_piece_cid_v2(cid: CID) -> PieceCidV2:
    """Root, height and padding of a v2 piece CID; DecodeError if the CID is not a valid one."""
    if cid.version != 1 or cid.codec != RAW:
        raise DecodeError(f"a v2 piece CID has codec raw (0x55), {cid} has 0x{cid.codec:x}")
    mh = cid.multihash
    if mh.code != FR32_SHA2_256_TRUNC254_PADDED_BINARY_TREE:
        raise DecodeError(f"a v2 piece CID has multihash 0x1011, {cid} has 0x{mh.code:x}")
    digest = mh.digest
    padding, pos = decode_uvarint(digest, 0)
    if len(digest) != pos + 1 + COMMITMENT_SIZE:
        raise DecodeError(
            f"a v2 piece digest is varint padding + 1 height byte + 32 root bytes, got {len(digest)} bytes"
        )
    try:
        return PieceCidV2(bytes(digest[pos + 1 :]), digest[pos], padding)
    except ValueError as exc:
        raise DecodeError(f"invalid v2 piece CID {cid}: {exc}") from None


def v1_to_v2(cid: CID, payload_size: int) -> CID:
    """Convert a v1 piece CID plus the payload size into the v2 piece CID."""
    return piece_cid_v2(commitment_of_v1(cid), payload_size)


def v2_to_v1(cid: CID) -> tuple[CID, int]:
    """Convert a v2 piece CID into the v1 piece CID and the payload size (as go-fil-commcid does)."""
    info = parse_piece_cid_v2(cid)
    return info.v1(), info.payload_size
