"""A tipset's weight, from its header and its parent state (Lotus filcns.Weight)."""

from chain.consensus.expected import tipset_weight
from chain.state.tree import StateTree
from chain.stmgr.miners import power_state
from chain.store.blockstore import Blockstore
from chain.types.tipset import TipSet


def weight_of(store: Blockstore, ts: TipSet) -> int:
    """ts's ParentWeight plus what ts adds, with the network power of ts's parent state (the total over
    miners above the consensus minimum, as power State.TotalPower) and its blocks' win counts. This is
    the ParentWeight of ts's children, and what fork choice compares."""
    power = power_state(StateTree.load(store, ts.parent_state_root))
    wins = [0 if b.election_proof is None else b.election_proof.win_count for b in ts.blocks]
    return tipset_weight(ts.parent_weight, power.total_quality_adj_power, wins)
