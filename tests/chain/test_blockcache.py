"""The store's cache of decoded blocks (chain/store/blockcache.py): hits only for the very bytes decoded
before, what HAMTs, AMTs, state trees and actor state readers share through it, that a changed tree
still reads right and leaves the shared nodes alone, and that eviction bounds it."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.power.state import PowerState
from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.state import hamt as hamt_module
from chain.state.amt import Amt
from chain.state.hamt import Hamt
from chain.state.link import Link
from chain.state.tree import StateTree
from chain.stmgr.actors import read_actor_state
from chain.stmgr.buffered import BufferedBlockstore
from chain.store.blockcache import ENTRY_OVERHEAD, BlockCache, cache_of
from chain.store.blockstore import BlockNotFound, MemoryBlockstore, get_decoded, put_cbor
from chain.types.address import Address
from tests.consensus.devchain import genesis_of


def _cache(store: MemoryBlockstore) -> BlockCache:
    cache = store.block_cache
    assert cache is not None
    return cache


def _key(i: int) -> bytes:
    return i.to_bytes(4, "big")


def _hamt(store: MemoryBlockstore, count: int) -> CID:
    hamt = Hamt.new(store)
    for i in range(count):
        hamt.set(_key(i), [i, "v"])
    return hamt.flush()


def _nodes(hamt: Hamt) -> list[Any]:
    """Every decoded node a HAMT holds (loading them all)."""
    out = []
    stack = [hamt._root]
    while stack:
        node = stack.pop()
        out.append(node)
        for ptr in node.pointers:
            if type(ptr) is Link:
                stack.append(hamt._children.get(ptr) or hamt._load(ptr))
    return out


def test_a_hit_needs_the_same_bytes() -> None:
    cache = BlockCache()
    cid = CID.hash_of(b"\x80")
    cache.put("kind", cid, b"\x80", "decoded")
    assert cache.get("kind", cid, b"\x80") == "decoded"
    assert cache.get("kind", cid, b"\x80") == "decoded"  # equal bytes, another object
    assert cache.get("kind", cid, b"\x81") is None  # other bytes under the CID: decode them
    assert cache.get("other kind", cid, b"\x80") is None  # decoded as something else
    assert (cache.hits, cache.misses) == (2, 2)


def test_eviction_bounds_the_bytes_held_least_recently_used_first() -> None:
    block = bytes(1000)
    cost = len(block) + ENTRY_OVERHEAD
    cache = BlockCache(max_bytes=3 * cost)
    cids = [CID.hash_of(bytes([i]) + block) for i in range(5)]
    for cid in cids[:3]:
        cache.put("k", cid, block, cid)
    assert cache.get("k", cids[0], block) == cids[0]  # now the most recently used
    cache.put("k", cids[3], block, cids[3])
    assert len(cache) == 3 and cache.size == 3 * cost and cache.evictions == 1
    assert cache.get("k", cids[1], block) is None  # the least recently used went
    assert cache.get("k", cids[0], block) == cids[0]
    cache.put("k", cids[4], bytes(4 * cost), "big")  # larger than the whole cache: not kept
    assert cache.get("k", cids[4], bytes(4 * cost)) is None and cache.size <= cache.max_bytes
    with pytest.raises(ValueError):
        BlockCache(max_bytes=0)


def test_hamts_share_decoded_nodes_without_copies() -> None:
    store = MemoryBlockstore()
    root = _hamt(store, 2000)
    cache = _cache(store)
    assert len(cache) > 10  # the flush entered every node it wrote
    first = Hamt.load(store, root)
    hits = cache.hits
    assert all(first.get(_key(i)) == [i, "v"] for i in range(2000))
    assert cache.hits > hits and cache.misses == 0  # nothing was decoded
    # Entries are detached: no entry keeps loaded children (so no subtree) alive.
    for (kind, _), (_, node) in cache._entries.items():
        if kind[0] == "hamt":
            assert all(p.node is None for p in node.pointers if type(p) is Link)
    # A second HAMT reads the very same node objects (each keeps its own map of loaded children).
    second = Hamt.load(store, root)
    assert [id(n) for n in _nodes(first)] == [id(n) for n in _nodes(second)]
    assert first._children is not second._children


def _hamt_entries(cache: BlockCache) -> dict[CID, tuple[bytes, Any]]:
    return {cid: entry for (kind, cid), entry in cache._entries.items() if kind[0] == "hamt"}


def _encoding_of(node: Any) -> bytes:
    """A cached (clean, non-legacy) HAMT node encoded again, as a flush encodes it."""
    pointers = [p.cid if type(p) is Link else p for p in node.pointers]
    return dagcbor.encode([hamt_module.encode_bitfield(node.bitmap), pointers])


def test_changing_a_hamt_read_from_the_cache_changes_no_shared_node() -> None:
    store = MemoryBlockstore()
    root = _hamt(store, 2000)
    cache = _cache(store)
    before = _hamt_entries(cache)
    assert len(before) > 10
    changed, other = Hamt.load(store, root), Hamt.load(store, root)
    assert len(_nodes(other)) == len(before)  # other holds every shared node
    for i in range(0, 2000, 3):
        changed.set(_key(i), ["changed", i])
    for i in range(1, 2000, 3):
        changed.delete(_key(i))
    changed.set(_key(5000), "new")
    new_root = changed.flush()
    assert new_root != root
    # The entries made before are the same objects, and each still encodes to its block's bytes.
    after = _hamt_entries(cache)
    for cid, (data, node) in before.items():
        assert after[cid][1] is node
        assert _encoding_of(node) == data == store.get(cid)
    expected = sorted((_key(i), [i, "v"]) for i in range(2000))
    assert other.sorted_items() == expected
    assert Hamt.load(store, root).sorted_items() == expected
    other.set(_key(1), "other")  # the other tree changes on its own, from the shared nodes
    other_root = other.flush()
    assert Hamt.load(store, other_root).get(_key(1)) == "other"
    assert Hamt.load(store, other_root).get(_key(0)) == [0, "v"]
    assert Hamt.load(store, new_root).get(_key(1)) is None
    assert Hamt.load(store, root).get(_key(1)) == [1, "v"]


def test_a_changed_tree_reads_right() -> None:
    store = MemoryBlockstore()
    root = _hamt(store, 500)
    old = Hamt.load(store, root)
    assert old.get(_key(7)) == [7, "v"]
    changed = Hamt.load(store, root)
    changed.set(_key(7), "new")
    changed.delete(_key(8))
    changed.set(_key(9000), "added")
    new_root = changed.flush()
    # The old tree and a fresh load of the old root are untouched; the new root reads the changes,
    # though both share most nodes through the cache.
    for tree in (old, Hamt.load(store, root)):
        assert (tree.get(_key(7)), tree.get(_key(8)), tree.get(_key(9000))) == ([7, "v"], [8, "v"], None)
    fresh = Hamt.load(store, new_root)
    assert (fresh.get(_key(7)), fresh.get(_key(8)), fresh.get(_key(9000))) == ("new", None, "added")
    assert sorted(fresh.keys()) == sorted([_key(i) for i in range(500) if i != 8] + [_key(9000)])


def test_entries_made_at_flush_are_what_strict_decoding_gives() -> None:
    store = MemoryBlockstore()
    root = _hamt(store, 300)
    hamt_entries = 0
    for (kind, cid), (data, node) in _cache(store)._entries.items():
        if kind[0] != "hamt":
            continue
        _, bitwidth, is_root, legacy = kind
        decoded = hamt_module._decode_node(data, bitwidth, is_root, cid, legacy)
        assert decoded.bitmap == node.bitmap
        assert [p.cid if type(p) is Link else p for p in decoded.pointers] == [
            p.cid if type(p) is Link else p for p in node.pointers
        ]
        assert (cid == root) == is_root
        hamt_entries += 1
    assert hamt_entries > 5


def test_other_bytes_under_a_cid_are_decoded_strictly_again() -> None:
    store = MemoryBlockstore()
    root = _hamt(store, 50)
    # Something else under the root's CID (a corrupted store): strict decoding sees it.
    store.put(root, dagcbor.encode([b"\x01", [7]]))
    with pytest.raises(DecodeError, match="neither a link nor a bucket"):
        Hamt.load(store, root)
    store.put(root, b"\xa1\x61a\x01\x00")  # not canonical, and trailing bytes
    with pytest.raises(DecodeError):
        Hamt.load(store, root)


def test_a_cached_block_missing_from_the_store_is_still_missing() -> None:
    base = MemoryBlockstore()
    buffer = BufferedBlockstore(base)
    assert cache_of(buffer) is base.block_cache
    hamt = Hamt.new(buffer)
    hamt.set(b"k", 1)
    root = hamt.flush()
    assert Hamt.load(buffer, root).get(b"k") == 1
    buffer.discard()  # written to the buffer and entered in the cache, never committed
    assert len(_cache(base)) > 0
    with pytest.raises(BlockNotFound):
        Hamt.load(base, root)
    with pytest.raises(BlockNotFound):
        Hamt.load(buffer, root)


def test_amts_share_decoded_nodes() -> None:
    store = MemoryBlockstore()
    root = Amt.from_list(store, [[i, "x"] for i in range(1000)], bitwidth=3)
    misses = _cache(store).misses
    first = Amt.load(store, root, 3)
    assert [v for _, v in first.items()] == [[i, "x"] for i in range(1000)]
    assert _cache(store).misses == misses  # every node came from the flush's entries
    changed = Amt.load(store, root, 3)
    changed.set(5, "five")
    changed.delete(999)
    new_root = changed.flush()
    assert Amt.load(store, root, 3).get(5) == [5, "x"] and Amt.load(store, root, 3).get(999) == [999, "x"]
    again = Amt.load(store, new_root, 3)
    assert again.get(5) == "five" and again.get(999) is None and again.count() == 999
    # A plain store without a cache reads the same.
    plain = MemoryBlockstore()
    plain.put_many(store.items())
    plain.block_cache = None
    assert cache_of(plain) is None
    assert [v for _, v in Amt.load(plain, new_root, 3).items()] == [v for _, v in again.items()]
    for (kind, _), (_, node) in _cache(store)._entries.items():
        if kind[0] == "amt" and not node.leaf:
            assert all(link.node is None for link in node.items.values())
    first_again = Amt.load(store, root, 3)
    assert first_again._root is first._root  # shared, not copied


def test_eviction_keeps_a_large_state_readable_and_bounded() -> None:
    store = MemoryBlockstore()
    store.block_cache = BlockCache(max_bytes=16 * 1024)
    root = _hamt(store, 5000)
    cache = _cache(store)
    assert cache.size <= cache.max_bytes and cache.evictions > 0
    for _ in range(2):
        tree = Hamt.load(store, root)
        assert all(tree.get(_key(i)) == [i, "v"] for i in range(0, 5000, 7))
        assert cache.size <= cache.max_bytes
    assert cache.misses > 0  # evicted nodes were decoded again


def test_typed_decoding_is_shared_and_fails_as_before() -> None:
    store = MemoryBlockstore()
    cid = put_cbor(store, [1, 2])
    first = get_decoded(store, cid, tuple)
    assert first == (1, 2) and get_decoded(store, cid, tuple) is first
    with pytest.raises(BlockNotFound):
        get_decoded(store, CID.hash_of(b"absent"), tuple)
    bad = CID.hash_of(b"\x18\x01")
    store.put(bad, b"\x18\x01")  # a non-minimal integer
    with pytest.raises(DecodeError, match=f"block {bad}"):
        get_decoded(store, bad, tuple)


def test_state_trees_share_actor_states() -> None:
    genesis = genesis_of(miners=1)
    store = MemoryBlockstore()
    store.put_many(genesis.blocks())
    root = genesis.header.parent_state_root
    power = Address.new_id(4)
    first = read_actor_state(StateTree.load(store, root), power, PowerState)
    again = read_actor_state(StateTree.load(store, root), power, PowerState)
    assert again is first  # decoded once, shared: declared types are frozen
    with pytest.raises(AttributeError):
        first.total_raw_byte_power = 1  # type: ignore[misc]
    assert first == PowerState.from_cbor(
        dagcbor.decode(store.get(StateTree.load(store, root).get_actor(power).head))
    )  # type: ignore[union-attr]


_ops = st.lists(
    st.tuples(st.sampled_from(["set", "delete", "flush", "reload"]), st.integers(0, 400), st.integers(0, 3)),
    max_size=120,
)


@dataclass(frozen=True)
class _TreeKind:
    """How a test makes, reloads, keys and lists one kind of tree."""

    new: Callable[[MemoryBlockstore], Any]
    load: Callable[[MemoryBlockstore, CID], Any]
    key: Callable[[int], Any]
    items: Callable[[Any], list[tuple[Any, Any]]]


_TREES = {
    "hamt": _TreeKind(
        lambda store: Hamt.new(store, 3),
        lambda store, root: Hamt.load(store, root, 3),
        _key,
        Hamt.sorted_items,
    ),
    "amt": _TreeKind(
        lambda store: Amt.new(store, 2),
        lambda store, root: Amt.load(store, root, 2),
        lambda index: index,
        lambda amt: list(amt.items()),
    ),
}


@pytest.mark.parametrize("kind", _TREES.values(), ids=list(_TREES))
@settings(max_examples=40, deadline=None)
@given(_ops)
def test_roots_are_the_same_with_and_without_the_cache(
    kind: _TreeKind, ops: list[tuple[str, int, int]]
) -> None:
    """Random sets, deletes, flushes and reloads (which read nodes back from the cache, shared) give
    the same roots on a store with a cache and on one without, and no earlier root changes."""
    cached, plain = MemoryBlockstore(), MemoryBlockstore()
    plain.block_cache = None
    trees = [kind.new(cached), kind.new(plain)]
    model: dict[Any, Any] = {}
    roots: list[tuple[CID, dict[Any, Any]]] = []
    for op, number, value in ops:
        key = kind.key(number)
        if op == "set":
            model[key] = [number, value]
            for tree in trees:
                tree.set(key, [number, value])
        elif op == "delete":
            model.pop(key, None)
            for tree in trees:
                tree.delete(key)
        else:
            root, plain_root = (tree.flush() for tree in trees)
            assert root == plain_root
            roots.append((root, dict(model)))
            if op == "reload":
                trees = [kind.load(cached, root), kind.load(plain, root)]
    assert trees[0].flush() == trees[1].flush()
    for root, content in roots:
        assert kind.items(kind.load(cached, root)) == sorted(content.items())


def test_a_long_lived_tree_keeps_the_children_of_its_live_links_only() -> None:
    """A tree changed and flushed over and over (the state manager's open state tree) keeps the loaded
    children of the links it still has, not of every link a change replaced."""
    store = MemoryBlockstore()
    hamt = Hamt.load(store, _hamt(store, 2000))
    amt = Amt.load(store, Amt.from_list(store, [[i, "x"] for i in range(2000)], bitwidth=3), 3)
    for step in range(300):
        for j in range(5):
            key = (step * 37 + j * 401) % 2500
            hamt.set(_key(key), [step, j])
            amt.set(key, [step, j])
        hamt.delete(_key((step * 13) % 2500))
        amt.delete((step * 13) % 2500)
        hamt.flush()
        amt.flush()
    hamt_links = sum(1 for node in _nodes(hamt) for p in node.pointers if type(p) is Link)
    assert len(hamt._children) == hamt_links > 50
    assert sum(1 for _ in amt.items()) == amt.count()  # loads every node
    amt_links = 0
    stack = [amt._root]
    while stack:
        node = stack.pop()
        if not node.leaf:
            for ptr in node.items.values():
                assert type(ptr) is Link
                amt_links += 1
                stack.append(amt._children[ptr])
    assert len(amt._children) == amt_links > 50
