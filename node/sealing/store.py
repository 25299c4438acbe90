"""The sealing pipeline's durable state: one record per sector and the next sector number, per miner.

Records live in an ordered metadata store (chain/chainstore/metadata.py): the repo's LevelDB under the
namespace `/sealing/` (so that `repo.reset_chain()`, which removes the datastore, removes them with the
chain they belong to), or memory in tests. Keys, per miner actor ID (decimal) M:

    M/sector/<u64 BE number>   SectorRecord (DAG-CBOR, node/sealing/types.py)
    M/next                     the next sector number to give out (u64 BE)
    M/faulty/<u64 BE number>   WatchedSector: a sector faulty on chain, followed until it recovers,
                               expires or is terminated (node/sealing/replacement.py)
    M/replaced/<u64 BE number> ReplacedSector: a sector terminated for faults and its replacement

A write is one batch: a sector's new record, or several sectors' records together (a pre-commit batch
moves all its sectors at once), with the next number when a sector is made. So a crash leaves every
sector in the state of its last complete transition. Methods are synchronous (LevelDB): callers on the
trio loop use a worker thread.
"""

import threading
from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar

from chain.chainstore.metadata import LevelDBMetadata, MemoryMetadata, MetadataStore
from chain.chainstore.store import ChainStore
from chain.encoding.errors import DecodeError
from node.sealing.types import ReplacedSector, SectorRecord, WatchedSector

SEALING_NAMESPACE: Final = b"/sealing/"
T = TypeVar("T")


class SealingStoreError(Exception):
    """A stored record that cannot be read back: the message names the sector."""


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


class SealingStore:
    def __init__(self, meta: MetadataStore, miner_id: int) -> None:
        self._meta = meta
        self.miner_id = miner_id
        self._prefix = b"%d/" % miner_id
        self._lock = threading.Lock()

    @classmethod
    def for_db(cls, db: Any, miner_id: int) -> "SealingStore":
        """The store of one miner in a plyvel DB (the repo's datastore); writes wait for the disk."""
        return cls(LevelDBMetadata(db, namespace=SEALING_NAMESPACE, sync=True), miner_id)

    @classmethod
    def for_chain(cls, chain: ChainStore, miner_id: int) -> "SealingStore":
        """The store in the chain's LevelDB (the repo's datastore); in memory for an in-memory chain."""
        db = getattr(chain.blockstore, "db", None)
        return cls.in_memory(miner_id) if db is None else cls.for_db(db, miner_id)

    @classmethod
    def in_memory(cls, miner_id: int) -> "SealingStore":
        return cls(MemoryMetadata(), miner_id)

    def _key(self, number: int) -> bytes:
        return self._prefix + b"sector/" + _u64(number)

    def _decode(self, number: int, raw: bytes) -> SectorRecord:
        try:
            return SectorRecord.from_bytes(raw)
        except DecodeError as exc:
            raise SealingStoreError(
                f"the sealing record of sector {number} of miner t0{self.miner_id} is damaged: {exc}"
            ) from None

    def get(self, number: int) -> SectorRecord | None:
        raw = self._meta.get(self._key(number))
        return None if raw is None else self._decode(number, raw)

    def all(self) -> list[SectorRecord]:
        """Every sector's record, by sector number."""
        out = []
        start = len(self._prefix + b"sector/")
        for key, raw in self._meta.items(self._prefix + b"sector/"):
            out.append(self._decode(int.from_bytes(key[start:], "big"), raw))
        return out

    def next_number(self) -> int:
        raw = self._meta.get(self._prefix + b"next")
        return 0 if raw is None else int.from_bytes(raw, "big")

    def put(self, *records: SectorRecord) -> None:
        """Write records together (one batch)."""
        self.write(records)

    def write(
        self,
        records: Iterable[SectorRecord],
        *,
        next_number: int | None = None,
        watch: Iterable[WatchedSector] = (),
        unwatch: Iterable[int] = (),
        replaced: Iterable[ReplacedSector] = (),
    ) -> None:
        """One batch: sector records, the next number, faulty sectors followed or no longer followed,
        replacements made."""
        with self._lock, self._meta.batch() as batch:
            for record in records:
                batch.put(self._key(record.sector_number), record.to_bytes())
            if next_number is not None:
                batch.put(self._prefix + b"next", _u64(next_number))
            for watched in watch:
                batch.put(self._prefix + b"faulty/" + _u64(watched.sector_number), watched.to_bytes())
            for number in unwatch:
                batch.delete(self._prefix + b"faulty/" + _u64(number))
            for done in replaced:
                batch.put(self._prefix + b"replaced/" + _u64(done.sector_number), done.to_bytes())

    def watched(self) -> dict[int, WatchedSector]:
        """The faulty sectors being followed, by number."""
        return {w.sector_number: w for w in self._read_all(b"faulty/", WatchedSector.from_bytes)}

    def replaced(self) -> dict[int, ReplacedSector]:
        """The sectors terminated for faults and replaced, by the terminated sector's number."""
        return {r.sector_number: r for r in self._read_all(b"replaced/", ReplacedSector.from_bytes)}

    def _read_all(self, kind: bytes, decode: Callable[[bytes], T]) -> list[T]:
        out = []
        for key, raw in self._meta.items(self._prefix + kind):
            try:
                out.append(decode(raw))
            except DecodeError as exc:
                raise SealingStoreError(
                    f"the sealing store's {kind.decode()} entry {key!r} of miner t0{self.miner_id} "
                    f"is damaged: {exc}"
                ) from None
        return out
