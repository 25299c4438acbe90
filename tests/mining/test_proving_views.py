"""`filpy miner proving info|deadlines|faults|check` as node/mining/proving.py computes them, on the VM
chain of tests/mining/wdpost_harness.py with the scheduler running: a miner with a declared fault, a
declared recovery and a damaged replica."""

from node.mining.proving import check_view, deadlines_view, faults_view, proving_info
from tests.mining.vm_node import VMNode
from tests.mining.wdpost_harness import deadline_open, running


async def test_proving_views_of_a_healthy_miner(node: VMNode) -> None:
    async with running(node) as chain:
        await chain.advance_to(deadline_open(0) + 5)
    info = proving_info(node, node.policy, node.miner, node.head)
    assert info.deadline_index == 0 and info.deadline_open == deadline_open(0)
    assert info.deadline_fault_cutoff == deadline_open(0) - 5
    assert info.period_start == 58 and info.next_period_start == 178 and info.proving_period_boundary == 58
    assert (info.live_sectors, info.active_sectors, info.faulty_sectors) == (6, 6, 0)
    assert info.deadline_live_sectors == 2
    views = deadlines_view(node, node.policy, node.miner, node.head)
    assert [v.live_sectors for v in views] == [2, 2, 2] + [0] * 9
    assert views[0].current and views[0].proven_partitions == (0,)
    assert not views[1].current and views[1].proven_partitions == ()
    assert views[1].open == deadline_open(1) and views[1].fault_cutoff == deadline_open(1) - 5
    assert list(views[2].partitions[0].to_prove) == [4, 5]
    assert faults_view(node, node.policy, node.miner, node.head) == ()
    checks = check_view(node, node.sectors, node.miner, 1, node.head)
    assert [(c.partition, c.sector, c.good, c.reason) for c in checks] == [(0, 2, True, ""), (0, 3, True, "")]
    assert type(info).from_json(info.to_json()) == info


async def test_proving_views_of_a_miner_with_faults(node: VMNode) -> None:
    lost = node.sectors.sealed_path(node.miner, 0)
    saved = lost.read_bytes()
    lost.unlink()
    damaged = node.sectors.sealed_path(node.miner, 3)
    data = bytearray(damaged.read_bytes())
    data[7] ^= 0x80
    damaged.write_bytes(bytes(data))
    async with running(node) as chain:
        await chain.advance_to(deadline_open(1) + 11)  # both declared faulty, both deadlines proven
        lost.write_bytes(saved)
        await chain.advance_to(deadline_open(0, 1) - 5)  # sector 0's recovery declared
        assert chain.scheduler is not None
        reason = chain.scheduler.declarer.known_reason
        faults = faults_view(node, node.policy, node.miner, node.head, reason)
    assert [(f.deadline, f.partition, f.sector, f.recovering) for f in faults] == [
        (0, 0, 0, True),
        (1, 0, 3, False),
    ]
    assert faults[0].reason is None  # the last check found it fine
    assert faults[1].reason is not None and "does not match its CommR" in faults[1].reason
    info = proving_info(node, node.policy, node.miner, node.head)
    assert (info.live_sectors, info.active_sectors, info.faulty_sectors, info.recovering_sectors) == (
        6,
        4,
        2,
        1,
    )
    views = deadlines_view(node, node.policy, node.miner, node.head)
    zero = views[0].partitions[0]
    assert list(zero.faulty_sectors) == [0] and list(zero.recovering_sectors) == [0]
    assert list(zero.to_prove) == [0, 1]  # the next PoSt proves the recovering sector
    assert views[1].faulty_sectors == 1 and list(views[1].partitions[0].to_prove) == [2]
    checks = {c.sector: c for c in check_view(node, node.sectors, node.miner, 1, node.head)}
    assert checks[2].good and not checks[3].good and "does not match its CommR" in checks[3].reason
    assert all(c.good for c in check_view(node, node.sectors, node.miner, 0, node.head))
