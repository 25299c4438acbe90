"""The ordered metadata stores (memory and LevelDB behave the same) and the LRU map."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.chainstore.metadata import LevelDBMetadata, MemoryMetadata, MetadataStore
from chain.store.blockstore import BatchingBlockstore, LevelDBBlockstore
from chain.store.lru import Lru


@pytest.fixture
def meta(store: BatchingBlockstore) -> MetadataStore:
    """The metadata store for each of conftest's blockstores: in memory, and inside the LevelDB one."""
    return LevelDBMetadata(store.db) if isinstance(store, LevelDBBlockstore) else MemoryMetadata()


def test_put_get_delete_and_batches(meta: MetadataStore) -> None:
    assert meta.get(b"a") is None
    meta.put(b"a", b"1")
    assert meta.get(b"a") == b"1"
    with meta.batch() as batch:
        batch.put(b"b", b"2")
        batch.delete(b"a")
        batch.put(b"a", b"3")  # in order: the later write wins
        assert meta.get(b"b") is None  # staged, not yet visible
    assert (meta.get(b"a"), meta.get(b"b")) == (b"3", b"2")
    with pytest.raises(RuntimeError, match="boom"), meta.batch() as batch:
        batch.put(b"c", b"4")
        raise RuntimeError("boom")
    assert meta.get(b"c") is None  # a batch that raised wrote nothing
    meta.delete(b"a")
    meta.delete(b"never there")
    assert meta.get(b"a") is None
    with meta.batch() as kept:
        pass
    with pytest.raises(RuntimeError, match="after its with-block"):
        kept.put(b"x", b"y")


def test_floor_ceiling_and_items_stay_within_the_prefix(meta: MetadataStore) -> None:
    for key in (b"h/\x00\x02", b"h/\x00\x05", b"h/\x00\x09", b"g/\x00\x07", b"i/\x00\x00"):
        meta.put(key, key[-1:])
    assert meta.floor(b"h/", b"h/\x00\x05") == (b"h/\x00\x05", b"\x05")
    assert meta.floor(b"h/", b"h/\x00\x04") == (b"h/\x00\x02", b"\x02")
    assert meta.floor(b"h/", b"h/\x00\x01") is None  # g/ sorts below but is another prefix
    assert meta.ceiling(b"h/", b"h/\x00\x06") == (b"h/\x00\x09", b"\x09")
    assert meta.ceiling(b"h/", b"h/\x00\x0a") is None  # i/ sorts above but is another prefix
    assert [k for k, _ in meta.items(b"h/")] == [b"h/\x00\x02", b"h/\x00\x05", b"h/\x00\x09"]
    meta.put(b"\xff\xff", b"top")  # a prefix with no successor key
    assert meta.ceiling(b"\xff", b"\xff\x00") == (b"\xff\xff", b"top")


@settings(max_examples=30, deadline=None)
@given(
    keys=st.sets(st.integers(0, 60), max_size=12),
    probe=st.integers(0, 60),
)
def test_memory_floor_and_ceiling_match_a_sorted_scan(keys: set[int], probe: int) -> None:
    meta = MemoryMetadata()
    for k in keys:
        meta.put(b"p" + bytes([k]), b"")
    meta.put(b"o", b"")
    meta.put(b"q", b"")
    below = [k for k in keys if k <= probe]
    above = [k for k in keys if k >= probe]
    floor = meta.floor(b"p", b"p" + bytes([probe]))
    ceiling = meta.ceiling(b"p", b"p" + bytes([probe]))
    assert (floor[0][1] if floor else None) == (max(below) if below else None)
    assert (ceiling[0][1] if ceiling else None) == (min(above) if above else None)


def test_lru_forgets_the_least_recently_used() -> None:
    lru: Lru[str, int] = Lru(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # a is now the most recent
    lru.put("c", 3)
    assert lru.get("b") is None
    assert (lru.get("a"), lru.get("c"), len(lru)) == (1, 3, 2)
    with pytest.raises(ValueError, match="at least one entry"):
        Lru(0)
