"""HAMT: canonical form under any operation order, lazy loading, dirty-only flushes, validation."""

import hashlib
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.encoding import dagcbor
from chain.encoding.cid import CID, RAW
from chain.encoding.errors import DecodeError
from chain.state import hamt
from chain.state.hamt import Hamt, identity_hash, sha256_hash
from chain.state.link import Link
from chain.store.blockstore import BlockNotFound, MemoryBlockstore, put_cbor
from tests.chain.counting_store import CountingStore
from tests.chain.model_ops import replay


def _build(
    entries: dict[bytes, Any], bitwidth: int, hash_fn: Any = sha256_hash
) -> tuple[CID, MemoryBlockstore]:
    store = MemoryBlockstore()
    hamt = Hamt.new(store, bitwidth, hash_fn)
    for key in sorted(entries):
        hamt.set(key, entries[key])
    return hamt.flush(), store


EMPTY_ROOT = CID.parse("bafy2bzaceamp42wmmgr2g2ymg46euououzfyck7szknvfacqscohrvaikwfay")

keys = st.binary(min_size=0, max_size=6)
ops = st.lists(st.tuples(st.booleans(), keys, st.integers(0, 3)), max_size=80)


@settings(max_examples=60, deadline=None)
@given(ops, st.sampled_from([1, 2, 3, 5, 8]), st.randoms(use_true_random=False))
def test_any_operation_order_gives_the_canonical_root(
    operations: list[tuple[bool, bytes, int]], bitwidth: int, rnd: random.Random
) -> None:
    store = MemoryBlockstore()
    hamt = Hamt.new(store, bitwidth)
    model = replay(hamt, operations, flush_every=17)
    root = hamt.flush()
    expected, _ = _build(model, bitwidth)
    assert root == expected
    # Same content inserted in another order, with extra keys set and removed again.
    shuffled = list(model.items())
    rnd.shuffle(shuffled)
    other = Hamt.new(MemoryBlockstore(), bitwidth)
    for key, value in shuffled:
        other.set(key + b"~extra", 0)
        other.set(key, value)
    for key, _ in shuffled:
        if key + b"~extra" not in model:
            other.delete(key + b"~extra")
        else:
            other.set(key + b"~extra", model[key + b"~extra"])
    assert other.flush() == root
    reloaded = Hamt.load(store, root, bitwidth)
    assert dict(reloaded.items()) == model
    for key, value in model.items():
        assert reloaded.get(key) == value
        assert key in reloaded
    assert reloaded.count() == len(model)
    if not model:
        assert root == EMPTY_ROOT


def test_deep_trees_with_shared_hash_prefixes() -> None:
    # With the identity hash, keys sharing 20 leading bytes force a chain of single-link nodes.
    prefix = b"\x07" * 20
    entries = {prefix + bytes([i]): i for i in range(4)}
    root, store = _build(entries, 8, identity_hash)
    assert len(store) == 21  # root and 19 single-link nodes (bytes 0..19), then the node for byte 20
    hamt = Hamt.load(store, root, 8, identity_hash)
    assert dict(hamt.items()) == entries
    # Removing one key collapses the whole chain back into a bucket in the root.
    assert hamt.delete(prefix + b"\x03")
    small_root, _ = _build({k: v for k, v in entries.items() if v != 3}, 8, identity_hash)
    assert hamt.flush() == small_root
    bitfield, pointers = dagcbor.decode(store.get(small_root) or b"")
    assert bitfield == b"\x80" and len(pointers) == 1 and len(pointers[0]) == 3  # one bucket of 3
    # Bitwidth 1 gives the deepest trees for sha256 keys.
    many = {i.to_bytes(2, "big"): i for i in range(300)}
    deep_root, deep_store = _build(many, 1)
    deep = Hamt.load(deep_store, deep_root, 1)
    assert dict(deep.items()) == many
    for i in range(0, 300, 2):
        assert deep.delete(i.to_bytes(2, "big"))
    assert deep.flush() == _build({k: v for k, v in many.items() if v % 2}, 1)[0]


def test_iteration_orders() -> None:
    entries = {f"key-{i}".encode(): i for i in range(500)}
    root, store = _build(entries, 5)
    hamt = Hamt.load(store, root)
    in_hamt_order = list(hamt.items())
    assert dict(in_hamt_order) == entries
    assert hamt.sorted_items() == sorted(entries.items())
    assert list(hamt.keys()) == [k for k, _ in in_hamt_order]
    assert list(hamt.values()) == [v for _, v in in_hamt_order]
    # HAMT order follows the hash: slots are taken from the top bits of sha256(key).
    first_slots = [sha256_hash(k)[0] >> 3 for k, _ in in_hamt_order]
    assert first_slots == sorted(first_slots)
    seen: list[bytes] = []
    hamt.for_each(lambda k, v: seen.append(k))
    assert seen == [k for k, _ in in_hamt_order]


def test_lazy_loading_and_dirty_only_flush() -> None:
    entries = {i.to_bytes(4, "big"): [i, "v"] for i in range(3000)}
    root, base = _build(entries, 5)
    store = CountingStore.copy_of(base)
    hamt = Hamt.load(store, root)
    assert store.reads == 1  # only the root so far
    assert hamt.get((42).to_bytes(4, "big")) == [42, "v"]
    path_reads = store.reads
    assert 2 <= path_reads <= 5  # root plus the nodes on one path
    assert hamt.get((42).to_bytes(4, "big")) == [42, "v"]
    assert store.reads == path_reads  # decoded nodes are kept
    hamt.set((42).to_bytes(4, "big"), "changed")
    new_root = hamt.flush()
    assert store.writes == path_reads  # exactly the changed path is written
    assert hamt.flush() == new_root
    assert store.writes == path_reads
    # The old root is untouched and still readable: clean nodes are never mutated.
    old = Hamt.load(store, root)
    assert old.get((42).to_bytes(4, "big")) == [42, "v"]
    assert Hamt.load(store, new_root).get((42).to_bytes(4, "big")) == "changed"
    # A set that changes nothing leaves the HAMT clean.
    hamt.set((43).to_bytes(4, "big"), [43, "v"])
    assert hamt.flush() == new_root
    assert store.writes == path_reads


def test_two_handles_on_one_root_are_independent() -> None:
    root, store = _build({b"a": 1, b"b": 2}, 5)
    first, second = Hamt.load(store, root), Hamt.load(store, root)
    first.set(b"a", 10)
    first.delete(b"b")
    assert second.get(b"a") == 1 and second.get(b"b") == 2
    assert second.flush() == root
    assert first.flush() != root


def test_values_keep_their_exact_encoding() -> None:
    store = MemoryBlockstore()
    hamt = Hamt.new(store)
    values: list[Any] = [
        None,
        True,
        1,
        -5,
        2**64 - 1,
        "text",
        b"bytes",
        [1, [2]],
        {"a": [CID.hash_of(b"x")]},
        1.5,
    ]
    for i, value in enumerate(values):
        hamt.set(bytes([i]), value)
    root = hamt.flush()
    reloaded = Hamt.load(store, root)
    for i, value in enumerate(values):
        got = reloaded.get(bytes([i]), "absent")
        assert dagcbor.encode(got) == dagcbor.encode(value)
    assert reloaded.contains(bytes([0]))  # a stored null is present
    assert reloaded.get(b"\xff", "absent") == "absent"
    # 1 == True in Python but they are different values on the wire.
    reloaded.set(bytes([1]), 1)
    assert reloaded.flush() != root
    reloaded.set(bytes([1]), True)
    assert reloaded.flush() == root


def test_set_if_absent_and_delete_results() -> None:
    hamt = Hamt.new(MemoryBlockstore())
    assert hamt.set_if_absent(b"k", 1)
    assert not hamt.set_if_absent(b"k", 2)
    assert hamt.get(b"k") == 1
    assert hamt.delete(b"k")
    assert not hamt.delete(b"k")
    assert hamt.is_empty()
    assert hamt.flush() == EMPTY_ROOT


def test_rejects_bad_input() -> None:
    store = MemoryBlockstore()
    with pytest.raises(ValueError):
        Hamt.new(store, 0)
    with pytest.raises(ValueError):
        Hamt.new(store, 9)
    hamt = Hamt.new(store)
    with pytest.raises(TypeError):
        hamt.set("text key", 1)  # type: ignore[arg-type]
    assert "text key" not in hamt
    missing = CID.hash_of(b"nothing here")
    with pytest.raises(BlockNotFound):
        Hamt.load(store, missing)
    for bad in (
        [b"\x01"],  # not a pair
        [b"\x01", [[[b"k", 1]]], 3],
        ["\x01", []],  # bitfield is text
        [b"\x00" * 33, []],  # bitfield longer than 256 bits
        [b"\x01", [7]],  # pointer neither link nor bucket
        [b"\x01", [[[b"k"]]]],  # kv not a pair
        [b"\x01", [[["k", 1]]]],  # key not bytes
        [b"\x01", [CID.hash_of(b"x", codec=RAW)]],  # link to a raw block
    ):
        with pytest.raises(DecodeError, match="HAMT node"):
            Hamt.load(store, put_cbor(store, bad))
    # A non-root node with a single entry should have been folded into its parent.
    child = put_cbor(store, [b"\x01", [[[b"k", 1]]]])
    root = put_cbor(store, [b"\x01", [child]])
    loaded = Hamt.load(store, root, 5, lambda key: b"\x00" * 32)
    with pytest.raises(DecodeError, match="should be a bucket"):
        loaded.get(b"k")
    # Missing child blocks surface as BlockNotFound when reached.
    dangling = put_cbor(store, [b"\x01", [CID.hash_of(b"gone")]])
    with pytest.raises(BlockNotFound):
        Hamt.load(store, dangling, 5, lambda key: b"\x00" * 32).get(b"k")


def test_legacy_pointer_layout_round_trips_and_rejects_bad_pointers() -> None:
    store = MemoryBlockstore()
    tree = Hamt.new(store, legacy=True)
    for i in range(40):  # enough to push buckets down into child nodes
        tree.set(i.to_bytes(4, "big"), i)
    root = tree.flush()
    reloaded = Hamt.load(store, root, legacy=True)
    assert sorted(v for _, v in reloaded.items()) == list(range(40))
    bad = dagcbor.encode([b"\x01", [{"2": [[b"k", 1]]}]])
    bad_cid = CID.hash_of(bad)
    store.put(bad_cid, bad)
    with pytest.raises(DecodeError, match="legacy pointer 0"):
        Hamt.load(store, bad_cid, legacy=True)


@settings(max_examples=50, deadline=None)
@given(keys=st.lists(st.binary(min_size=0, max_size=48), min_size=1, max_size=40))
def test_remembered_key_hashes_equal_the_hash_computed(keys: list[bytes]) -> None:
    """The remembered sha256 key hashes (hamt._SHA256_KEYS) are what hashing the key gives, on a miss,
    a hit, across a clear of the memo when it is full, and for a bytearray key (not remembered); and a
    HAMT built with them has the root of one built with a hash function the memo does not serve."""
    hamt._SHA256_KEYS.clear()
    tree = Hamt.new(MemoryBlockstore())
    for _ in range(2):  # the second pass hits
        for key in keys:
            assert tree._hashed(key) == (int.from_bytes(hashlib.sha256(key).digest(), "big"), 256)
            assert tree._hashed(bytearray(key)) == tree._hashed(key)
    hamt._SHA256_KEYS.update({i.to_bytes(4, "big"): (i, 256) for i in range(hamt._SHA256_KEYS_MAX)})
    fresh = bytes(49)  # longer than any key above: a miss
    assert tree._hashed(fresh) == (int.from_bytes(hashlib.sha256(fresh).digest(), "big"), 256)
    assert len(hamt._SHA256_KEYS) == 1  # cleared whole when full
    entries = {key: i for i, key in enumerate(keys)}
    assert _build(entries, 5)[0] == _build(entries, 5, lambda key: hashlib.sha256(key).digest())[0]


def _written_nodes(tree: Hamt) -> list[Any]:
    """The tree's root and loaded children that carry the block a flush wrote for them."""
    nodes = [tree._root, *tree._children.values()]
    return [node for node in nodes if node.written is not None]


@settings(max_examples=60, deadline=None)
@given(
    rounds=st.lists(
        st.lists(st.tuples(st.booleans(), st.binary(max_size=3), st.binary(max_size=40)), max_size=12),
        min_size=1,
        max_size=8,
    ),
    bitwidth=st.sampled_from([1, 3, 5]),
)
def test_blocks_spliced_from_the_last_flush_equal_blocks_encoded_anew(
    rounds: list[list[tuple[bool, bytes, bytes]]], bitwidth: int
) -> None:
    """A flush copies an unchanged pointer's bytes from the block its node's origin was written as
    (hamt._spliced): every node's kept block and pointer offsets equal encoding the node whole
    (hamt._encoded), its block is in the store under its CID, and the root is the canonical one."""
    store = MemoryBlockstore()
    tree = Hamt.new(store, bitwidth)
    model: dict[bytes, bytes] = {}
    spliced = 0
    original = hamt._spliced

    def counting(*args: Any) -> Any:
        nonlocal spliced
        spliced += 1
        return original(*args)

    hamt._spliced = counting  # type: ignore[assignment]
    try:
        for operations in rounds:
            for is_set, key, value in operations:
                if is_set:
                    tree.set(key, value)
                    model[key] = value
                else:
                    assert tree.delete(key) == (key in model)
                    model.pop(key, None)
            root = tree.flush()
            assert root == _build(model, bitwidth)[0]
            for node in _written_nodes(tree):
                data, starts = node.written
                out = [p.cid if type(p) is Link else p for p in node.pointers]
                assert (data, starts) == hamt._encoded(node.bitmap, out)
                assert data == dagcbor.encode([hamt.encode_bitfield(node.bitmap), out])
                assert store.get(CID.hash_of(data)) == data
            reloaded = Hamt.load(store, root, bitwidth)
            assert dict(reloaded.items()) == model
    finally:
        hamt._spliced = original  # type: ignore[assignment]
    del spliced  # counted in the test below: random rounds need not change a slot in place


def test_a_changed_entry_is_spliced_into_the_blocks_of_the_last_flush() -> None:
    """Changing values in place after a flush splices every node on their paths (none encoded whole),
    and gives the root of the same content built anew."""
    store = MemoryBlockstore()
    tree = Hamt.new(store, 5)
    entries = {i.to_bytes(2, "big"): b"v" * (i % 7) for i in range(300)}
    for key, value in entries.items():
        tree.set(key, value)
    tree.flush()
    calls = {"spliced": 0, "encoded": 0}
    originals = hamt._spliced, hamt._encoded

    def spliced(*args: Any) -> Any:
        calls["spliced"] += 1
        return originals[0](*args)

    def encoded(*args: Any) -> Any:
        calls["encoded"] += 1
        return originals[1](*args)

    hamt._spliced, hamt._encoded = spliced, encoded  # type: ignore[assignment]
    try:
        for key in (b"\x00\x05", b"\x00\x63", b"\x01\x00"):
            entries[key] = b"longer value " * 3
            tree.set(key, entries[key])
        root = tree.flush()
    finally:
        hamt._spliced, hamt._encoded = originals  # type: ignore[assignment]
    assert calls["encoded"] == 0 and calls["spliced"] >= 4  # the root and three paths below it
    assert root == _build(entries, 5)[0]
