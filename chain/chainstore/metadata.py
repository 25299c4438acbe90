"""Ordered key-value metadata beside the blocks: the chain store's head, weights and height index.

Keys are bytes ordered bytewise, as LevelDB orders them, so that big-endian heights sort numerically
and "the greatest key at or below k" is one seek. `LevelDBMetadata` lives in the same LevelDB as the
repo's blocks (under its own namespace, so the two never collide); `MemoryMetadata` is the in-memory
twin for tests. A batch lands whole or not at all.
"""

import bisect
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Final, Protocol

from chain.store.batch import LevelBatch, StagedOps, leveldb_transaction, until_exit

METADATA_NAMESPACE: Final = b"/meta/"


class MetaBatch(Protocol):
    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...


class MetadataStore(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...

    def batch(self) -> AbstractContextManager[MetaBatch]:
        """Stage writes, applied in order and together when the with-block ends normally; dropped if
        it raises."""
        ...

    def floor(self, prefix: bytes, key: bytes) -> tuple[bytes, bytes] | None:
        """The entry with the greatest key <= key among keys starting with prefix (key starts with
        prefix too), or None."""
        ...

    def ceiling(self, prefix: bytes, key: bytes) -> tuple[bytes, bytes] | None:
        """The entry with the least key >= key among keys starting with prefix, or None."""
        ...

    def items(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Entries under prefix in key order (a snapshot for the memory store)."""
        ...


def _prefix_end(prefix: bytes) -> bytes | None:
    """The least key greater than every key starting with prefix (None: no such key)."""
    raw = bytearray(prefix)
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return bytes(raw)
        raw.pop()
    return None


class MemoryMetadata:
    """A dict and a sorted key list; the same behaviour as the LevelDB store."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        key = bytes(key)
        if key not in self._data:
            bisect.insort(self._keys, key)
        self._data[key] = bytes(value)

    def delete(self, key: bytes) -> None:
        key = bytes(key)
        if self._data.pop(key, None) is not None:
            del self._keys[bisect.bisect_left(self._keys, key)]

    @contextmanager
    def batch(self) -> Iterator[MetaBatch]:
        with until_exit(StagedOps[bytes]()) as staged:
            yield staged
        staged.apply_to(self.put, self.delete)

    def floor(self, prefix: bytes, key: bytes) -> tuple[bytes, bytes] | None:
        i = bisect.bisect_right(self._keys, key) - 1
        if i >= 0 and self._keys[i].startswith(prefix):
            found = self._keys[i]
            return found, self._data[found]
        return None

    def ceiling(self, prefix: bytes, key: bytes) -> tuple[bytes, bytes] | None:
        i = bisect.bisect_left(self._keys, key)
        if i < len(self._keys) and self._keys[i].startswith(prefix):
            found = self._keys[i]
            return found, self._data[found]
        return None

    def items(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        start = bisect.bisect_left(self._keys, prefix)
        snapshot = []
        for key in self._keys[start:]:
            if not key.startswith(prefix):
                break
            snapshot.append((key, self._data[key]))
        return iter(snapshot)


class LevelDBMetadata:
    """Metadata in a plyvel DB (usually `LevelDBBlockstore.db`) under its own namespace.

    The DB's owner opens and closes it; sync=True makes each write and batch wait for the disk.
    """

    def __init__(self, db: Any, *, namespace: bytes = METADATA_NAMESPACE, sync: bool = False) -> None:
        self._db = db
        self._ns = namespace
        self._sync = sync

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(self._ns + key)
        return value

    def put(self, key: bytes, value: bytes) -> None:
        self._db.put(self._ns + key, bytes(value), sync=self._sync)

    def delete(self, key: bytes) -> None:
        self._db.delete(self._ns + key, sync=self._sync)

    @contextmanager
    def batch(self) -> Iterator[MetaBatch]:
        with leveldb_transaction(
            self._db, sync=self._sync, wrap=lambda wb: LevelBatch(wb, self._ns, bytes)
        ) as b:
            yield b

    def _first(self, **bounds: Any) -> tuple[bytes, bytes] | None:
        skip = len(self._ns)
        with self._db.iterator(**bounds) as it:
            for key, value in it:
                return key[skip:], value
        return None

    def floor(self, prefix: bytes, key: bytes) -> tuple[bytes, bytes] | None:
        ns = self._ns
        return self._first(start=ns + prefix, stop=ns + key, include_stop=True, reverse=True)

    def ceiling(self, prefix: bytes, key: bytes) -> tuple[bytes, bytes] | None:
        ns = self._ns
        end = _prefix_end(ns + prefix)
        if end is None:
            return self._first(start=ns + key)
        return self._first(start=ns + key, stop=end)

    def items(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        skip = len(self._ns)
        with self._db.iterator(prefix=self._ns + prefix) as it:
            for key, value in it:
                yield key[skip:], value
