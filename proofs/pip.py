"""Piece inclusion proofs: a piece commitment sits at a given offset of a sector whose CommD is known.

A piece of padded size P at offset O (a multiple of P) is the node of height log2(P/32) and index O/P in
the sector's CommD tree. The proof is the sibling path from that node to the root, computed from the
sector's piece commitments alone (proofs.commp's layout), so proving never touches the data.

Encodings (for the market and payment-channel actors to carry a proof):
- CBOR-friendly: [offset, piece_size, [sibling, ...]] with ints and 32-byte bytes (to_cbor/from_cbor).
- Bytes: offset (u64 BE) || piece_size (u64 BE) || siblings (32 bytes each) (to_bytes/from_bytes).
Decoders raise MalformedProof naming what is wrong.
"""

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from proofs.commp import (
    MAX_HEIGHT,
    PieceError,
    PieceInfo,
    check_piece_size,
    layout_commitment,
    place_pieces,
)
from proofs.merkle import NODE_SIZE, root_from_path

_HEADER = struct.Struct(">QQ")


class MalformedProof(ValueError):
    """Bytes or a CBOR value that do not form a piece inclusion proof; the message says why."""


@dataclass(frozen=True, slots=True)
class PieceInclusionProof:
    """Sibling path from a piece's subtree root up to CommD, bottom-up."""

    offset: int  # padded byte offset of the piece in the sector
    piece_size: int  # padded piece size
    path: tuple[bytes, ...]

    @property
    def sector_size(self) -> int:
        return self.piece_size << len(self.path)

    def to_cbor(self) -> list[object]:
        return [self.offset, self.piece_size, list(self.path)]

    @classmethod
    def from_cbor(cls, raw: object) -> "PieceInclusionProof":
        if not isinstance(raw, list | tuple) or len(raw) != 3:
            raise MalformedProof("PieceInclusionProof must be a list of 3 items [offset, piece_size, path]")
        offset, piece_size, path = raw
        for name, value in (("offset", offset), ("piece_size", piece_size)):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 64:
                raise MalformedProof(f"PieceInclusionProof.{name} must be a uint64, got {value!r}")
        if not isinstance(path, list | tuple):
            raise MalformedProof("PieceInclusionProof.path must be a list of 32-byte nodes")
        if len(path) > MAX_HEIGHT:
            raise MalformedProof(f"PieceInclusionProof.path has {len(path)} nodes, more than {MAX_HEIGHT}")
        for i, node in enumerate(path):
            if not isinstance(node, bytes) or len(node) != NODE_SIZE:
                raise MalformedProof(f"PieceInclusionProof.path[{i}] must be 32 bytes, got {node!r:.80}")
        return cls(offset, piece_size, tuple(path))

    def to_bytes(self) -> bytes:
        return _HEADER.pack(self.offset, self.piece_size) + b"".join(self.path)

    @classmethod
    def from_bytes(cls, data: bytes) -> "PieceInclusionProof":
        if len(data) < _HEADER.size or (len(data) - _HEADER.size) % NODE_SIZE:
            raise MalformedProof(
                f"a piece inclusion proof is 16 header bytes plus 32-byte nodes, got {len(data)} bytes"
            )
        count = (len(data) - _HEADER.size) // NODE_SIZE
        if count > MAX_HEIGHT:
            raise MalformedProof(f"piece inclusion proof has {count} path nodes, more than {MAX_HEIGHT}")
        offset, piece_size = _HEADER.unpack_from(data)
        body = data[_HEADER.size :]
        path = tuple(bytes(body[i * NODE_SIZE : (i + 1) * NODE_SIZE]) for i in range(count))
        return cls(offset, piece_size, path)


def prove_piece_inclusion(pieces: Sequence[PieceInfo], sector_size: int, index: int) -> PieceInclusionProof:
    """Proof that pieces[index] sits in the sector holding pieces in order (as comm_d lays them out)."""
    placed = place_pieces(pieces, sector_size)
    if not 0 <= index < len(placed):
        raise PieceError(f"piece index {index} is outside the {len(placed)} pieces of the sector")
    target = placed[index]
    size = target.piece.padded_size
    offset = target.offset
    path = []
    while size < sector_size:
        path.append(layout_commitment(placed, offset ^ size, size))
        offset &= ~size
        size *= 2
    return PieceInclusionProof(target.offset, target.piece.padded_size, tuple(path))


def verify_piece_inclusion(
    proof: PieceInclusionProof,
    *,
    comm_d: bytes,
    sector_size: int,
    comm_p: bytes,
    piece_size: int,
    offset: int | None = None,
) -> bool:
    """True when the proof shows comm_p (of piece_size padded bytes) inside the sector's comm_d.

    offset, when given, is the position the verifier expects; otherwise the proof's own offset is used.
    Any mismatch of sizes, position, root or path gives False, never an exception.
    """
    if len(comm_d) != NODE_SIZE or len(comm_p) != NODE_SIZE:
        return False
    if proof.piece_size != piece_size or not _valid_size(piece_size) or not _valid_size(sector_size):
        return False
    if proof.sector_size != sector_size:
        return False
    if offset is not None and proof.offset != offset:
        return False
    if proof.offset % piece_size or not 0 <= proof.offset < sector_size:
        return False
    if any(len(node) != NODE_SIZE for node in proof.path):
        return False
    return root_from_path(comm_p, proof.offset // piece_size, proof.path) == comm_d


def _valid_size(size: int) -> bool:
    try:
        check_piece_size(size)
    except PieceError:
        return False
    return True
