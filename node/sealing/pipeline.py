"""The sealing pipeline: a durable state machine per sector, from its first piece to Proving.

One `SealingPipeline` serves one miner. It is a trio service: `run` loads every sector's record
(node/sealing/store.py), starts a driver task per sector that is not finished, a pre-commit batcher, a
commit batcher and a task following the chain's head, and answers the entry points:

- `add_piece(deal, data, piece_size, piece_cid)`: a published deal's piece into an open sector (Lotus
  SectorAddPieceToAny, what the deals code calls: HandleStorageDeal -> AddPieceToSector); returns once
  the data is on disk and recorded. `pledge_sector()`: a committed-capacity sector. `start_sealing(n)`.
- `sectors_list()`, `sector_status(n)`, `sectors_summary()`, `sealing_jobs()`, `piece_proof(deal)`,
  `subscribe()` (every state change, for the deals code), `wait_for(n, states)`.

The states and their order are node/sealing/states.py; the work on disk is node/sealing/sealer.py, run
in worker threads (`max_sealing_jobs` at once); the chain is reached through node/sealing/chain.py.

Durability: every transition writes the sector's whole record in one LevelDB batch (a batch of several
sectors for a pre-commit or commit batch), after the work it records is on disk: sealed files are
written atomically before the state that names their CommR, a message is recorded once the pool took
it. A crash (kill -9) at any point leaves each sector in the state of its last transition, and a
restart continues from there: sealing that finished is found on disk and not done again; a message
that was sent but not recorded is found in the message pool or on chain (its sectors' pre-commit or
proof) and adopted, never sent a second time.

Failures are states of their own (Lotus's names) that keep the reason, count the failures in a row and
retry after a backoff that doubles from `retry_min` to `retry_max`; after `max_retries` in a row, or a
failure nothing can mend (a pre-commit that expired, a deal that can no longer start), the sector is
FailedUnrecoverable, logged at error level with the reason.
"""

import itertools
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final, TypeVar

import structlog
import trio

from actors.miner.types import (
    MinerMethod,
    PreCommitSectorBatchParams,
    PreCommitSectorParams,
    ProveCommitAggregateParams,
    ProveCommitSectorParams,
    encode_aggregate_proof,
)
from chain.encoding.carry import carried
from chain.encoding.cid import CID
from chain.encoding.commcid import commitment_of_v1, piece_cid_v1
from chain.mpool.push import SendSpec, message_to_push
from chain.params import aggregate_capacity
from chain.types.address import Address, Protocol
from chain.types.bitfield import BitField
from chain.types.sector import MAX_DEALS_PER_SECTOR, PieceInfo, is_piece_cid
from chain.types.tipset import TipSet
from chain.vm.exitcode import ExitCode
from chain.vm.syscalls import sealed_cid, sealed_commitment
from node.daemon import TaskStatus
from node.fullnode import FullNode
from node.mining.chain_api import APPLY, CURRENT
from node.pulse import Pulse
from node.sealing import checks
from node.sealing.batching import batch_due, plan_commits, plan_pre_commits
from node.sealing.chain import NodeChain, SealingChain
from node.sealing.config import SealingConfig
from node.sealing.replacement import FaultChanges, fault_changes
from node.sealing.sealer import PieceData, PieceMismatch, Sealer, SealerError
from node.sealing.sectors import SectorNotFound, SectorStore
from node.sealing.states import (
    FAILURE_OF,
    FAILURES,
    TERMINAL,
    SectorState,
    check_transition,
)
from node.sealing.store import SealingStore
from node.sealing.types import (
    LOG_LIMIT,
    JobSector,
    PieceDealInfo,
    PieceLocation,
    ReplacedSector,
    SealingJob,
    SealSeed,
    SealTicket,
    SectorLog,
    SectorPiece,
    SectorRecord,
    SectorStatus,
    WatchedSector,
)
from proofs import commp, pip
from proofs.registered import SEAL_PARAMS

S = SectorState
T = TypeVar("T")
log = structlog.get_logger("sealing")

# Lotus's task types (storage/sealer/sealtasks), as `lotus-miner sealing jobs` shows them.
TASK_ADD_PIECE: Final = "seal/v0/addpiece"
TASK_PRE_COMMIT_1: Final = "seal/v0/precommit/1"
TASK_PRE_COMMIT_2: Final = "seal/v0/precommit/2"
TASK_COMMIT: Final = "seal/v0/commit/2"
TASK_FINALIZE: Final = "seal/v0/finalize"
# A ComputeProofFailed sector whose proof failed this many times in a row is sealed again (Lotus: 2).
MAX_PROOF_FAILURES: Final = 2
# A SealPreCommit2Failed sector is checked again once, then sealed again.
MAX_PC2_FAILURES: Final = 1
SUBSCRIBER_BUFFER: Final = 64
# How long a request waits for the pipeline to start before it is refused (seconds).
START_WAIT: Final = 60.0


class PipelineError(Exception):
    """A request the pipeline refuses; the message says why (nothing was changed)."""


class StepFailed(Exception):
    """A step that did not work out: the sector goes to its failure state (or to `to`) with the reason;
    permanent ones give up at once."""

    def __init__(self, reason: str, *, to: SectorState | None = None, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.to = to
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class Wait:
    """A step that has to wait for the chain (or a batcher): wake on the next change, or after timeout."""

    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class _Carrier:
    """A kind of message that carries sectors to the miner actor (pre-commits, proofs): how the logs
    name it, what a refused push failed to send, the state its sectors wait in once it is sent, the
    record field that keeps its CID and the miner methods that carry it."""

    what: str
    sends: str
    wait: SectorState
    field: str
    methods: frozenset[MinerMethod]


_PRE_COMMIT: Final = _Carrier(
    "pre-commit", "the pre-commit", S.PRE_COMMIT_WAIT, "pre_commit_message", checks.PRE_COMMIT_METHODS
)
_COMMIT: Final = _Carrier("commit", "the proof", S.COMMIT_WAIT, "commit_message", checks.COMMIT_METHODS)


@dataclass(frozen=True, slots=True)
class SectorChange:
    """One transition, as subscribers see it."""

    number: int
    old: str
    new: str
    record: SectorRecord


@dataclass(eq=False)
class _Job:
    id: str
    sector: int
    task: str
    queued: datetime
    running: bool = False
    phase: str = ""
    done: int = 0
    total: int = 0
    started: datetime | None = None

    def progress(self, phase: str, done: int, total: int) -> None:
        # called from the worker thread; plain attribute writes
        self.phase, self.done, self.total = phase, done, total

    def view(self, miner_id: int) -> SealingJob:
        start = self.started or self.queued
        return SealingJob(
            id=self.id,
            sector=JobSector(miner_id, self.sector),
            task=self.task,
            run_wait=0 if self.running else 1,
            start=start.isoformat().replace("+00:00", "Z"),
            phase=self.phase,
            done=self.done,
            total=self.total,
        )


@dataclass
class _MinerView:
    """What the pipeline needs of the miner actor, read once at start."""

    worker: Address
    sector_size: int
    seal_proof: int


def _now_ms(clock: Callable[[], float]) -> int:
    return int(clock() * 1000)


_Step = Callable[["SealingPipeline", SectorRecord], Awaitable[Wait | None]]


def _after_cooldown(step: _Step) -> _Step:
    """A failure state's step, run once the retry delay the failure set (retry_at) has passed."""

    async def run(pipeline: "SealingPipeline", record: SectorRecord) -> Wait | None:
        remaining = (record.retry_at - _now_ms(pipeline._clock)) / 1000
        return Wait(remaining) if remaining > 0 else await step(pipeline, record)

    return run


def _retrying(state: SectorState) -> _Step:
    """The step of a failure state whose only remedy is to try the failed step (state) again."""

    @_after_cooldown
    async def run(pipeline: "SealingPipeline", record: SectorRecord) -> None:
        await pipeline._retry(record, state)

    return run


class SealingPipeline:
    name = "sealing"

    def __init__(
        self,
        miner: Address,
        *,
        chain: SealingChain,
        store: SealingStore,
        sealer: Sealer,
        config: SealingConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if miner.protocol != Protocol.ID:
            raise ValueError(f"the sealing pipeline takes the miner's ID address, got {miner}")
        if store.miner_id != miner.id or sealer.miner_id != miner.id:
            raise ValueError("the store and the sealer must be those of the pipeline's miner")
        self.miner = miner
        self.chain = chain
        self.policy = chain.policy
        self.store = store
        self.sealer = sealer
        self.config = config or SealingConfig.for_policy(chain.policy)
        self._clock = clock
        self._records: dict[int, SectorRecord] = {}
        self._head: TipSet | None = None
        self._info: _MinerView | None = None
        self._changes = Pulse()
        self._ready = trio.Event()
        self._input_lock = trio.Lock()
        self._next_number = 0
        self._start_now: set[int] = set()
        self._ready_since: dict[int, int] = {}
        self._jobs: dict[str, _Job] = {}
        self._busy = 0  # steps and batcher rounds running now (not waiting)
        self._job_ids = itertools.count(1)
        self._job_limiter = trio.CapacityLimiter(self.config.max_sealing_jobs)
        self._subscribers: list[trio.MemorySendChannel[SectorChange]] = []
        self._new_send, self._new_receive = trio.open_memory_channel[int](math.inf)
        self._followed: dict[int, WatchedSector] = {}  # faulty sectors followed (replacement.py)

    @classmethod
    def for_node(
        cls,
        node: FullNode,
        miner: Address,
        sectors: SectorStore,
        *,
        store: SealingStore | None = None,
        config: SealingConfig | None = None,
    ) -> "SealingPipeline":
        """The pipeline of a miner this node serves: the node's chain, pool and wallet (NodeChain), the
        repo's sector store, and its records in the node's LevelDB (in memory for an in-memory node)."""
        return cls(
            miner,
            chain=NodeChain(node),
            store=store or SealingStore.for_chain(node.chain, miner.id),
            sealer=Sealer(sectors, miner.id),
            config=config or SealingConfig.for_policy(node.policy),
        )

    # == the service ======================================================================================

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        head = await self._call(self.chain.head)
        info = await self._call(self.chain.miner_info, self.miner, head)
        seal_proof = next(
            (int(p.proof) for p in SEAL_PARAMS.values() if p.window_post == info.window_post_proof_type),
            None,
        )
        if seal_proof is None:
            raise PipelineError(f"miner {self.miner}: no seal proof pairs with its Window PoSt proof")
        self._info = _MinerView(info.worker, info.sector_size, seal_proof)
        records = await self._call(self.store.all)
        self._followed = await self._call(self.store.watched)
        allocated = await self._call(self.chain.allocated_sectors, self.miner, head)
        self._records = {r.sector_number: r for r in records}
        for record in await self._call(self._import_held, head):
            self._records[record.sector_number] = record
        on_chain = list(allocated)
        self._next_number = max(
            [self.store.next_number()]
            + [r.sector_number + 1 for r in records]
            + ([on_chain[-1] + 1] if on_chain else [])
        )
        self._head = head
        resuming: dict[str, int] = {}
        for record in records:
            if record.state not in TERMINAL:
                resuming[record.state] = resuming.get(record.state, 0) + 1
        self._log.info(
            "sealing pipeline started",
            sectors=len(self._records),
            resuming=resuming,
            next_sector=self._next_number,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(self._follow_head)
            nursery.start_soon(self._batcher, self._send_pre_commits, "pre-commit")
            nursery.start_soon(self._batcher, self._send_commits, "commit")
            nursery.start_soon(self._follow_faults)
            for record in records:
                if record.state not in TERMINAL:
                    nursery.start_soon(self._drive, record.sector_number)
            self._ready.set()
            task_status.started()
            async for number in self._new_receive:
                nursery.start_soon(self._drive, number)

    def _import_held(self, head: TipSet) -> list[SectorRecord]:
        """Sectors live on chain that the sector store holds but the pipeline never sealed (a genesis
        miner's pre-sealed sectors), recorded as Proving in one write, as `lotus-miner init` imports
        pre-sealed metadata: the sector list and summary show them and a fault termination replaces
        them like any other."""
        imported = []
        for stored in self.sealer.store.sectors(self.miner):
            if stored.number in self._records:
                continue
            info = self.chain.sector_info(self.miner, stored.number, head)
            if info is None:
                continue
            imported.append(
                SectorRecord(
                    sector_number=stored.number,
                    state=S.PROVING.value,
                    seal_proof=info.seal_proof,
                    created=int(self._clock()),
                    comm_d=stored.unsealed_cid,
                    comm_r=info.sealed_cid,
                    expiration=info.expiration,
                    log=(self._log_entry("imported", "in the sector store and live on chain (pre-sealed)"),),
                )
            )
        if imported:
            self.store.put(*imported)
            self._log.info("sectors imported", sectors=[r.sector_number for r in imported])
        return imported

    @property
    def _miner_name(self) -> str:
        return self.miner.to_string(self.policy.address_network)

    @property
    def _log(self) -> Any:
        """The logger, naming this pipeline's miner. Bound anew for each line, as node/logs.py wants the
        stream of the moment, never one kept from earlier."""
        return log.bind(miner=self._miner_name)

    @property
    def _view(self) -> _MinerView:
        if self._info is None:
            raise PipelineError("the sealing pipeline is not running")
        return self._info

    @property
    def head(self) -> TipSet:
        if self._head is None:
            raise PipelineError("the sealing pipeline is not running")
        return self._head

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(partial(fn, *args))

    async def _follow_head(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        started = False
        while True:
            changes = self.chain.subscribe()
            async with changes:
                if not started:
                    started = True
                    task_status.started()
                async for batch in changes:
                    tips = [c.tipset for c in batch if c.type in (APPLY, CURRENT)]
                    self._head = tips[-1] if tips else await self._call(self.chain.head)
                    self._changes.fire()
            self._log.warning("sealing: head change subscription dropped; subscribing again")

    # == sectors terminated for faults (node/sealing/replacement.py) =====================================

    async def _follow_faults(self) -> None:
        """On each head: follow the miner's faulty sectors, replace those the chain terminates."""
        seen = None
        while True:
            changed = self._changes.next
            head = self._head
            if head is not None and head.key != seen:
                seen = head.key
                self._busy += 1
                try:
                    await self._handle_faults(head)
                    await self._remove_expired(head)
                except Exception as exc:  # logged; the next head tries again
                    self._log.exception(
                        "following faulty sectors failed",
                        height=head.height,
                        error=f"{type(exc).__name__}: {exc}",
                    )
                finally:
                    self._busy -= 1
                continue
            await changed.wait()

    async def _handle_faults(self, head: TipSet) -> None:
        followed = dict(self._followed)
        changes: FaultChanges = await self._call(fault_changes, self.chain, self.miner, head, followed)
        if changes.empty:
            return
        done = [*changes.recovered, *(w.sector_number for w in changes.expired)]
        await self._call(partial(self.store.write, [], watch=changes.new, unwatch=done))
        for watched in changes.new:
            followed[watched.sector_number] = watched
            self._log.warning(
                "sector faulty on chain: following it",
                sector=watched.sector_number,
                expiration=watched.expiration,
                terminated_if_faulty_for=self.policy.fault_max_age,
                height=head.height,
            )
        for number in done:
            followed.pop(number, None)
        for number in changes.recovered:
            self._log.info("faulty sector recovered", sector=number, height=head.height)
        for watched in changes.expired:
            self._log.info(
                "faulty sector expired",
                sector=watched.sector_number,
                height=head.height,
            )
        self._followed = followed
        for watched in changes.terminated:
            await self._replace(watched, head)

    async def _remove_expired(self, head: TipSet) -> None:
        """Proving sectors whose expiration has passed and that the chain no longer holds move to Removed
        and leave the sector store: nothing can prove them again, and `sectors list` would otherwise call
        them Proving forever (a node that was off past their expiration sees this on its first head). A
        sector the chain still holds at its recorded expiration was extended: its record takes the new one."""
        due = [r for r in self._records.values() if r.state == S.PROVING and 0 < r.expiration <= head.height]
        for record in due:
            info = await self._call(self.chain.sector_info, self.miner, record.sector_number, head)
            if info is not None:  # extended, or its deadline's cron has not run yet
                if info.expiration != record.expiration:
                    self._records[record.sector_number] = replace(record, expiration=info.expiration)
                    await self._call(self.store.put, self._records[record.sector_number])
                continue
            await self._move(record, S.REMOVED, f"expired on chain at epoch {record.expiration}")
            removed = await self._remove_files(record.sector_number)
            self._log.info(
                "expired sector removed",
                sector=record.sector_number,
                expiration=record.expiration,
                files_removed=removed,
                height=head.height,
            )

    async def _remove_files(self, number: int) -> bool:
        """Take a sector the chain no longer holds out of the sector store; whether it was there."""
        try:
            await self._call(self.sealer.store.remove, self.miner, number)
        except SectorNotFound:
            return False
        return True

    async def _replace(self, terminated: WatchedSector, head: TipSet) -> None:
        """The chain terminated a faulty sector: open a CC sector in its place (one write with the
        record of the replacement), then remove the terminated sector's files."""
        number = terminated.sector_number
        if not self.config.replace_terminated:
            await self._call(partial(self.store.write, [], unwatch=[number]))
            self._followed.pop(number, None)
            self._log.warning(
                "sector terminated for faults: not replaced (replace_terminated is off)",
                sector=number,
                height=head.height,
            )
            return
        note = f"replaces sector {number}, terminated for faults by epoch {head.height}"
        async with self._input_lock:
            new = self._next_number
            record = self._opened(new, S.PACKING, f"committed-capacity sector: {note}")
            updates = [record]
            old = self._records.get(number)
            if old is not None and old.state == S.PROVING:
                updates.append(
                    self._moved(
                        old, S.REMOVED, f"terminated on chain for faults; replaced by sector {new}", {}
                    )
                )
            done = ReplacedSector(number, new, head.height, terminated.deal_ids)
            await self._call(
                partial(self.store.write, updates, next_number=new + 1, unwatch=[number], replaced=[done])
            )
            self._next_number = new + 1
            self._records[new] = record
            if len(updates) > 1:
                self._records[number] = updates[1]
            self._followed.pop(number, None)
        removed = await self._remove_files(number)
        self._log.warning(
            "sector terminated for faults: sealing a replacement",
            sector=number,
            replacement=new,
            slashed_deals=list(terminated.deal_ids),
            files_removed=removed,
            height=head.height,
        )
        self._started_sector(new, record)
        if len(updates) > 1:
            self._notify(SectorChange(number, S.PROVING.value, S.REMOVED.value, updates[1]))

    def replaced_sectors(self) -> dict[int, ReplacedSector]:
        """Sectors terminated for faults and their replacements, by the terminated sector's number."""
        return self.store.replaced()

    def followed_faults(self) -> dict[int, WatchedSector]:
        """The faulty sectors followed now (their termination would be replaced)."""
        return dict(self._followed)

    # == entry points =====================================================================================

    async def _running(self) -> None:
        """Wait (a while) for run() to have started: requests may come in while the node starts."""
        with trio.move_on_after(START_WAIT):
            await self._ready.wait()
        if not self._ready.is_set():
            raise PipelineError(f"the sealing pipeline of {self._miner_name} is not running")

    async def pledge_sector(self) -> int:
        """Open a committed-capacity sector (no deals: zeros) and start sealing it; its number (Lotus
        SectorPledge / `sectors pledge`)."""
        await self._running()
        async with self._input_lock:
            number = self._next_number
            record = self._opened(number, S.PACKING, "committed-capacity sector")
            await self._call(partial(self.store.write, [record], next_number=number + 1))
            self._next_number = number + 1
            self._records[number] = record
        self._log.info("sector pledged", sector=number)
        self._started_sector(number, record)
        return number

    async def add_piece(
        self, deal: PieceDealInfo, data: PieceData, piece_size: int, piece_cid: CID
    ) -> PieceLocation:
        """Put a published deal's piece (piece_size padded bytes, piece_cid its CommP; data: its payload,
        at most piece_size * 127/128 bytes, zero-padded to that) into an open sector, or a new one.
        Returns once the data is on disk and recorded; PipelineError (nothing recorded) if the deal or
        the data is not right."""
        await self._running()
        view = self._view
        if not is_piece_cid(piece_cid):
            raise PipelineError(f"{piece_cid} is not a piece CID (fil-commitment-unsealed v1)")
        try:
            commp.check_piece_size(piece_size)
        except commp.PieceError as exc:
            raise PipelineError(f"piece size: {exc}") from None
        if piece_size > view.sector_size:
            raise PipelineError(
                f"a piece of {piece_size} bytes does not fit a {view.sector_size}-byte sector"
            )
        await self._check_new_deal(deal, piece_size, piece_cid)
        piece = SectorPiece(PieceInfo(piece_size, piece_cid), deal)
        info = commp.PieceInfo(piece_size, commitment_of_v1(piece_cid))
        async with self._input_lock:
            number, offset, new = self._place(piece_size)
            job = self._new_job(number, TASK_ADD_PIECE)
            try:
                await self._run_job(
                    job, self.sealer.write_piece, number, view.sector_size, offset, info, data
                )
            except PieceMismatch as exc:
                raise PipelineError(str(exc)) from None
            except SealerError as exc:
                raise PipelineError(f"sector {number}: writing the piece failed: {exc}") from None
            if new:
                record = self._opened(number, S.WAIT_DEALS, f"deal {deal.deal_id} added", (piece,))
                await self._call(partial(self.store.write, [record], next_number=number + 1))
                self._next_number = number + 1
            else:
                current = self._records[number]
                entry = self._log_entry("event;AddPiece", f"deal {deal.deal_id} added at {offset}")
                record = replace(current, pieces=(*current.pieces, piece), log=_trim((*current.log, entry)))
                await self._call(self.store.put, record)
            self._records[number] = record
        self._log.info(
            "piece added",
            sector=number,
            deal=deal.deal_id,
            piece=str(piece_cid),
            size=piece_size,
            offset=offset,
        )
        if new:
            self._started_sector(number, record)
        else:
            self._changes.fire()
        return PieceLocation(number, offset, piece_size)

    async def _check_new_deal(self, deal: PieceDealInfo, piece_size: int, piece_cid: CID) -> None:
        try:
            await self._call(
                checks.check_deal, self.chain, self.miner, deal.deal_id, piece_cid, piece_size, self.head
            )
        except checks.DealProblem as exc:
            raise PipelineError(str(exc)) from None
        if any(
            deal.deal_id in r.deal_ids for r in self._records.values() if r.state != S.FAILED_UNRECOVERABLE
        ):
            raise PipelineError(f"deal {deal.deal_id} is already in a sector")

    def _place(self, piece_size: int) -> tuple[int, int, bool]:
        """(sector, offset, new sector?) for a piece: the first open sector it fits, else a new one."""
        sector_size = self._view.sector_size
        for number in sorted(self._records):
            record = self._records[number]
            if record.state != S.WAIT_DEALS or number in self._start_now:
                continue
            if len(record.pieces) >= MAX_DEALS_PER_SECTOR:
                continue
            end = _layout_end(record, sector_size)
            offset = -(-end // piece_size) * piece_size
            if offset + piece_size <= sector_size:
                return number, offset, False
        return self._next_number, 0, True

    def _started_sector(self, number: int, record: SectorRecord) -> None:
        self._new_send.send_nowait(number)
        self._notify(SectorChange(number, "", record.state, record))
        self._changes.fire()

    def start_sealing(self, number: int) -> None:
        """Seal an open sector now instead of waiting for more deals (Lotus SectorStartSealing)."""
        record = self._records.get(number)
        if record is None:
            raise PipelineError(f"no sector {number}")
        if record.state != S.WAIT_DEALS:
            raise PipelineError(f"sector {number} is {record.state}, not open for deals (WaitDeals)")
        self._start_now.add(number)
        self._changes.fire()

    # -- views ----------------------------------------------------------------------------------------

    @property
    def busy(self) -> int:
        """How many sector steps and batcher rounds are running now (0: everything waits for the
        chain, a timer or a request)."""
        return self._busy

    def sectors_list(self) -> list[int]:
        """Every sector the pipeline knows (Lotus SectorsList)."""
        return sorted(self._records)

    def sectors_summary(self) -> dict[str, int]:
        """Sectors per state (Lotus SectorsSummary)."""
        out: dict[str, int] = {}
        for record in self._records.values():
            out[record.state] = out.get(record.state, 0) + 1
        return dict(sorted(out.items()))

    def record(self, number: int) -> SectorRecord:
        record = self._records.get(number)
        if record is None:
            raise PipelineError(f"no sector {number}")
        return record

    async def sector_status(self, number: int, *, on_chain: bool = True) -> SectorStatus:
        """Lotus SectorsStatus: the sector's record, and its on-chain info when asked for and present."""
        record = self.record(number)
        # The fields Lotus names as the record does are carried; the others are given.
        status = carried(
            SectorStatus,
            record,
            sector_id=number,
            deals=record.deal_ids,
            pre_commit_msg=record.pre_commit_message,
            commit_msg=record.commit_message,
            last_err=record.last_error,
        )
        if not on_chain:
            return status
        info = await self._call(self.chain.sector_info, self.miner, number, self.head)
        if info is None:
            return status
        return replace(
            status,
            activation=info.activation,
            expiration=info.expiration,
            deal_weight=info.deal_weight,
            verified_deal_weight=info.verified_deal_weight,
            initial_pledge=info.initial_pledge,
            on_time=info.expiration,
        )

    def sealing_jobs(self) -> list[SealingJob]:
        """What runs now (RunWait 0) and what waits for a slot (RunWait 1), with progress."""
        return [job.view(self.miner.id) for job in sorted(self._jobs.values(), key=lambda j: j.queued)]

    def piece_proof(self, deal_id: int) -> tuple[int, pip.PieceInclusionProof]:
        """The sector holding a deal's piece and the piece's inclusion proof against the sector's CommD
        (there once the sector is packed: its layout fixed); PipelineError before that."""
        for record in self._records.values():
            for piece in record.pieces:
                if piece.deal_info is not None and piece.deal_info.deal_id == deal_id:
                    if not piece.inclusion_proof:
                        raise PipelineError(
                            f"deal {deal_id} is in sector {record.sector_number}, which is not packed yet "
                            f"({record.state})"
                        )
                    return record.sector_number, pip.PieceInclusionProof.from_bytes(piece.inclusion_proof)
        raise PipelineError(f"deal {deal_id} is in no sector of this pipeline")

    def read_piece(self, number: int, offset: int, padded_size: int) -> bytes:
        """A piece's unpadded bytes from the sector's unsealed copy (synchronous: call in a thread)."""
        return self.sealer.read_piece(number, offset, padded_size)

    def subscribe(self) -> trio.MemoryReceiveChannel[SectorChange]:
        """Every sector's transitions from now on; a subscriber that falls behind is dropped (its
        channel ends), as the chain store drops slow subscribers."""
        send, receive = trio.open_memory_channel[SectorChange](SUBSCRIBER_BUFFER)
        self._subscribers.append(send)
        return receive

    def _notify(self, change: SectorChange) -> None:
        for send in list(self._subscribers):
            try:
                send.send_nowait(change)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.remove(send)
                send.close()

    async def wait_for(self, number: int, *states: SectorState) -> SectorRecord:
        """Wait until sector `number` is in one of the states (or any terminal state); its record."""
        await self._running()
        return await self._changes.until(lambda: _reached(self._records.get(number), states))

    # == transitions ======================================================================================

    def _log_entry(self, kind: str, message: str) -> SectorLog:
        return SectorLog(kind, int(self._clock()), "", message)

    def _opened(
        self, number: int, state: SectorState, note: str, pieces: tuple[SectorPiece, ...] = ()
    ) -> SectorRecord:
        """The record of a sector opened now, in state (its log's first entry saying why)."""
        return SectorRecord(
            sector_number=number,
            state=state.value,
            seal_proof=self._view.seal_proof,
            created=int(self._clock()),
            pieces=pieces,
            log=(self._log_entry(f"event;{state.value}", note),),
        )

    def _moved(
        self, record: SectorRecord, new: SectorState, note: str, changes: dict[str, Any]
    ) -> SectorRecord:
        current = self._records[record.sector_number]
        if current.state != record.state:
            raise RuntimeError(
                f"sector {record.sector_number} moved to {current.state} while a step of {record.state} ran"
            )
        old = S(current.state)
        check_transition(old, new)
        forward = old not in FAILURES and new not in FAILURES and new != S.FAILED_UNRECOVERABLE
        if forward and current.failed_in == old:  # the step that failed before has now worked
            changes = {"retries": 0, "failed_in": "", "retry_at": 0, **changes}
        kind = ("error;" if new in FAILURES or new == S.FAILED_UNRECOVERABLE else "event;") + new
        entry = self._log_entry(kind, note)
        return replace(current, state=new.value, log=_trim((*current.log, entry)), **changes)

    async def _move(
        self, record: SectorRecord, new: SectorState, note: str = "", **changes: Any
    ) -> SectorRecord:
        return (await self._move_many([(record, new, note, changes)]))[0]

    async def _move_many(
        self, moves: Sequence[tuple[SectorRecord, SectorState, str, dict[str, Any]]]
    ) -> list[SectorRecord]:
        """Apply transitions together: one batch on disk, then in memory, then the log and subscribers."""
        updated = [self._moved(record, new, note, changes) for record, new, note, changes in moves]
        await self._call(self.store.put, *updated)
        for (old, new, note, _), record in zip(moves, updated, strict=True):
            self._records[record.sector_number] = record
            if new in (S.PRE_COMMITTING, S.SUBMIT_COMMIT):
                self._ready_since[record.sector_number] = self.head.height
            else:
                self._ready_since.pop(record.sector_number, None)
            say = self._log
            event = (
                say.error if new == S.FAILED_UNRECOVERABLE else say.warning if new in FAILURES else say.info
            )
            fields: dict[str, Any] = {"sector": record.sector_number}
            if new in FAILURES or new == S.FAILED_UNRECOVERABLE:
                fields.update(reason=record.last_error, retries=record.retries)
            elif note:
                fields["note"] = note
            event("sector state", **{"from": old.state, "to": str(new)}, **fields)
            self._notify(SectorChange(record.sector_number, old.state, str(new), record))
        self._changes.fire()
        return updated

    async def _fail(self, record: SectorRecord, failure: StepFailed) -> None:
        state = S(record.state)
        retries = record.retries + 1
        target = failure.to or FAILURE_OF.get(state)
        if target is None and state in FAILURES and not failure.permanent:
            await self._failed_again(record, failure.reason)
            return
        if target is None and failure.permanent:
            target = S.FAILED_UNRECOVERABLE
        if target is None:  # WaitDeals has no failure state: try again later
            self._log.error(
                "sealing step failed",
                sector=record.sector_number,
                state=state,
                reason=failure.reason,
            )
            await trio.sleep(self._backoff(retries))
            return
        reason = failure.reason
        if failure.permanent:
            target = S.FAILED_UNRECOVERABLE
        elif retries > self.config.max_retries and target in FAILURES:
            target = S.FAILED_UNRECOVERABLE
            reason = f"gave up after {retries - 1} failures in a row; the last: {reason}"
        retry_at = _now_ms(self._clock) + int(self._backoff(retries) * 1000)
        await self._move(
            record,
            target,
            reason,
            retries=retries,
            failed_in=state.value if state not in FAILURES else record.failed_in,
            last_error=reason,
            retry_at=retry_at,
        )

    async def _failed_again(self, record: SectorRecord, reason: str) -> None:
        """A failure state's own step failed (a chain query, say): same state, one more failure, a
        longer wait; or given up after max_retries."""
        retries = record.retries + 1
        if retries > self.config.max_retries:
            reason = f"gave up after {retries - 1} failures in a row; the last: {reason}"
            await self._move(record, S.FAILED_UNRECOVERABLE, reason, retries=retries, last_error=reason)
            return
        entry = self._log_entry(f"error;{record.state}", reason)
        retry_at = _now_ms(self._clock) + int(self._backoff(retries) * 1000)
        updated = replace(
            record, retries=retries, last_error=reason, retry_at=retry_at, log=_trim((*record.log, entry))
        )
        await self._call(self.store.put, updated)
        self._records[record.sector_number] = updated
        self._log.warning(
            "sector retry failed",
            sector=record.sector_number,
            state=record.state,
            reason=reason,
            retries=retries,
        )

    def _backoff(self, retries: int) -> float:
        return float(min(self.config.retry_min * 2 ** max(0, retries - 1), self.config.retry_max))

    # == the driver of one sector =========================================================================

    async def _drive(self, number: int) -> None:
        while True:
            record = self._records[number]
            state = S(record.state)
            if state in TERMINAL:
                return
            changed = self._changes.next
            self._busy += 1
            try:
                wait = await self._STEPS[state](self, record)
            except StepFailed as failure:
                await self._fail(self._records[number], failure)
                continue
            except SealerError as exc:  # the sealing work failed: its message is the reason
                await self._fail(self._records[number], StepFailed(str(exc)))
                continue
            except Exception as exc:  # an unexpected error fails the step, never the service
                self._log.exception("sealing step raised", sector=number, state=state)
                await self._fail(self._records[number], StepFailed(f"{type(exc).__name__}: {exc}"))
                continue
            finally:
                self._busy -= 1
            if wait is not None:
                with trio.move_on_after(math.inf if wait.timeout is None else wait.timeout):
                    await changed.wait()

    # -- jobs -----------------------------------------------------------------------------------------

    def _new_job(self, number: int, task: str) -> _Job:
        job = _Job(f"{number}-{next(self._job_ids)}", number, task, datetime.now(UTC))
        return job

    async def _run_job(self, job: _Job, fn: Callable[..., T], *args: Any) -> T:
        self._jobs[job.id] = job
        try:
            async with self._job_limiter:
                job.running, job.started = True, datetime.now(UTC)
                began = time.monotonic()
                result = await trio.to_thread.run_sync(partial(fn, *args, progress=job.progress))
                self._log.debug(
                    "sealing job done",
                    sector=job.sector,
                    task=job.task,
                    seconds=round(time.monotonic() - began, 3),
                )
                return result
        finally:
            del self._jobs[job.id]

    async def _job(self, number: int, task: str, fn: Callable[..., T], *args: Any) -> T:
        return await self._run_job(self._new_job(number, task), fn, *args)

    # -- steps ------------------------------------------------------------------------------------------

    async def _wait_deals(self, record: SectorRecord) -> Wait | None:
        number = record.sector_number
        head = self.head
        due_in = record.created + self.config.wait_deals_delay - self._clock()
        starts = [p.deal_info.deal_schedule.start_epoch for p in record.pieces if p.deal_info is not None]
        reason = None
        if number in self._start_now:
            reason = "asked to start sealing"
        elif _layout_end(record, self._view.sector_size) >= self._view.sector_size:
            reason = "full"
        elif len(record.pieces) >= MAX_DEALS_PER_SECTOR:
            reason = "holds the most deals a sector may"
        elif due_in <= 0:
            reason = f"open for {self.config.wait_deals_delay:g} s"
        elif starts and head.height >= min(starts) - self.config.start_epoch_sealing_buffer:
            reason = f"a deal starts at epoch {min(starts)}"
        if reason is None:
            return Wait(max(due_in, 0.0))
        async with self._input_lock:  # no piece is being added while it closes
            await self._move(self._records[number], S.PACKING, reason)
        self._start_now.discard(number)
        return None

    async def _packing(self, record: SectorRecord) -> Wait | None:
        size = self._view.sector_size
        infos = [commp.PieceInfo(p.piece.size, commitment_of_v1(p.piece.piece_cid)) for p in record.pieces]
        comm_d = await self._job(
            record.sector_number, TASK_ADD_PIECE, self.sealer.pack, record.sector_number, size, infos
        )
        pieces = tuple(
            replace(piece, inclusion_proof=pip.prove_piece_inclusion(infos, size, i).to_bytes())
            for i, piece in enumerate(record.pieces)
        )
        note = f"{len(pieces)} deal pieces" if pieces else "committed capacity"
        await self._move(record, S.GET_TICKET, note, comm_d=piece_cid_v1(comm_d), pieces=pieces)
        return None

    async def _get_ticket(self, record: SectorRecord) -> Wait | None:
        number, head = record.sector_number, self.head
        on_chain = await self._call(self.chain.precommit_info, self.miner, number, head)
        if on_chain is not None:
            epoch = on_chain.info.seal_rand_epoch  # sealing again what is pre-committed: its ticket
        else:
            await self._check_unallocated(number, head)
            epoch = max(0, head.height - self.policy.chain_finality)  # Lotus SealRandomnessLookback
        value = await self._call(self.chain.draw_ticket, self.miner, epoch, head)
        await self._move(record, S.PRE_COMMIT_1, f"ticket at epoch {epoch}", ticket=SealTicket(value, epoch))
        return None

    async def _check_unallocated(self, number: int, head: TipSet) -> None:
        """Called where the chain holds no pre-commit of the sector: a number the chain allocated all the
        same (the pre-commit expired, or another node proved the sector) cannot be used again."""
        if number in await self._call(self.chain.allocated_sectors, self.miner, head):
            raise StepFailed(
                f"sector number {number} is allocated on chain but has no pre-commit (it expired, or "
                "another node proved the sector): the number cannot be used again",
                permanent=True,
            )

    async def _pre_commit_1(self, record: SectorRecord) -> Wait | None:
        number = record.sector_number
        head = self.head
        if record.ticket.epoch < head.height - self.policy.max_pre_commit_randomness_lookback:
            on_chain = await self._call(self.chain.precommit_info, self.miner, number, head)
            if on_chain is None:
                raise StepFailed(f"the ticket of epoch {record.ticket.epoch} is too old to pre-commit")
        assert record.comm_d is not None
        out = await self._job(
            number,
            TASK_PRE_COMMIT_1,
            self.sealer.seal_sector,
            record.seal_proof,
            number,
            record.ticket.value,
            commitment_of_v1(record.comm_d),
            record.has_data,
        )
        if out.adopted:
            self._log.info("sealed files found from before a restart", sector=number)
        note = "found sealed on disk" if out.adopted else "sealed"
        await self._move(record, S.PRE_COMMIT_2, note, comm_r=sealed_cid(out.comm_r))
        return None

    async def _pre_commit_2(self, record: SectorRecord) -> Wait | None:
        assert record.comm_d is not None and record.comm_r is not None
        await self._job(
            record.sector_number,
            TASK_PRE_COMMIT_2,
            self.sealer.check_sealed,
            record.seal_proof,
            record.sector_number,
            record.ticket.value,
            commitment_of_v1(record.comm_d),
            sealed_commitment(record.comm_r),
        )
        await self._move(record, S.PRE_COMMITTING, "trial proof verified")
        return None

    async def _batched(self, record: SectorRecord) -> Wait | None:
        return Wait()  # the batchers move PreCommitting and SubmitCommit sectors

    async def _pre_commit_wait(self, record: SectorRecord) -> Wait | None:
        assert record.pre_commit_message is not None
        landed = await self._landed(record, record.pre_commit_message, "pre-commit")
        if landed is None:
            return Wait()
        head = self.head
        on_chain = await self._call(self.chain.precommit_info, self.miner, record.sector_number, head)
        if on_chain is None:
            raise StepFailed(
                f"the pre-commit message {record.pre_commit_message} landed but sector is not pre-committed"
            )
        await self._move(
            record,
            S.WAIT_SEED,
            f"pre-committed at epoch {on_chain.pre_commit_epoch}",
            pre_commit_epoch=on_chain.pre_commit_epoch,
            pre_commit_deposit=on_chain.pre_commit_deposit,
        )
        return None

    async def _in_pool(self, cid: CID) -> bool:
        """Whether the message waits in the pool (among the worker's)."""
        pending = await self._call(self.chain.pending_for, self._view.worker)
        return any(m.cid() == cid for m in pending)

    async def _landed(self, record: SectorRecord, cid: CID, what: str) -> int | None:
        """The height a message of the sector executed at, once confident; None while it waits (in the
        pool, or not yet confident). StepFailed if it failed on chain or vanished."""
        head = self.head
        found = await self._call(self.chain.search, cid, head)
        if found is None:
            if await self._in_pool(cid):
                return None
            if head.height - record.message_epoch >= self.config.resend_after:
                raise StepFailed(
                    f"the {what} message {cid} is neither on chain nor in the message pool "
                    f"{head.height - record.message_epoch} epochs after it was sent"
                )
            return None
        if head.height - found.height < self.config.message_confidence:
            return None
        code = found.receipt.exit_code
        if code != ExitCode.Ok:
            try:
                name = ExitCode(code).name
            except ValueError:
                name = "unknown"
            raise StepFailed(
                f"the {what} message {found.message} failed on chain: exit code {int(code)} ({name})"
            )
        return found.height

    async def _wait_seed(self, record: SectorRecord) -> Wait | None:
        number, head = record.sector_number, self.head
        on_chain = await self._call(self.chain.precommit_info, self.miner, number, head)
        if on_chain is None:
            proven = await self._call(self.chain.sector_info, self.miner, number, head)
            if proven is not None:
                await self._move(record, S.FINALIZE_SECTOR, "already proven on chain")
                return None
            raise StepFailed("the sector's pre-commit is no longer on chain")
        if on_chain.info.sealed_cid != record.comm_r:
            raise StepFailed(
                f"the chain holds a pre-commit of sector {number} with CommR {on_chain.info.sealed_cid}, "
                f"not ours ({record.comm_r})",
                permanent=True,
            )
        self._check_not_expired(on_chain.pre_commit_epoch, head)
        seed_epoch = on_chain.pre_commit_epoch + self.policy.pre_commit_challenge_delay
        if head.height < seed_epoch + self.config.seed_confidence:
            return Wait()
        value = await self._call(self.chain.draw_seed, self.miner, seed_epoch, head)
        await self._move(
            record,
            S.COMMITTING,
            f"seed at epoch {seed_epoch}",
            seed=SealSeed(value, seed_epoch),
            pre_commit_epoch=on_chain.pre_commit_epoch,
            pre_commit_deposit=on_chain.pre_commit_deposit,
        )
        return None

    def _check_not_expired(self, pre_commit_epoch: int, head: TipSet) -> None:
        due = pre_commit_epoch + self.policy.max_prove_commit_duration
        if head.height >= due:
            raise StepFailed(
                f"the pre-commit of epoch {pre_commit_epoch} expired at {due} without its proof: its deposit "
                "is burnt",
                permanent=True,
            )

    async def _check_deals_not_started(self, record: SectorRecord, head: TipSet) -> None:
        """Before a failed pre-commit or commit is retried: a deal whose start epoch has passed (or that
        cron dropped) can no longer be activated, so the sector is given up with the reason rather than
        retried forever (Lotus DealsExpired). A pre-commit on chain then expires, its deposit burnt."""
        try:
            await self._call(checks.check_deals, self.chain, self.miner, record, head)
        except checks.DealProblem as exc:
            raise StepFailed(
                f"{exc}: the sector cannot be proven with it (DealsExpired)", permanent=True
            ) from None

    async def _committing(self, record: SectorRecord) -> Wait | None:
        assert record.comm_d is not None and record.comm_r is not None
        proof = await self._job(
            record.sector_number,
            TASK_COMMIT,
            self.sealer.prove,
            record.seal_proof,
            record.sector_number,
            record.ticket.value,
            record.seed.value,
            commitment_of_v1(record.comm_d),
            sealed_commitment(record.comm_r),
        )
        # In the sector store before the proof can land: a fault check of the deadline the chain puts
        # the sector in must find it (node/mining/wdpost_faults.py), as Lotus's finds unfinalized
        # sectors in its sealing storage.
        await self._job(
            record.sector_number,
            TASK_COMMIT,
            _without_progress(self.sealer.index_sealed),
            record.seal_proof,
            record.sector_number,
            commitment_of_v1(record.comm_d),
            sealed_commitment(record.comm_r),
        )
        await self._move(record, S.SUBMIT_COMMIT, f"proof of {len(proof)} bytes", proof=proof)
        return None

    async def _commit_wait(self, record: SectorRecord) -> Wait | None:
        assert record.commit_message is not None
        landed = await self._landed(record, record.commit_message, "commit")
        if landed is None:
            return Wait()
        proven = await self._call(self.chain.sector_info, self.miner, record.sector_number, self.head)
        if proven is None:
            raise StepFailed(
                f"the commit message {record.commit_message} landed but the sector is not on chain "
                "(the aggregate activated only others, or the market refused its deals)"
            )
        await self._move(record, S.FINALIZE_SECTOR, f"proven at epoch {proven.activation}")
        return None

    async def _finalize(self, record: SectorRecord) -> Wait | None:
        assert record.comm_d is not None and record.comm_r is not None
        keep = any(p.deal_info is not None and p.deal_info.keep_unsealed for p in record.pieces)
        await self._job(
            record.sector_number,
            TASK_FINALIZE,
            _without_progress(self.sealer.finalize),
            record.seal_proof,
            record.sector_number,
            commitment_of_v1(record.comm_d),
            sealed_commitment(record.comm_r),
            keep,
        )
        await self._move(record, S.PROVING, "in the sector store")
        return None

    # -- failure states (Lotus states_failed.go) --------------------------------------------------------

    async def _retry(self, record: SectorRecord, state: SectorState) -> None:
        await self._move(record, state, f"retry {record.retries}")

    async def _reseal(self, record: SectorRecord, state: SectorState, why: str, **changes: Any) -> None:
        """Drop the sector's sealed files and seal it again from state."""
        await self._call(self.sealer.forget_sealed, record.sector_number)
        await self._move(record, state, why, **changes)

    async def _still_in_pool(self, record: SectorRecord, kind: _Carrier) -> bool:
        """Whether the sector's last message of this kind still waits in the pool: if so the sector
        waits for it again."""
        sent = getattr(record, kind.field)
        if sent is None or not await self._in_pool(sent):
            return False
        await self._move(record, kind.wait, f"the {kind.what} message is still in the pool")
        return True

    _packing_failed = _retrying(S.PACKING)
    _seal_pc1_failed = _retrying(S.GET_TICKET)
    _finalize_failed = _retrying(S.FINALIZE_SECTOR)

    @_after_cooldown
    async def _seal_pc2_failed(self, record: SectorRecord) -> Wait | None:
        if record.retries <= MAX_PC2_FAILURES:
            await self._retry(record, S.PRE_COMMIT_2)
        else:
            await self._reseal(record, S.PRE_COMMIT_1, "sealing again: the sealed files do not prove")
        return None

    @_after_cooldown
    async def _compute_proof_failed(self, record: SectorRecord) -> Wait | None:
        if record.retries <= MAX_PROOF_FAILURES:
            await self._retry(record, S.COMMITTING)
        else:
            await self._reseal(
                record,
                S.SEAL_PRE_COMMIT_1_FAILED,
                "sealing again with the pre-committed ticket: proofs keep failing",
                last_error=record.last_error,
            )
        return None

    @_after_cooldown
    async def _pre_commit_failed(self, record: SectorRecord) -> Wait | None:
        number, head = record.sector_number, self.head
        on_chain = await self._call(self.chain.precommit_info, self.miner, number, head)
        if on_chain is not None:
            if on_chain.info.sealed_cid != record.comm_r:
                raise StepFailed(
                    f"the chain holds a pre-commit of sector {number} with another CommR "
                    f"({on_chain.info.sealed_cid})",
                    permanent=True,
                )
            await self._move(record, S.WAIT_SEED, "the pre-commit is on chain")
            return None
        if await self._call(self.chain.sector_info, self.miner, number, head) is not None:
            await self._move(record, S.FINALIZE_SECTOR, "already proven on chain")
            return None
        if await self._still_in_pool(record, _PRE_COMMIT):
            return None
        await self._check_unallocated(number, head)
        await self._check_deals_not_started(record, head)
        if record.ticket.epoch < head.height - self.policy.max_pre_commit_randomness_lookback:
            await self._reseal(
                record,
                S.SEAL_PRE_COMMIT_1_FAILED,
                "the ticket expired: sealing again",
                last_error=record.last_error,
            )
            return None
        await self._retry(record, S.PRE_COMMITTING)
        return None

    @_after_cooldown
    async def _commit_failed(self, record: SectorRecord) -> Wait | None:
        number, head = record.sector_number, self.head
        if await self._call(self.chain.sector_info, self.miner, number, head) is not None:
            await self._move(record, S.FINALIZE_SECTOR, "already proven on chain")
            return None
        on_chain = await self._call(self.chain.precommit_info, self.miner, number, head)
        if on_chain is None:
            await self._move(record, S.PRE_COMMIT_FAILED, "the pre-commit is no longer on chain")
            return None
        self._check_not_expired(on_chain.pre_commit_epoch, head)
        await self._check_deals_not_started(record, head)
        if await self._still_in_pool(record, _COMMIT):
            return None
        seed_epoch = on_chain.pre_commit_epoch + self.policy.pre_commit_challenge_delay
        seed = await self._call(self.chain.draw_seed, self.miner, seed_epoch, head)
        if seed_epoch != record.seed.epoch or seed != record.seed.value or not record.proof:
            await self._move(record, S.WAIT_SEED, "the seed changed (a reorg): proving again")
            return None
        await self._retry(record, S.SUBMIT_COMMIT)
        return None

    _STEPS: Final[dict[SectorState, Callable[["SealingPipeline", SectorRecord], Awaitable[Wait | None]]]] = {
        S.WAIT_DEALS: _wait_deals,
        S.PACKING: _packing,
        S.GET_TICKET: _get_ticket,
        S.PRE_COMMIT_1: _pre_commit_1,
        S.PRE_COMMIT_2: _pre_commit_2,
        S.PRE_COMMITTING: _batched,
        S.PRE_COMMIT_WAIT: _pre_commit_wait,
        S.WAIT_SEED: _wait_seed,
        S.COMMITTING: _committing,
        S.SUBMIT_COMMIT: _batched,
        S.COMMIT_WAIT: _commit_wait,
        S.FINALIZE_SECTOR: _finalize,
        S.PACKING_FAILED: _packing_failed,
        S.SEAL_PRE_COMMIT_1_FAILED: _seal_pc1_failed,
        S.SEAL_PRE_COMMIT_2_FAILED: _seal_pc2_failed,
        S.PRE_COMMIT_FAILED: _pre_commit_failed,
        S.COMPUTE_PROOF_FAILED: _compute_proof_failed,
        S.COMMIT_FAILED: _commit_failed,
        S.FINALIZE_FAILED: _finalize_failed,
    }

    # == the batchers =====================================================================================

    def _in(self, *states: SectorState) -> list[SectorRecord]:
        return sorted((r for r in self._records.values() if r.state in states), key=lambda r: r.sector_number)

    async def _batcher(self, send: Callable[[], Awaitable[None]], what: str) -> None:
        """Run send (one batcher's pass) after every change."""
        while True:
            changed = self._changes.next
            self._busy += 1
            try:
                await send()
            except Exception as exc:  # logged; the next change tries again
                self._log.exception(f"{what} batcher failed", error=str(exc))
            finally:
                self._busy -= 1
            await changed.wait()

    def _due(
        self,
        ready: list[SectorRecord],
        upstream: int,
        deadline: int | None,
        wait: int,
        slack: int,
        full: bool,
    ) -> str | None:
        head = self.head.height
        since = min(self._ready_since.setdefault(r.sector_number, head) for r in ready)
        return batch_due(
            head=head,
            ready_since=since,
            wait=wait,
            deadline=deadline,
            slack=slack,
            full=full,
            upstream=upstream,
        )

    def _pre_commit_deadline(self, record: SectorRecord) -> int:
        deadline = record.ticket.epoch + self.policy.max_pre_commit_randomness_lookback
        for piece in record.pieces:
            if piece.deal_info is not None:
                start = piece.deal_info.deal_schedule.start_epoch
                deadline = min(
                    deadline, start - self.policy.pre_commit_challenge_delay - self.config.seed_confidence
                )
        return deadline

    async def _send_pre_commits(self) -> None:
        ready = self._in(S.PRE_COMMITTING)
        if not ready:
            return
        upstream = len(self._in(S.PACKING, S.GET_TICKET, S.PRE_COMMIT_1, S.PRE_COMMIT_2))
        max_batch = min(self.config.max_pre_commit_batch, self.policy.pre_commit_sector_batch_max_size)
        deadline = min(self._pre_commit_deadline(r) for r in ready)
        why = self._due(
            ready,
            upstream,
            deadline,
            self.config.pre_commit_batch_wait,
            self.config.pre_commit_batch_slack,
            len(ready) >= max_batch,
        )
        if why is None:
            return
        head, to_send = await self._still_to_send(ready, _PRE_COMMIT, self._pre_commit_check)
        if not to_send:
            return
        for batch in plan_pre_commits(
            [r.sector_number for r in to_send], max_batch=max_batch, policy=self.policy
        ):
            members = [r for r in to_send if r.sector_number in batch]
            await self._send_pre_commit_batch(members, head, why)

    async def _still_to_send(
        self,
        ready: list[SectorRecord],
        kind: _Carrier,
        check: Callable[[SectorRecord, TipSet, list[checks.PendingCarrier]], Awaitable[SectorRecord | None]],
    ) -> tuple[TipSet, list[SectorRecord]]:
        """The head, and the ready sectors that check keeps at it (given the worker's messages of this
        kind waiting in the pool)."""
        head = self.head
        pending = checks.pending_carriers(
            await self._call(self.chain.pending_for, self._view.worker), self.miner, kind.methods
        )
        to_send = []
        for record in ready:
            kept = await check(record, head, pending)
            if kept is not None:
                to_send.append(kept)
        return head, to_send

    async def _pre_commit_check(
        self, record: SectorRecord, head: TipSet, pending: list[checks.PendingCarrier]
    ) -> SectorRecord | None:
        """The sector ready to go, with its expiration; or None once it was moved (already on chain, in
        the pool, or failed)."""
        number = record.sector_number
        on_chain = await self._call(self.chain.precommit_info, self.miner, number, head)
        if on_chain is not None:
            if on_chain.info.sealed_cid != record.comm_r:
                await self._fail(
                    record, StepFailed("pre-committed on chain with another CommR", permanent=True)
                )
                return None
            await self._move(
                record,
                S.WAIT_SEED,
                "already pre-committed on chain",
                pre_commit_epoch=on_chain.pre_commit_epoch,
                pre_commit_deposit=on_chain.pre_commit_deposit,
            )
            return None
        if await self._call(self.chain.sector_info, self.miner, number, head) is not None:
            await self._move(record, S.FINALIZE_SECTOR, "already proven on chain")
            return None
        if await self._adopt_from_pool(record, pending, head, _PRE_COMMIT):
            return None
        if record.ticket.epoch < head.height + 1 - self.policy.max_pre_commit_randomness_lookback:
            await self._call(self.sealer.forget_sealed, number)
            await self._fail(
                record,
                StepFailed(
                    f"the ticket of epoch {record.ticket.epoch} expired before the pre-commit was sent",
                    to=S.SEAL_PRE_COMMIT_1_FAILED,
                ),
            )
            return None
        try:
            await self._call(checks.check_deals, self.chain, self.miner, record, head)
        except checks.DealProblem as exc:
            await self._fail(record, StepFailed(str(exc), permanent=True))
            return None
        expiration = checks.sector_expiration(
            record, head.height, self.policy, self.config.committed_capacity_lifetime
        )
        return replace(record, expiration=expiration)

    async def _adopt_from_pool(
        self, record: SectorRecord, pending: list[checks.PendingCarrier], head: TipSet, kind: _Carrier
    ) -> bool:
        """Whether a message in the pool already carries the sector (sent before a restart): if so the
        sector waits for that message instead of sending another."""
        carrier = next((c for c in pending if record.sector_number in c.sectors), None)
        if carrier is None:
            return False
        cid = carrier.message.cid()
        self._log.info(
            f"{kind.what} already in the message pool",
            sector=record.sector_number,
            message=str(cid),
        )
        await self._move(
            record,
            kind.wait,
            f"adopted {cid} from the message pool",
            **{kind.field: cid, "message_epoch": head.height},
        )
        return True

    async def _send_pre_commit_batch(self, members: list[SectorRecord], head: TipSet, why: str) -> None:
        view = self._view
        params = [
            PreCommitSectorParams(
                seal_proof=r.seal_proof,
                sector_number=r.sector_number,
                sealed_cid=r.comm_r,  # type: ignore[arg-type]  # PreCommit2 set it
                seal_rand_epoch=r.ticket.epoch,
                deal_ids=r.deal_ids,
                expiration=r.expiration,
            )
            for r in members
        ]
        deposit = await self._call(self.chain.pre_commit_deposit, view.sector_size, head)
        available = await self._call(self.chain.available_balance, self.miner, head)
        value = checks.collateral(deposit * len(members), available, self.config.collateral_margin_percent)
        method: MinerMethod
        encoded: PreCommitSectorParams | PreCommitSectorBatchParams
        if len(members) == 1:
            method, encoded = MinerMethod.PreCommitSector, params[0]
        else:
            method, encoded = MinerMethod.PreCommitSectorBatch, PreCommitSectorBatchParams(tuple(params))
        await self._send_carrier(
            _PRE_COMMIT,
            members,
            method,
            encoded,
            value,
            self.config.max_pre_commit_fee,
            head,
            why,
            alone=lambda member: self._send_pre_commit_batch([member], head, "batch refused"),
            kept=lambda r: {"expiration": r.expiration, "pre_commit_deposit": deposit},
            deposit=deposit * len(members),
        )

    def _commit_deadline(self, record: SectorRecord) -> int | None:
        if record.pre_commit_epoch < 0:
            return None
        deadline = record.pre_commit_epoch + self.policy.max_prove_commit_duration
        for piece in record.pieces:
            if piece.deal_info is not None:
                deadline = min(deadline, piece.deal_info.deal_schedule.start_epoch)
        return deadline

    def _aggregate_capacity(self) -> int:
        """How many of this miner's proofs one commit message can carry: 1 where its proofs cannot be
        aggregated (too large for two to share a message, or below the smallest aggregate), so that a
        ready proof is sent at once instead of waiting for company it cannot have."""
        capacity = min(self.policy.max_aggregated_sectors, aggregate_capacity((self._view.seal_proof,)))
        smallest = max(self.config.min_commit_batch, self.policy.min_aggregated_sectors)
        return capacity if capacity >= smallest else 1

    async def _send_commits(self) -> None:
        ready = self._in(S.SUBMIT_COMMIT)
        if not ready:
            return
        upstream = len(self._in(S.WAIT_SEED, S.COMMITTING))
        deadlines = [d for d in (self._commit_deadline(r) for r in ready) if d is not None]
        why = self._due(
            ready,
            upstream,
            min(deadlines) if deadlines else None,
            self.config.commit_batch_wait,
            self.config.commit_batch_slack,
            len(ready) >= self._aggregate_capacity(),
        )
        if why is None:
            return
        head, to_send = await self._still_to_send(ready, _COMMIT, self._commit_check)
        if not to_send:
            return
        plans = plan_commits(
            {r.sector_number: len(r.proof) for r in to_send},
            min_aggregate=self.config.min_commit_batch,
            policy=self.policy,
        )
        for plan in plans:
            members = [r for r in to_send if r.sector_number in plan.sectors]
            await self._send_commit(members, plan.aggregate, head, why)

    async def _commit_check(
        self, record: SectorRecord, head: TipSet, pending: list[checks.PendingCarrier]
    ) -> SectorRecord | None:
        """The sector ready to go; or None once it was moved (already proven, in the pool, or failed)."""
        number = record.sector_number
        if await self._call(self.chain.sector_info, self.miner, number, head) is not None:
            await self._move(record, S.FINALIZE_SECTOR, "already proven on chain")
            return None
        on_chain = await self._call(self.chain.precommit_info, self.miner, number, head)
        if on_chain is None:
            await self._fail(record, StepFailed("the sector's pre-commit is no longer on chain"))
            return None
        if await self._adopt_from_pool(record, pending, head, _COMMIT):
            return None
        due = on_chain.pre_commit_epoch + self.policy.max_prove_commit_duration
        if head.height + 1 > due:
            await self._fail(
                record,
                StepFailed(
                    f"the pre-commit expired at {due} before the proof was sent: its deposit is burnt",
                    permanent=True,
                ),
            )
            return None
        return self._records[number]

    async def _send_commit(
        self, members: list[SectorRecord], aggregate: bool, head: TipSet, why: str
    ) -> None:
        view = self._view
        numbers = [r.sector_number for r in members]
        pledge = 0
        for record in members:
            pledge += await self._call(checks.sector_pledge, self.chain, record, view.sector_size, head)
        deposits = sum(r.pre_commit_deposit for r in members)
        available = await self._call(self.chain.available_balance, self.miner, head)
        value = checks.collateral(max(0, pledge - deposits), available, self.config.collateral_margin_percent)
        encoded: ProveCommitAggregateParams | ProveCommitSectorParams
        if aggregate:
            method = MinerMethod.ProveCommitAggregate
            encoded = ProveCommitAggregateParams(
                BitField.from_bits(numbers), encode_aggregate_proof(r.proof for r in members)
            )
        else:
            method = MinerMethod.ProveCommitSector
            encoded = ProveCommitSectorParams(members[0].sector_number, members[0].proof)
        await self._send_carrier(
            _COMMIT,
            members,
            method,
            encoded,
            value,
            self.config.max_commit_fee,
            head,
            why,
            alone=lambda member: self._send_commit([member], False, head, "aggregate refused"),
            pledge=pledge,
        )

    async def _send_carrier(
        self,
        kind: _Carrier,
        members: list[SectorRecord],
        method: MinerMethod,
        params: object,
        value: int,
        fee_per_sector: int,
        head: TipSet,
        why: str,
        *,
        alone: Callable[[SectorRecord], Awaitable[None]],
        kept: Callable[[SectorRecord], dict[str, Any]] = lambda _: {},
        **logged: int,
    ) -> None:
        """Push the worker's message (method, params, value) that carries the members' sectors to the
        miner, and move them to wait for it (their records keeping its CID and what kept gives). Where
        the pool refuses it, a lone sector fails with the reason; several are sent again each alone, to
        find the one at fault."""
        numbers = [r.sector_number for r in members]
        msg = message_to_push(self.miner, self._view.worker, value=value, method=method, params=params)
        try:
            signed = await self._call(self.chain.push, msg, SendSpec(max_fee=fee_per_sector * len(members)))
        except Exception as exc:  # the pool's and the estimator's refusals, with their reasons
            reason = f"sending {kind.sends} failed: {type(exc).__name__}: {exc}"
            self._log.warning(f"{kind.what} push failed", sectors=numbers, error=reason)
            if len(members) > 1:
                for member in members:
                    await alone(member)
                return
            await self._fail(self._records[numbers[0]], StepFailed(reason))
            return
        cid = signed.cid()
        self._log.info(
            f"{kind.what} sent",
            sectors=numbers,
            method=method.name,
            message=str(cid),
            value=value,
            why=why,
            **logged,
        )
        await self._move_many(
            [
                (
                    self._records[r.sector_number],
                    kind.wait,
                    f"{method.name} {cid}",
                    {kind.field: cid, "message_epoch": head.height, **kept(r)},
                )
                for r in members
            ]
        )


def _reached(record: SectorRecord | None, states: tuple[SectorState, ...]) -> SectorRecord | None:
    """The record if it is in one of the states or a terminal one."""
    if record is not None and (record.state in states or record.state in TERMINAL):
        return record
    return None


def _trim(entries: Iterable[SectorLog]) -> tuple[SectorLog, ...]:
    return tuple(entries)[-LOG_LIMIT:]


def _layout_end(record: SectorRecord, sector_size: int) -> int:
    """Where the sector's pieces end (the next free padded offset)."""
    infos = [commp.PieceInfo(p.piece.size, commitment_of_v1(p.piece.piece_cid)) for p in record.pieces]
    placed = commp.place_pieces(infos, sector_size)
    return placed[-1].end if placed else 0


def _without_progress(fn: Callable[..., T]) -> Callable[..., T]:
    """fn, accepting (and ignoring) the progress keyword jobs pass."""

    def call(*args: Any, progress: Any = None) -> T:
        return fn(*args)

    return call
