"""node/sealing/sealer.py on its own: pieces staged fr32-padded at their offsets, packing zeroes what no
piece holds (whatever an interrupted write left) and checks CommD, sealing writes its files with t_aux
last and takes a finished run instead of sealing again, the trial proof catches damaged files, proofs
verify, and finalizing indexes the sector and drops what only sealing needed."""

import os
from pathlib import Path

import pytest

from node.sealing.sealer import T_AUX, PieceMismatch, Sealer, SealerError, layer_file
from node.sealing.sectors import SectorStore
from proofs import commp, fr32, pip, seal
from proofs.registered import make_prover_id

MINER = 1001
SIZE = 2048
TICKET = bytes(range(32))[:31] + b"\x01"
SEED = bytes(range(32, 64))[:31] + b"\x02"


def _sealer(tmp_path: Path) -> Sealer:
    return Sealer(SectorStore.open(tmp_path / "sectors"), MINER)


def test_pieces_are_staged_packed_and_proven_in_the_sector(tmp_path: Path) -> None:
    sealer = _sealer(tmp_path)
    small, large = os.urandom(300), os.urandom(1016)
    pieces = [commp.commp_of_bytes(small).piece_info(), commp.commp_of_bytes(large).piece_info()]
    assert [p.padded_size for p in pieces] == [512, 1024]
    # garbage where nothing will be (as an interrupted AddPiece leaves it): packing must zero it
    sealer.unsealed_path(3).write_bytes(os.urandom(SIZE))
    sealer.write_piece(3, SIZE, 0, pieces[0], small)
    source = tmp_path / "large.bin"
    source.write_bytes(large)
    progress: list[tuple[str, int, int]] = []
    sealer.write_piece(3, SIZE, 1024, pieces[1], source, lambda *p: progress.append(p))
    assert progress[-1] == ("write", 1016, 1016)
    comm_d = sealer.pack(3, SIZE, pieces)
    assert comm_d == commp.comm_d(pieces, SIZE)
    staged = sealer.unsealed_path(3).read_bytes()
    assert staged[512:1024] == bytes(512)
    assert sealer.read_piece(3, 0, 512) == small + bytes(508 - 300)
    assert sealer.read_piece(3, 1024, 1024) == large
    for index, piece in enumerate(pieces):
        proof = pip.prove_piece_inclusion(pieces, SIZE, index)
        assert pip.verify_piece_inclusion(
            proof, comm_d=comm_d, sector_size=SIZE, comm_p=piece.commitment, piece_size=piece.padded_size
        )


def test_data_that_is_not_the_piece_is_refused(tmp_path: Path) -> None:
    sealer = _sealer(tmp_path)
    data = os.urandom(300)
    piece = commp.commp_of_bytes(data).piece_info()
    with pytest.raises(PieceMismatch, match="it is not the piece's data"):
        sealer.write_piece(0, SIZE, 0, piece, os.urandom(300))
    with pytest.raises(PieceMismatch, match="larger than the piece's 508 unpadded bytes"):
        sealer.write_piece(0, SIZE, 0, piece, data + bytes(300))
    with pytest.raises(SealerError, match="cannot go at offset 100"):
        sealer.write_piece(0, SIZE, 100, piece, data)
    # a staged sector damaged after its pieces were written does not give their CommD
    sealer.write_piece(0, SIZE, 0, piece, data)
    with sealer.unsealed_path(0).open("r+b") as f:
        f.seek(10)
        f.write(b"\x00\x01")
    with pytest.raises(SealerError, match="does not hash to the CommD of its pieces"):
        sealer.pack(0, SIZE, [piece])


def test_a_finished_seal_is_taken_and_an_unfinished_one_redone(tmp_path: Path) -> None:
    sealer = _sealer(tmp_path)
    zero_d = commp.comm_d([], SIZE)
    first = sealer.seal_sector(5, 0, TICKET, zero_d, False)
    assert not first.adopted
    again = sealer.seal_sector(5, 0, TICKET, zero_d, False)
    assert again.adopted and again.comm_r == first.comm_r
    # another ticket is another seal
    other = sealer.seal_sector(5, 0, bytes(32), zero_d, False)
    assert not other.adopted and other.comm_r != first.comm_r
    # a run killed before t_aux was written is not taken
    sealer.forget_sealed(0)
    assert not (sealer.cache_path(0) / T_AUX).exists()
    assert not sealer.seal_sector(5, 0, bytes(32), zero_d, False).adopted
    # nor one whose files were cut short
    sealer.sealed_path(0).write_bytes(b"short")
    assert not sealer.seal_sector(5, 0, bytes(32), zero_d, False).adopted


def test_the_trial_proof_catches_damaged_files_and_proofs_verify(tmp_path: Path) -> None:
    sealer = _sealer(tmp_path)
    zero_d = commp.comm_d([], SIZE)
    out = sealer.seal_sector(5, 7, TICKET, zero_d, False)
    sealer.check_sealed(5, 7, TICKET, zero_d, out.comm_r)
    proof = sealer.prove(5, 7, TICKET, SEED, zero_d, out.comm_r)
    assert seal.verify_seal(5, make_prover_id(MINER), 7, TICKET, SEED, zero_d, out.comm_r, proof)

    layer = sealer.cache_path(7) / layer_file(1)
    labels = bytearray(layer.read_bytes())
    labels[64] ^= 0x01
    layer.write_bytes(bytes(labels))
    with pytest.raises(SealerError, match="does not match its commitments"):
        sealer.check_sealed(5, 7, TICKET, zero_d, out.comm_r)
    layer.unlink()
    with pytest.raises(
        SealerError, match=r"sc-02-data-layer-1\.dat is missing: the sector must be sealed again"
    ):
        sealer.prove(5, 7, TICKET, SEED, zero_d, out.comm_r)


def test_finalizing_indexes_the_sector_and_cleans_up(tmp_path: Path) -> None:
    sealer = _sealer(tmp_path)
    data = os.urandom(1000)
    piece = commp.commp_of_bytes(data).piece_info()
    sealer.write_piece(2, SIZE, 0, piece, data)
    comm_d = sealer.pack(2, SIZE, [piece])
    out = sealer.seal_sector(5, 2, TICKET, comm_d, True)
    stored = sealer.finalize(5, 2, comm_d, out.comm_r, keep_unsealed=True)
    assert (stored.number, stored.comm_r, stored.comm_d) == (2, out.comm_r, comm_d)
    assert sealer.store.stat(MINER, 2) == stored
    assert sealer.store.check(MINER, [2]) == []
    assert not (sealer.cache_path(2) / layer_file(1)).exists()
    assert not (sealer.cache_path(2) / T_AUX).exists()
    assert fr32.unpad(sealer.unsealed_path(2).read_bytes()[:1024])[:1000] == data
    # finalizing again (a restart after the index was written) changes nothing
    assert sealer.finalize(5, 2, comm_d, out.comm_r, keep_unsealed=True) == stored

    zero_d = commp.comm_d([], SIZE)
    cc = sealer.seal_sector(5, 3, TICKET, zero_d, False)
    sealer.finalize(5, 3, zero_d, cc.comm_r, keep_unsealed=False)
    assert not sealer.unsealed_path(3).exists()
    assert sealer.store.has(MINER, 3)
