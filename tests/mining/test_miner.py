"""node/mining/miner.py on the assembled node (node/fullnode.py) over a devnet genesis, with trio's
MockClock as the wall clock: blocks at genesis time + height x block delay, mined a propagation delay
into their epoch; null rounds where the local miner does not win; pause, resume and catch-up epoch by
epoch; a restart after a stop; mine_now; mining on demand (block delay 0) when a message arrives; and a
produced block that fails validation is dropped, never applied.

The clock jumps only when every task waits (autojump): the mining thread's work takes no mock time (the
worker threads' calls run inline here, see inline_threads), and the tests wait for head changes without
deadlines of their own (a real-time watchdog thread bounds them instead), so the clock always jumps to
the miner's next epoch.
"""

import itertools
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import pytest
import structlog
import trio
import trio.testing

from actors.miner.state import SectorOnChainInfo
from chain.chainstore.reorg import HeadChange
from chain.mpool.push import message_to_push
from chain.params import DEVNET
from chain.stmgr import miners
from chain.types.address import Address
from chain.types.message import Message
from chain.types.tipset import TipSet
from node.fullnode import FullNode, in_memory_full_node
from node.genesis import Genesis
from node.keystore import Keystore
from node.mining.local import LocalMiner
from node.mining.miner import MINE_ATTEMPTS, MiningService
from node.mining.wdpost import RunState, WindowPoStScheduler
from node.sealing.sectors import SectorStore
from node.wallet import Wallet
from proofs import post
from tests.consensus.devchain import ALICE, GENESIS_TIME, genesis_of
from tests.mining.local_miners import local_miner

REAL_SECONDS: Final = 60.0  # what a test may take in real time


@pytest.fixture(autouse=True)
def inline_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker-thread calls (trio.to_thread.run_sync) run in the event loop's thread. Under the autojump
    clock a task waiting for a worker thread counts as blocked, so the clock jumps to the next deadline
    while the thread works: the mining loop's pacer timeout (30 s) fires while the Window PoSt
    scheduler's thread is busy, and each such jump puts the wall clock 7 epochs further ahead, so a
    catch-up chases a clock that runs away (thousands of mock seconds, hundreds of extra epochs, a real
    time anywhere from 12 to 115 s). Inline, the work takes no mock time, as the tests assume."""

    async def run_inline(fn: Callable[..., Any], *args: Any, **_: Any) -> Any:
        return fn(*args)

    monkeypatch.setattr(trio.to_thread, "run_sync", run_inline)


def node_for(tmp_path: Path, genesis: Genesis, block_delay: int) -> FullNode:
    wallet = Wallet(Keystore.create(tmp_path / "keystore"))
    wallet.ensure_key(ALICE)
    return in_memory_full_node(genesis, wallet, policy=replace(DEVNET, block_delay_secs=block_delay))


def wall() -> float:
    """The mock wall clock: the genesis time when the test starts."""
    return GENESIS_TIME + trio.current_time()


def mining_node(
    tmp_path: Path,
    *,
    miner_count: int = 1,
    block_delay: int = 4,
    clock: Callable[[], float] = wall,
    enabled: bool = True,
) -> tuple[FullNode, MiningService]:
    """A node on a genesis of `miner_count` miners, and a mining service of the first one (proving from its
    sector store in tmp_path) on the mock wall clock unless told."""
    genesis = genesis_of(miners=miner_count)
    node = node_for(tmp_path, genesis, block_delay=block_delay)
    return node, MiningService(node, [local_miner(tmp_path, genesis)], clock=clock, enabled=enabled)


def transfer(node: FullNode, value: int) -> Message:
    return message_to_push(Address.new_id(100), Address.of_key(ALICE), value=value)


@asynccontextmanager
async def running(miner: MiningService, seconds: float = REAL_SECONDS) -> AsyncIterator[None]:
    """The miner's loop running for the block, which is bounded by seconds of real time."""
    async with real_time_limit(seconds), trio.open_nursery() as nursery:
        await nursery.start(miner.run)
        yield
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def real_time_limit(seconds: float = REAL_SECONDS) -> AsyncIterator[None]:
    """Cancel the block after seconds of real time (a thread: no trio deadline for the clock to jump to)."""
    token = trio.lowlevel.current_trio_token()
    with trio.CancelScope() as scope:
        timer = threading.Timer(seconds, lambda: trio.from_thread.run_sync(scope.cancel, trio_token=token))
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
    if scope.cancelled_caught:
        raise AssertionError(f"not done within {seconds} s of real time")


class Heads:
    """The tipsets that became the head, with the mock wall time each was seen at."""

    def __init__(self, node: FullNode) -> None:
        self.node = node
        self.seen: list[tuple[TipSet, float]] = []
        self._changes = node.chain.subscribe(buffer=1000)

    async def until(self, done: Callable[[TipSet], bool]) -> TipSet:
        head = self.node.chain.head()
        while not done(head):
            batch: list[HeadChange] = await self._changes.receive()
            for change in batch:
                if change.type == "apply":
                    self.seen.append((change.tipset, wall()))
                    head = change.tipset
        return head

    async def height(self, height: int) -> TipSet:
        return await self.until(lambda ts: ts.height >= height)


def epoch_time(height: int, block_delay: int) -> int:
    return GENESIS_TIME + height * block_delay


async def test_blocks_follow_the_wall_clock(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    node, miner = mining_node(tmp_path)
    assert miner.propagation_delay == 1.0  # a quarter of the block delay
    heads = Heads(node)
    async with running(miner):
        await heads.height(12)

    heights = [ts.height for ts, _ in heads.seen]
    assert heights == sorted(set(heights)) and heights[-1] >= 12
    for ts, seen in heads.seen:
        # the consensus rule, and the wall clock: mined a propagation delay into its own epoch
        assert ts.min_timestamp() == epoch_time(ts.height, 4)
        assert epoch_time(ts.height, 4) + 1.0 <= seen < epoch_time(ts.height + 1, 4)
    skipped = heights[-1] - len(heights)  # epochs without a block: the miner did not win them
    assert miner.stats.null_rounds == skipped and miner.stats.tipsets == len(heights)
    assert miner.stats.dropped == miner.stats.failures == 0


async def test_null_rounds_where_the_local_miner_does_not_win(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    # Two genesis miners with equal power, only one of them local: it wins about 92% of the epochs.
    node, miner = mining_node(tmp_path, miner_count=2)
    heads = Heads(node)
    async with running(miner):
        await heads.height(40)

    heights = [0] + [ts.height for ts, _ in heads.seen]
    gaps = [(low, high) for low, high in itertools.pairwise(heights) if high - low > 1]
    assert gaps, "expected null rounds in 40 epochs at 50% of the power"
    for ts, seen in heads.seen:
        (block,) = ts.blocks
        parent_height = heights[heights.index(ts.height) - 1]
        # one beacon entry per epoch since the parent, null rounds included; timestamps as the clock
        assert len(block.beacon_entries) == ts.height - parent_height
        assert ts.min_timestamp() == epoch_time(ts.height, 4) and seen >= ts.min_timestamp()
    assert miner.stats.null_rounds == sum(high - low - 1 for low, high in gaps)


async def test_pause_resume_and_catch_up(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    node, miner = mining_node(tmp_path)
    heads = Heads(node)
    async with running(miner):
        paused_at = await heads.height(3)
        miner.set_enabled(False)
        assert not miner.enabled
        await trio.sleep(40)  # ten epochs pass on the clock
        assert node.chain.head() == paused_at
        resumed = wall()
        miner.set_enabled(True)
        await heads.until(lambda ts: ts.min_timestamp() > resumed + 8)

    after = [(ts, seen) for ts, seen in heads.seen if ts.height > paused_at.height]
    # every epoch missed while paused is mined (or a null round), none skipped by a jump
    assert after[0][0].height <= paused_at.height + 2
    behind = [ts for ts, seen in after if seen >= ts.min_timestamp() + 4]
    assert len(behind) >= 8  # made at once, their timestamps in the past
    for ts, seen in after:
        assert ts.min_timestamp() == epoch_time(ts.height, 4) and seen >= ts.min_timestamp()
    caught_up = [seen - ts.min_timestamp() for ts, seen in after if ts.min_timestamp() > resumed + 4]
    assert caught_up and all(1.0 <= late < 4 for late in caught_up)  # following the clock again


async def test_a_restarted_miner_catches_up(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    genesis = genesis_of(miners=1)
    node = node_for(tmp_path, genesis, block_delay=4)
    local = [local_miner(tmp_path, genesis)]
    heads = Heads(node)
    async with real_time_limit():
        async with trio.open_nursery() as nursery:
            await nursery.start(MiningService(node, local, clock=wall).run)
            stopped = await heads.height(3)
            nursery.cancel_scope.cancel()
        await trio.sleep(80)  # stopped for 20 epochs
        restarted = wall()
        again = MiningService(node, local, clock=wall)
        async with trio.open_nursery() as nursery:
            await nursery.start(again.run)
            await heads.until(lambda ts: ts.min_timestamp() > restarted + 8)
            nursery.cancel_scope.cancel()

    after = [ts for ts, _ in heads.seen if ts.height > stopped.height]
    assert after[0].height <= stopped.height + 2  # from where it stopped, epoch after epoch
    assert len(after) >= 20 - again.stats.null_rounds
    assert all(ts.min_timestamp() == epoch_time(ts.height, 4) for ts in after)


async def test_mine_now(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    node, miner = mining_node(tmp_path, enabled=False)
    async with running(miner):
        first = await miner.mine_now()  # paused, and epoch 1's time has not come: waits for it
        assert first is not None and first.height == 1 and wall() >= epoch_time(1, 4)
        assert node.chain.head() == first
        await trio.sleep(20)
        assert node.chain.head() == first  # paused: the loop makes nothing
        before = wall()
        second = await miner.mine_now()  # epoch 2's time has passed: made at once, in the past
        assert second is not None and second.height == 2 and wall() == before
        assert second.min_timestamp() == epoch_time(2, 4)


async def test_on_demand_mining(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    node, miner = mining_node(tmp_path, block_delay=0)
    assert miner.on_demand and miner.propagation_delay == 0
    heads = Heads(node)
    async with running(miner):
        await trio.sleep(3600)
        assert node.chain.head().height == 0  # nothing asked for, nothing mined

        signed = await node.run_sync(node.pusher.push_message, transfer(node, 1))
        first = await heads.height(1)  # a message arrived: one block carries it
        assert node.chain.messages_for_tipset(first) == [signed]

        mined = await miner.mine_now()
        assert mined is not None and mined.height == 2 and node.chain.messages_for_tipset(mined) == []

        miner.set_enabled(False)
        later = await node.run_sync(node.pusher.push_message, transfer(node, 2))
        await trio.sleep(3600)
        assert node.chain.head() == mined  # paused: the message waits
        miner.set_enabled(True)  # resumed with a message pending: mined
        third = await heads.height(3)
        assert node.chain.messages_for_tipset(third) == [later]

    # epochs do not follow the clock: every block carries the genesis time (delay 0)
    assert [ts.min_timestamp() for ts, _ in heads.seen] == [GENESIS_TIME] * 3
    assert [ts.height for ts, _ in heads.seen] == [1, 2, 3]


def swapped_sectors(genesis: Genesis) -> LocalMiner:
    """The miner with a sector store that mixed up its two sectors: each number reads the other's files.
    The Winning PoSt is made over the wrong replica, which the block's validation catches."""
    (presealed,) = genesis.miners
    sectors = {s.number: s for s in presealed.sectors}

    def read_sector(_miner: Address, info: SectorOnChainInfo) -> post.ProvingSector:
        other = sectors[1 - info.sector_number]
        return replace(other.proving_sector(), sector_number=info.sector_number)

    return LocalMiner(presealed.id_address, presealed.worker_key, read_sector)


async def test_a_block_failing_validation_is_not_applied(tmp_path: Path) -> None:
    genesis = genesis_of(miners=1)
    node = node_for(tmp_path, genesis, block_delay=0)
    miner = MiningService(node, [swapped_sectors(genesis)])
    with structlog.testing.capture_logs() as logs, trio.fail_after(REAL_SECONDS):
        assert await miner.mine_now() is None
    assert node.chain.head().height == 0  # nothing applied
    assert miner.stats.null_rounds == MINE_ATTEMPTS and miner.stats.dropped >= 1
    dropped = [e for e in logs if e["event"] == "produced block failed validation: dropped, not applied"]
    assert len(dropped) == miner.stats.dropped and dropped[0]["log_level"] == "error"
    assert dropped[0]["rule"] == "InvalidWinningPoSt" and dropped[0]["miner"] == "t01000"


@pytest.mark.parametrize("block_delay", [0, 4])
async def test_never_two_blocks_at_one_height(tmp_path: Path, block_delay: int) -> None:
    node, miner = mining_node(tmp_path, block_delay=block_delay, clock=time.time, enabled=False)
    first = await miner.mine_now()  # at 4 s, epoch 1 of the devchain is long past: made at once
    assert first is not None and first.height == 1
    # The head goes back to the genesis (a reorg, say): the miner does not make epoch 1 again.
    node.chain.set_head(node.chain.load_tipset(first.parents), 0)
    assert miner.next_epoch(node.chain.head()) == first.height + 1


async def test_a_chain_without_power_says_so(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    # No Window PoSt is sent here: once the miner's deadline closes unproven, its sectors are faulty and
    # no miner has power left. The service says so once, and makes nothing more.
    node, miner = mining_node(tmp_path)
    with structlog.testing.capture_logs() as logs:
        # A whole proving period is mined here: on a loaded 2-core CI machine that takes over a minute.
        async with running(miner, 4 * REAL_SECONDS):
            event = "no block can be mined on this chain: no miner has power after its head"
            while not any(e["event"] == event for e in logs):
                await trio.sleep(4)
            stuck = node.chain.head()
            await trio.sleep(40)
    assert node.chain.head() == stuck and miner.stats.failures == 0
    (said,) = [e for e in logs if e["event"] == event]
    assert said["height"] == stuck.height and "--reset" in said["hint"]


async def test_a_missing_replica_makes_no_block(tmp_path: Path) -> None:
    node, miner = mining_node(tmp_path, block_delay=0, clock=time.time)
    for replica in (tmp_path / "sectors" / "sealed").iterdir():
        replica.unlink()
    with structlog.testing.capture_logs() as logs, trio.fail_after(REAL_SECONDS):
        assert await miner.mine_now() is None
    assert node.chain.head().height == 0 and miner.stats.failures == 0
    events = {e["event"] for e in logs}
    assert {"cannot read a sector for the Winning PoSt", "cannot make a block"} <= events
    made = [e["error"] for e in logs if e["event"] == "cannot make a block"]
    assert made and all(m.startswith("cannot prove the Winning PoSt of t01000: faulty sectors") for m in made)


@pytest.mark.slow
async def test_window_posts_keep_the_miner_going_through_catch_up(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    # Without Window PoSts the miner loses its power within a proving period (the test above). With
    # the scheduler as the miner's pacer its proofs land in time, also while the miner catches up with
    # the clock after a pause of more than a proving period (120 epochs).
    genesis = genesis_of(miners=1)
    node = node_for(tmp_path, genesis, block_delay=4)
    (presealed,) = genesis.miners
    node.wallet.ensure_key(presealed.worker_key)
    local = local_miner(tmp_path, genesis)
    scheduler = WindowPoStScheduler.for_node(node, local.address, SectorStore.open(tmp_path / "sectors"))
    miner = MiningService(node, [local], clock=wall, pacers=[scheduler.wait_processed])
    heads = Heads(node)
    async with real_time_limit(4 * REAL_SECONDS), trio.open_nursery() as nursery:
        await nursery.start(scheduler.run)
        await nursery.start(miner.run)
        await heads.height(30)
        miner.set_enabled(False)
        await trio.sleep(150 * 4)
        resumed = wall()
        miner.set_enabled(True)
        await heads.until(lambda ts: ts.min_timestamp() > resumed + 8)
        nursery.cancel_scope.cancel()

    head = node.chain.head()
    assert head.height >= 180 and miner.stats.failures == miner.stats.dropped == 0
    tree = node.state.tree(node.state.state_of(head).state_root)
    assert miners.miner_faults(tree, local.address).is_empty()
    assert miners.miner_power(tree, node.policy, local.address).miner.raw_byte_power == 2 * 2048
    posted = [d for d in scheduler.status().deadlines if d.state is RunState.POSTED]
    assert posted  # the scheduler proved deadlines on this chain


async def test_a_miner_added_while_running_mines_paced_by_its_scheduler(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    # Two genesis miners with equal power, one mining from the start, the other added while the service
    # runs (a miner created from the node): from then on blocks of both, each head paced for the new one.
    genesis = genesis_of(miners=2)
    node = node_for(tmp_path, genesis, block_delay=4)
    first, second = local_miner(tmp_path, genesis, 0), local_miner(tmp_path, genesis, 1)
    miner = MiningService(node, [first], clock=wall)
    paced: list[int] = []

    async def pacer(base: TipSet) -> None:
        paced.append(base.height)

    heads = Heads(node)
    async with running(miner):
        before = await heads.height(8)
        miner.add_miner(second, pacer=pacer)
        miner.add_miner(second, pacer=pacer)  # again: nothing changes
        await heads.until(lambda ts: any(b.miner == second.address for b in ts.blocks))

    assert miner.miners == (first, second)
    authors = [{b.miner for b in ts.blocks} for ts, _ in heads.seen]
    cut = next(i for i, (ts, _) in enumerate(heads.seen) if ts.height > before.height)
    assert all(found == {first.address} for found in authors[:cut])  # before: only the first
    assert any(second.address in found for found in authors[cut:])
    # every base mined on after the addition was paced once, by the one pacer added
    assert paced and paced == sorted(set(paced)) and paced[0] >= before.height
