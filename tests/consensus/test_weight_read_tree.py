"""A tipset's weight computed on a state tree the caller keeps open (StateManager.read_tree, as the
syncer and validation pass) is the weight computed on a fresh tree from a store without a cache."""

from chain.consensus.weight import weight_of
from chain.encoding.cid import CID
from chain.state.tree import StateTree
from chain.store.blockstore import MemoryBlockstore
from tests.consensus.devchain import DevChain


def test_weight_on_a_kept_tree_is_the_weight_on_a_fresh_one() -> None:
    dc = DevChain.new()
    tipsets = dc.advance(6)
    plain = dc.uncached_copy()
    cached = MemoryBlockstore()  # a cache of its own: no weight remembered yet
    cached.put_many(dc.store.items())
    opened: list[CID] = []

    def read_tree(root: CID) -> StateTree:
        opened.append(root)
        return dc.sm.read_tree(root)

    for ts in tipsets:
        expected = weight_of(plain, ts)
        assert weight_of(cached, ts, read_tree) == expected
        assert weight_of(cached, ts, read_tree) == expected  # remembered
        assert ts.parent_weight < expected
    assert opened == [ts.parent_state_root for ts in tipsets]
