"""The Window PoSt scheduler on a chain executed by the VM (tests/mining/vm_node.py): a devnet genesis
whose miner t01000 holds pre-sealed 2 KiB sectors in deadlines 0, 1 and 2 (devnet profile: 12 deadlines
of 10 epochs, challenge 2 epochs before a deadline opens; this genesis's first period starts at -62, so
deadline d opens at 58 + 10 d and again 120 epochs later).

The scheduler runs as the node runs it, a trio service; the test mines one tipset at a time and waits
until the scheduler has handled it, so every message it pushes can make the next block.
"""

from dataclasses import replace
from pathlib import Path
from typing import Any

import trio

from chain.mpool.push import SendSpec
from chain.params import DEVNET
from chain.vm.exitcode import ExitCode
from node.mining.wdpost import RESUBMIT_AFTER, RunState
from tests.mining.vm_node import VMNode
from tests.mining.wdpost_harness import SECTOR, WAIT, deadline_open, landed_ok, posts, running


async def test_proves_every_deadline_with_sectors_and_keeps_the_power(node: VMNode) -> None:
    full_power = 6 * SECTOR
    assert node.power() == full_power
    async with running(node) as chain:
        for index, period in ((0, 0), (1, 0), (2, 0), (0, 1)):
            close = deadline_open(index, period) + DEVNET.wpost_challenge_window
            await chain.advance_to(close + 1)
            assert node.faults().is_empty(), f"deadline {index}: faults after its cron"
            assert node.power() == full_power
        assert chain.scheduler is not None
        status = chain.scheduler.status()

    sent = posts(node)
    # One message per deadline instance with sectors: deadlines 0, 1, 2, then deadline 0 again.
    assert [p.deadline for _, p in sent] == [0, 1, 2, 0]
    for (signed, params), period in zip(sent, (0, 0, 0, 1), strict=True):
        height = landed_ok(node, signed)
        opens = deadline_open(params.deadline, period)
        assert opens <= height < opens + DEVNET.wpost_challenge_window
        assert [p.index for p in params.partitions] == [0]
        assert all(p.skipped.is_empty() for p in params.partitions)
        assert params.chain_commit_epoch == opens - DEVNET.wpost_challenge_lookback
    assert node.specs == [SendSpec(max_fee=5 * 10**18)] * 4  # Lotus's MaxWindowPoStGasFee
    states = {(d.index, d.open): d.state for d in status.deadlines}
    assert states[(1, deadline_open(1))] is RunState.POSTED
    assert states[(2, deadline_open(2))] is RunState.POSTED
    assert states[(3, deadline_open(3))] is RunState.NOTHING_TO_PROVE


async def test_a_deadline_missed_on_purpose_becomes_a_fault_and_a_restart_picks_up(node: VMNode) -> None:
    async with running(node) as chain:
        await chain.advance_to(deadline_open(0) + DEVNET.wpost_challenge_window)  # deadline 0 proven
        assert node.faults().is_empty()
        chain.stop()  # the node is down over deadline 1
        await chain.advance_to(deadline_open(1) + DEVNET.wpost_challenge_window + 1)
        assert list(node.faults()) == [2, 3]
        assert node.power() == 4 * SECTOR
        pushed = len(node.pushed)

        # Restarted inside deadline 2's window: it proves deadline 2 and leaves the faulty sectors alone
        # (no recovery was declared for them).
        assert node.head.height == deadline_open(2) + 1
        scheduler = await chain.start()
        await chain.advance_to(deadline_open(2) + DEVNET.wpost_challenge_window + 1)
        assert list(node.faults()) == [2, 3]
        assert node.power() == 4 * SECTOR
        new = posts(node)[pushed:]
        assert [p.deadline for _, p in new] == [2]
        landed_ok(node, new[0][0])
        states = {d.index: d.state for d in scheduler.status().deadlines if d.period_start == 58}
        assert states[2] is RunState.POSTED


async def test_a_restart_after_pushing_adopts_the_pending_message(node: VMNode) -> None:
    async with running(node) as chain:
        await chain.advance_to(deadline_open(0) + 1)
        while not node.pushed:
            await chain.tipset()
        (first,) = node.pushed
        chain.stop()
        # A new scheduler while the PoSt waits in the pool: it takes it as its own, sends nothing more.
        await chain.start()
        await chain.advance_to(deadline_open(0) + DEVNET.wpost_challenge_window + 1)
        assert node.pushed == [first]
        landed_ok(node, first)
        assert node.faults().is_empty()


async def test_a_restart_after_the_post_landed_sends_nothing(node: VMNode) -> None:
    async with running(node) as chain:
        await chain.advance_to(deadline_open(0) + 6)
        (first,) = node.pushed
        landed_ok(node, first)
        chain.stop()
        scheduler = await chain.start()
        await chain.advance_to(deadline_open(0) + DEVNET.wpost_challenge_window + 1)
        assert node.pushed == [first]
        (zero,) = [d for d in scheduler.status().deadlines if d.open == deadline_open(0)]
        assert zero.state is RunState.POSTED


async def test_a_reorg_below_the_commit_epoch_leads_to_a_resubmission(node: VMNode) -> None:
    async with running(node) as chain:
        await chain.advance_to(deadline_open(0) + 5)
        (first,) = node.pushed
        landed_ok(node, first)
        # Another branch from before the challenge epoch: other tickets, so another chain commitment.
        fork_point = node.tipset_at(deadline_open(0) - 4, node.head)
        tip = fork_point
        while tip.height <= node.head.height:
            tip = node.mine(tip, branch="fork")
        await chain.tipset(tip)
        assert node.landed(first.cid()) is None
        await chain.advance_to(deadline_open(0) + DEVNET.wpost_challenge_window + 1)

    assert len(node.pushed) == 2
    again = node.pushed[1]
    landed_ok(node, again)
    # The pool gave the reverted message back and it ran on the new branch, where it can only fail.
    stale = node.landed(first.cid())
    assert stale is not None and stale.ret.exit_code == ExitCode.ErrIllegalArgument
    assert "randomness" in (stale.ret.error or "")
    assert node.faults().is_empty()
    assert node.power() == 6 * SECTOR


async def test_a_reorg_above_the_commit_epoch_waits_for_the_reverted_message(node: VMNode) -> None:
    async with running(node) as chain:
        await chain.advance_to(deadline_open(0) + 5)
        (first,) = node.pushed
        included = node.landed(first.cid())
        assert included is not None
        tip = node.parent(included.tipset)  # the branch forks just below the block holding the PoSt
        while tip.height <= node.head.height:
            tip = node.mine(tip, branch="fork")
        await chain.tipset(tip)
        assert node.landed(first.cid()) is None
        await chain.advance_to(deadline_open(0) + DEVNET.wpost_challenge_window + 1)

    assert node.pushed == [first]
    landed_ok(node, first)
    assert node.faults().is_empty()


async def test_refused_pushes_are_retried_while_the_window_is_open(node: VMNode) -> None:
    node.refuse_pushes = 2
    async with running(node) as chain:
        await chain.advance_to(deadline_open(0) + DEVNET.wpost_challenge_window + 1)
        assert chain.scheduler is not None
        (zero,) = [d for d in chain.scheduler.status().deadlines if d.open == deadline_open(0)]
    assert zero.last_error is not None and "push refused" in zero.last_error
    assert zero.state is RunState.POSTED
    (post,) = node.pushed
    assert landed_ok(node, post) == deadline_open(0) + 2 + 2 + 1  # two refusals, one epoch each
    assert node.faults().is_empty()


async def test_a_message_that_does_not_land_is_sent_again(node: VMNode) -> None:
    async with running(node) as chain:
        await chain.advance_to(deadline_open(0) + 2)
        (first,) = node.pushed
        node.pool.remove(first)  # lost: evicted from the pool before any block took it
        await chain.advance_to(deadline_open(0) + DEVNET.wpost_challenge_window + 1)
    # Sent again at the same nonce (the lost one never ran), so it is the same message.
    assert len(node.pushed) == 2
    assert landed_ok(node, node.pushed[1]) == deadline_open(0) + 2 + RESUBMIT_AFTER + 1
    assert node.faults().is_empty()


async def test_partitions_are_batched_within_the_actors_limit(tmp_path: Path) -> None:
    # 22 sectors: deadlines 0 and 1 hold two partitions each; at most one partition per message.
    policy = replace(DEVNET, addressed_partitions_max=1)
    node = VMNode.new(tmp_path / "sectors", sectors=22, policy=policy)
    assert len(node.miner_partitions(node.miner, 0, node.head)) == 2
    async with running(node) as chain:
        await chain.advance_to(deadline_open(0) + DEVNET.wpost_challenge_window + 1)
    zero = [(s, p) for s, p in posts(node) if p.deadline == 0]
    assert [[x.index for x in p.partitions] for _, p in zero] == [[0], [1]]
    for signed, _ in zero:
        landed_ok(node, signed)
    assert node.faults().is_empty()


async def test_a_dropped_subscription_is_taken_up_again(node: VMNode) -> None:
    async with running(node) as chain:
        await chain.advance_to(deadline_open(0) - 3)
        node.drop_subscribers()
        ts = node.advance()  # nobody hears of this one
        assert chain.scheduler is not None
        with trio.fail_after(WAIT):
            await chain.scheduler.wait_processed(ts)  # "current" of the new subscription
        await chain.advance_to(deadline_open(0) + DEVNET.wpost_challenge_window + 1)
    (post,) = node.pushed
    landed_ok(node, post)


async def test_a_failed_proof_is_made_again_on_the_next_head(node: VMNode) -> None:
    failures = []
    proving_sector = node.sectors.proving_sector

    def flaky(miner: Any, number: int, *, verify: bool = False) -> Any:
        if not failures and not verify:  # the PoSt's read (the fault check reads with verify)
            failures.append(number)
            raise RuntimeError("disk controller reset")
        return proving_sector(miner, number, verify=verify)

    node.sectors.proving_sector = flaky  # type: ignore[method-assign]
    async with running(node) as chain:
        await chain.advance_to(deadline_open(0) + DEVNET.wpost_challenge_window + 1)
        assert chain.scheduler is not None
        (zero,) = [d for d in chain.scheduler.status().deadlines if d.open == deadline_open(0)]
    assert failures == [0]
    assert zero.last_error == "RuntimeError: disk controller reset"
    assert zero.state is RunState.POSTED
    (post,) = node.pushed
    landed_ok(node, post)
    assert node.faults().is_empty()
