"""node/gcpolicy.py: the objects alive once the node has started are frozen out of the collector's scans;
garbage made later is collected as before."""

import gc
import weakref


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_the_start_up_heap_is_frozen_and_later_cycles_are_still_collected() -> None:
    from node.gcpolicy import freeze_startup_heap

    try:
        kept = [[i] for i in range(1000)]
        frozen = freeze_startup_heap()
        # the count it returns is the frozen generation's size when frozen; reference counting still frees
        # frozen objects (its own temporaries, another thread's), so the size can only have fallen since
        assert len(kept) <= gc.get_freeze_count() <= frozen
        a, b = _Node(), _Node()
        a.other, b.other = b, a  # a reference cycle made after start-up, then dropped
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()  # the rest of the test session collects as before
