"""Stretches of chain the state manager has seen, by height, for finding lookback tipsets without walking.

An election at round r on top of base looks back to the first tipset above r - finality on base's
chain (StateManager.lookback). Found by walking back from base, that is up to finality tipset loads
(and a height-index read each while base is off the heaviest chain, as during a catch-up), for every
block validated and again for its checks computed ahead. The bases asked about come mostly in chain
order (a sync validates upwards; a node following the head asks on each new head), so each stretch
here is a run of consecutive tipsets (each the parent of the next) that grows by a base whose parent is
its last tipset: once it reaches finality back, the answer is a bisection over its heights.

A stretch only ever holds tipsets that are parents of one another (keys are content-addressed, so a
held tipset's ancestors are the entries before it); a base neither in a stretch nor on top of one
starts a new one (the oldest is dropped) and is answered by the walk meanwhile.
"""

import threading
from bisect import bisect_left
from typing import Final

from chain.types.tipset import TipSet

STRETCHES: Final = 4  # a sync's chain, the head's, and a fork or two


class _Stretch:
    """Consecutive tipsets of one chain, oldest first, at most `bound` of them."""

    __slots__ = ("bound", "heights", "tipsets")

    def __init__(self, ts: TipSet, bound: int) -> None:
        self.bound = bound
        self.heights = [ts.height]
        self.tipsets = [ts]

    def index_of(self, ts: TipSet) -> int | None:
        i = bisect_left(self.heights, ts.height)
        if i < len(self.heights) and self.heights[i] == ts.height and self.tipsets[i].key == ts.key:
            return i
        return None

    def extend(self, ts: TipSet) -> int | None:
        """Append ts if its parent is the last tipset; its index, or None."""
        if ts.parents != self.tipsets[-1].key:
            return None
        self.heights.append(ts.height)
        self.tipsets.append(ts)
        if len(self.tipsets) > self.bound:
            drop = len(self.tipsets) - self.bound // 2
            del self.heights[:drop]
            del self.tipsets[:drop]
        return len(self.tipsets) - 1


class ChainStretches:
    """See the module doc. Thread-safe."""

    def __init__(self, finality: int, stretches: int = STRETCHES) -> None:
        # Each stretch keeps twice finality: a base's lookback is at most finality below it.
        self._bound = 2 * (finality + 1)
        self._max = stretches
        self._stretches: list[_Stretch] = []  # the most recently used last
        self._lock = threading.Lock()

    def first_above(self, base: TipSet, height: int) -> tuple[TipSet, TipSet] | None:
        """(the first tipset at or above height on base's chain, its parent) when a stretch holding base
        reaches below height; None when none does yet (base is then remembered: its chain may grow).
        height must not be above base's."""
        if height > base.height:
            raise ValueError(f"height {height} is above the base's {base.height}")
        with self._lock:
            for n, stretch in enumerate(self._stretches):
                j = stretch.index_of(base)
                if j is None:
                    j = stretch.extend(base)
                if j is not None:
                    if n != len(self._stretches) - 1:
                        self._stretches.append(self._stretches.pop(n))
                    break
            else:
                if len(self._stretches) >= self._max:
                    self._stretches.pop(0)
                self._stretches.append(_Stretch(base, self._bound))
                return None
            i = bisect_left(stretch.heights, height, 0, j + 1)
            if i == 0:
                # Nothing held below height: the first tipset held may not be the first above it.
                return None
            return stretch.tipsets[i], stretch.tipsets[i - 1]
