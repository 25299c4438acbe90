"""Blocks known to be invalid, and why (Lotus chain/badtipset_cache.go).

A block that failed validation is remembered with the reason; blocks whose chain contains it are
remembered too, their reason linked to the original one ("linked to ..., caused by: ..."), so that a
peer announcing any of them is not followed again. The cache is bounded (Lotus's 2^15 entries): the
oldest entries are forgotten first.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from chain.encoding.cid import CID

# lotus build.BadBlockCacheSize
BAD_BLOCK_CACHE_SIZE: Final = 1 << 15


@dataclass(frozen=True, slots=True)
class BadBlockReason:
    """Why a block is bad (Lotus BadBlockReason): the reason, the tipset the failure was found in, and
    for a block that is bad because its chain holds a bad block, the reason of that first one."""

    reason: str
    tipset: tuple[CID, ...] = ()
    original: "BadBlockReason | None" = None
    at: float = 0.0  # when it was marked (Unix seconds)

    def linked(self, reason: str, *, at: float = 0.0) -> "BadBlockReason":
        """The reason of a block whose chain holds the block this reason is about."""
        return BadBlockReason(reason, (), self.original or self, at)

    def __str__(self) -> str:
        if self.original is None:
            return self.reason
        cids = ",".join(str(c) for c in self.original.tipset)
        return f"{self.reason} caused by: [{cids}] {self.original}"


class BadBlockCache:
    """Thread-safe, bounded: `size` blocks at most, the least recently marked forgotten first."""

    def __init__(self, size: int = BAD_BLOCK_CACHE_SIZE, *, clock: Callable[[], float] = time.time) -> None:
        if size < 1:
            raise ValueError(f"the bad block cache holds at least one block, got size {size}")
        self._size = size
        self._clock = clock
        self._lock = threading.Lock()
        self._reasons: OrderedDict[CID, BadBlockReason] = OrderedDict()

    def add(self, cid: CID, reason: BadBlockReason) -> None:
        if not reason.at:
            reason = BadBlockReason(reason.reason, reason.tipset, reason.original, self._clock())
        with self._lock:
            self._reasons[cid] = reason
            self._reasons.move_to_end(cid)
            while len(self._reasons) > self._size:
                self._reasons.popitem(last=False)

    def mark(self, cids: Iterable[CID], reason: str, tipset: tuple[CID, ...] = ()) -> BadBlockReason:
        """Mark blocks bad for one reason; the reason recorded."""
        recorded = BadBlockReason(reason, tipset, None, self._clock())
        for cid in cids:
            self.add(cid, recorded)
        return recorded

    def mark_linked(self, cids: Iterable[CID], cause: BadBlockReason, reason: str) -> None:
        """Mark blocks bad because their chain holds a bad block (cause)."""
        linked = cause.linked(reason, at=self._clock())
        for cid in cids:
            self.add(cid, linked)

    def get(self, cid: CID) -> BadBlockReason | None:
        with self._lock:
            return self._reasons.get(cid)

    def __contains__(self, cid: object) -> bool:
        with self._lock:
            return cid in self._reasons

    def remove(self, cid: CID) -> None:
        with self._lock:
            self._reasons.pop(cid, None)

    def clear(self) -> None:
        with self._lock:
            self._reasons.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._reasons)
