"""The cyclic garbage collector's policy for a long-running node process.

Once a node has started, most of its objects live as long as the process (modules, the method registry,
declared codecs, open stores). A full (generation 2) collection walks them all, and the event loop
stands still meanwhile: in the RPC benchmark each such pause stopped every open call for tens of ms
(hundreds on a loaded machine), and was the largest cause of the 16-client p99 that the collector owns
(bench/bench_rpc.py, docs/rpc.md). Freezing what exists once the services run moves those objects out
of the collector's sight: later collections scan only what was made since. Reference counting still
frees frozen objects; only a reference cycle among them would now outlive its last use, and the
objects alive at start-up are the process's own.
"""

import gc
import time
from typing import Final

import structlog

from chain.sync.syncer import Syncer

_log = structlog.get_logger(__name__)

# The frozen objects may grow to this many times their number after the last full collection before
# the next one (checked every CHECK_EVERY batches): cyclic garbage frozen meanwhile is at most about
# (GROWTH - 1) times the live heap.
GROWTH: Final = 1.5
# Batches between two counts of the frozen objects (gc.get_freeze_count walks all of them: tens of ms
# for two million objects, too much after every batch).
CHECK_EVERY: Final = 8
# Batches after which a full collection runs whatever the growth: a bound in time on frozen garbage.
COLLECT_EVERY: Final = 128
# The collector's thresholds in a node (gc.set_threshold): a young collection after 10,000 net
# allocations instead of 700, so most of a tipset's short-lived objects die by reference counting
# before any scan; a young collection then takes a few ms. Python's defaults, for what runs as before.
THRESHOLDS: Final = (10_000, 10, 10)
DEFAULT_THRESHOLDS: Final = (700, 10, 10)


def freeze_startup_heap() -> int:
    """Collect once, then freeze every object that survived (gc.freeze); how many were frozen."""
    start = time.perf_counter()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    _log.debug(
        "start-up objects frozen out of the collector's scans",
        objects=frozen,
        ms=round((time.perf_counter() - start) * 1000, 1),
    )
    return frozen


def configure_collector() -> int:
    """A node's collector once its services run: THRESHOLDS, and the start-up heap frozen
    (freeze_startup_heap); how many objects were frozen."""
    gc.set_threshold(*THRESHOLDS)
    return freeze_startup_heap()


class CollectorClock:
    """CPU seconds spent in the cyclic collector's collections, per generation, while registered
    (gc.callbacks). A collection starts and stops in the thread that triggered it and holds the GIL
    throughout, so that thread's CPU time between the two is the collection's cost."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]
        self.collected = [0, 0, 0]  # unreachable objects found
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.thread_time()
        else:
            generation = info["generation"]
            self.seconds[generation] += time.thread_time() - self._started
            self.collections[generation] += 1
            self.collected[generation] += info["collected"]

    def __enter__(self) -> "CollectorClock":
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


class SyncGcPolicy:
    """Freeze after every batch a sync applies; unfreeze, collect in full and freeze again when the
    frozen objects have grown `growth` times since the last such collection (counted every
    `check_every` batches) or `collect_every` batches have passed. Set as a Syncer's `after_batch`
    (`attach`). See the module docstring."""

    def __init__(
        self, *, growth: float = GROWTH, check_every: int = CHECK_EVERY, collect_every: int = COLLECT_EVERY
    ) -> None:
        if growth <= 1.0 or check_every < 1 or collect_every < check_every:
            raise ValueError(
                f"bad policy: growth {growth}, check every {check_every}, collect every {collect_every}"
            )
        self.growth = growth
        self.check_every = check_every
        self.collect_every = collect_every
        self.batches = 0
        self.full_collections = 0
        # Frozen objects after the last full collection; before the first, at the first count.
        self.baseline: int | None = None
        self._since = 0  # batches since the last full collection

    def attach(self, syncer: Syncer) -> None:
        syncer.after_batch = self.after_batch

    def after_batch(self) -> None:
        gc.freeze()
        self.batches += 1
        self._since += 1
        if self._since >= self.collect_every:
            self.collect("batches")
        elif self._since % self.check_every == 0:
            frozen = gc.get_freeze_count()
            if self.baseline is None:
                self.baseline = frozen
            elif frozen > self.growth * self.baseline:
                self.collect("growth")

    def collect(self, why: str) -> None:
        """Unfreeze, collect every generation, freeze what survived."""
        start = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        before, self.baseline = self.baseline, gc.get_freeze_count()
        self._since = 0
        self.full_collections += 1
        _log.debug(
            "frozen objects collected in full",
            why=why,
            garbage=found,
            frozen=self.baseline,
            frozen_before=before,
            ms=round((time.perf_counter() - start) * 1000, 1),
        )
