"""The drand entries a node has verified, by round: bounded, and kept across restarts.

Entries live in memory and in the node's metadata store (the repo's LevelDB, under its own namespace),
keyed by the chain hash and the round as a big-endian uint64, so that a restarted node answers for the
rounds it had and a repo never mixes two beacons' rounds. Only the newest `limit` rounds are kept (by
default as many as one block header can carry, 8,192: about 1 MB); older rounds are what the chain's
blocks record, and chain randomness reads them from there (chain/stmgr/randomness.py).

Only verified entries are put here (node/beacon/service.py checks them first); reads come from worker
threads (block production, validation) as well as the event loop, so a lock guards the map.
"""

import threading
from collections.abc import Iterator
from typing import Final

from chain.chainstore.metadata import MemoryMetadata, MetadataStore
from chain.types.beacon import BeaconEntry

DEFAULT_LIMIT: Final = 8192
# The metadata namespace node assembly gives this store (LevelDBMetadata(db, namespace=...)).
NAMESPACE: Final = b"/beacon/"


class BeaconStore:
    def __init__(self, meta: MetadataStore, chain_hash: bytes, *, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 1:
            raise ValueError(f"a beacon store keeps at least one round, not {limit}")
        self._meta = meta
        self._prefix = bytes(chain_hash)
        self.limit = limit
        self._lock = threading.Lock()
        self._entries: dict[int, bytes] = {}
        for key, value in meta.items(self._prefix):
            self._entries[int.from_bytes(key[len(self._prefix) :], "big")] = value
        self._prune()

    @classmethod
    def in_memory(cls, chain_hash: bytes, *, limit: int = DEFAULT_LIMIT) -> "BeaconStore":
        return cls(MemoryMetadata(), chain_hash, limit=limit)

    def _key(self, round_: int) -> bytes:
        return self._prefix + round_.to_bytes(8, "big")

    def get(self, round_: int, /) -> BeaconEntry | None:
        with self._lock:
            data = self._entries.get(round_)
        return None if data is None else BeaconEntry(round_, data)

    def __contains__(self, round_: int) -> bool:
        with self._lock:
            return round_ in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def rounds(self) -> Iterator[int]:
        with self._lock:
            return iter(sorted(self._entries))

    def contiguous_end(self) -> BeaconEntry | None:
        """The last round of the run of consecutive rounds that starts at the oldest one kept: where
        a node that missed rounds has to continue from."""
        with self._lock:
            if not self._entries:
                return None
            round_ = min(self._entries)
            while round_ + 1 in self._entries:
                round_ += 1
            return BeaconEntry(round_, self._entries[round_])

    def latest(self) -> BeaconEntry | None:
        with self._lock:
            if not self._entries:
                return None
            round_ = max(self._entries)
            return BeaconEntry(round_, self._entries[round_])

    def put(self, entry: BeaconEntry) -> bool:
        """Keep a verified entry; False if the round was already there (the first one stays)."""
        with self._lock:
            if entry.round in self._entries:
                return False
            self._meta.put(self._key(entry.round), entry.data)
            self._entries[entry.round] = entry.data
            self._prune()
            return True

    def _prune(self) -> None:
        if len(self._entries) <= self.limit:
            return
        drop = sorted(self._entries)[: len(self._entries) - self.limit]
        with self._meta.batch() as batch:
            for round_ in drop:
                batch.delete(self._key(round_))
        for round_ in drop:
            del self._entries[round_]
