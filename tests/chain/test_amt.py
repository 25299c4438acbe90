"""AMT: canonical form under any operation order, growth and shrinking, lazy loading, validation,
and the legacy layout used for message lists and receipts."""

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.encoding import dagcbor
from chain.encoding.cid import CID, RAW
from chain.encoding.errors import DecodeError
from chain.state.amt import MAX_INDEX, Amt, amt_v0_from_list, amt_v0_to_list
from chain.store.blockstore import BlockNotFound, MemoryBlockstore, put_cbor
from tests.chain.counting_store import CountingStore
from tests.chain.model_ops import replay


def _build(entries: dict[int, Any], bitwidth: int, legacy: bool = False) -> CID:
    amt = Amt.new(MemoryBlockstore(), bitwidth, legacy=legacy)
    for index in sorted(entries):
        amt.set(index, entries[index])
    return amt.flush()


indexes = st.one_of(st.integers(0, 600), st.integers(0, MAX_INDEX))
ops = st.lists(st.tuples(st.booleans(), indexes, st.integers(0, 5)), max_size=60)


@settings(max_examples=60, deadline=None)
@given(ops, st.sampled_from([1, 2, 3, 5, 6]), st.randoms(use_true_random=False))
def test_any_operation_order_gives_the_canonical_root(
    operations: list[tuple[bool, int, int]], bitwidth: int, rnd: random.Random
) -> None:
    store = MemoryBlockstore()
    amt = Amt.new(store, bitwidth)
    model = replay(amt, operations, flush_every=13)
    root = amt.flush()
    assert root == _build(model, bitwidth)
    shuffled = list(model.items())
    rnd.shuffle(shuffled)
    other = Amt.new(MemoryBlockstore(), bitwidth)
    for index, value in shuffled:
        other.set(index, value)
    assert other.flush() == root
    reloaded = Amt.load(store, root, bitwidth)
    assert list(reloaded.items()) == sorted(model.items())
    assert len(reloaded) == len(model)
    for index, value in model.items():
        assert reloaded.get(index) == value
        assert index in reloaded
    expected_height = 0
    top = max(model, default=0)
    while top >> (bitwidth * (expected_height + 1)):
        expected_height += 1
    assert reloaded.height == expected_height  # the tree is exactly as tall as its largest index needs
    if model:
        start = rnd.choice(sorted(model))
        assert list(reloaded.items(start)) == [(i, v) for i, v in sorted(model.items()) if i >= start]
        assert reloaded.first_index() == min(model)
    else:
        assert reloaded.first_index() is None


def test_deep_tree_at_the_top_of_the_index_space() -> None:
    store = MemoryBlockstore()
    amt = Amt.new(store, 3)
    amt.set(MAX_INDEX, "top")
    amt.set(0, "bottom")
    assert amt.height == 21
    root = amt.flush()
    reloaded = Amt.load(store, root)
    assert list(reloaded.items()) == [(0, "bottom"), (MAX_INDEX, "top")]
    assert reloaded.delete(MAX_INDEX)
    assert reloaded.height == 0
    assert reloaded.flush() == _build({0: "bottom"}, 3)
    with pytest.raises(IndexError):
        amt.set(MAX_INDEX + 1, 1)
    with pytest.raises(IndexError):
        amt.get(-1)


def test_iteration_helpers() -> None:
    amt = Amt.new(MemoryBlockstore(), 2)
    for index in (3, 1, 40, 7):
        amt.set(index, index * 10)
    assert list(amt.keys()) == [1, 3, 7, 40]
    assert list(amt.values()) == [10, 30, 70, 400]
    seen: list[int] = []

    def visit(index: int, value: Any) -> bool:
        seen.append(index)
        return index < 7

    amt.for_each_while(visit)
    assert seen == [1, 3, 7]
    collected: list[tuple[int, Any]] = []
    amt.for_each(lambda i, v: collected.append((i, v)))
    assert collected == list(amt.items())
    assert list(amt.items(8)) == [(40, 400)]
    assert list(amt.items(41)) == []


def test_lazy_loading_and_dirty_only_flush() -> None:
    base = MemoryBlockstore()
    root = Amt.from_list(base, [f"value {i}" for i in range(5000)])
    store = CountingStore.copy_of(base)
    amt = Amt.load(store, root)
    assert store.reads == 1
    assert amt.get(4321) == "value 4321"
    path_reads = store.reads
    assert path_reads == 1 + amt.height
    assert amt.get(4321) == "value 4321"
    assert store.reads == path_reads
    amt.set(4321, "changed")
    new_root = amt.flush()
    assert store.writes == path_reads  # the changed path and the root
    assert amt.flush() == new_root
    assert store.writes == path_reads
    assert Amt.load(store, root).get(4321) == "value 4321"  # the old version is untouched


def test_batch_operations() -> None:
    amt = Amt.new(MemoryBlockstore())
    amt.batch_set(["a", "b", "c", "d"])
    assert list(amt.items()) == [(0, "a"), (1, "b"), (2, "c"), (3, "d")]
    assert amt.batch_delete([3, 1, 9])
    assert list(amt.keys()) == [0, 2]
    with pytest.raises(KeyError):
        amt.batch_delete([0, 9], strict=True)
    assert not amt.batch_delete([9])


def test_legacy_layout_for_message_lists_and_receipts() -> None:
    store = MemoryBlockstore()
    messages = [CID.hash_of(f"message {i}".encode()) for i in range(20)]
    root = amt_v0_from_list(store, messages)
    height, count, node = dagcbor.decode(store.get(root) or b"")  # [height, count, node], no bitwidth
    assert (height, count) == (1, 20)
    assert len(node) == 3
    assert amt_v0_to_list(store, root) == messages
    assert amt_v0_to_list(store, amt_v0_from_list(store, [])) == []
    # The v3 layout of the same list differs only by the leading bitwidth field.
    v3 = dagcbor.decode(store.get(Amt.from_list(store, messages)) or b"")
    assert v3 == [3, height, count, node]
    with pytest.raises(DecodeError):
        Amt.load(store, root)  # a legacy root is not a v3 root
    with pytest.raises(ValueError):
        Amt.new(store, 5, legacy=True)
    # Gaps or a count that disagrees with the entries are refused.
    sparse = Amt.new(store, legacy=True)
    sparse.set(0, "a")
    sparse.set(2, "c")
    with pytest.raises(DecodeError, match="index 1 is missing"):
        amt_v0_to_list(store, sparse.flush())
    lying = put_cbor(store, [0, 2, [b"\x01", [], ["a"]]])
    with pytest.raises(DecodeError, match="root says 2"):
        amt_v0_to_list(store, lying)


def _node_root(node: list[Any], height: int = 0, count: int = 1, bitwidth: int = 3) -> list[Any]:
    return [bitwidth, height, count, node]


def test_load_validation() -> None:
    store = MemoryBlockstore()
    leaf = put_cbor(store, [b"\x01", [], ["v"]])
    inner = put_cbor(store, [b"\x01", [leaf], []])
    bad_roots: list[tuple[Any, str]] = [
        ([3, 0, 0], "array of 4"),
        (_node_root([b"\x00", [], []], bitwidth=4), "bitwidth"),
        (_node_root([b"\x00", [], []], height=65), "height"),
        (_node_root([b"\x00", [], []], height=22, count=0), "out of bounds"),
        (_node_root([b"\x01", [], ["v"]], count=9), "too small for count"),
        (_node_root([b"\x00\x00", [], []]), "bmap"),
        (_node_root([b"\x03", [], ["v"]]), "bits set"),
        (_node_root([b"\x01", [leaf], ["v"]]), "both links and values"),
        (_node_root([b"\x01", [leaf], []]), "links found in a leaf"),
        (_node_root([b"\x01", [], ["v"]], height=1), "values found in an inner node"),
        (_node_root([b"\x01", [CID.hash_of(b"x", codec=RAW)], []], height=1), "not dag-cbor"),
        (_node_root([b"\x01", ["not a cid"], []], height=1), "not a CID"),
        (_node_root(["\x01", [], []]), "not a byte string"),
        ([-1, 0, 0, [b"\x00", [], []]], "unsigned"),
    ]
    for bad, message in bad_roots:
        with pytest.raises(DecodeError, match=message):
            Amt.load(store, put_cbor(store, bad))
    with pytest.raises(BlockNotFound):
        Amt.load(store, CID.hash_of(b"missing"))
    # Child nodes are checked when reached: an empty child, a leaf where an inner node belongs.
    empty_child = put_cbor(store, [b"\x00", [], []])
    amt = Amt.load(store, put_cbor(store, _node_root([b"\x01", [empty_child], []], height=1)))
    with pytest.raises(DecodeError, match="empty node"):
        amt.get(0)
    amt = Amt.load(store, put_cbor(store, _node_root([b"\x01", [leaf], []], height=2)))
    with pytest.raises(DecodeError, match="values found in an inner node"):
        amt.get(0)
    amt = Amt.load(store, put_cbor(store, _node_root([b"\x01", [inner], []], height=1)))
    with pytest.raises(DecodeError, match="links found in a leaf"):
        list(amt.items())
    assert Amt.load(store, put_cbor(store, _node_root([b"\x01", [inner], []], height=2))).get(0) == "v"
    # Unused high bits of a one-byte bitmap (bitwidth 1: two slots) are ignored, as the refs do.
    assert list(Amt.load(store, put_cbor(store, [1, 0, 1, [b"\xf1", [], ["v"]]]), 1).items()) == [(0, "v")]
