"""Storage faults handled by the Window PoSt scheduler on a chain executed by the VM (see
tests/mining/wdpost_harness.py for the timing: deadline d opens at 58 + 10 d, its fault cutoff is 5
epochs before, and its sectors are checked 21 epochs before, when deadline d - 2 is challenged).

A replica lost or damaged before the check is declared faulty (DeclareFaults) before the cutoff and the
power drops at once; a replica that comes back is declared recovered (DeclareFaultsRecovered) before the
next cutoff, the next PoSt proves it and the power returns. Found too late, the PoSt skips it. A node
down over a deadline finds its sectors faulty (the deadline's cron) and declares them recovered after
its restart. Refused and lost declarations are sent again while the cutoff allows; a restart adopts one
waiting in the pool.
"""

from dataclasses import replace
from pathlib import Path
from typing import Final

import structlog.testing

from actors import builtin
from actors.miner.types import (
    DeclareFaultsParams,
    DeclareFaultsRecoveredParams,
    MinerMethod,
    SectorDeclaration,
)
from chain.encoding import dagcbor
from chain.mpool.push import SendSpec
from chain.params import DEVNET
from chain.state.tree import StateTree
from chain.types.bitfield import BitField
from chain.types.message import SignedMessage
from node.mining.wdpost import RESUBMIT_AFTER
from node.mining.wdpost_declare import DeclarationState
from node.mining.wdpost_faults import CHECK_DEADLINES_AHEAD, DeclarationKind, declaration_batches
from tests.mining.vm_node import VMNode
from tests.mining.wdpost_harness import SECTOR, deadline_open, landed_ok, posts, running

WINDOW: Final = DEVNET.wpost_challenge_window
CUTOFF: Final = DEVNET.fault_declaration_cutoff


def check_height(index: int, period: int = 0) -> int:
    """When the scheduler checks deadline `index`: when deadline index - 2 is challenged, plus one."""
    return deadline_open(index, period) - CHECK_DEADLINES_AHEAD * WINDOW - DEVNET.wpost_challenge_lookback + 1


def declarations(
    node: VMNode, kind: DeclarationKind
) -> list[tuple[SignedMessage, tuple[SectorDeclaration, ...]]]:
    out = []
    for signed in node.pushed:
        if signed.message.method != kind.method:
            continue
        raw = dagcbor.decode(signed.message.params)
        if kind is DeclarationKind.FAULTS:
            out.append((signed, DeclareFaultsParams.from_cbor(raw).faults))
        else:
            out.append((signed, DeclareFaultsRecoveredParams.from_cbor(raw).recoveries))
    return out


def triples(decls: tuple[SectorDeclaration, ...]) -> list[tuple[int, int, list[int]]]:
    return [(d.deadline, d.partition, list(d.sectors)) for d in decls]


def burnt(node: VMNode) -> int:
    tree = StateTree.load(node.store, node.state_root_after(node.head))
    actor = tree.get_actor(builtin.BURNT_FUNDS_ACTOR_ADDR)
    assert actor is not None
    return actor.balance


async def test_lost_and_damaged_replicas_are_declared_and_a_restored_one_recovers(node: VMNode) -> None:
    lost = node.sectors.sealed_path(node.miner, 0)
    saved = lost.read_bytes()
    lost.unlink()  # sector 0 (deadline 0): its replica is gone
    damaged = node.sectors.sealed_path(node.miner, 3)
    data = bytearray(damaged.read_bytes())
    data[100] ^= 0x01  # sector 3 (deadline 1): the right size, but no longer its CommR
    damaged.write_bytes(bytes(data))
    async with running(node) as chain:
        await chain.advance_to(check_height(0) + 2)
        (first,) = declarations(node, DeclarationKind.FAULTS)
        assert triples(first[1]) == [(0, 0, [0])]
        assert first[0].message.from_ == node.genesis.miners[0].worker
        assert landed_ok(node, first[0]) < deadline_open(0) - CUTOFF
        assert list(node.faults()) == [0] and node.power() == 5 * SECTOR  # lost before the deadline

        await chain.advance_to(deadline_open(1) + WINDOW + 1)
        faults = declarations(node, DeclarationKind.FAULTS)
        assert [triples(d) for _, d in faults] == [[(0, 0, [0])], [(1, 0, [3])]]
        assert landed_ok(node, faults[1][0]) < deadline_open(1) - CUTOFF
        # The PoSts prove what is left and skip nothing: the faults were declared.
        zero, one = posts(node)
        assert [(p.index, list(p.skipped)) for p in zero[1].partitions] == [(0, [])]
        assert [(p.index, list(p.skipped)) for p in one[1].partitions] == [(0, [])]
        landed_ok(node, zero[0])
        landed_ok(node, one[0])
        assert list(node.faults()) == [0, 3] and node.power() == 4 * SECTOR
        assert chain.scheduler is not None
        status = {d.open: d for d in chain.scheduler.status().declarations}
        assert status[deadline_open(0)].state is DeclarationState.DONE
        assert "replica is missing" in status[deadline_open(0)].faults[0]
        assert "does not match its CommR" in status[deadline_open(1)].faults[3]
        assert status[deadline_open(0)].messages == ((str(DeclarationKind.FAULTS), first[0].cid(), "ok"),)

        # The replica comes back: the recovery is declared before the next cutoff, the PoSt proves it.
        lost.write_bytes(saved)
        await chain.advance_to(check_height(0, 1) + 2)
        (recovery,) = declarations(node, DeclarationKind.RECOVERIES)
        assert triples(recovery[1]) == [(0, 0, [0])]
        assert landed_ok(node, recovery[0]) < deadline_open(0, 1) - CUTOFF
        assert node.power() == 4 * SECTOR  # not before the PoSt proves it
        pushed = len(posts(node))
        await chain.advance_to(deadline_open(0, 1) + WINDOW + 1)
    (again,) = [(s, p) for s, p in posts(node)[pushed:] if p.deadline == 0]
    landed_ok(node, again[0])
    assert [(p.index, list(p.skipped)) for p in again[1].partitions] == [(0, [])]
    assert list(node.faults()) == [3]
    assert node.power() == 5 * SECTOR
    # Sector 3 is still damaged: no recovery was declared for it, nothing was declared twice.
    assert len(declarations(node, DeclarationKind.FAULTS)) == 2
    assert len(declarations(node, DeclarationKind.RECOVERIES)) == 1
    assert all(spec == SendSpec(max_fee=5 * 10**18) for spec in node.specs)


async def test_null_rounds_over_a_deadline_boundary_do_not_delay_the_check(node: VMNode) -> None:
    node.sectors.sealed_path(node.miner, 0).unlink()
    async with running(node) as chain:
        # Deadline 10 opens at 38 and the check of deadline 0 is due at 37: jump from 35 to 38.
        await chain.advance_to(check_height(0) - 2)
        ts = node.advance(nulls=2)
        assert ts.height == check_height(0) + 1
        assert chain.scheduler is not None
        await chain.scheduler.wait_processed(ts)
        ((signed, decls),) = declarations(node, DeclarationKind.FAULTS)
        assert triples(decls) == [(0, 0, [0])]
        await chain.tipset()
    landed_ok(node, signed)


async def test_a_fault_after_its_deadlines_check_is_skipped_by_the_post(node: VMNode) -> None:
    async with running(node) as chain:
        await chain.advance_to(check_height(0) + 5)  # deadline 0 checked: all fine
        node.sectors.sealed_path(node.miner, 1).unlink()
        await chain.advance_to(deadline_open(0) + WINDOW + 1)
        assert declarations(node, DeclarationKind.FAULTS) == []
        ((signed, params),) = posts(node)
        assert [(p.index, list(p.skipped)) for p in params.partitions] == [(0, [1])]
        landed_ok(node, signed)
        assert list(node.faults()) == [1] and node.power() == 5 * SECTOR
        # Next period: still missing, already faulty on chain: nothing to declare.
        await chain.advance_to(deadline_open(0, 1) + WINDOW + 1)
        assert chain.scheduler is not None
        (status,) = [d for d in chain.scheduler.status().declarations if d.open == deadline_open(0, 1)]
    assert status.state is DeclarationState.DONE and 1 in status.faults and status.messages == ()
    assert declarations(node, DeclarationKind.FAULTS) == []
    assert declarations(node, DeclarationKind.RECOVERIES) == []
    assert list(node.faults()) == [1]


async def test_declarations_refused_until_the_cutoff_are_too_late(node: VMNode) -> None:
    node.sectors.sealed_path(node.miner, 0).unlink()
    # Every push from deadline 0's check until its cutoff is refused (one attempt per head).
    node.refuse_pushes = deadline_open(0) - CUTOFF - 1 - check_height(0)
    with structlog.testing.capture_logs() as logs:
        async with running(node) as chain:
            await chain.advance_to(deadline_open(0) + WINDOW + 1)
            assert chain.scheduler is not None
            (status,) = [d for d in chain.scheduler.status().declarations if d.open == deadline_open(0)]
    assert status.state is DeclarationState.TOO_LATE
    assert status.last_error is not None and "push refused" in status.last_error
    assert declarations(node, DeclarationKind.FAULTS) == []
    late = [e for e in logs if e["event"].startswith("fault declaration too late")]
    assert [(e["kind"], e["deadline"], e["sectors"]) for e in late] == [("faults", 0, [0])]
    # The PoSt skips it instead, and the actor marks it faulty.
    ((signed, params),) = posts(node)
    assert [(p.index, list(p.skipped)) for p in params.partitions] == [(0, [0])]
    landed_ok(node, signed)
    assert list(node.faults()) == [0]


async def test_a_declaration_lost_from_the_pool_is_sent_again(node: VMNode) -> None:
    node.sectors.sealed_path(node.miner, 0).unlink()
    async with running(node) as chain:
        await chain.advance_to(check_height(0))
        ((first, _),) = declarations(node, DeclarationKind.FAULTS)
        node.pool.remove(first)  # evicted before any block took it
        await chain.advance_to(deadline_open(0) - CUTOFF)
    (_, (again, decls)) = declarations(node, DeclarationKind.FAULTS)
    assert triples(decls) == [(0, 0, [0])]
    assert landed_ok(node, again) == check_height(0) + RESUBMIT_AFTER + 1
    assert list(node.faults()) == [0] and node.power() == 5 * SECTOR


async def test_a_restart_adopts_a_declaration_waiting_in_the_pool(node: VMNode) -> None:
    node.sectors.sealed_path(node.miner, 2).unlink()
    async with running(node) as chain:
        await chain.advance_to(check_height(1))
        ((first, _),) = declarations(node, DeclarationKind.FAULTS)
        chain.stop()  # down before a block took it
        with structlog.testing.capture_logs() as logs:
            await chain.start()
            await chain.advance_to(deadline_open(1) - CUTOFF)
    assert [s for s, _ in declarations(node, DeclarationKind.FAULTS)] == [first]
    assert any(e["event"] == "fault declaration already in the message pool" for e in logs)
    landed_ok(node, first)
    assert list(node.faults()) == [2]


async def test_a_node_down_over_a_deadline_recovers_its_sectors_after_the_restart(node: VMNode) -> None:
    async with running(node) as chain:
        await chain.advance_to(deadline_open(1) - 3)
        chain.stop()  # down over deadline 1: its cron finds no PoSt
        await chain.advance_to(deadline_open(1) + WINDOW - 2)
        before = burnt(node)
        await chain.tipset()  # the deadline's last epoch: its cron marks the sectors faulty
        assert burnt(node) > before  # and burns the fault fee (no messages ran: nothing else burns)
        assert node.faults().is_empty()  # queries read the state before the head's own cron
        await chain.tipset()
        assert list(node.faults()) == [2, 3] and node.power() == 4 * SECTOR

        await chain.start()  # the replicas are fine: recoveries before deadline 1's next cutoff
        await chain.advance_to(deadline_open(1, 1) - CUTOFF)
        ((recovery, decls),) = declarations(node, DeclarationKind.RECOVERIES)
        assert triples(decls) == [(1, 0, [2, 3])]
        landed_ok(node, recovery)
        assert node.power() == 4 * SECTOR
        await chain.advance_to(deadline_open(1, 1) + WINDOW + 1)
    assert node.faults().is_empty()
    assert node.power() == 6 * SECTOR
    assert declarations(node, DeclarationKind.FAULTS) == []


def test_declarations_are_batched_within_the_actors_limits() -> None:
    policy = replace(DEVNET, declarations_max=2, addressed_sectors_max=3)
    sectors = {2: BitField.from_bits([9]), 0: BitField.from_bits([1, 2]), 1: BitField.from_bits([5, 6, 7, 8])}
    batches = declaration_batches(policy, 4, sectors)
    assert [triples(b) for b in batches] == [
        [(4, 0, [1, 2]), (4, 1, [5])],
        [(4, 1, [6, 7, 8])],
        [(4, 2, [9])],
    ]
    assert declaration_batches(policy, 4, {}) == []


async def test_one_message_per_partition_when_the_actor_takes_one_declaration(tmp_path: Path) -> None:
    policy = replace(DEVNET, declarations_max=1)
    node = VMNode.new(tmp_path / "sectors", sectors=22, policy=policy)
    partitions = node.miner_partitions(node.miner, 0, node.head)
    assert len(partitions) == 2
    lost = [min(p.sectors) for p in partitions]
    for number in lost:
        node.sectors.sealed_path(node.miner, number).unlink()
    async with running(node) as chain:
        await chain.advance_to(deadline_open(0) - CUTOFF)
    sent = declarations(node, DeclarationKind.FAULTS)
    assert [triples(d) for _, d in sent] == [[(0, 0, [lost[0]])], [(0, 1, [lost[1]])]]
    for signed, _ in sent:
        landed_ok(node, signed)
    assert list(node.faults()) == lost
    assert node.power() == 20 * SECTOR
    assert MinerMethod.DeclareFaults == DeclarationKind.FAULTS.method
