"""A memory blockstore that counts its block reads and writes: the tests of lazy loading and
dirty-only flushes (AMT, HAMT, state tree) assert on the counts."""

from collections.abc import Iterable

from chain.encoding.cid import CID
from chain.store.blockstore import MemoryBlockstore


class CountingStore(MemoryBlockstore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.writes = 0

    @classmethod
    def copy_of(cls, base: MemoryBlockstore) -> "CountingStore":
        """A counting store holding every block of base, its counts at zero."""
        store = cls()
        store.put_many((cid, base.get(cid) or b"") for cid in list(base.keys()))
        store.writes = 0
        return store

    def get(self, cid: CID) -> bytes | None:
        self.reads += 1
        return super().get(cid)

    def put(self, cid: CID, data: bytes) -> None:
        self.writes += 1
        super().put(cid, data)

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        staged = list(blocks)
        self.writes += len(staged)
        super().put_many(staged)
