"""Restarts: the pipeline is killed at every transition (its process dies while the transition's batch is
being written, so the batch never lands) and a new pipeline opens the same records. Every sector goes on
from its last recorded state to Proving, is sealed once, and is pre-committed and proven by exactly one
message each: sealing that finished is found on disk, and a message sent but not recorded is found in
the message pool (or on chain) and adopted."""

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from actors.miner.types import MinerMethod
from chain.chainstore.metadata import MemoryMetadata, MetaBatch
from chain.vm.exitcode import ExitCode
from node.daemon import TaskStatus
from node.sealing.pipeline import SealingPipeline
from node.sealing.states import SectorState
from node.sealing.store import SealingStore
from node.sealing.types import SectorRecord
from tests.sealing.devnet import WAIT, Devnet

S = SectorState
PRE_COMMITS = (MinerMethod.PreCommitSector, MinerMethod.PreCommitSectorBatch)
COMMITS = (MinerMethod.ProveCommitSector, MinerMethod.ProveCommitAggregate)


class SimulatedCrash(BaseException):
    """The process dies (kill -9): nothing after this point runs, nothing half-written lands."""


class _CrashingBatch:
    def __init__(self, inner: MetaBatch, target: str, fired: list[str]) -> None:
        self._inner, self._target, self._fired = inner, target, fired

    def put(self, key: bytes, value: bytes) -> None:
        if b"/sector/" in key and not self._fired:
            state = SectorRecord.from_bytes(value).state
            if state == self._target:
                self._fired.append(state)
                raise SimulatedCrash(f"killed while recording {state}")
        self._inner.put(key, value)

    def delete(self, key: bytes) -> None:
        self._inner.delete(key)


class CrashingMetadata:
    """A metadata store whose first batch recording a sector in `target` kills the process."""

    def __init__(self, inner: MemoryMetadata, target: str) -> None:
        self._inner, self._target = inner, target
        self.fired: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @contextmanager
    def _batch(self) -> Iterator[MetaBatch]:
        with self._inner.batch() as batch:
            yield _CrashingBatch(batch, self._target, self.fired)

    def batch(self) -> AbstractContextManager[MetaBatch]:
        return self._batch()


async def run_until_killed(net: Devnet, pipeline: SealingPipeline, killed: list[str]) -> None:
    """Run the pipeline (mining) until it dies of a SimulatedCrash."""

    async def guarded(*, task_status: TaskStatus) -> None:
        try:
            await pipeline.run(task_status=task_status)
        except* SimulatedCrash as group:
            killed.extend(str(e) for e in group.exceptions)

    async with trio.open_nursery() as nursery:
        await nursery.start(guarded)
        net.pipelines.append(pipeline)
        try:
            await pipeline.pledge_sector()
            await net.run_until(lambda: bool(killed), epochs=60, what="the simulated crash")
        finally:
            net.stop_tracking(pipeline)
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    "killed_at",
    [
        S.GET_TICKET,
        S.PRE_COMMIT_1,
        S.PRE_COMMIT_2,  # sealed files on disk, not recorded: found on restart, not sealed again
        S.PRE_COMMITTING,
        S.PRE_COMMIT_WAIT,  # PreCommitSector in the pool, not recorded: adopted, not sent again
        S.WAIT_SEED,
        S.COMMITTING,
        S.SUBMIT_COMMIT,
        S.COMMIT_WAIT,  # ProveCommitSector in the pool, not recorded: adopted
        S.FINALIZE_SECTOR,
        S.PROVING,  # in the sector store already, not recorded
    ],
)
async def test_killed_at_every_transition_the_sector_goes_on(tmp_path: Path, killed_at: SectorState) -> None:
    net = Devnet.new(tmp_path)
    records = MemoryMetadata()
    async with net.running() as nursery:
        miner = (await net.create_miner()).id_address
        crashing = CrashingMetadata(records, killed_at.value)
        killed: list[str] = []
        await run_until_killed(net, net.pipeline(miner, store=SealingStore(crashing, miner.id)), killed)  # type: ignore[arg-type]
        assert killed == [f"killed while recording {killed_at}"]

        reopened = net.pipeline(miner, store=SealingStore(records, miner.id))
        await net.start(nursery, reopened)
        before = reopened.record(0).state
        await net.run_until(lambda: reopened.record(0).state == S.PROVING, what="proving after the restart")
        notes = [entry.message for entry in reopened.record(0).log]

    # how the restart found what the killed pipeline had done but not recorded
    found = {
        S.PRE_COMMIT_2: ("found sealed on disk",),
        S.PRE_COMMIT_WAIT: ("from the message pool", "already pre-committed on chain"),
        S.COMMIT_WAIT: ("from the message pool", "already proven on chain"),
    }.get(killed_at)
    if found is not None:
        assert any(any(f in note for f in found) for note in notes), notes
    assert before != killed_at  # the transition being written when it died never landed
    assert net.seals == {0: 1}
    landed = net.messages_to(miner, PRE_COMMITS + COMMITS)
    assert [(m.method, code) for m, code in landed] == [
        (MinerMethod.PreCommitSector, ExitCode.Ok),
        (MinerMethod.ProveCommitSector, ExitCode.Ok),
    ]
    assert net.sectors.has(miner, 0)
    assert reopened.sectors_summary() == {"Proving": 1}


async def test_stopped_during_sealing_the_sealed_files_are_taken_on_restart(tmp_path: Path) -> None:
    """Cancelled while PreCommit1 runs (its worker thread finishes writing the files, the transition is
    never made): the next pipeline finds the files by their t_aux and does not seal again."""
    net = Devnet.new(tmp_path)
    records = MemoryMetadata()
    async with net.running() as nursery:
        miner = (await net.create_miner()).id_address
        first = net.pipeline(miner, store=SealingStore(records, miner.id))
        sealing = trio.Event()
        real_seal = first.sealer.seal_sector

        def seal_then_stop(*args: Any, **kwargs: Any) -> Any:
            out = real_seal(*args, **kwargs)
            trio.from_thread.run_sync(sealing.set)
            return out

        first.sealer.seal_sector = seal_then_stop  # type: ignore[method-assign]
        async with trio.open_nursery() as inner:
            await inner.start(first.run)
            await first.pledge_sector()
            with trio.fail_after(WAIT):
                await sealing.wait()
            inner.cancel_scope.cancel()
        assert first.record(0).state == S.PRE_COMMIT_1

        reopened = net.pipeline(miner, store=SealingStore(records, miner.id))
        await net.start(nursery, reopened)
        await net.run_until(lambda: reopened.record(0).state == S.PROVING, what="proving after the restart")
        adopted = [entry.message for entry in reopened.record(0).log if entry.kind == "event;PreCommit2"]
    assert adopted == ["found sealed on disk"]
    assert net.seals == {0: 1}
