"""Failures: each goes to its failure state with the reason stored, is retried after a backoff that
doubles, survives a restart, and gives up (FailedUnrecoverable, reason kept) after max_retries. Sealing
jobs are listed while they run, with their progress."""

import threading
import time
from pathlib import Path
from typing import Any

import trio

from actors.miner.types import MinerMethod
from chain.chainstore.metadata import MemoryMetadata
from chain.mpool.push import PushRefused, SendSpec
from chain.types.message import Message, SignedMessage
from node.fullnode import FullNode
from node.sealing.chain import NodeChain
from node.sealing.pipeline import SectorChange
from node.sealing.sealer import SealerError
from node.sealing.states import SectorState
from node.sealing.store import SealingStore
from tests.sealing.devnet import WAIT, Devnet, fast_config

S = SectorState


class RefusingChain(NodeChain):
    """The node's chain, whose message pool refuses the next `refuse` pushes (a full pool)."""

    def __init__(self, node: FullNode, refuse: int) -> None:
        super().__init__(node)
        self.refuse = refuse
        self.attempts: list[float] = []  # wall time of every push

    def push(self, msg: Message, spec: SendSpec) -> SignedMessage:
        self.attempts.append(time.time())
        if self.refuse > 0:
            self.refuse -= 1
            raise PushRefused("mpool is full (test)")
        return super().push(msg, spec)


def _drain(changes: trio.MemoryReceiveChannel[SectorChange]) -> list[SectorChange]:
    out = []
    while True:
        try:
            out.append(changes.receive_nowait())
        except trio.WouldBlock:
            return out


async def test_a_refused_pre_commit_is_retried_with_backoff_and_its_reason_kept(tmp_path: Path) -> None:
    net = Devnet.new(tmp_path)
    records = MemoryMetadata()
    async with net.running() as nursery:
        miner = (await net.create_miner()).id_address
        config = fast_config(retry_min=0.2, retry_max=5.0)
        chain = RefusingChain(net.node, refuse=3)
        first = net.pipeline(miner, chain=chain, config=config, store=SealingStore(records, miner.id))
        changes = first.subscribe()
        async with trio.open_nursery() as inner:
            await inner.start(first.run)
            net.pipelines.append(first)
            await first.pledge_sector()
            await net.run_until(lambda: first.record(0).retries == 2, what="two failures")
            net.stop_tracking(first)
            inner.cancel_scope.cancel()  # a restart in the middle of the retries
        failed = [c.record for c in _drain(changes) if c.new == S.PRE_COMMIT_FAILED]
        assert [r.retries for r in failed] == [1, 2]
        for record in failed:
            assert record.last_error == "sending the pre-commit failed: PushRefused: mpool is full (test)"
            assert record.failed_in == S.PRE_COMMITTING
            assert record.log[-1].kind == "error;PreCommitFailed"
        # the second failure waits twice as long as the first, and no retry came before its time
        assert failed[1].retry_at - failed[0].retry_at >= 2 * 200
        assert chain.attempts[1] * 1000 >= failed[0].retry_at

        reopened = net.pipeline(miner, chain=chain, config=config, store=SealingStore(records, miner.id))
        assert SealingStore(records, miner.id).get(0) is not None
        await net.start(nursery, reopened)
        assert reopened.record(0).retries == 2  # the count survives the restart
        await net.run_until(lambda: reopened.record(0).state == S.PROVING, what="proving after the retries")
        record = reopened.record(0)
        assert record.retries == 0 and record.failed_in == ""  # cleared once the step worked
        assert record.last_error == "sending the pre-commit failed: PushRefused: mpool is full (test)"
        assert [e.kind for e in record.log].count("error;PreCommitFailed") == 3
        assert chain.attempts[2] * 1000 >= failed[1].retry_at
    sent = net.messages_to(miner, (MinerMethod.PreCommitSector, MinerMethod.PreCommitSectorBatch))
    assert len(sent) == 1


async def test_a_sector_that_keeps_failing_is_given_up_with_its_reason(tmp_path: Path) -> None:
    net = Devnet.new(tmp_path)
    async with net.running() as nursery:
        miner = (await net.create_miner()).id_address
        chain = RefusingChain(net.node, refuse=1000)
        pipeline = net.pipeline(miner, chain=chain, config=fast_config(max_retries=3, retry_min=0.01))
        await net.start(nursery, pipeline)
        await pipeline.pledge_sector()
        await net.run_until(lambda: pipeline.record(0).state == S.FAILED_UNRECOVERABLE, what="given up")
        record = pipeline.record(0)
        assert record.last_error == (
            "gave up after 3 failures in a row; the last: sending the pre-commit failed: "
            "PushRefused: mpool is full (test)"
        )
        assert len(chain.attempts) == 4
        assert pipeline.sectors_summary() == {"FailedUnrecoverable": 1}
        status = await pipeline.sector_status(0)
        assert status.last_err == record.last_error and status.state == "FailedUnrecoverable"


async def test_damaged_sealed_files_are_sealed_again_before_any_deposit(tmp_path: Path) -> None:
    """The replica is damaged after sealing: PreCommit2's trial proof fails (SealPreCommit2Failed), its
    retry fails too, so the sector is sealed again from the start, and only then pre-committed."""
    net = Devnet.new(tmp_path)
    async with net.running() as nursery:
        miner = (await net.create_miner()).id_address
        pipeline = net.pipeline(miner)
        sealer = pipeline.sealer
        real_seal = sealer.seal_sector
        damaged: list[int] = []

        def seal_and_damage(*args: Any, **kwargs: Any) -> Any:
            out = real_seal(*args, **kwargs)
            if not damaged:  # flip a byte of the first replica made
                path = sealer.sealed_path(0)
                data = bytearray(path.read_bytes())
                data[100] ^= 0x01
                path.write_bytes(bytes(data))
                damaged.append(0)
            return out

        sealer.seal_sector = seal_and_damage  # type: ignore[method-assign]
        changes = pipeline.subscribe()
        await net.start(nursery, pipeline)
        await pipeline.pledge_sector()
        await net.run_until(lambda: pipeline.record(0).state == S.PROVING, what="proving after sealing again")
        moves = [(c.old, c.new) for c in _drain(changes)]
    assert moves[:8] == [
        ("", "Packing"),
        ("Packing", "GetTicket"),
        ("GetTicket", "PreCommit1"),
        ("PreCommit1", "PreCommit2"),
        ("PreCommit2", "SealPreCommit2Failed"),
        ("SealPreCommit2Failed", "PreCommit2"),
        ("PreCommit2", "SealPreCommit2Failed"),
        ("SealPreCommit2Failed", "PreCommit1"),
    ]
    assert net.seals == {0: 2}
    errors = [e.message for e in pipeline.record(0).log if e.kind == "error;SealPreCommit2Failed"]
    assert errors and all("does not match its commitments" in e for e in errors)
    assert len(net.messages_to(miner, (MinerMethod.PreCommitSector,))) == 1


async def test_a_failed_proof_is_computed_again(tmp_path: Path) -> None:
    net = Devnet.new(tmp_path)
    async with net.running() as nursery:
        miner = (await net.create_miner()).id_address
        pipeline = net.pipeline(miner)
        real_prove = pipeline.sealer.prove
        calls: list[int] = []

        def prove_once_failing(*args: Any, **kwargs: Any) -> bytes:
            calls.append(1)
            if len(calls) == 1:
                raise SealerError("sector 0: out of memory while proving (test)")
            return real_prove(*args, **kwargs)

        pipeline.sealer.prove = prove_once_failing  # type: ignore[method-assign]
        await net.start(nursery, pipeline)
        await pipeline.pledge_sector()
        await net.run_until(lambda: pipeline.record(0).state == S.PROVING, what="proving")
        kinds = [e.kind for e in pipeline.record(0).log]
    assert "error;ComputeProofFailed" in kinds
    assert pipeline.record(0).last_error == "sector 0: out of memory while proving (test)"
    assert len(calls) == 2


async def test_sealing_jobs_show_what_runs_and_what_waits(tmp_path: Path) -> None:
    net = Devnet.new(tmp_path)
    async with net.running() as nursery:
        miner = (await net.create_miner()).id_address
        pipeline = net.pipeline(miner)
        gate = threading.Event()
        real_seal = pipeline.sealer.seal_sector

        def gated(*args: Any, progress: Any, **kwargs: Any) -> Any:
            def report(phase: str, done: int, total: int) -> None:
                progress(phase, done, total)
                if phase == "seal":
                    gate.wait(WAIT)

            return real_seal(*args, progress=report, **kwargs)

        pipeline.sealer.seal_sector = gated  # type: ignore[method-assign]
        await net.start(nursery, pipeline)
        await pipeline.pledge_sector()
        await pipeline.pledge_sector()
        with trio.fail_after(WAIT):
            while len(pipeline.sealing_jobs()) < 2:
                await trio.sleep(0.01)
        jobs = pipeline.sealing_jobs()
        # Both sectors race for the one sealing worker: either may win it; the other waits behind it in
        # AddPiece or PreCommit1, as far as it got before the worker was taken.
        (running,) = [job for job in jobs if job.run_wait == 0]
        (waiting,) = [job for job in jobs if job.run_wait == 1]
        first = running.sector.number
        assert first in (0, 1) and waiting.sector.number == 1 - first
        assert running.task == "seal/v0/precommit/1"
        assert (running.phase, running.done, running.total) == ("seal", 1, 3)
        assert waiting.task in ("seal/v0/addpiece", "seal/v0/precommit/1")
        assert running.to_json()["Sector"] == {"Miner": miner.id, "Number": first}
        assert running.to_json()["Start"].endswith("Z")
        gate.set()
        await net.run_until(lambda: all(pipeline.record(n).state == S.PROVING for n in (0, 1)))
        assert pipeline.sealing_jobs() == []
