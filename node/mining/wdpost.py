"""The Window PoSt scheduler: proves the miner's sectors in each deadline, as Lotus's storage/wdpost.

A trio service following the chain's head. On every head change it asks the chain for the miner's
current proving deadline (so a restart needs nothing persisted: what is proven is in the miner's state)
and, for that deadline and the next one once its challenge is drawn:

1. From the challenge epoch + `challenge_confidence` (Lotus ChallengeConfidence = 1), it reads the
   deadline's partitions at the head, draws the PoSt randomness exactly as the actor will check it
   (beacon randomness, WindowedPoStChallengeSeed, at the deadline's challenge epoch, entropy = the
   miner's ID address as CBOR), and proves the partitions not yet proven in this window from the
   sector store, in a worker thread (node/mining/wdpost_proofs.py: skipped sectors, packing into
   messages). Declared faults are not proven; declared recoveries are.
2. From the deadline's open epoch + `submit_confidence` (Lotus SubmitConfidence = 4; at most a quarter
   of the challenge window, so a devnet's 10-epoch windows leave room for retries), it sends one
   SubmitWindowedPoSt per batch through the message pusher (MpoolPushMessage: nonce, gas, signature;
   fees capped at `max_fee`, 5 FIL as Lotus's MaxWindowPoStGasFee), from the worker, with the chain
   commitment drawn at the challenge epoch (ticket randomness, PoStChainCommit; Lotus uses the
   challenge epoch too).
3. A batch counts as done when its partitions show as proven in the miner's state. A pushed message that
   has not landed `resubmit_after` epochs later is sent again (the failure is logged), and so is one whose
   chain commitment a reorg has undone (the chain below its commit epoch changed: it can only fail). A
   PoSt that landed and was then reverted is waited for once more (the message pool puts the messages of
   reverted tipsets back), then sent again. All of this stops when the window closes; a deadline whose
   partitions were not all proven by then is logged as missed (the actor's cron marks them faulty).

Failures (state queries, proving, pushing) are logged with their reason and retried on the next head
change while the window is open; they never stop the service. Head changes that queue up while a proof
is being made are taken together, as one change to the latest head.

`status()` and `wait_processed()` tell what the scheduler is doing; node/mining/proving.py answers the
chain-side questions (`filpy miner proving info|deadlines`).
"""

from collections.abc import Sequence
from dataclasses import KW_ONLY, InitVar, dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Final

import structlog
import trio

from actors.miner.policy import DeadlineInfo
from actors.miner.state import MinerInfo
from actors.miner.types import MinerMethod, SubmitWindowedPoStParams
from chain.crypto.randomness import DomainSeparationTag
from chain.encoding import dagcbor
from chain.encoding.carry import carried
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.mpool.push import message_to_push
from chain.params import Policy
from chain.types.address import Address
from chain.types.bitfield import BitField
from chain.types.tipset import TipSet, TipSetKey
from node.daemon import TaskStatus, describe_error
from node.fullnode import FullNode
from node.mining.chain_api import (
    REVERT,
    HeadChangeEvent,
    HeadChanges,
    MessagePush,
    MessageSearch,
    MinerChainState,
    PendingMessages,
)
from node.mining.local_proving import LocalProving
from node.mining.wdpost_declare import DeclarationStatus, FaultDeclarer
from node.mining.wdpost_faults import next_deadline
from node.mining.wdpost_notes import note_failure, push_or_note
from node.mining.wdpost_proofs import (
    DeadlineProofs,
    PartitionTask,
    PreparedPoSt,
    max_partitions_per_message,
    partitions_to_prove,
    post_entropy,
    prove_deadline,
)
from node.pulse import Pulse
from node.sealing.sectors import SectorStore

CHALLENGE_CONFIDENCE: Final = 1
SUBMIT_CONFIDENCE: Final = 4
RESUBMIT_AFTER: Final = 4
# The most a PoSt message may pay in fees (Lotus's MaxWindowPoStGasFee default): a PoSt must land even
# when the base fee is high, and costs far more gas than the pool's default cap (0.07 FIL) allows for.
MAX_WINDOW_POST_FEE: Final = 5 * 10**18
RESUBSCRIBE_DELAY: Final = 0.5  # seconds between head-change subscriptions that ended

log = structlog.get_logger("wdpost")


class RunState(StrEnum):
    """Where one deadline's PoSt stands."""

    WAITING = "waiting"  # challenge not yet drawn
    PROVING = "proving"  # making the proofs
    PROVEN = "proven"  # proofs ready, waiting to submit
    SUBMITTED = "submitted"  # messages in the pool, not yet on chain
    POSTED = "posted"  # every partition with sectors to prove is proven on chain
    NOTHING_TO_PROVE = "nothing-to-prove"  # no partition has sectors to prove (or all are faulty)
    MISSED = "missed"  # the window closed with partitions unproven

    @property
    def final(self) -> bool:
        return self in (RunState.POSTED, RunState.NOTHING_TO_PROVE, RunState.MISSED)


@dataclass
class Submission:
    """A SubmitWindowedPoSt pushed for one batch of a deadline."""

    message: CID
    partitions: tuple[int, ...]
    pushed_at: int  # head height when pushed (moved down if the chain goes back below it)
    commit_epoch: int
    commit_rand: bytes = field(repr=False)


@dataclass
class DeadlineRun:
    """The scheduler's memory of one deadline instance (one index in one proving period)."""

    info: DeadlineInfo
    state: RunState = RunState.WAITING
    proofs: DeadlineProofs | None = None
    submissions: dict[int, Submission] = field(default_factory=dict)  # by batch
    posted: BitField = field(default_factory=BitField)  # partitions proven on chain at the head
    last_error: str | None = None
    attempts: int = 0  # messages pushed


@dataclass(frozen=True, slots=True)
class DeadlineStatus:
    """What the scheduler knows of one deadline (for `filpy miner proving` and the logs)."""

    index: int
    period_start: int
    open: int
    close: int
    challenge: int
    state: RunState
    proven_partitions: tuple[int, ...]  # on chain, at the last head seen
    batches: tuple[tuple[int, ...], ...]  # partition indexes per message
    skipped: dict[int, str]  # sector number -> why it was skipped
    messages: tuple[CID, ...]  # every SubmitWindowedPoSt pushed
    last_error: str | None


@dataclass(frozen=True, slots=True)
class SchedulerStatus:
    miner: Address
    head: int | None  # height of the last head processed
    deadlines: tuple[DeadlineStatus, ...]  # oldest first, about one proving period
    declarations: tuple[DeclarationStatus, ...] = ()  # fault checks and declarations, oldest first


@dataclass(eq=False, repr=False)
class WindowPoStScheduler:
    """The Window PoSt service of one miner (see the module docstring)."""

    name: ClassVar[str] = "wdpost"

    miner: Address
    _: KW_ONLY
    chain: HeadChanges
    state: MinerChainState
    pusher: MessagePush
    sectors: SectorStore  # the sector store the scheduler proves from
    policy: Policy
    pending: PendingMessages | None = None
    search: MessageSearch | None = None
    challenge_confidence: int = CHALLENGE_CONFIDENCE
    # None: SUBMIT_CONFIDENCE, or a quarter of the challenge window when that is shorter
    submit_confidence: InitVar[int | None] = None
    resubmit_after: int = RESUBMIT_AFTER
    max_fee: int = MAX_WINDOW_POST_FEE
    submit_after: int = field(init=False)  # epochs after a deadline opens before its proof is sent
    declarer: FaultDeclarer = field(init=False)
    _miner_id: Address | None = field(init=False, default=None)
    _runs: dict[int, DeadlineRun] = field(init=False, default_factory=dict)  # by open epoch
    _head: TipSet | None = field(init=False, default=None)
    _processed: TipSetKey | None = field(init=False, default=None)
    _processed_height: int | None = field(init=False, default=None)
    _step_done: Pulse = field(init=False, default_factory=Pulse)
    _node: FullNode | None = field(init=False, default=None)

    def __post_init__(self, submit_confidence: int | None) -> None:
        self.submit_after = (
            min(SUBMIT_CONFIDENCE, self.policy.wpost_challenge_window // 4)
            if submit_confidence is None
            else submit_confidence
        )
        self.declarer = FaultDeclarer(
            state=self.state,
            pusher=self.pusher,
            sectors=self.sectors,
            policy=self.policy,
            pending=self.pending,
            search=self.search,
            challenge_confidence=self.challenge_confidence,
            resubmit_after=self.resubmit_after,
            max_fee=self.max_fee,
        )

    @classmethod
    def for_node(
        cls, node: FullNode, miner: Address, sectors: SectorStore, **options: Any
    ) -> "WindowPoStScheduler":
        """The scheduler of a miner this node serves: its chain store, state manager, message pool and
        pusher (options: the confidences, resubmit_after, max_fee). While it runs it is listed in the
        node's `proving` (node/mining/local_proving.py), where the RPC finds it."""
        scheduler = cls(
            miner,
            chain=node.chain,
            state=node.state,
            pusher=node.pusher,
            sectors=sectors,
            policy=node.policy,
            pending=node.mpool,
            search=node.state,
            **options,
        )
        scheduler._node = node
        return scheduler

    @property
    def miner_id(self) -> Address | None:
        """The miner's ID address, once the scheduler has looked it up."""
        return self._miner_id

    # -- views ----------------------------------------------------------------------------------------
    def status(self) -> SchedulerStatus:
        deadlines = []
        for open_epoch in sorted(self._runs):
            run = self._runs[open_epoch]
            posts = run.proofs.posts if run.proofs is not None else ()
            deadlines.append(
                carried(  # the deadline's epochs from its info, state and last_error from the run
                    DeadlineStatus,
                    run.info,
                    run,
                    proven_partitions=tuple(run.posted),
                    batches=tuple(p.indices for p in posts),
                    skipped=dict(run.proofs.skipped) if run.proofs is not None else {},
                    messages=tuple(s.message for s in run.submissions.values()),
                )
            )
        head = self._head.height if self._head is not None else None
        miner = self.miner if self._miner_id is None else self._miner_id
        return SchedulerStatus(miner, head, tuple(deadlines), self.declarer.status())

    async def wait_processed(self, ts: TipSet) -> None:
        """Return once the scheduler has handled ts as its head (with any proving and pushing it did),
        or a head at its height or above: on a network the head moves on while a miner waits (other
        miners' blocks join its tipset), and a miner may build on the parent of the head (a sibling)."""
        while self._processed != ts.key and (
            self._processed_height is None or self._processed_height < ts.height
        ):
            await self._step_done.next.wait()

    # -- the service ----------------------------------------------------------------------------------
    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        changes = self.chain.subscribe()
        log.info("window post scheduler started", miner=str(self.miner))
        proving = LocalProving.of(self._node) if self._node is not None else None
        if proving is not None:
            proving.add(self)
        try:
            task_status.started()
            while True:
                async with changes:
                    await self._follow(changes)
                log.warning("head change subscription ended: subscribing again", miner=str(self.miner))
                await trio.sleep(RESUBSCRIBE_DELAY)
                changes = self.chain.subscribe()
        finally:
            if proving is not None:
                proving.remove(self)

    async def _follow(self, changes: trio.MemoryReceiveChannel[Sequence[HeadChangeEvent]]) -> None:
        async for first in changes:
            events = list(first)
            while True:  # take what queued up meanwhile as one change
                try:
                    events.extend(changes.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            await self._handle(events)

    async def _handle(self, events: Sequence[HeadChangeEvent]) -> None:
        reorged = any(e.type == REVERT for e in events)
        heads = [e.tipset for e in events if e.type != REVERT]
        if not heads:
            return
        head = heads[-1]
        self._head = head
        try:
            await self._step(head, reorged)
        except Exception as exc:
            log.error("window post step failed", height=head.height, error=describe_error(exc), exc_info=exc)
        finally:
            self._processed = head.key
            self._processed_height = head.height
            self._step_done.fire()

    async def _step(self, head: TipSet, reorged: bool) -> None:
        if self._miner_id is None:
            self._miner_id = await trio.to_thread.run_sync(self.state.lookup_id, self.miner, head)
        miner = self._miner_id
        current = await trio.to_thread.run_sync(self.state.proving_deadline, miner, head)
        info = await trio.to_thread.run_sync(self.state.miner_info, miner, head)
        height = head.height
        # Lotus proves nothing while the period has not started; with v9 miners that only happens at a
        # head after null rounds whose crons the parent state has not run yet (the chain then names
        # the current index's next period). The declarations work from the head's epoch instead.
        if current.period_started():
            await self._prove_and_submit(head, current, info, reorged)
        # Declarations come after the PoSts: theirs are for deadlines at least a cutoff away.
        await self.declarer.step(miner, head, current, info)
        horizon = height - self.policy.wpost_proving_period
        for open_epoch in [o for o, r in self._runs.items() if r.info.close < horizon]:
            del self._runs[open_epoch]

    async def _prove_and_submit(
        self, head: TipSet, current: DeadlineInfo, info: MinerInfo, reorged: bool
    ) -> None:
        height = head.height
        for run in [r for r in self._runs.values() if height >= r.info.close and not r.state.final]:
            await self._close(run, head)
        active = [self._run_for(current)]
        upcoming = next_deadline(self.policy, current)
        if height >= upcoming.challenge + self.challenge_confidence:
            active.append(self._run_for(upcoming))
        for run in active:
            try:
                await self._advance(run, head, info, reorged)
            except Exception as exc:
                note_failure(
                    run, exc, "window post failed", deadline=run.info.index, open=run.info.open, height=height
                )

    async def _close(self, run: DeadlineRun, head: TipSet) -> None:
        """The window has closed: the PoSt counted if the sectors it proved did not turn faulty at the
        deadline's cron (a PoSt landing in the window's last epoch is never seen as posted, as that
        epoch's cron clears the deadline's posted partitions before any later state)."""
        miner = self._miner_id
        assert miner is not None
        proven = BitField.from_bits(n for p in (run.proofs.posts if run.proofs else ()) for n in p.proven)
        faulty = BitField()
        if proven:
            partitions = await trio.to_thread.run_sync(
                self.state.miner_partitions, miner, run.info.index, head
            )
            faulty = BitField().union(*(p.faults for p in partitions)) & proven
        if proven and not faulty:
            self._set_state(run, RunState.POSTED, head.height)
        else:
            self._set_state(run, RunState.MISSED, head.height, faulty=list(faulty))

    def _run_for(self, info: DeadlineInfo) -> DeadlineRun:
        run = self._runs.get(info.open)
        if run is None:
            run = self._runs[info.open] = DeadlineRun(info)
        return run

    def _set_state(self, run: DeadlineRun, state: RunState, height: int, **extra: Any) -> None:
        if run.state is state:
            return
        run.state = state
        fields: dict[str, Any] = {
            "miner": str(self.miner),  # a node may prove for several
            "deadline": run.info.index,
            "open": run.info.open,
            "height": height,
            **extra,
        }
        if state is RunState.MISSED:
            log.error(
                "window post missed: the deadline closed without its PoSt on chain",
                last_error=run.last_error,
                **fields,
            )
        elif state is RunState.POSTED:
            log.info("window post deadline proven", partitions=list(run.posted), **fields)
        elif state is RunState.NOTHING_TO_PROVE:
            log.debug("window post: nothing to prove", **fields)
        else:
            log.debug("window post state", state=str(state), **fields)

    async def _advance(self, run: DeadlineRun, head: TipSet, info: MinerInfo, reorged: bool) -> None:
        height, dl = head.height, run.info
        miner = self._miner_id
        assert miner is not None
        if height < dl.challenge + self.challenge_confidence:
            self._set_state(run, RunState.WAITING, height)
            return
        deadlines = await trio.to_thread.run_sync(self.state.miner_deadlines, miner, head)
        partitions = await trio.to_thread.run_sync(self.state.miner_partitions, miner, dl.index, head)
        # Cron clears a deadline's posted partitions when its window closes, so until the next close
        # they are this window's.
        posted = deadlines[dl.index].partitions_posted
        self._track_landing(run, posted, height)
        tasks = partitions_to_prove(partitions, posted)
        if not tasks:
            self._set_state(run, RunState.POSTED if posted else RunState.NOTHING_TO_PROVE, height)
            return
        randomness = await trio.to_thread.run_sync(
            self.state.draw_beacon_randomness,
            head,
            DomainSeparationTag.WindowedPoStChallengeSeed,
            dl.challenge,
            post_entropy(miner),
        )
        proofs = run.proofs
        if proofs is None or not proofs.covers(tasks) or proofs.randomness != randomness:
            if proofs is not None:
                log.info(
                    "window post proving again: the partitions or the challenge changed", deadline=dl.index
                )
            self._set_state(run, RunState.PROVING, height)
            proofs = await self._prove(run, head, info, tasks, randomness)
            run.proofs, run.submissions = proofs, {}
        unposted = [(batch, p) for batch, p in enumerate(proofs.posts) if not set(p.indices) <= set(posted)]
        if not unposted:
            self._set_state(run, RunState.POSTED if posted else RunState.NOTHING_TO_PROVE, height)
            return
        # A message sent at height lands at height + 1 at the earliest, which must be inside the window.
        if height < dl.open + self.submit_after or height + 1 >= dl.close:
            if not run.submissions:
                self._set_state(run, RunState.PROVEN, height)
            return
        for batch, prepared in unposted:
            await self._submit_if_needed(run, batch, prepared, head, info, reorged)
        if run.submissions:
            self._set_state(run, RunState.SUBMITTED, height)

    def _track_landing(self, run: DeadlineRun, posted: BitField, height: int) -> None:
        landed = posted - run.posted
        lost = run.posted - posted
        if landed:
            log.info("window post landed", deadline=run.info.index, partitions=list(landed), height=height)
        if lost:
            log.warning(
                "window post reverted: partitions no longer proven on chain",
                deadline=run.info.index,
                partitions=list(lost),
                height=height,
            )
            # The pool puts reverted messages back: give the one that landed a chance to land again.
            for sub in run.submissions.values():
                if not set(sub.partitions).isdisjoint(lost):
                    sub.pushed_at = height
        run.posted = posted

    async def _prove(
        self,
        run: DeadlineRun,
        head: TipSet,
        info: MinerInfo,
        tasks: Sequence[PartitionTask],
        randomness: bytes,
    ) -> DeadlineProofs:
        miner = self._miner_id
        assert miner is not None
        dl = run.info
        numbers = BitField().union(*(t.to_prove for t in tasks))
        sectors = await trio.to_thread.run_sync(self.state.miner_sectors, miner, head, numbers)
        chain_sectors = {s.sector_number: s for s in sectors}
        log.info(
            "window post proving",
            deadline=dl.index,
            open=dl.open,
            challenge=dl.challenge,
            height=head.height,
            partitions=[t.index for t in tasks],
            sectors=numbers.count(),
        )
        per_message = max_partitions_per_message(self.policy, info.window_post_partition_sectors)
        proofs: DeadlineProofs = await trio.to_thread.run_sync(
            lambda: prove_deadline(
                self.sectors,
                miner,
                dl.index,
                info.window_post_proof_type,
                randomness,
                tasks,
                chain_sectors,
                per_message=per_message,
                max_message_size=self.policy.max_message_size,
            ),
            # A node stopping does not wait for a proof in progress (it only reads sectors). The
            # trio-typing stubs libp2p brings predate this argument's name.
            abandon_on_cancel=True,  # type: ignore[call-arg]
        )
        if proofs.skipped:
            log.warning(
                "window post skipping faulty sectors",
                deadline=dl.index,
                sectors={str(n): reason for n, reason in sorted(proofs.skipped.items())},
            )
        log.info(
            "window post generated",
            deadline=dl.index,
            messages=len(proofs.posts),
            proven=sum(len(p.proven) for p in proofs.posts),
            skipped=len(proofs.skipped),
            seconds=proofs.seconds,
        )
        return proofs

    async def _submit_if_needed(
        self,
        run: DeadlineRun,
        batch: int,
        prepared: PreparedPoSt,
        head: TipSet,
        info: MinerInfo,
        reorged: bool,
    ) -> None:
        height, dl = head.height, run.info
        sub = run.submissions.get(batch)
        if sub is None:
            sub = await self._adopt_pending(run, prepared, head, info)
            if sub is not None:
                run.submissions[batch] = sub
                return
        else:
            sub.pushed_at = min(sub.pushed_at, height)
            reason = None
            if reorged:
                now = await trio.to_thread.run_sync(
                    self.state.draw_chain_randomness,
                    head,
                    DomainSeparationTag.PoStChainCommit,
                    sub.commit_epoch,
                    b"",
                )
                if now != sub.commit_rand:
                    reason = f"the chain changed below its commit epoch {sub.commit_epoch}"
            if reason is None and height >= sub.pushed_at + self.resubmit_after:
                reason = f"not on chain {height - sub.pushed_at} epochs after it was pushed"
            if reason is None:
                return
            run.last_error = f"message {sub.message}: {reason}"
            log.warning(
                "window post sending again",
                deadline=dl.index,
                partitions=list(prepared.indices),
                message=str(sub.message),
                reason=reason,
                height=height,
            )
        miner = self._miner_id
        assert miner is not None
        commit_epoch = dl.challenge
        commit_rand: bytes = await trio.to_thread.run_sync(
            self.state.draw_chain_randomness, head, DomainSeparationTag.PoStChainCommit, commit_epoch, b""
        )
        params = prepared.params(commit_epoch, commit_rand)
        message = message_to_push(miner, info.worker, method=MinerMethod.SubmitWindowedPoSt, params=params)
        signed = await push_or_note(
            self.pusher,
            message,
            self.max_fee,
            run,
            "window post push failed",
            deadline=dl.index,
            partitions=list(prepared.indices),
            height=height,
        )
        if signed is None:
            return
        cid = signed.cid()
        run.attempts += 1
        run.submissions[batch] = Submission(cid, prepared.indices, height, commit_epoch, commit_rand)
        log.info(
            "window post submitted",
            deadline=dl.index,
            partitions=list(prepared.indices),
            sectors=len(prepared.proven),
            message=str(cid),
            commit_epoch=commit_epoch,
            height=height,
        )

    async def _adopt_pending(
        self, run: DeadlineRun, prepared: PreparedPoSt, head: TipSet, info: MinerInfo
    ) -> Submission | None:
        """A SubmitWindowedPoSt for these partitions of this deadline instance already waiting in the
        pool (pushed before a restart): taken as this batch's submission instead of sending another."""
        if self.pending is None:
            return None
        miner = self._miner_id
        dl = run.info
        waiting = await trio.to_thread.run_sync(self.pending.pending_for, info.worker)
        for signed in waiting:
            msg = signed.message
            if msg.to != miner or msg.method != MinerMethod.SubmitWindowedPoSt:
                continue
            try:
                params = SubmitWindowedPoStParams.from_cbor(dagcbor.decode(msg.params))
            except (DecodeError, ValueError):
                continue
            same = params.deadline == dl.index and dl.challenge <= params.chain_commit_epoch < dl.close
            if same and tuple(p.index for p in params.partitions) == prepared.indices:
                log.info(
                    "window post already in the message pool",
                    deadline=dl.index,
                    partitions=list(prepared.indices),
                    message=str(signed.cid()),
                )
                return Submission(
                    signed.cid(),
                    prepared.indices,
                    head.height,
                    params.chain_commit_epoch,
                    params.chain_commit_rand,
                )
        return None
