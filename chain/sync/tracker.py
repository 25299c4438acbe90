"""Validated blocks by height and parents, to build the largest tipset they make (Lotus's tipset
tracker and expandTipset in chain/store/store.go).

Blocks of one epoch on the same parents arrive one by one (each miner gossips its own); each is
validated on its own. Fork choice then compares the largest tipset they form: more blocks carry more
wins, so more weight. A miner's second block at one height is left out (two would be a consensus
fault); the first one tracked stays.
"""

import threading
from collections.abc import Iterable
from typing import Final

from chain.types.address import Address
from chain.types.block import BlockHeader
from chain.types.tipset import TipSet, TipSetKey

# How many epochs below the highest tracked block are kept.
DEFAULT_KEEP_EPOCHS: Final = 900


class TipSetTracker:
    def __init__(self, keep_epochs: int = DEFAULT_KEEP_EPOCHS) -> None:
        self._keep = keep_epochs
        self._lock = threading.Lock()
        self._blocks: dict[tuple[int, TipSetKey], dict[Address, BlockHeader]] = {}
        # The slots of each height: dropping those below the floor visits only them, not every slot
        # (a catch-up tracks a block per tipset, ~keep_epochs slots at any time).
        self._heights: dict[int, list[tuple[int, TipSetKey]]] = {}
        self._highest = 0
        self._lowest = 0  # no slot is below this height

    def add(self, header: BlockHeader) -> None:
        """Track a block that passed validation."""
        with self._lock:
            key = (header.height, TipSetKey(header.parents))
            slot = self._blocks.get(key)
            if slot is None:
                slot = self._blocks[key] = {}
                self._heights.setdefault(header.height, []).append(key)
                self._lowest = min(self._lowest, header.height)
            slot.setdefault(header.miner, header)
            if header.height > self._highest:
                self._highest = header.height
                floor = self._highest - self._keep
                if floor > self._lowest:
                    # The heights in between, or the heights tracked when they are fewer (a jump).
                    span: Iterable[int] = range(self._lowest, floor)
                    if floor - self._lowest > len(self._heights):
                        span = [h for h in self._heights if h < floor]
                    for height in span:
                        for old in self._heights.pop(height, ()):
                            del self._blocks[old]
                    self._lowest = floor

    def expand(self, ts: TipSet) -> TipSet:
        """ts with every other tracked block of its height and parents (one per miner)."""
        with self._lock:
            tracked = self._blocks.get((ts.height, ts.parents), {})
            if not tracked:
                return ts
            miners = {b.miner for b in ts.blocks}
            extra = [b for m, b in tracked.items() if m not in miners]
        return TipSet((*ts.blocks, *extra)) if extra else ts

    def __len__(self) -> int:
        with self._lock:
            return sum(len(slot) for slot in self._blocks.values())
