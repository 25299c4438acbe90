"""A tipset's weight, from its header and its parent state (Lotus filcns.Weight)."""

from collections.abc import Callable

from chain.consensus.expected import tipset_weight
from chain.encoding.cid import CID
from chain.state.tree import StateTree
from chain.stmgr.miners import power_state
from chain.store.blockcache import cache_of
from chain.store.blockstore import Blockstore
from chain.types.tipset import TipSet


def weight_of(store: Blockstore, ts: TipSet, read_tree: Callable[[CID], StateTree] | None = None) -> int:
    """ts's ParentWeight plus what ts adds, with the network power of ts's parent state (the total over
    miners above the consensus minimum, as power State.TotalPower) and its blocks' win counts. This is
    the ParentWeight of ts's children, and what fork choice compares.

    Remembered in the store's block cache by ts's key (its headers, content-addressed, fix everything
    it is computed from): the syncer records a tipset's weight, and validating its child computes it
    again for the ParentWeight rule. read_tree: how to open ts's parent state (default: a fresh tree
    from store), for a caller that keeps trees open for reading (StateManager.read_tree: the syncer
    has just opened that state to validate ts's messages)."""
    cache = cache_of(store)
    kind = ("tipset-weight", ts.key)
    if cache is not None:
        found = cache.derived(kind, ts.parent_state_root)
        if isinstance(found, int):
            return found
    tree = (
        StateTree.load(store, ts.parent_state_root) if read_tree is None else read_tree(ts.parent_state_root)
    )
    power = power_state(tree)
    wins = [0 if b.election_proof is None else b.election_proof.win_count for b in ts.blocks]
    weight = tipset_weight(ts.parent_weight, power.total_quality_adj_power, wins)
    if cache is not None:
        cache.remember(kind, ts.parent_state_root, weight)
    return weight
