"""Reading and checking Merkle openings, the hot path of PoSt verification, against plain reference
code: Reader.nodes splits as slicing does, verify_opening says what recomputing the root says and
refuses paths whose nodes are not all 32 bytes, even when their lengths add up."""

from hypothesis import given, settings
from hypothesis import strategies as st

from proofs import merkle
from proofs.vanilla import NODE_SIZE, ProofDecodeError, Reader


@given(st.integers(0, 70), st.binary(max_size=40))
def test_nodes_split_as_slicing_does(count: int, tail: bytes) -> None:
    raw = bytes(range(256)) * (count * NODE_SIZE // 256 + 1)
    data = raw[: count * NODE_SIZE] + tail
    reader = Reader(data, "test proof")
    expected = tuple(data[i : i + NODE_SIZE] for i in range(0, count * NODE_SIZE, NODE_SIZE))
    assert reader.nodes(count) == expected
    assert reader.take(len(tail), "the tail") == tail


def test_nodes_past_the_end_are_refused() -> None:
    reader = Reader(bytes(3 * NODE_SIZE - 1), "test proof")
    try:
        reader.nodes(3)
    except ProofDecodeError as exc:
        assert "3 32-byte nodes" in str(exc)
    else:
        raise AssertionError("read past the end")


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 6), st.data())
def test_verify_opening_is_recomputing_the_root(height: int, data: st.DataObject) -> None:
    leaves = data.draw(st.binary(min_size=32 << height, max_size=32 << height))
    levels = merkle.tree_levels(leaves)
    root = levels[-1]
    index = data.draw(st.integers(0, (1 << height) - 1))
    leaf, path = merkle.node_at(levels[0], index), merkle.opening(levels, index)
    assert merkle.verify_opening(root, leaf, index, path)
    other = data.draw(st.integers(0, (1 << height) - 1))
    claimed = data.draw(st.sampled_from([leaf, bytes(32), merkle.node_at(levels[0], other)]))
    expected = merkle.root_from_path_python(claimed, other, path) == root
    assert merkle.verify_opening(root, claimed, other, path) == expected
    assert not merkle.verify_opening(root, leaf, index + (1 << height), path)  # outside the tree
    assert not merkle.verify_opening(root, leaf, -1, path)


def test_verify_opening_refuses_nodes_of_other_sizes() -> None:
    levels = merkle.tree_levels(bytes(range(128)))  # 4 leaves
    root, leaf, path = levels[-1], merkle.node_at(levels[0], 2), merkle.opening(levels, 2)
    assert merkle.verify_opening(root, leaf, 2, path)
    joined = b"".join(path)
    assert not merkle.verify_opening(root, leaf, 2, [joined[:31], joined[31:]])  # same bytes, 31 + 33
    assert not merkle.verify_opening(root, leaf[:31], 2, path)
    assert not merkle.verify_opening(root, leaf, 2, [*path[:1], path[1] + b"\x00"])
