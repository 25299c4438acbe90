"""Piece inclusion proofs: generation from piece commitments, verification, encodings, tampering."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.encoding import dagcbor
from proofs import commp, fr32, merkle
from proofs.pip import MalformedProof, PieceInclusionProof, prove_piece_inclusion, verify_piece_inclusion
from tests.proofs.tamper import flipped

SECTOR = 1 << 15  # 32 KiB: small enough to hash the whole image, deep enough for varied layouts


def random_pieces(rnd: random.Random, sector_size: int = SECTOR) -> list[commp.PieceInfo]:
    """Random, distinct (never zero) piece commitments of random sizes that fit the sector in order."""
    pieces: list[commp.PieceInfo] = []
    offset = 0
    while rnd.random() < 0.85:
        size = 128 << rnd.randrange(0, 7)
        start = -(-offset // size) * size
        if start + size > sector_size:
            break
        pieces.append(commp.PieceInfo(size, merkle.hash_node(rnd.randbytes(32), rnd.randbytes(32))))
        offset = start + size
    if not pieces:
        pieces.append(commp.PieceInfo(1024, merkle.hash_node(rnd.randbytes(32), bytes(32))))
    return pieces


def random_sector(rnd: random.Random) -> tuple[list[commp.PieceInfo], bytes]:
    """Random pieces (random_pieces) and the CommD of the sector they fill in order."""
    pieces = random_pieces(rnd)
    return pieces, commp.comm_d(pieces, SECTOR)


def check(proof: PieceInclusionProof, comm_d: bytes, piece: commp.PieceInfo, **kw: int) -> bool:
    args = {"sector_size": SECTOR, "piece_size": piece.padded_size} | kw
    return verify_piece_inclusion(proof, comm_d=comm_d, comm_p=piece.commitment, **args)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_every_piece_proves_and_verifies(seed: int) -> None:
    pieces, comm_d = random_sector(random.Random(seed))
    placed = commp.place_pieces(pieces, SECTOR)
    for index, (piece, where) in enumerate(zip(pieces, placed, strict=True)):
        proof = prove_piece_inclusion(pieces, SECTOR, index)
        assert proof.offset == where.offset
        assert proof.piece_size == piece.padded_size
        assert proof.sector_size == SECTOR
        assert check(proof, comm_d, piece)
        assert check(proof, comm_d, piece, offset=where.offset)


def test_proof_path_matches_a_full_tree_opening() -> None:
    # A 128-byte piece is a node of height 2; its path must equal the upper part of a leaf opening
    # in the tree built over the whole (zero-filled) sector image.
    data = random.Random(3).randbytes(127)
    other = random.Random(4).randbytes(500)
    pieces = [commp.commp_of_bytes(d).piece_info() for d in (other, data)]
    image = bytearray(SECTOR)
    for where, payload in zip(commp.place_pieces(pieces, SECTOR), (other, data), strict=True):
        filled = payload + bytes(fr32.unpadded_size(where.piece.padded_size) - len(payload))
        image[where.offset : where.end] = fr32.pad(filled)
    levels = merkle.tree_levels(bytes(image))
    proof = prove_piece_inclusion(pieces, SECTOR, 1)
    leaf_index = proof.offset // 32
    assert list(proof.path) == merkle.opening(levels, leaf_index)[2:]
    assert levels[-1] == commp.comm_d(pieces, SECTOR)


def test_rejects_wrong_position_size_root_and_path() -> None:
    rnd = random.Random(11)
    pieces = [commp.PieceInfo(s, rnd.randbytes(31) + b"\x01") for s in (1024, 512, 512, 2048)]
    comm_d = commp.comm_d(pieces, SECTOR)
    proof = prove_piece_inclusion(pieces, SECTOR, 1)
    piece = pieces[1]
    assert check(proof, comm_d, piece)
    # wrong position: expected elsewhere, or the proof's own offset moved
    assert not check(proof, comm_d, piece, offset=proof.offset + 512)
    moved = PieceInclusionProof(proof.offset + 512, proof.piece_size, proof.path)
    assert not check(moved, comm_d, piece)
    misaligned = PieceInclusionProof(proof.offset + 128, proof.piece_size, proof.path)
    assert not check(misaligned, comm_d, piece)
    beyond = PieceInclusionProof(proof.offset + SECTOR, proof.piece_size, proof.path)
    assert not check(beyond, comm_d, piece)
    # wrong size: claimed by the verifier, or in the proof
    assert not check(proof, comm_d, piece, piece_size=1024)
    assert not check(PieceInclusionProof(proof.offset, 1024, proof.path), comm_d, piece)
    assert not check(proof, comm_d, piece, sector_size=SECTOR * 2)
    assert not check(proof, comm_d, piece, piece_size=100)
    # wrong root or commitment
    assert not check(proof, commp.zero_piece_commitment(SECTOR), piece)
    assert not check(proof, comm_d[:31], piece)
    assert not check(proof, comm_d, commp.PieceInfo(512, pieces[2].commitment))
    # tampered or truncated path
    for i in range(len(proof.path)):
        path = list(proof.path)
        path[i] = bytes([path[i][0] ^ 1]) + path[i][1:]
        assert not check(PieceInclusionProof(proof.offset, proof.piece_size, tuple(path)), comm_d, piece)
    assert not check(PieceInclusionProof(proof.offset, proof.piece_size, proof.path[:-1]), comm_d, piece)
    short_node = (proof.path[0][:31], *proof.path[1:])
    assert not check(PieceInclusionProof(proof.offset, proof.piece_size, short_node), comm_d, piece)


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_any_flipped_byte_breaks_the_proof(seed: int) -> None:
    rnd = random.Random(seed)
    pieces, comm_d = random_sector(rnd)
    index = rnd.randrange(len(pieces))
    piece = pieces[index]
    encoded = prove_piece_inclusion(pieces, SECTOR, index).to_bytes()
    for position in range(len(encoded)):
        tampered = flipped(encoded, position, 1 << rnd.randrange(8))
        try:
            proof = PieceInclusionProof.from_bytes(tampered)
        except MalformedProof:
            continue
        assert not check(proof, comm_d, piece), f"flipped byte {position} still verifies"


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_a_proof_never_verifies_another_piece_or_position(seed: int) -> None:
    pieces, comm_d = random_sector(random.Random(seed))
    placed = commp.place_pieces(pieces, SECTOR)
    proofs = [prove_piece_inclusion(pieces, SECTOR, i) for i in range(len(pieces))]
    for i, proof in enumerate(proofs):
        for j, other in enumerate(placed):
            if i == j:
                continue
            assert not check(proof, comm_d, other.piece)
            assert not check(proof, comm_d, pieces[i], offset=other.offset)
            same_size = other.piece.padded_size == pieces[i].padded_size
            if same_size:
                assert not check(proofs[j], comm_d, pieces[i])


def test_encodings_round_trip_through_dag_cbor_and_bytes() -> None:
    pieces = random_pieces(random.Random(5))
    proof = prove_piece_inclusion(pieces, SECTOR, len(pieces) - 1)
    assert PieceInclusionProof.from_cbor(dagcbor.decode(dagcbor.encode(proof.to_cbor()))) == proof
    assert PieceInclusionProof.from_bytes(proof.to_bytes()) == proof
    assert len(proof.to_bytes()) == 16 + 32 * len(proof.path)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "list of 3"),
        ([0, 128], "list of 3"),
        ([-1, 128, []], "offset"),
        ([0, True, []], "piece_size"),
        ([0, 1 << 64, []], "piece_size"),
        ([0, 128, b"x" * 32], "path must be a list"),
        ([0, 128, [b"x" * 31]], r"path\[0\]"),
        ([0, 128, ["x" * 32]], r"path\[0\]"),
        ([0, 128, [bytes(32)] * 65], "more than 64"),
    ],
)
def test_from_cbor_rejects_malformed(raw: object, reason: str) -> None:
    with pytest.raises(MalformedProof, match=reason):
        PieceInclusionProof.from_cbor(raw)


@pytest.mark.parametrize("length", [0, 15, 17, 16 + 31, 16 + 32 * 65])
def test_from_bytes_rejects_malformed(length: int) -> None:
    with pytest.raises(MalformedProof):
        PieceInclusionProof.from_bytes(bytes(length))


def test_prove_rejects_bad_index() -> None:
    pieces = random_pieces(random.Random(1))
    with pytest.raises(commp.PieceError, match="outside"):
        prove_piece_inclusion(pieces, SECTOR, len(pieces))
