"""The miner's sector store: which sealed sectors this node holds, and reading them back to prove them.

Files live under the repo's `sectors/` in Lotus's storage layout (the one node/preseal.py writes too):

    sectors/index.json                  the index (below)
    sectors/sealed/s-t0<miner>-<n>      the replica of sector n of miner t0<miner>
    sectors/cache/s-t0<miner>-<n>/p_aux CommC || CommRLast: what Window and Winning PoSt need besides
                                        the replica (filpy keeps no tree files: a PoSt rebuilds tree R)

File names use `s-t0<id>-<n>` on every network, as Lotus's storiface.SectorName does.

The index is one JSON document, `{"Version": 1, "Sectors": [{"Miner": 1000, "SectorNumber": 0,
"SealProof": 5, "CommD": "baga6ea4sea...", "CommR": "bagboea4b5a..."}, ...]}`, rewritten atomically
(node/atomic.py) on every change. A sector is added by writing its replica and p_aux first and the index
last, so a crash leaves either the old index (and unused files, which a later add overwrites) or the new
one with its files complete; it is removed from the index first and its files after.

A sector in the index can still be lost or damaged on disk. `check` finds out, as `lotus-miner proving
check` does: a replica or p_aux that is missing, of the wrong size, or whose tree no longer hashes to
the CommR recorded for it (or to the CommR the chain holds) is a fault, reported with its reason.
Reading a sector to prove it (`proving_sector`) raises SectorMissing or SectorCorrupt, naming the file.

Every method is synchronous and may read whole replicas: callers on the trio loop use
`trio.to_thread.run_sync`. The store is safe to use from several threads.
"""

import contextlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final

from chain.encoding.cid import CID
from chain.encoding.commcid import commitment_of_v1, piece_cid_v1
from chain.encoding.errors import DecodeError
from chain.encoding.schema import UINT64_KIND, UINT64_MAX, IntKind, Kind, LotusJson, Name, Uint64, kind_name
from chain.types.address import Address, Protocol
from chain.vm.syscalls import sealed_cid, sealed_commitment
from node.atomic import read_at_most, write_atomic
from node.preseal import PresealedSector, SectorCommitments, read_presealed
from proofs import merkle, post, seal
from proofs.registered import MAX_SECTOR_NUMBER, UnsupportedProof, seal_params

INDEX_FILE: Final = "index.json"
INDEX_VERSION: Final = 1
SEALED_DIR: Final = "sealed"
CACHE_DIR: Final = "cache"
P_AUX: Final = "p_aux"
COMMITMENT_SIZE: Final = 32
P_AUX_SIZE: Final = 2 * COMMITMENT_SIZE
MAX_INDEX_BYTES: Final = 256 << 20  # ~1.5 million sectors: far beyond a JSON index's comfort anyway


class SectorStoreError(Exception):
    """A sector store problem; the message names the sector or file and what is wrong."""


class SectorNotFound(SectorStoreError, LookupError):
    """The store holds no such sector."""


class SectorMissing(SectorStoreError):
    """A sector in the index whose replica or cache file is gone or cannot be read."""


class SectorCorrupt(SectorStoreError):
    """A sector whose files are there but do not match its commitments."""


class IndexCorrupt(SectorStoreError):
    """index.json cannot be read back."""


def sector_name(miner: int, number: int) -> str:
    """Lotus's storiface.SectorName: `s-t0<miner>-<number>`."""
    return f"s-t0{miner}-{number}"


def _miner_id(miner: Address | int) -> int:
    if isinstance(miner, Address):
        if miner.protocol != Protocol.ID:
            raise ValueError(f"the sector store names miners by ID address, got {miner}")
        return miner.id
    if isinstance(miner, bool) or not isinstance(miner, int) or miner < 0:
        raise ValueError(f"a miner actor ID is a non-negative integer, got {miner!r}")
    return miner


def _check_number(number: int) -> int:
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= MAX_SECTOR_NUMBER:
        raise ValueError(f"a sector number is an integer in [0, 2^63), got {number!r}")
    return number


def _check_commitment(value: bytes, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != COMMITMENT_SIZE:
        raise ValueError(f"{what} must be {COMMITMENT_SIZE} bytes")
    return value


class SealProofKind(IntKind):
    """A registered seal proof this node can seal and prove (a number in the index)."""

    def decode(self, raw: Any, what: str) -> int:
        proof: int = super().decode(raw, what)
        try:
            seal_params(proof)
        except UnsupportedProof as exc:
            raise DecodeError(f"{what}: {exc}") from None
        return proof


class CommitmentCidKind(Kind):
    """A 32-byte commitment, written in the index as its CID's string (CommD as a piece CID, CommR as
    a sealed CID) so that the index reads as Lotus's sector listings do."""

    def __init__(self, to_cid: Callable[[bytes], CID], from_cid: Callable[[CID], bytes]) -> None:
        self.to_cid, self.from_cid = to_cid, from_cid

    def decode(self, raw: Any, what: str) -> bytes:
        if not isinstance(raw, str):
            raise DecodeError(f"{what}: expected a CID string, got {kind_name(raw)}")
        try:
            return self.from_cid(CID.parse(raw))
        except (DecodeError, ValueError, TypeError) as exc:
            raise DecodeError(f"{what}: bad commitment CID: {exc}") from None

    def to_json(self, value: Any, network: str) -> str:
        return str(self.to_cid(value))


class StoredSector(LotusJson, SectorCommitments):
    """A sector the store holds, as its index records it (its JSON is the index's entry)."""

    miner: Uint64  # the miner's actor ID
    number: Annotated[int, UINT64_KIND, Name("SectorNumber")]
    seal_proof: Annotated[int, SealProofKind(0, UINT64_MAX, "a non-negative integer")]
    comm_d: Annotated[bytes, CommitmentCidKind(piece_cid_v1, commitment_of_v1)]
    comm_r: Annotated[bytes, CommitmentCidKind(sealed_cid, sealed_commitment)]

    @property
    def name(self) -> str:
        return sector_name(self.miner, self.number)

    @property
    def miner_address(self) -> Address:
        return Address.new_id(self.miner)

    @property
    def sector_size(self) -> int:
        return seal_params(self.seal_proof).sector_size


@dataclass(frozen=True, slots=True)
class SectorFault:
    """A sector `check` found unprovable, and why."""

    number: int
    reason: str


class SectorStore:
    """The sector store under one directory (a repo's `sectors/`); see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.RLock()
        for sub in (self.root, self.root / SEALED_DIR, self.root / CACHE_DIR):
            sub.mkdir(parents=True, exist_ok=True)
        self._sectors: dict[tuple[int, int], StoredSector] = self._read_index()

    @classmethod
    def open(cls, root: Path) -> "SectorStore":
        """The store in root (made if missing); IndexCorrupt if its index cannot be read."""
        return cls(root)

    # -- the index ------------------------------------------------------------------------------------
    @property
    def index_path(self) -> Path:
        return self.root / INDEX_FILE

    def _read_index(self) -> dict[tuple[int, int], StoredSector]:
        path = self.index_path
        data = read_at_most(path, MAX_INDEX_BYTES + 1, IndexCorrupt, "sector index")
        if data is None:
            return {}
        if len(data) > MAX_INDEX_BYTES:
            raise IndexCorrupt(f"{path}: larger than {MAX_INDEX_BYTES} bytes")
        try:
            raw = json.loads(data)
        except ValueError as exc:
            raise IndexCorrupt(f"{path}: not valid JSON: {exc}") from None
        if not isinstance(raw, dict) or raw.get("Version") != INDEX_VERSION:
            raise IndexCorrupt(f"{path}: expected a version {INDEX_VERSION} sector index")
        entries = raw.get("Sectors")
        if not isinstance(entries, list):
            raise IndexCorrupt(f"{path}: Sectors must be a list")
        sectors: dict[tuple[int, int], StoredSector] = {}
        for i, entry in enumerate(entries):
            try:
                sector = StoredSector.from_json(entry, f"{path}: Sectors[{i}]")
            except DecodeError as exc:
                raise IndexCorrupt(str(exc)) from None
            key = (sector.miner, sector.number)
            if key in sectors:
                raise IndexCorrupt(f"{path}: sector {sector.name} is listed twice")
            sectors[key] = sector
        return sectors

    def _write_index(self, sectors: dict[tuple[int, int], StoredSector]) -> None:
        doc = {"Version": INDEX_VERSION, "Sectors": [sectors[key].to_json() for key in sorted(sectors)]}
        write_atomic(self.index_path, (json.dumps(doc, indent=1) + "\n").encode())

    # -- queries --------------------------------------------------------------------------------------
    def sectors(self, miner: Address | int | None = None) -> list[StoredSector]:
        """The sectors held (of one miner, or all), by miner and sector number."""
        with self._lock:
            held = list(self._sectors.values())
        if miner is not None:
            miner_id = _miner_id(miner)
            held = [s for s in held if s.miner == miner_id]
        return sorted(held, key=lambda s: (s.miner, s.number))

    def has(self, miner: Address | int, number: int) -> bool:
        with self._lock:
            return (_miner_id(miner), number) in self._sectors

    def get(self, miner: Address | int, number: int) -> StoredSector:
        miner_id = _miner_id(miner)
        with self._lock:
            sector = self._sectors.get((miner_id, number))
        if sector is None:
            raise SectorNotFound(f"sector {number} of miner t0{miner_id} is not in the sector store")
        return sector

    def sealed_path(self, miner: Address | int, number: int) -> Path:
        return self.root / SEALED_DIR / sector_name(_miner_id(miner), _check_number(number))

    def cache_path(self, miner: Address | int, number: int) -> Path:
        return self.root / CACHE_DIR / sector_name(_miner_id(miner), _check_number(number))

    # -- reading sectors back -------------------------------------------------------------------------
    def _read_file(self, path: Path, what: str, size: int) -> bytes:
        try:
            with path.open("rb") as stream:
                actual = os.fstat(stream.fileno()).st_size
                if actual != size:
                    raise SectorCorrupt(f"{path}: {what} is {actual} bytes, expected {size}")
                data = stream.read(size + 1)
        except FileNotFoundError:
            raise SectorMissing(f"{path}: {what} is missing") from None
        except OSError as exc:
            raise SectorMissing(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
        if len(data) != size:  # changed while being read
            raise SectorCorrupt(f"{path}: {what} is {len(data)} bytes, expected {size}")
        return data

    def _read_p_aux(self, sector: StoredSector) -> tuple[bytes, bytes]:
        path = self.cache_path(sector.miner, sector.number) / P_AUX
        data = self._read_file(path, "p_aux", P_AUX_SIZE)
        comm_c, comm_r_last = data[:COMMITMENT_SIZE], data[COMMITMENT_SIZE:]
        if seal.comm_r_of(comm_c, comm_r_last) != sector.comm_r:
            raise SectorCorrupt(f"{path}: CommC and CommRLast do not hash to the sector's CommR")
        return comm_c, comm_r_last

    def _stat_replica(self, sector: StoredSector) -> Path:
        path = self.sealed_path(sector.miner, sector.number)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise SectorMissing(f"{path}: replica is missing") from None
        except OSError as exc:
            raise SectorMissing(f"{path}: cannot read the replica: {exc.strerror or exc}") from None
        if size != sector.sector_size:
            raise SectorCorrupt(f"{path}: replica is {size} bytes, expected {sector.sector_size}")
        return path

    def stat(self, miner: Address | int, number: int) -> StoredSector:
        """The sector, after the cheap checks: indexed, replica of the right size, p_aux matching CommR
        (no replica is read). Raises SectorNotFound, SectorMissing or SectorCorrupt."""
        sector = self.get(miner, number)
        self._stat_replica(sector)
        self._read_p_aux(sector)
        return sector

    def proving_sector(
        self, miner: Address | int, number: int, *, verify: bool = False
    ) -> post.ProvingSector:
        """The sector as a PoSt proves it: commitments and replica. With verify, the replica's tree is
        hashed and must give CommRLast (a PoSt does that anyway: FaultySectors names it otherwise).
        Raises SectorNotFound, SectorMissing or SectorCorrupt."""
        sector = self.get(miner, number)
        comm_c, comm_r_last = self._read_p_aux(sector)
        path = self.sealed_path(sector.miner, sector.number)
        replica = self._read_file(path, "replica", sector.sector_size)
        if verify and merkle.root_of(replica) != comm_r_last:
            raise SectorCorrupt(f"{path}: replica does not match its CommR")
        return post.ProvingSector(sector.number, sector.comm_r, comm_c, comm_r_last, replica)

    def check(
        self,
        miner: Address | int,
        numbers: Iterable[int],
        *,
        chain_comm_r: Mapping[int, bytes] | None = None,
    ) -> list[SectorFault]:
        """The sectors among numbers that cannot be proved, each with the reason (empty: all good).

        Each replica is read and its tree hashed (as a PoSt would); chain_comm_r, the CommR the chain
        holds per sector, makes a sector whose stored CommR differs a fault too.
        """
        faults = []
        for number in sorted(set(numbers)):
            try:
                held = self.proving_sector(miner, number, verify=True)
                expected = None if chain_comm_r is None else chain_comm_r.get(number)
                if expected is not None and expected != held.comm_r:
                    raise SectorCorrupt(f"sector {number}: the stored CommR differs from the one on chain")
            except SectorStoreError as exc:
                faults.append(SectorFault(number, str(exc)))
        return faults

    # -- adding and removing --------------------------------------------------------------------------
    def add(
        self,
        miner: Address | int,
        number: int,
        *,
        seal_proof: int,
        comm_d: bytes,
        comm_r: bytes,
        comm_c: bytes,
        comm_r_last: bytes,
        replica: bytes | Path,
        verify: bool = True,
    ) -> StoredSector:
        """Put a sealed sector in the store: replica (bytes, or a file to move in) and p_aux, then the
        index. With verify (the default) the commitments must match the replica (SectorCorrupt
        otherwise, and nothing changes). Adding a sector again replaces it."""
        miner_id = _miner_id(miner)
        _check_number(number)
        size = seal_params(seal_proof).sector_size
        for value, what in (
            (comm_d, "CommD"),
            (comm_r, "CommR"),
            (comm_c, "CommC"),
            (comm_r_last, "CommRLast"),
        ):
            _check_commitment(value, what)
        sector = StoredSector(miner_id, number, seal_proof, comm_d, comm_r)
        if seal.comm_r_of(comm_c, comm_r_last) != comm_r:
            raise SectorCorrupt(f"sector {sector.name}: CommC and CommRLast do not hash to CommR")
        if isinstance(replica, Path):
            actual = replica.stat().st_size
            if actual != size:
                raise SectorCorrupt(f"{replica}: replica is {actual} bytes, expected {size}")
            if verify and merkle.root_of(replica.read_bytes()) != comm_r_last:
                raise SectorCorrupt(f"{replica}: replica does not match CommRLast")
        else:
            if len(replica) != size:
                raise SectorCorrupt(f"sector {sector.name}: replica is {len(replica)} bytes, expected {size}")
            if verify and merkle.root_of(replica) != comm_r_last:
                raise SectorCorrupt(f"sector {sector.name}: replica does not match CommRLast")
        with self._lock:
            cache = self.cache_path(miner_id, number)
            cache.mkdir(parents=True, exist_ok=True)
            sealed = self.sealed_path(miner_id, number)
            if isinstance(replica, Path):
                _move_in(replica, sealed)
            else:
                write_atomic(sealed, replica)
            write_atomic(cache / P_AUX, comm_c + comm_r_last)
            updated = dict(self._sectors)
            updated[(miner_id, number)] = sector
            self._write_index(updated)
            self._sectors = updated
        return sector

    def add_sealed(
        self, sealed: seal.SealedSector | PresealedSector, miner: Address | int, *, verify: bool = True
    ) -> StoredSector:
        """Put a sealed sector in the store: one just sealed by proofs.seal, or a pre-sealed one (read
        back by node/preseal.py, which has checked its replica already: verify=False)."""
        if isinstance(sealed, PresealedSector):
            number, seal_proof = sealed.number, sealed.seal_proof
        else:
            number, seal_proof = sealed.sector_number, int(sealed.proof)
        return self.add(
            miner,
            number,
            seal_proof=seal_proof,
            comm_d=sealed.comm_d,
            comm_r=sealed.comm_r,
            comm_c=sealed.comm_c,
            comm_r_last=sealed.comm_r_last,
            replica=sealed.replica,
            verify=verify,
        )

    def remove(self, miner: Address | int, number: int) -> None:
        """Forget a sector (SectorNotFound if not held) and delete its files."""
        sector = self.get(miner, number)
        with self._lock:
            updated = dict(self._sectors)
            updated.pop((sector.miner, sector.number), None)
            self._write_index(updated)
            self._sectors = updated
            self.sealed_path(sector.miner, sector.number).unlink(missing_ok=True)
            shutil.rmtree(self.cache_path(sector.miner, sector.number), ignore_errors=True)

    def import_presealed(self, directory: Path, miner: Address, network: str) -> list[StoredSector]:
        """Index the pre-sealed sectors of a genesis miner (node/preseal.py's sectors directory, which
        may be this store's own directory: files already in place are not copied). Sectors already
        held with the same CommR are left as they are; one held with another CommR is an error.
        Raises PresealError (node/preseal.py) when the directory cannot be read back."""
        presealed = read_presealed(directory, miner, network)  # checks every replica against its CommR
        miner_id = _miner_id(presealed.id_address)
        imported = []
        for pre in presealed.sectors:
            with self._lock:
                held = self._sectors.get((miner_id, pre.number))
            if held is not None:
                if held.comm_r != pre.comm_r:
                    raise SectorStoreError(
                        f"the store already holds sector {held.name} with another CommR than "
                        f"the pre-sealed one in {directory}"
                    )
                imported.append(held)
                continue
            source = Path(directory) / SEALED_DIR / f"s-{miner.to_string(network)}-{pre.number}"
            if _same_file(source, self.sealed_path(miner_id, pre.number)):
                imported.append(
                    self._index_in_place(miner_id, pre.number, pre.seal_proof, pre.comm_d, pre.comm_r)
                )
                continue
            imported.append(self.add_sealed(pre, miner_id, verify=False))
        return imported

    def _index_in_place(
        self, miner_id: int, number: int, seal_proof: int, comm_d: bytes, comm_r: bytes
    ) -> StoredSector:
        """Index a sector whose files are already where the store keeps them."""
        sector = StoredSector(miner_id, number, seal_proof, comm_d, comm_r)
        self._read_p_aux(sector)
        with self._lock:
            updated = dict(self._sectors)
            updated[(miner_id, number)] = sector
            self._write_index(updated)
            self._sectors = updated
        return sector


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _move_in(source: Path, dest: Path) -> None:
    """Move source to dest atomically; across file systems, copy it in (then fsync and rename)."""
    with source.open("rb") as stream:
        os.fsync(stream.fileno())
    try:
        os.replace(source, dest)
    except OSError:
        pass  # another file system: copy it in instead
    else:
        _fsync_directory(dest.parent)
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as stream:
            shutil.copyfileobj(stream, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_directory(dest.parent)
    with contextlib.suppress(OSError):
        source.unlink()


def _fsync_directory(directory: Path) -> None:
    # A rename is durable only once the directory entry is on disk.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
