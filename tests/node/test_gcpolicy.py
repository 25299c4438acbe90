"""node/gcpolicy.py: the objects alive once the node has started are frozen out of the collector's scans;
garbage made later is collected as before. The sync policy freezes after each batch and collects in
full when the heap has grown or enough batches have passed, so a frozen cycle is freed."""

import gc
import weakref
from collections.abc import Iterator

import pytest


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _dropped_cycle() -> "weakref.ref[_Node]":
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.collect()
    try:
        yield
    finally:
        gc.unfreeze()  # the rest of the test session collects as before


def test_the_start_up_heap_is_frozen_and_later_cycles_are_still_collected(unfrozen: None) -> None:
    from node.gcpolicy import freeze_startup_heap

    kept = [[i] for i in range(1000)]
    blocks = freeze_startup_heap()
    assert len(kept) <= gc.get_freeze_count() and len(kept) < blocks
    gone = _dropped_cycle()  # a reference cycle made after start-up, then dropped
    gc.collect()
    assert gone() is None


def test_a_node_collector_has_the_node_thresholds_and_a_frozen_start_up_heap(unfrozen: None) -> None:
    from node.gcpolicy import DEFAULT_THRESHOLDS, THRESHOLDS, configure_collector

    try:
        assert configure_collector() > 0
        assert gc.get_threshold() == THRESHOLDS
    finally:
        gc.set_threshold(*DEFAULT_THRESHOLDS)


def test_frozen_growth_brings_a_full_collection_that_frees_a_frozen_cycle(unfrozen: None) -> None:
    from node.gcpolicy import SyncGcPolicy

    policy = SyncGcPolicy(growth=1.5, check_every=2, collect_every=1000)
    policy.after_batch()
    policy.after_batch()  # the first count: the baseline
    assert policy.baseline is not None and policy.full_collections == 0
    gone = _dropped_cycle()
    policy.after_batch()
    gc.collect()
    assert gone() is not None  # frozen with the batch: the collector no longer sees it
    kept = [[i] for i in range(policy.baseline)]  # the heap more than doubles (a list is two blocks)
    policy.after_batch()
    assert policy.full_collections == 1
    assert gone() is None
    assert policy.baseline >= len(kept)


def test_a_frozen_cycle_is_freed_after_collect_every_batches_without_growth(unfrozen: None) -> None:
    from node.gcpolicy import SyncGcPolicy

    policy = SyncGcPolicy(growth=1000.0, check_every=1, collect_every=3)
    gone = _dropped_cycle()
    policy.after_batch()
    policy.after_batch()
    gc.collect()
    assert gone() is not None and policy.full_collections == 0
    policy.after_batch()
    assert policy.full_collections == 1 and gone() is None
    assert policy.batches == 3


def test_a_policy_that_would_never_collect_is_refused() -> None:
    from node.gcpolicy import SyncGcPolicy

    for bad in ({"growth": 1.0}, {"check_every": 0}, {"check_every": 8, "collect_every": 4}):
        with pytest.raises(ValueError):
            SyncGcPolicy(**bad)  # type: ignore[arg-type]


def test_the_heap_measure_follows_what_is_allocated() -> None:
    """heap_blocks stands for the frozen objects' count: it grows with the objects made and kept."""
    from node.gcpolicy import heap_blocks

    before = heap_blocks()
    kept = [[i] for i in range(100_000)]
    assert heap_blocks() - before >= len(kept)
    del kept
    assert heap_blocks() < before + 100_000
