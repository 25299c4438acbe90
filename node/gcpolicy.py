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

import structlog

_log = structlog.get_logger(__name__)


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


class CollectorClock:
    """CPU seconds spent in the cyclic collector's collections, per generation, while registered
    (gc.callbacks). A collection starts and stops in the thread that triggered it and holds the GIL
    throughout, so that thread's CPU time between the two is the collection's cost."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.thread_time()
        else:
            generation = info["generation"]
            self.seconds[generation] += time.thread_time() - self._started
            self.collections[generation] += 1

    def __enter__(self) -> "CollectorClock":
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)
