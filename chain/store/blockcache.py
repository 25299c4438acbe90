"""Decoded blocks kept by CID, so that state read again is not decoded again.

Validating a block loads a dozen state trees (the parent's, the lookback's, ...) and consecutive
tipsets share most of their state: the same HAMT and AMT nodes and actor states are read over and over.
A `BlockCache` keeps what decoding a block gave (a HAMT node, an AMT node, an actor state object),
keyed by what it was decoded as (the decoder's `kind`: a HAMT node of bitwidth 5, a PowerState...) and
the block's CID.

What is checked when, and why a hit loses nothing:

- Decoding is strict (`chain/encoding/dagcbor.py`: canonical DAG-CBOR only) and each decoder validates
  the structure (a HAMT node's bitfield and buckets, an AMT node's bmap...). A block is decoded this
  way the first time the process reads it from a store, whatever the store and wherever its bytes
  came from (our own writes, the network, a CAR file).
- An entry keeps the bytes it was decoded from, and a hit requires the bytes the store returns now to
  be those bytes: the store is read on every lookup, so a missing block is still BlockNotFound, and
  bytes that differ (a store holding something else under that CID) are decoded, strictly, again. A
  hit therefore hands back exactly what strict decoding of those very bytes gives; only the repeated
  work is skipped.
- Blocks the process encodes itself (a HAMT or AMT flush) are entered with the bytes written: the
  canonical encoder made them, so strict decoding would accept them and give back the node written.
- Cached values are shared by every reader and never mutated: HAMT and AMT nodes are copy-on-write
  (a tree reads a cached node as it is, copies it only to change it, and keeps the children it loads
  in its own map, not in the shared node's links: `chain/state/hamt.py`), actor states are frozen
  declared types.

Values derived from a whole state (`derived`/`remember`, e.g. a miner's Winning PoSt candidates) are
keyed by the state's root CID, which commits to every block below it; they were computed from this
store's blocks, so they are what computing them again would give.

Memory is bounded by the encoded size of the blocks held (`max_bytes`, plus a fixed charge per entry):
past it the least recently used entries go. Decoded objects take several times their encoded size in
Python, which the default bound allows for.

Stores that offer a cache have a `block_cache` attribute (`MemoryBlockstore`, `LevelDBBlockstore`, and
`chain/stmgr/buffered.py`'s buffer, which uses its base store's); `cache_of(store)` finds it. A store
without one (the VM's gas-charging view) decodes every read, as before.
"""

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Final

from chain.encoding.cid import CID

# 32 MiB of encoded blocks: a devnet's whole state several times over; decoded, a few hundred MiB at
# most (nodes full of CIDs and big integers weigh ~5-10x their encoding in Python).
DEFAULT_MAX_BYTES: Final = 32 << 20
# What an entry costs beyond its bytes (key, bookkeeping), so that tiny blocks are bounded too.
ENTRY_OVERHEAD: Final = 256
# The "bytes" of a derived entry (see BlockCache.derived): not a block's, charged as a 1 KiB one.
_DERIVED: Final = bytes(1024)


class BlockCache:
    """Decoded blocks by (kind, CID), each with the bytes it was decoded from; see the module doc.
    Thread-safe."""

    __slots__ = ("_entries", "_lock", "_max_bytes", "_size", "evictions", "hits", "misses")

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 1:
            raise ValueError(f"a block cache holds at least one byte, got max_bytes={max_bytes}")
        self._max_bytes = max_bytes
        self._entries: OrderedDict[tuple[Hashable, CID], tuple[bytes, Any]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    @property
    def size(self) -> int:
        """The bytes held, entry overheads included (never above max_bytes after a put)."""
        return self._size

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, kind: Hashable, cid: CID, data: bytes) -> Any:
        """What decoding data as kind gave, if data are the bytes it was decoded from; else None."""
        key = (kind, cid)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or (entry[0] is not data and entry[0] != data):
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]

    def put(self, kind: Hashable, cid: CID, data: bytes, value: Any) -> None:
        """Remember that data (the bytes of cid) decode as kind to value; value is never mutated."""
        key = (kind, cid)
        cost = len(data) + ENTRY_OVERHEAD
        if cost > self._max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._size -= len(old[0]) + ENTRY_OVERHEAD
            self._entries[key] = (data, value)
            self._size += cost
            while self._size > self._max_bytes:
                _, (evicted, _) = self._entries.popitem(last=False)
                self._size -= len(evicted) + ENTRY_OVERHEAD
                self.evictions += 1

    # Values derived from a whole DAG (the Winning PoSt candidates of a miner in a state): keyed by the
    # DAG's root CID, which commits to everything below it, and computed from this store's blocks.
    def derived(self, kind: Hashable, root: CID) -> Any:
        """A value remembered for (kind, root), or None."""
        return self.get(kind, root, _DERIVED)

    def remember(self, kind: Hashable, root: CID, value: Any) -> None:
        self.put(kind, root, _DERIVED, value)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._size = 0


def cache_of(store: object) -> BlockCache | None:
    """The block cache a store offers, or None."""
    cache = getattr(store, "block_cache", None)
    return cache if isinstance(cache, BlockCache) else None
