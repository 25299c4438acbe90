"""A miner's node down over its deadline, on a live network (tests/kit/ensemble.py: full nodes over
libp2p on 127.0.0.1, blocks gossiped and synced, each miner's Window PoSt scheduler on its node): the
other miner's blocks go on, the deadline's cron finds no PoSt and marks the sectors faulty (an
undeclared fault: power lost, fee charged); the node comes back (a fresh node for the same miner and
sectors, synced from its peer), checks the sectors on disk, declares them recovered before the
deadline's next cutoff, proves them, and the power returns."""

from typing import Final

import pytest

from actors.miner.policy import DeadlineInfo
from chain.params import DEVNET
from chain.stmgr import miners as miner_queries
from chain.types.address import Address
from chain.types.tipset import TipSet
from node.mining.wdpost_declare import DeclarationState
from tests.kit.ensemble import Ensemble, KitNode, ensemble, miners_of_node, wait_until

pytestmark = pytest.mark.slow

SECTOR: Final = 2048


def faults(kit: KitNode, miner: Address) -> list[int]:
    """The miner's faulty sectors in the state after the node's head."""
    state = kit.node.state
    tree = state.tree(state.state_of(kit.head).state_root)
    return list(miner_queries.miner_faults(tree, miner))


def raw_power(kit: KitNode, miner: Address) -> int:
    state = kit.node.state
    tree = state.tree(state.state_of(kit.head).state_root)
    return int(miner_queries.miner_power(tree, DEVNET, miner).miner.raw_byte_power)


def next_proven_deadline(kit: KitNode, miner: Address) -> DeadlineInfo:
    """The miner's next deadline instance with live sectors whose challenge is still ahead."""
    head = kit.head
    current = kit.node.state.proving_deadline(miner, head)
    for step in range(2 * DEVNET.wpost_period_deadlines):
        index = (current.index + step) % DEVNET.wpost_period_deadlines
        periods = (current.index + step) // DEVNET.wpost_period_deadlines
        start = current.period_start + periods * DEVNET.wpost_proving_period
        info = DeadlineInfo.of(DEVNET, start, index, head.height)
        partitions = kit.node.state.miner_partitions(miner, index, head)
        if info.challenge > head.height + 3 and any(p.live() for p in partitions):
            return info
    raise AssertionError("the miner has no deadline with sectors")


async def mine_to(ens: Ensemble, nodes: list[KitNode], height: int) -> TipSet:
    head = nodes[0].head
    while head.height < height:
        head = await ens.mine_one(nodes)
    return head


async def test_a_miner_down_over_its_deadline_is_faulty_then_recovers_after_its_restart() -> None:
    async with ensemble(nodes=2, miners=2) as ens:
        down, other = ens.nodes
        miner = down.miners[0].address
        deadline = next_proven_deadline(down, miner)
        await mine_to(ens, [down, other], deadline.challenge - 3)
        assert faults(other, miner) == [] and raw_power(other, miner) == 2 * SECTOR

        ens.stop(down)  # down before the deadline's challenge: no PoSt for it
        await mine_to(ens, [other], deadline.close + 1)
        lost = faults(other, miner)
        assert lost and raw_power(other, miner) == (2 - len(lost)) * SECTOR

        # Back: the same miner and sectors on a fresh node, synced from its peer.
        back = ens.add_node(miners_of_node(ens.genesis, 2, 0))
        await ens.start(back)
        await ens.connect(back, other)
        await ens.wait_converged([back, other], timeout=120)
        scheduler = back.miners[0].scheduler
        await wait_until(
            lambda: scheduler.status().head == back.head.height, what="the scheduler following the head"
        )
        again = DeadlineInfo.of(
            DEVNET, deadline.period_start + DEVNET.wpost_proving_period, deadline.index, back.head.height
        )
        await mine_to(ens, [back, other], again.close + 1)
        assert faults(other, miner) == []
        assert raw_power(other, miner) == 2 * SECTOR
        (declared,) = [d for d in scheduler.status().declarations if d.open == again.open]
        assert declared.state is DeclarationState.DONE
        assert sorted(declared.recoveries) == lost
        assert [(kind, outcome) for kind, _, outcome in declared.messages] == [("recoveries", "ok")]
        (post,) = [d for d in scheduler.status().deadlines if d.open == again.open]
        assert post.state.value == "posted"
