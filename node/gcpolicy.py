"""The cyclic garbage collector's policy for a long-running node process.

Once a node has started, most of its objects live as long as the process (modules, the method registry,
declared codecs, open stores). A full (generation 2) collection walks them all, and the event loop
stands still meanwhile: in the RPC benchmark each such pause stopped every open call for tens of ms
(hundreds on a loaded machine), and was the largest cause of the 16-client p99 that the collector owns
(bench/bench_rpc.py, docs/rpc.md). Freezing what exists once the services run moves those objects out
of the collector's sight: later collections scan only what was made since. Reference counting still
frees frozen objects; only a reference cycle among them would now outlive its last use, and the
objects alive at start-up are the process's own.

A syncing node makes more long-lived objects: the decoded blocks, HAMT nodes and actor states its
caches hold outlive many tipsets. With Python's defaults a full collection comes whenever the objects
promoted since the last one pass a quarter of those it kept, and caches that evict as they fill promote
all the time: in `python -m bench sync` B's three full collections took 1.37 s of the collector's
1.69 s, 19 % of its process's CPU. So a node (cli/daemon.py serve; the sync bench's B and D the same):

- `configure_collector` once its services run: THRESHOLDS (a young collection after 10,000 net
  allocations, not 700: most of a tipset's temporaries die by reference counting before any scan),
  and the start-up heap frozen;
- `SyncGcPolicy`, its syncer's `after_batch` (chain/sync/syncer.py): after every batch a sync applies
  (64 tipsets in a catch-up) it freezes what the batch left, so later collections scan one batch's
  objects at most. The risk is the one above, now for objects made while syncing: a frozen object that
  becomes garbage inside a cycle (an evicted cache entry that refers to itself) stays until a full
  collection. The policy bounds it: after every CHECK_EVERY batches it measures the heap, and when it
  has grown GROWTH times since the last full collection, or COLLECT_EVERY batches (8,192 tipsets)
  have passed, it unfreezes, collects in full and freezes again. Frozen cyclic garbage stays under
  about (GROWTH - 1) times the live heap plus what CHECK_EVERY batches make, and is freed within
  COLLECT_EVERY batches. Such a collection walks the whole heap (about 0.4 s per two million objects,
  the GIL held: a pause, at most once per COLLECT_EVERY batches once the heap stops growing).
  The heap's measure is the small-object allocator's blocks in use (`sys.getallocatedblocks`, which
  visits each 4 KiB pool: 0.07-0.13 ms for half a million blocks), not the frozen objects' number:
  `gc.get_freeze_count` walks every frozen object, some 100 ns each with the GIL held (15 ms for the
  144,000 frozen after a 900-tipset replay; `bench sync`'s B has some 915,000). Cyclic garbage is
  made of such blocks, so the bound reads the same in blocks.
  Little is at stake: collecting in full before each freeze found only about 175 more objects per
  1,000 replayed tipsets. A node following the head by gossip applies its blocks outside batches and
  keeps the ordinary (raised-threshold) collections.

Measured (2026-12-03, machine loaded by other work: CPU figures, not rates). One-thread replay of 993
tipsets (bench_sync's `_replay` way, 2 rounds): the collector's CPU per tipset 0.38-0.43 ms with
Python's defaults, 0.08-0.10 ms with the batch freeze, 0.15-0.16 ms with thresholds (10000, 20, 10)
alone, 0.02-0.03 ms with both (kept); four replays in a row under one policy: no full collection, the
frozen objects steady at 469,173. `python -m bench sync`, B: the collector 0.85 -> 0.02 ms per tipset,
its process's CPU per tipset 4.52 -> 4.08 and 4.54 ms (two runs under heavier load), peak RSS growth
154 -> 154 and 153 MiB (docs/sync.md, Figures).
"""

import gc
import sys
import time
from typing import Final

import structlog

from chain.sync.syncer import Syncer

_log = structlog.get_logger(__name__)

# The heap (heap_blocks) may grow to this many times its size after the last full collection before
# the next one (measured every CHECK_EVERY batches): cyclic garbage frozen meanwhile is at most about
# (GROWTH - 1) times the live heap.
GROWTH: Final = 1.5
# Batches between two measures of the heap. A measure is cheap now, but the first one sets the baseline:
# taken after the first batch, on a fresh node's still small heap, it would bring more full collections
# during its first catch-up.
CHECK_EVERY: Final = 8
# Batches after which a full collection runs whatever the growth: a bound in time on frozen garbage.
COLLECT_EVERY: Final = 128
# The collector's thresholds in a node (gc.set_threshold): a young collection after 10,000 net
# allocations instead of 700, so most of a tipset's short-lived objects die by reference counting
# before any scan; a young collection then takes a few ms. Python's defaults, for what runs as before.
THRESHOLDS: Final = (10_000, 10, 10)
DEFAULT_THRESHOLDS: Final = (700, 10, 10)


def heap_blocks() -> int:
    """The heap's size as the small-object allocator's blocks in use (see the module doc: cheap, unlike
    counting the frozen objects)."""
    return sys.getallocatedblocks()


def freeze_startup_heap() -> int:
    """Collect once, then freeze every object that survived (gc.freeze); the heap's size then
    (heap_blocks)."""
    start = time.perf_counter()
    gc.collect()
    gc.freeze()
    blocks = heap_blocks()
    _log.debug(
        "start-up objects frozen out of the collector's scans",
        heap_blocks=blocks,
        ms=round((time.perf_counter() - start) * 1000, 1),
    )
    return blocks


def configure_collector() -> int:
    """A node's collector once its services run: THRESHOLDS, and the start-up heap frozen
    (freeze_startup_heap); the heap's size then (heap_blocks)."""
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
        self.longest = 0.0  # CPU seconds of the longest collection
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.thread_time()
        else:
            generation = info["generation"]
            took = time.thread_time() - self._started
            self.seconds[generation] += took
            self.longest = max(self.longest, took)
            self.collections[generation] += 1
            self.collected[generation] += info["collected"]

    def __enter__(self) -> "CollectorClock":
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


class SyncGcPolicy:
    """Freeze after every batch a sync applies; unfreeze, collect in full and freeze again when the
    heap (heap_blocks) has grown `growth` times since the last such collection (measured every
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
        # The heap's blocks after the last full collection; before the first, at the first measure.
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
            blocks = heap_blocks()
            if self.baseline is None:
                self.baseline = blocks
            elif blocks > self.growth * self.baseline:
                self.collect("growth")

    def collect(self, why: str) -> None:
        """Unfreeze, collect every generation, freeze what survived."""
        start = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        before, self.baseline = self.baseline, heap_blocks()
        self._since = 0
        self.full_collections += 1
        _log.debug(
            "frozen objects collected in full",
            why=why,
            garbage=found,
            heap_blocks=self.baseline,
            heap_blocks_before=before,
            ms=round((time.perf_counter() - start) * 1000, 1),
        )
