"""A partition longer than the lookback (chain_finality) heals into a reorg: the lighter side validates
the other side's blocks, whose lookbacks lie on that chain above the fork point, and follows it; every
lookback its state manager then answers (from stretches of chain it remembers, chain/stmgr/stretch.py)
is the one on the base's own chain, for the chain it left as for the one it took."""

import pytest

from chain.encoding.cid import CID
from chain.types.tipset import TipSet
from tests.kit.ensemble import KitNode, ensemble

pytestmark = pytest.mark.slow


def down_to(kit: KitNode, head: TipSet, height: int) -> list[TipSet]:
    """head's chain above height, oldest first."""
    out = [head]
    while out[-1].height > height + 1:
        out.append(kit.node.chain.load_tipset(out[-1].parents))
    return [ts for ts in out[::-1] if ts.height > height]


def walked(kit: KitNode, base: TipSet, round_: int) -> tuple[TipSet, CID] | None:
    """The lookback by its definition: base's parents walked to the first tipset above round_ - finality."""
    finality = kit.node.policy.chain_finality
    target = round_ - finality if round_ > finality else 0
    if target >= base.height:
        return None
    after, parent = base, kit.node.chain.load_tipset(base.parents)
    while parent.height > target:
        after, parent = parent, kit.node.chain.load_tipset(parent.parents)
    return parent, after.parent_state_root


async def test_a_partition_longer_than_the_lookback_heals_into_a_reorg() -> None:
    async with ensemble(nodes=2, miners=2) as ens:
        lone, other = ens.nodes
        finality = ens.policy.chain_finality
        fork_base = await ens.mine(2)
        await ens.partition([0], [1])
        # The lone side stays within finality of the fork point (a longer fork is refused: "fork past
        # finality"); the other side goes on well past the lookback and is heavier.
        while lone.head.height < fork_base.height + finality - 3:
            light = await ens.mine_one([lone])
        while other.head.height < fork_base.height + finality + 8:
            heavy = await ens.mine_one([other])
        assert lone.node.chain.head_weight() < other.node.chain.head_weight()

        await ens.heal()
        await ens.wait_converged()
        assert lone.head.key == heavy.key
        left, taken = down_to(lone, light, fork_base.height), down_to(lone, heavy, fork_base.height)
        # Lookbacks from the upper part of the chain taken land on it above the fork point.
        top = walked(lone, taken[-1], taken[-1].height + 1)
        assert top is not None and top[0].height > fork_base.height
        # Oldest first and both chains in height order: as a sync and gossip would ask.
        for base in sorted(left + taken, key=lambda ts: ts.height):
            for round_ in range(base.height + 1, base.height + finality + 3):
                found = await lone.node.run_sync(lone.node.state.lookback_without_execution, base, round_)
                assert found == walked(lone, base, round_), (base.height, round_)
