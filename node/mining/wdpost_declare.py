"""Declaring a miner's faults and recoveries on chain before each deadline's cutoff: the part of the
Window PoSt scheduler that follows node/mining/wdpost_faults.py's checks with messages.

On each head the scheduler hands over, the declarer looks at the next deadlines whose check epoch has
come and whose fault cutoff is still ahead (`check_epoch`, `can_declare`: normally one, the deadline two
after the current one; after a restart also the next one while its cutoff allows). For each such
deadline instance, once:

1. it reads the deadline's partitions at the head and checks their sectors on disk (a worker thread:
   every replica is read and hashed), which gives the new faults and the recoveries;

then on every head until the cutoff:

2. it compares them with the partitions at the head (`still_needed`): what the chain already shows
   (declared before a restart, or by someone else) is not declared again;
3. what is left is sent, batched as the actor takes it (`declaration_batches`), through the message
   pusher (MpoolPushMessage) from the worker with fees capped as a PoSt's, unless a message of the same
   kind was pushed less than `resubmit_after` epochs ago. A message found in the pool (pushed before a
   restart) that names the sectors is taken as sent. Each pushed message is looked for on chain (the
   state manager's message search) and its outcome logged: landed, or failed with its exit code (then
   sent again once `resubmit_after` epochs have passed);
4. at the cutoff, declarations still missing are logged as too late: a fault is then the PoSt's to
   skip (the actor marks the sector faulty), a recovery waits for the next proving period.

Nothing is persisted: the chain says what is declared, so a restarted node checks again and sends only
what is missing. Failures (state queries, the check, a refused push) are logged and retried on the next
head while the cutoff allows; they never stop the scheduler.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import structlog
import trio

from actors.miner.deadlines import Partition
from actors.miner.policy import DeadlineInfo
from actors.miner.state import MinerInfo
from chain.encoding.cid import CID
from chain.params import Policy
from chain.stmgr.search import MessageReplaced, UnknownMessage
from chain.types.address import Address
from chain.types.bitfield import BitField
from chain.types.tipset import TipSet
from node.mining.chain_api import MessagePush, MessageSearch, MinerChainState, PendingMessages
from node.mining.wdpost_faults import (
    CHECK_DEADLINES_AHEAD,
    DeclarationKind,
    FaultCheck,
    SentDeclaration,
    can_declare,
    check_deadline_sectors,
    check_epoch,
    covered,
    declaration_batches,
    declaration_message,
    declared_in,
    next_deadline,
    still_needed,
    unrecovered_faults,
)
from node.mining.wdpost_notes import note_failure, push_or_note
from node.mining.wdpost_proofs import provable_sectors
from node.sealing.sectors import SectorStore

log = structlog.get_logger("wdpost")


class DeclarationState(StrEnum):
    """Where one deadline instance's declarations stand."""

    WAITING = "waiting"  # not checked yet
    NOTHING_TO_CHECK = "nothing-to-check"  # the deadline holds no live sectors
    DECLARING = "declaring"  # declarations sent, not all shown on chain yet
    DONE = "done"  # checked, and everything found is declared on chain (or nothing was found)
    TOO_LATE = "too-late"  # the cutoff came with declarations missing on chain

    @property
    def final(self) -> bool:
        return self in (DeclarationState.DONE, DeclarationState.TOO_LATE)


@dataclass
class DeclarationRun:
    """The declarer's memory of one deadline instance."""

    info: DeadlineInfo
    state: DeclarationState = DeclarationState.WAITING
    check: FaultCheck | None = None
    sent: list[SentDeclaration] = field(default_factory=list)
    needed: dict[DeclarationKind, dict[int, BitField]] = field(default_factory=dict)
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class DeclarationStatus:
    """What the declarer knows of one deadline instance (for `filpy miner proving` and the logs)."""

    index: int
    open: int
    fault_cutoff: int
    state: DeclarationState
    faults: dict[int, str]  # sectors found unprovable by the check, with the reason
    recoveries: tuple[int, ...]  # faulty sectors the check found fine
    messages: tuple[tuple[str, CID, str | None], ...]  # (kind, message, outcome) of each one sent
    last_error: str | None


def _sectors(by_partition: dict[int, BitField]) -> list[int]:
    return list(BitField().union(*by_partition.values()))


@dataclass(kw_only=True, eq=False, repr=False)
class FaultDeclarer:
    """Declares one miner's faults and recoveries; driven by its WindowPoStScheduler (see above)."""

    state: MinerChainState
    pusher: MessagePush
    sectors: SectorStore
    policy: Policy
    pending: PendingMessages | None
    search: MessageSearch | None
    challenge_confidence: int
    resubmit_after: int
    max_fee: int
    _runs: dict[int, DeclarationRun] = field(init=False, default_factory=dict)  # by open epoch

    # -- views ----------------------------------------------------------------------------------------
    def status(self) -> tuple[DeclarationStatus, ...]:
        out = []
        for open_epoch in sorted(self._runs):
            run = self._runs[open_epoch]
            check = run.check
            out.append(
                DeclarationStatus(
                    index=run.info.index,
                    open=run.info.open,
                    fault_cutoff=run.info.fault_cutoff,
                    state=run.state,
                    faults=dict(check.reasons) if check else {},
                    recoveries=tuple(_sectors(dict(check.recoveries))) if check else (),
                    messages=tuple((str(s.kind), s.cid, s.outcome) for s in run.sent),
                    last_error=run.last_error,
                )
            )
        return tuple(out)

    def known_reason(self, sector: int) -> str | None:
        """Why the latest check of this sector found it unprovable (None: it found it fine, or no check
        in the last proving period looked at it)."""
        for open_epoch in sorted(self._runs, reverse=True):
            check = self._runs[open_epoch].check
            if check is not None and sector in check.checked:
                return check.reasons.get(sector)
        return None

    # -- each head --------------------------------------------------------------------------------------
    async def step(self, miner: Address, head: TipSet, current: DeadlineInfo, info: MinerInfo) -> None:
        """Handle the head: close the runs whose cutoff came, advance those of the deadlines due."""
        height = head.height
        for run in [r for r in self._runs.values() if not can_declare(r.info, height) and not r.state.final]:
            self._close(run, height)
        due = []
        # The deadline the head's epoch falls in. Not `current` itself: after null rounds the parent
        # state may not have run the crons that moved the miner's current deadline on, and then the
        # chain's "current deadline" is that index's next period (StateMinerProvingDeadline, as Lotus).
        candidate = DeadlineInfo.from_epoch(self.policy, current.period_start, height)
        for _ in range(CHECK_DEADLINES_AHEAD + 1):
            candidate = next_deadline(self.policy, candidate)
            if check_epoch(self.policy, candidate, self.challenge_confidence) <= height and can_declare(
                candidate, height
            ):
                due.append(candidate)
        for target in due:
            current_run = self._runs.get(target.open)
            if current_run is None:
                current_run = self._runs[target.open] = DeclarationRun(target)
            try:
                await self._advance(current_run, miner, head, info)
            except Exception as exc:
                note_failure(
                    current_run,
                    exc,
                    "fault declaration failed",
                    deadline=target.index,
                    open=target.open,
                    height=height,
                )
        horizon = height - self.policy.wpost_proving_period
        for open_epoch in [o for o, r in self._runs.items() if r.info.close < horizon]:
            del self._runs[open_epoch]

    def _close(self, run: DeclarationRun, height: int) -> None:
        """The cutoff has come: what the chain does not show by now will not be declared in time."""
        missing = {kind: needed for kind, needed in run.needed.items() if needed}
        if run.check is None:
            run.state = DeclarationState.DONE
            return
        if not missing:
            run.state = DeclarationState.DONE
            return
        run.state = DeclarationState.TOO_LATE
        for kind, needed in missing.items():
            log.warning(
                "fault declaration too late: the cutoff came before it was on chain",
                kind=str(kind),
                deadline=run.info.index,
                open=run.info.open,
                fault_cutoff=run.info.fault_cutoff,
                sectors=_sectors(needed),
                consequence=(
                    "the PoSt skips them and the actor marks them faulty"
                    if kind is DeclarationKind.FAULTS
                    else "they stay faulty until the next proving period"
                ),
                last_error=run.last_error,
                height=height,
            )

    async def _advance(self, run: DeclarationRun, miner: Address, head: TipSet, info: MinerInfo) -> None:
        dl = run.info
        partitions = await trio.to_thread.run_sync(self.state.miner_partitions, miner, dl.index, head)
        if run.check is None:
            numbers = BitField().union(*(provable_sectors(p) | unrecovered_faults(p) for p in partitions))
            if not numbers:
                run.state = DeclarationState.NOTHING_TO_CHECK
                return
            chain_sectors = await trio.to_thread.run_sync(self.state.miner_sectors, miner, head, numbers)
            by_number = {s.sector_number: s for s in chain_sectors}
            check: FaultCheck = await trio.to_thread.run_sync(
                lambda: check_deadline_sectors(self.sectors, miner, dl.index, partitions, by_number),
                abandon_on_cancel=True,  # type: ignore[call-arg]
            )
            run.check = check
            fields: dict[str, Any] = {
                "deadline": dl.index,
                "open": dl.open,
                "fault_cutoff": dl.fault_cutoff,
                "height": head.height,
                "sectors": check.checked.count(),
                "faulty": {str(n): r for n, r in check.reasons.items()},
                "recovered": _sectors(dict(check.recoveries)),
                "seconds": check.seconds,
            }
            if check.reasons or check.recoveries:
                log.info("fault check", **fields)
            else:
                log.debug("fault check", **fields)
        check = run.check
        for kind in DeclarationKind:
            await self._follow(run, kind, head, partitions)
            needed = still_needed(kind, check.wanted(kind), partitions)
            run.needed[kind] = needed
            if needed:
                await self._declare(run, kind, needed, miner, head, info)
        if any(run.needed.values()):
            run.state = DeclarationState.DECLARING
        else:
            run.state = DeclarationState.DONE

    async def _follow(
        self, run: DeclarationRun, kind: DeclarationKind, head: TipSet, partitions: Sequence[Partition]
    ) -> None:
        """Log the outcome of each message of this kind that has executed since the last head (without
        a message search: once the chain shows what it declared)."""
        for sent in run.sent:
            if sent.kind is not kind or sent.outcome is not None:
                continue
            search = self.search
            if search is None:
                if not still_needed(kind, sent.by_partition(), partitions):
                    sent.outcome = "ok"
                    self._landed(run, sent, head.height, 0)
                continue
            limit = head.height - sent.pushed_at + 2
            try:
                found = await trio.to_thread.run_sync(search.search_msg, head, sent.cid, limit)
            except (UnknownMessage, MessageReplaced):
                found = None
            if found is None:
                continue
            code = int(found.receipt.exit_code)
            sent.outcome = "ok" if code == 0 else f"exit code {code}"
            self._landed(run, sent, found.height, code)

    def _landed(self, run: DeclarationRun, sent: SentDeclaration, height: int, code: int) -> None:
        fields: dict[str, Any] = {
            "deadline": run.info.index,
            "sectors": list(sent.sectors),
            "message": str(sent.cid),
            "height": height,
        }
        if code == 0:
            event = "faults declared" if sent.kind is DeclarationKind.FAULTS else "recoveries declared"
            log.info(event, **fields)
        else:
            run.last_error = f"message {sent.cid}: exit code {code}"
            log.error("fault declaration failed on chain", kind=str(sent.kind), exit_code=code, **fields)

    async def _declare(
        self,
        run: DeclarationRun,
        kind: DeclarationKind,
        needed: dict[int, BitField],
        miner: Address,
        head: TipSet,
        info: MinerInfo,
    ) -> None:
        height, dl = head.height, run.info
        recent = [s for s in run.sent if s.kind is kind and height < s.pushed_at + self.resubmit_after]
        if recent:
            return  # in flight, or failed a moment ago: give it the time a message takes
        earlier = [s for s in run.sent if s.kind is kind]
        if earlier:
            last = earlier[-1]
            reason = (
                f"it failed on chain ({last.outcome})"
                if last.outcome not in (None, "ok")
                else f"not on chain {height - last.pushed_at} epochs after it was pushed"
            )
            log.warning(
                "fault declaration sending again",
                kind=str(kind),
                deadline=dl.index,
                message=str(last.cid),
                reason=reason,
                height=height,
            )
        elif await self._adopt_pending(run, kind, needed, miner, info.worker, height):
            return
        for batch in declaration_batches(self.policy, dl.index, needed):
            message = declaration_message(kind, miner, info.worker, batch)
            signed = await push_or_note(
                self.pusher,
                message,
                self.max_fee,
                run,
                "fault declaration push failed",
                kind=str(kind),
                deadline=dl.index,
                height=height,
            )
            if signed is None:
                return
            sent = SentDeclaration(kind, signed.message, signed.cid(), batch, height)
            run.sent.append(sent)
            log.info(
                "declaring faults" if kind is DeclarationKind.FAULTS else "declaring recoveries",
                deadline=dl.index,
                fault_cutoff=dl.fault_cutoff,
                partitions=[d.partition for d in batch],
                sectors=list(sent.sectors),
                message=str(sent.cid),
                height=height,
            )

    async def _adopt_pending(
        self,
        run: DeclarationRun,
        kind: DeclarationKind,
        needed: dict[int, BitField],
        miner: Address,
        worker: Address,
        height: int,
    ) -> bool:
        """A declaration of these sectors from worker to miner already waiting in the pool (pushed
        before a restart): taken as sent, at height, instead of sending another."""
        if self.pending is None:
            return False
        waiting = await trio.to_thread.run_sync(self.pending.pending_for, worker)
        for signed in waiting:
            msg = signed.message
            if msg.to != miner:
                continue
            declarations = declared_in(kind, msg)
            if declarations is None or not covered(declarations, run.info.index, needed):
                continue
            run.sent.append(SentDeclaration(kind, msg, signed.cid(), declarations, height))
            log.info(
                "fault declaration already in the message pool",
                kind=str(kind),
                deadline=run.info.index,
                message=str(signed.cid()),
            )
            return True
        return False
