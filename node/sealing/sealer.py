"""The sealing work on disk: pieces into the staged sector, SDR sealing, proofs, and the hand-over to
the sector store. Every method is synchronous and CPU- or disk-bound: the pipeline runs them in worker
threads.

Files, in Lotus's layout under the repo's `sectors/` (the sector store's directory):

    unsealed/s-t0<miner>-<n>                  the staged sector: fr32-padded pieces, zeros elsewhere
                                              (kept after sealing when a deal asks for it, for retrieval)
    sealed/s-t0<miner>-<n>                    the replica (the sector store indexes it once proving)
    cache/s-t0<miner>-<n>/p_aux               CommC || CommRLast
    cache/s-t0<miner>-<n>/sc-02-data-layer-L.dat   the SDR labels of layer L (removed once proving)
    cache/s-t0<miner>-<n>/t_aux               what the files were sealed from (JSON), written last

Every file is written atomically (node/atomic.py), and t_aux last: a sealing run killed half-way leaves
no t_aux that matches, so it is run again; one that finished is found by its t_aux and taken as it is
(after checks), so a restart does not seal it a second time.
"""

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from node.atomic import write_atomic
from node.sealing.sectors import P_AUX, SectorStore, StoredSector, sector_name
from proofs import commp, fr32, merkle, seal
from proofs.commp import CommPWriter, PieceInfo
from proofs.registered import RegisteredSealProof, make_prover_id, seal_params

UNSEALED_DIR: Final = "unsealed"
T_AUX: Final = "t_aux"
# Pieces are read, padded and written this many unpadded bytes at a time (about 1 MiB).
CHUNK: Final = fr32.UNPADDED_BLOCK * 8192
# The interactive seed of PreCommit2's trial proof: any value works; a fixed one keeps it reproducible.
TRIAL_SEED_TAG: Final = b"filpy/sealing/trial-seed"

# progress(phase, done, total): what a job reports while it runs.
Progress = Callable[[str, int, int], None]
PieceData = bytes | Path | BinaryIO


class SealerError(Exception):
    """Sealing work that failed; the message names the sector, the file and what is wrong."""


class PieceMismatch(SealerError):
    """The data given for a piece does not hash to its piece CID."""


def _no_progress(phase: str, done: int, total: int) -> None:
    return None


def layer_file(layer: int) -> str:
    return f"sc-02-data-layer-{layer}.dat"


@dataclass(frozen=True, slots=True)
class SealedOutput:
    """What PreCommit1 made: the commitments the pre-commit carries."""

    comm_d: bytes
    comm_r: bytes
    adopted: bool  # found finished on disk (a run before a restart), not sealed now


class Sealer:
    def __init__(self, store: SectorStore, miner_id: int) -> None:
        self.store = store
        self.miner_id = miner_id
        (store.root / UNSEALED_DIR).mkdir(parents=True, exist_ok=True)

    # -- paths --------------------------------------------------------------------------------------
    def unsealed_path(self, number: int) -> Path:
        return self.store.root / UNSEALED_DIR / sector_name(self.miner_id, number)

    def sealed_path(self, number: int) -> Path:
        return self.store.sealed_path(self.miner_id, number)

    def cache_path(self, number: int) -> Path:
        return self.store.cache_path(self.miner_id, number)

    # -- AddPiece -----------------------------------------------------------------------------------
    def write_piece(
        self,
        number: int,
        sector_size: int,
        offset: int,
        piece: PieceInfo,
        data: PieceData,
        progress: Progress = _no_progress,
    ) -> None:
        """Write a piece's data, fr32-padded, at its padded offset in the staged sector, zeros after the
        data to the end of the piece; PieceMismatch (and the region is left to be zeroed) if the data
        does not hash to the piece's commitment or does not fit."""
        capacity = fr32.unpadded_size(piece.padded_size)
        if offset % piece.padded_size or offset + piece.padded_size > sector_size:
            raise SealerError(f"a piece of {piece.padded_size} bytes cannot go at offset {offset}")
        path = self.unsealed_path(number)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(os.fdopen(fd, "r+b"))
            source = _open_source(data, stack)
            writer = stack.enter_context(CommPWriter())
            out.seek(offset)
            consumed = 0  # bytes read from the source
            pending = bytearray()  # read but not yet a whole number of 127-byte blocks
            while consumed < capacity:
                chunk = source.read(min(CHUNK, capacity - consumed))
                if not chunk:
                    break
                consumed += len(chunk)
                pending += chunk
                usable = len(pending) - len(pending) % fr32.UNPADDED_BLOCK
                if usable:
                    block = bytes(pending[:usable])
                    del pending[:usable]
                    writer.write(block)
                    out.write(fr32.pad(block))
                    progress("write", consumed, capacity)
            if consumed == capacity and source.read(1):
                raise PieceMismatch(
                    f"the data of piece {piece.commitment.hex()} is larger than the piece's "
                    f"{capacity} unpadded bytes"
                )
            if pending:  # the last partial block, completed with zeros
                block = bytes(pending) + bytes(fr32.UNPADDED_BLOCK - len(pending))
                writer.write(block)
                out.write(fr32.pad(block))
                consumed += fr32.UNPADDED_BLOCK - len(pending)
            while consumed < capacity:  # the rest of the piece is zeros (fr32 keeps zeros zero)
                n = min(CHUNK, capacity - consumed)
                writer.write(bytes(n))
                out.write(bytes(fr32.padded_size(n)))
                consumed += n
            progress("write", capacity, capacity)
            out.flush()
            os.fsync(out.fileno())
            got = writer.finish()
        if got.commitment != piece.commitment:
            raise PieceMismatch(
                f"the data given for piece {piece.commitment.hex()} hashes to {got.commitment.hex()}: "
                "it is not the piece's data"
            )

    def read_piece(self, number: int, offset: int, padded_size: int) -> bytes:
        """The unpadded bytes of a piece (data and its zero padding) from the staged sector."""
        try:
            with self.unsealed_path(number).open("rb") as stream:
                stream.seek(offset)
                padded = stream.read(padded_size)
        except OSError as exc:
            raise SealerError(f"{self.unsealed_path(number)}: cannot read: {exc.strerror or exc}") from None
        if len(padded) != padded_size:
            raise SealerError(f"{self.unsealed_path(number)}: the piece at {offset} is cut short")
        return fr32.unpad(padded)

    # -- Packing ------------------------------------------------------------------------------------
    def pack(
        self, number: int, sector_size: int, pieces: list[PieceInfo], progress: Progress = _no_progress
    ) -> bytes:
        """Zero everything of the staged sector that no piece holds (whatever an interrupted AddPiece
        left there), then check that the staged bytes give the CommD the pieces give; returns CommD."""
        expected = commp.comm_d(pieces, sector_size)
        if not pieces:
            return expected  # a committed-capacity sector: all zeros, nothing staged
        placed = commp.place_pieces(pieces, sector_size)
        path = self.unsealed_path(number)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        with os.fdopen(fd, "r+b") as out:
            cursor = 0
            for gap_end, next_start in [(p.offset, p.end) for p in placed] + [(sector_size, sector_size)]:
                _write_zeros(out, cursor, gap_end - cursor)
                cursor = next_start
            out.truncate(sector_size)
            out.flush()
            os.fsync(out.fileno())
        progress("check", 1, 2)
        staged = self._read_staged(number, sector_size)
        progress("done", 2, 2)
        if merkle.root_of(staged) != expected:
            raise SealerError(
                f"{path}: the staged sector does not hash to the CommD of its pieces: a piece's data was "
                "damaged on disk"
            )
        return expected

    def _read_staged(self, number: int, sector_size: int) -> bytes:
        path = self.unsealed_path(number)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SealerError(f"{path}: cannot read the staged sector: {exc.strerror or exc}") from None
        if len(data) != sector_size:
            raise SealerError(f"{path}: the staged sector is {len(data)} bytes, expected {sector_size}")
        return data

    # -- PreCommit1: seal ---------------------------------------------------------------------------
    def seal_sector(
        self,
        proof: int,
        number: int,
        ticket: bytes,
        comm_d: bytes,
        has_data: bool,
        progress: Progress = _no_progress,
    ) -> SealedOutput:
        """SDR-seal the staged sector for this ticket and write the replica, labels and p_aux, then t_aux.
        A finished run for the same ticket and CommD found on disk is taken instead of sealing again."""
        params = seal_params(proof)
        found = self._finished(proof, number, ticket, comm_d)
        if found is not None:
            return SealedOutput(comm_d, found, adopted=True)
        progress("read", 0, 3)
        data = self._read_staged(number, params.sector_size) if has_data else bytes(params.sector_size)
        progress("seal", 1, 3)
        sealed = seal.seal(proof, data, make_prover_id(self.miner_id), number, ticket)
        if sealed.comm_d != comm_d:
            raise SealerError(
                f"sector {number}: the staged data gives CommD {sealed.comm_d.hex()}, its pieces "
                f"{comm_d.hex()}"
            )
        progress("write", 2, 3)
        cache = self.cache_path(number)
        cache.mkdir(parents=True, exist_ok=True)
        # t_aux goes first as "not finished", so that no older t_aux can vouch for the new files
        _remove(cache / T_AUX)
        for layer, labels in enumerate(sealed.labels, start=1):
            write_atomic(cache / layer_file(layer), labels)
        write_atomic(cache / P_AUX, sealed.comm_c + sealed.comm_r_last)
        write_atomic(self.sealed_path(number), sealed.replica)
        t_aux = {
            "SealProof": proof,
            "Ticket": ticket.hex(),
            "CommD": comm_d.hex(),
            "CommR": sealed.comm_r.hex(),
        }
        write_atomic(cache / T_AUX, json.dumps(t_aux).encode())
        progress("done", 3, 3)
        return SealedOutput(comm_d, sealed.comm_r, adopted=False)

    def _finished(self, proof: int, number: int, ticket: bytes, comm_d: bytes) -> bytes | None:
        """CommR of a finished sealing run of this sector for this ticket and CommD, if its files are
        all there (sizes, and p_aux hashing to the CommR t_aux names)."""
        cache = self.cache_path(number)
        try:
            raw = json.loads((cache / T_AUX).read_bytes())
            if (raw["SealProof"], raw["Ticket"], raw["CommD"]) != (proof, ticket.hex(), comm_d.hex()):
                return None
            comm_r = bytes.fromhex(raw["CommR"])
            p_aux = (cache / P_AUX).read_bytes()
            size = seal_params(proof).sector_size
            layers = seal_params(proof).layers
            files = [self.sealed_path(number)] + [cache / layer_file(i) for i in range(1, layers + 1)]
            if any(f.stat().st_size != size for f in files):
                return None
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if len(p_aux) != 64 or seal.comm_r_of(p_aux[:32], p_aux[32:]) != comm_r:
            return None
        return comm_r

    def forget_sealed(self, number: int) -> None:
        """Make the next seal of this sector run again instead of taking the files on disk."""
        _remove(self.cache_path(number) / T_AUX)

    def load_sealed(
        self, proof: int, number: int, ticket: bytes, comm_d: bytes, comm_r: bytes
    ) -> seal.SealedSector:
        """The sealed sector as prove_commit needs it, from its files (SealerError naming what is
        missing or does not match)."""
        params = seal_params(proof)
        cache = self.cache_path(number)
        p_aux = _read(cache / P_AUX, 64)
        comm_c, comm_r_last = p_aux[:32], p_aux[32:]
        if seal.comm_r_of(comm_c, comm_r_last) != comm_r:
            raise SealerError(f"{cache / P_AUX}: CommC and CommRLast do not give the sector's CommR")
        replica = _read(self.sealed_path(number), params.sector_size)
        labels = tuple(_read(cache / layer_file(i), params.sector_size) for i in range(1, params.layers + 1))
        return seal.SealedSector(
            RegisteredSealProof(proof),
            make_prover_id(self.miner_id),
            number,
            ticket,
            comm_d,
            comm_r,
            comm_c,
            comm_r_last,
            replica,
            labels,
        )

    # -- PreCommit2: check before paying --------------------------------------------------------------
    def check_sealed(
        self,
        proof: int,
        number: int,
        ticket: bytes,
        comm_d: bytes,
        comm_r: bytes,
        progress: Progress = _no_progress,
    ) -> None:
        """Prove the sealed files against a trial seed and verify the proof, as the actor will: a replica,
        label or commitment that is wrong fails here, before a deposit is paid for it."""
        progress("load", 0, 3)
        sealed = self.load_sealed(proof, number, ticket, comm_d, comm_r)
        trial = hashlib.sha256(TRIAL_SEED_TAG + comm_r).digest()
        trial = trial[:31] + bytes([trial[31] & 0x3F])
        progress("prove", 1, 3)
        proof_bytes = _prove(sealed, trial)
        progress("verify", 2, 3)
        _verify(sealed, trial, proof_bytes)
        progress("done", 3, 3)

    # -- Committing ---------------------------------------------------------------------------------
    def prove(
        self,
        proof: int,
        number: int,
        ticket: bytes,
        seed: bytes,
        comm_d: bytes,
        comm_r: bytes,
        progress: Progress = _no_progress,
    ) -> bytes:
        """The seal proof for the interactive seed, verified as the actor will verify it."""
        progress("load", 0, 3)
        sealed = self.load_sealed(proof, number, ticket, comm_d, comm_r)
        progress("prove", 1, 3)
        proof_bytes = _prove(sealed, seed)
        progress("verify", 2, 3)
        _verify(sealed, seed, proof_bytes)
        progress("done", 3, 3)
        return proof_bytes

    # -- FinalizeSector -----------------------------------------------------------------------------
    def index_sealed(self, proof: int, number: int, comm_d: bytes, comm_r: bytes) -> StoredSector:
        """Index the sealed sector in the sector store (which checks the replica against CommR), where
        it already lies: from then on Window PoSt and the fault checks find it. Done before its proof
        is sent, so that the chain never counts a sector proven that the store does not list."""
        held = self.store.sectors(self.miner_id)
        already = next((s for s in held if s.number == number and s.comm_r == comm_r), None)
        if already is not None:
            return already
        p_aux = _read(self.cache_path(number) / P_AUX, 64)
        return self.store.add(
            self.miner_id,
            number,
            seal_proof=proof,
            comm_d=comm_d,
            comm_r=comm_r,
            comm_c=p_aux[:32],
            comm_r_last=p_aux[32:],
            replica=self.sealed_path(number),
        )

    def finalize(
        self, proof: int, number: int, comm_d: bytes, comm_r: bytes, keep_unsealed: bool
    ) -> StoredSector:
        """Index the sector in the sector store if it is not yet, then drop what only sealing needed:
        the labels, t_aux, and the staged copy unless a deal keeps it."""
        cache = self.cache_path(number)
        stored = self.index_sealed(proof, number, comm_d, comm_r)
        for layer in range(1, seal_params(proof).layers + 1):
            _remove(cache / layer_file(layer))
        _remove(cache / T_AUX)
        if not keep_unsealed:
            _remove(self.unsealed_path(number))
        return stored


def _prove(sealed: seal.SealedSector, seed: bytes) -> bytes:
    try:
        return seal.prove_commit(sealed, seed).to_bytes()
    except seal.SealError as exc:
        raise SealerError(f"sector {sealed.sector_number}: {exc}") from None


def _verify(sealed: seal.SealedSector, seed: bytes, proof_bytes: bytes) -> None:
    ok = seal.verify_seal(
        sealed.proof,
        sealed.prover_id,
        sealed.sector_number,
        sealed.ticket,
        seed,
        sealed.comm_d,
        sealed.comm_r,
        proof_bytes,
    )
    if not ok:
        raise SealerError(
            f"sector {sealed.sector_number}: the seal proof made from its files does not verify"
        )


def _read(path: Path, size: int) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SealerError(f"{path} is missing: the sector must be sealed again") from None
    except OSError as exc:
        raise SealerError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) != size:
        raise SealerError(f"{path} is {len(data)} bytes, expected {size}")
    return data


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _write_zeros(out: BinaryIO, offset: int, count: int) -> None:
    out.seek(offset)
    block = bytes(min(count, 1 << 20))
    while count > 0:
        n = min(count, len(block))
        out.write(block[:n])
        count -= n


class _BytesSource:
    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._at = 0

    def read(self, size: int) -> bytes:
        chunk = self._view[self._at : self._at + size]
        self._at += len(chunk)
        return bytes(chunk)


def _open_source(data: PieceData, stack: contextlib.ExitStack) -> "_BytesSource | BinaryIO":
    if isinstance(data, bytes | bytearray | memoryview):
        return _BytesSource(bytes(data))
    if isinstance(data, Path):
        try:
            return stack.enter_context(data.open("rb"))
        except OSError as exc:
            raise SealerError(f"{data}: cannot read the piece's data: {exc.strerror or exc}") from None
    return data
