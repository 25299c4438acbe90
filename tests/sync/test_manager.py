"""chain/sync's SyncManager with a real syncer: which announced targets are synced, joined, kept
waiting or ignored, and what SyncState shows."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import pytest
import trio

from chain.sync.manager import SyncManager
from chain.sync.state import SyncStage
from tests.consensus.devchain import DevChain
from tests.sync.test_syncer import SHORT_PAUSES, Follower, build, chain_of

HEIGHT: Final = 24


@pytest.fixture(scope="module")
def source() -> DevChain:
    return build(HEIGHT)


@asynccontextmanager
async def running(manager: SyncManager) -> AsyncIterator[None]:
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.run)
        yield
        nursery.cancel_scope.cancel()


async def test_targets_wait_for_a_free_worker_then_the_heaviest_goes(source: DevChain) -> None:
    follower = Follower(source)
    manager = SyncManager(follower.syncer, workers=1)
    chain = chain_of(source, source.head)
    middle, late = chain[len(chain) // 2], chain[-1]
    async with running(manager):
        first = manager.set_peer_head("a", middle)
        second = manager.set_peer_head("b", late)
        again = manager.set_peer_head("c", late)  # the same target: joins the waiting one
        assert len(manager.active()) == 1 and not manager.idle
        with trio.fail_after(60):
            await first.wait()
            await second.wait()
            await again.wait()
    assert follower.dc.head == late
    status = manager.state()
    assert [s.stage for s in status.active_syncs] == [SyncStage.COMPLETE, SyncStage.COMPLETE]
    assert [s.target for s in status.active_syncs] == [middle, late]
    assert status.vm_applied == follower.syncer.vm_applied > 0
    assert manager.synced == 2 and manager.failed == 0
    # The second sync started from the first one's result: only the rest of the chain was fetched.
    assert follower.exchange.header_requests[-1] <= late.height - middle.height
    assert manager.idle


async def test_lighter_equal_and_bad_targets_are_ignored(source: DevChain) -> None:
    follower = Follower(source)
    await follower.sync(source.head)
    manager = SyncManager(follower.syncer)
    chain = chain_of(source, source.head)
    async with running(manager):
        assert manager.set_peer_head("a", chain[5]).is_set()  # lighter than our head
        assert manager.set_peer_head("a", source.head).is_set()  # our head
        follower.syncer.bad.mark(source.head.cids[:1], "manually marked bad")
        assert manager.set_peer_head("a", source.head).is_set()
        assert manager.idle and manager.state().active_syncs == ()


async def test_a_failed_target_is_reported_and_the_next_one_runs(source: DevChain) -> None:
    follower = Follower(source, retry_pauses=SHORT_PAUSES)  # the syncer's own add up to 14 s
    follower.exchange.online = False
    manager = SyncManager(follower.syncer, workers=1)
    chain = chain_of(source, source.head)
    async with running(manager):
        failing = manager.set_peer_head("a", chain[-2])
        with trio.fail_after(30):
            await failing.wait()
        follower.exchange.online = True
        done = manager.set_peer_head("a", chain[-1])
        with trio.fail_after(60):
            await done.wait()
    first, second = manager.state().active_syncs
    assert first.stage == SyncStage.ERRORED and "connection refused" in first.message
    assert second.stage == SyncStage.COMPLETE
    assert manager.failed == 1 and manager.synced == 1
    assert follower.dc.head == chain[-1]
