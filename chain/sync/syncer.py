"""The syncer: bring our chain to a target tipset a peer announced, validating everything on the way
(Lotus chain/sync.go: Sync, collectChain, collectHeaders, syncMessagesAndCheckState).

`sync(target, peers, state)` runs in stages, reported on `state` (chain/sync/state.py):

1. headers: walk the target's chain back to a tipset we have validated (our chain, or a fork we
   validated before; the genesis at worst), from the local store where headers are already there
   (a gossiped block's, a previous attempt's) and otherwise from peers by chain exchange, in requests of
   up to 900 tipsets, the announcing peers first. Each header is checked as it comes
   (chain/sync/headers.py: syntax, heights, timestamps, weights, beacon rounds; the first tipset above
   the validated one must carry its exact weight) and stored. Only the tipset keys stay in memory: a
   catch-up over a hundred thousand epochs holds a few megabytes of keys, never the chain.
2. messages: going forward from there, in batches of `message_batch` tipsets: each tipset's messages
   come from the local store, or from peers (chain exchange, messages option; one request per batch,
   retried after a pause when no peer answers) while the previous batch is being validated; every
   block is validated in full (chain/consensus/validation.py validate_block; its parent is executed
   first, each tipset once), its messages stored, the tipset's weight recorded. After each batch, and
   at the end, fork choice: the largest tipset validated blocks form at that height and parents
   (chain/sync/tracker.py, with our head's blocks there) is executed (the message pool reads the
   state after the head) and given to the chain store's `take_heavier`, so a reorg to a heavier fork
   happens here, and its reverts and applies reach the chain store's subscribers and the message
   pool. Then `after_batch`, when set (the node's garbage collector policy, node/gcpolicy.py).

A block that breaks a rule is remembered as bad with the reason (chain/sync/badblocks.py), so are the
blocks of the target's chain above it ("linked"), the peers that announced the target are penalised,
and the target is abandoned. A chain that only joins ours more than `chain_finality` epochs below our
head is refused and its target marked bad ("fork past finality", as Lotus). Temporal failures (a block
from the future) and network failures abandon the target without marking anything.

A tipset is *validated* when the chain store holds a weight for it (`tipset_weight`): the syncer
records one only once every block of it passed validate_block, the mining loop for its own validated
blocks, the chain store for its head. Its own execution may come later (as the parent of the next
tipset, or when it becomes the head).

Blocking work (LevelDB, validation, execution) runs in worker threads; several syncs may run at once
(the state manager serialises execution, the chain store head changes).
"""

import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Final, TypeVar

import structlog
import trio

from chain.chainstore.store import ChainStore, ChainStoreError, TipSetNotFound
from chain.consensus.base_fee import remember_base_fee
from chain.consensus.beacon import RandomBeacon
from chain.consensus.fullblock import FullBlock
from chain.consensus.validation import BlockFromFuture, BlockValidationError, validate_block
from chain.consensus.verified import VerifierPool
from chain.consensus.weight import weight_of
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.stmgr.manager import StateManager
from chain.store.blockstore import BlockNotFound
from chain.store.lru import Lru
from chain.sync.ahead import CheckAhead
from chain.sync.badblocks import BadBlockCache, BadBlockReason
from chain.sync.exchange import ChainExchange, ExchangeError, Peer
from chain.sync.headers import BadHeader, check_junction, check_link, check_tipset_headers
from chain.sync.state import SyncerState, SyncStage
from chain.sync.tracker import TipSetTracker
from chain.types.tipset import InvalidTipSet, TipSet, TipSetKey

T = TypeVar("T")

# lotus exchange MaxRequestLength: the most tipsets one chain exchange request may ask for.
MAX_HEADER_REQUEST: Final = 900
# Tipsets whose messages are fetched in one request, and validated before the head moves.
DEFAULT_MESSAGE_BATCH: Final = 64
# Pauses before asking again when no peer gave a usable answer (a busy peer says go away for 10 s).
RETRY_PAUSES: Final = (1.0, 3.0, 10.0)
# Block CIDs remembered as validated (so that a block is not validated twice).
_VALIDATED_CACHE: Final = 8192
# Syncs of at least this many tipsets run the blocks' signature and PoSt checks ahead in a worker
# process (chain/sync/ahead.py): starting one costs a few hundred milliseconds.
DEFAULT_CHECK_AHEAD_FROM: Final = 200
# Seconds of validation and execution per trip to a worker thread during a catch-up: short enough that
# progress (SyncState) and cancellation stay prompt, long enough to spread a trip over many tipsets.
APPLY_SLICE: Final = 0.05

_log = structlog.get_logger(__name__)

Penalize = Callable[[Peer, str], None]


class SyncError(Exception):
    """The target could not be synced; the message says why."""


class InvalidChain(SyncError):
    """The target's chain holds a bad block (now remembered in the bad block cache)."""

    def __init__(self, message: str, reason: BadBlockReason) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(slots=True)
class SyncTimings:
    """Seconds spent in each part of syncing since the syncer started, over all syncs (benchmarks and
    logs: where the time goes). Execution is timed apart from validation: each tipset is executed
    once, as the parent of the next one validated (or as a new head)."""

    header_fetch: float = 0.0
    header_check: float = 0.0  # checks and storing headers
    message_fetch: float = 0.0
    validation: float = 0.0  # validate_block without executing the parent
    execution: float = 0.0
    fork_choice: float = 0.0  # weights, and the head switch with its notifications
    checks_ahead: float = 0.0  # computing the inputs of checks run ahead in a worker process
    blocks: int = 0  # blocks validated


class _Timed:
    """Adds the seconds its block takes to one part of timings. A class, not a generator context
    manager: three of these wrap every block validated, and a generator's costs several times more."""

    __slots__ = ("_part", "_start", "_timings")

    def __init__(self, timings: SyncTimings, part: str) -> None:
        self._timings = timings
        self._part = part
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *_exc: object) -> None:
        part = self._part
        setattr(self._timings, part, getattr(self._timings, part) + time.perf_counter() - self._start)


@dataclass(slots=True)
class _HeaderChain:
    """The target's chain above the validated tipset it joins: keys oldest first."""

    base: TipSet
    keys: list[TipSetKey]


class Syncer:
    def __init__(
        self,
        chain: ChainStore,
        sm: StateManager,
        beacon: RandomBeacon,
        exchange: ChainExchange,
        *,
        penalize: Penalize | None = None,
        bad: BadBlockCache | None = None,
        message_batch: int = DEFAULT_MESSAGE_BATCH,
        limiter: trio.CapacityLimiter | None = None,
        clock: Callable[[], float] = time.time,
        retry_pauses: Sequence[float] = RETRY_PAUSES,
        check_ahead_from: int | None = DEFAULT_CHECK_AHEAD_FROM,
        after_batch: Callable[[], None] | None = None,
    ) -> None:
        if message_batch < 1:
            raise ValueError(f"message_batch must be at least 1, got {message_batch}")
        self.chain = chain
        self.sm = sm
        self.beacon = beacon
        self.policy = sm.policy
        self.exchange = exchange
        self.penalize = penalize
        self.bad = bad or BadBlockCache()
        self.tracker = TipSetTracker()
        self.message_batch = message_batch
        self.vm_applied = 0  # messages executed by tipsets this syncer had executed
        self.tipsets_applied = 0
        self.timings = SyncTimings()
        self.retry_pauses = tuple(retry_pauses)
        self._validated: Lru[CID, bool] = Lru(_VALIDATED_CACHE)
        self._limiter = limiter
        self._clock = clock
        self.check_ahead_from = check_ahead_from  # None: never check ahead
        self.checks_ahead = 0  # checks handed to a worker process, over all syncs
        # Called (in the event loop's thread) after each batch of tipsets is applied and fork choice
        # ran: the node's garbage collector policy (node/gcpolicy.py).
        self.after_batch = after_batch

    # -- small helpers ----------------------------------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    async def _retrying(self, request: Callable[[], Awaitable[T]]) -> T:
        """A chain exchange request, tried again after a pause when no peer answered (busy peers say
        go away; Lotus retries message fetches five times)."""
        for pause in self.retry_pauses:
            try:
                return await request()
            except ExchangeError as exc:
                _log.info("sync.exchange_retry", error=str(exc), pause=pause)
            await trio.sleep(pause)
        return await request()

    def is_validated(self, ts: TipSet) -> bool:
        """Whether ts was validated in full (the chain store holds its weight)."""
        return self.chain.tipset_weight(ts) is not None

    def is_validated_key(self, key: TipSetKey) -> bool:
        """Whether the tipset of these blocks was validated in full (blocking)."""
        ts = self.load_local_tipset(key)
        return ts is not None and self.is_validated(ts)

    def is_validated_block(self, cid: CID) -> bool:
        return self._validated.get(cid) is not None

    def bad_reason(self, ts: TipSet) -> BadBlockReason | None:
        for cid in ts.cids:
            reason = self.bad.get(cid)
            if reason is not None:
                return reason
        return None

    def _penalize(self, peers: Sequence[Peer], reason: str) -> None:
        if self.penalize is None:
            return
        for peer in peers:
            self.penalize(peer, reason)

    # -- blocks arriving whole (gossip, our own miner) ----------------------------------------------------
    def store_block(self, block: FullBlock) -> None:
        """Keep a received block's header and messages (blocking: call from a worker thread); the
        gossip validator has checked its messages against its header's Messages root."""
        self.chain.put_messages(block.bls_messages, block.secp_messages)
        self.chain.put_block(block.header)

    def note_validated(self, block: FullBlock) -> None:
        """A block validated elsewhere (our own miner's): track it for fork choice (blocking)."""
        self.store_block(block)
        self._validated.put(block.cid(), True)
        self.tracker.add(block.header)

    # -- the sync -----------------------------------------------------------------------------------
    async def sync(self, target: TipSet, peers: Sequence[Peer], state: SyncerState) -> None:
        """Sync to target (see the module doc); raises SyncError (InvalidChain when it is bad)."""
        head = self.chain.head()
        state.init(head, target)
        try:
            if not self.is_validated(target):
                chain = await self._collect_headers(target, peers, state)
                state.set_stage(SyncStage.MESSAGES)
                await self._sync_messages(target, chain, peers, state)
            await self._run(self._take_heaviest, target)
        except InvalidChain as exc:
            self._penalize(peers, str(exc))
            state.error(str(exc))
            raise
        except SyncError as exc:
            state.error(str(exc))
            raise
        state.set_stage(SyncStage.COMPLETE)

    # -- stage 1: headers ---------------------------------------------------------------------------------
    def _reject(self, error: BadHeader, above: Sequence[TipSetKey], tipset: tuple[CID, ...]) -> SyncError:
        """Remember a bad header (and the chain above it) and say so; a temporal failure only says so."""
        if error.temporal:
            return SyncError(f"cannot sync yet: {error}")
        reason = self.bad.mark([error.block], f"{type(error.error).__name__}: {error.error}", tipset)
        self.bad.mark_linked(
            [cid for key in above for cid in key.cids if cid != error.block],
            reason,
            f"linked to {error.block}",
        )
        return InvalidChain(f"invalid chain: {error}", reason)

    def _check_known_bad(self, ts: TipSet, above: Sequence[TipSetKey]) -> None:
        for cid in ts.cids:
            reason = self.bad.get(cid)
            if reason is not None:
                self.bad.mark_linked(
                    [c for key in above for c in key.cids if c not in ts.cids],
                    reason,
                    f"chain contained {cid}",
                )
                raise InvalidChain(f"chain contains block {cid}, marked bad: {reason}", reason)

    async def _collect_headers(
        self, target: TipSet, peers: Sequence[Peer], state: SyncerState
    ) -> _HeaderChain:
        head = self.chain.head()
        floor = head.height - self.policy.chain_finality
        now = self._clock()
        above: list[TipSetKey] = [target.key]  # newest first
        self._check_known_bad(target, [])
        for cid in target.blocks[0].parents:
            reason = self.bad.get(cid)
            if reason is not None:
                self.bad.mark_linked(target.cids, reason, f"linked to {cid}")
                raise InvalidChain(f"target's parent {cid} is marked bad: {reason}", reason)
        try:
            check_tipset_headers(target, now=now)
        except BadHeader as exc:
            raise self._reject(exc, above, target.cids) from None
        await self._run(self.chain.put_tipset, target)
        child = target
        state.set_height(target.height)
        while True:
            local = await self._run(self.load_local_tipset, child.parents)
            if local is not None:
                segment = [local]
            else:
                count = self._header_window(child, head, floor)
                try:
                    with _Timed(self.timings, "header_fetch"):
                        segment = await self._retrying(
                            partial(self.exchange.headers, child.parents, count, prefer=peers)
                        )
                except ExchangeError as exc:
                    raise SyncError(f"cannot fetch headers below height {child.height}: {exc}") from None
                if not segment or segment[0].key != child.parents:
                    raise SyncError(f"peers answered headers that are not {child.parents}")
            with _Timed(self.timings, "header_check"):
                found = await self._run(self._check_segment, child, segment, above, now, floor, target)
            if found is not None:
                state.set_stage(SyncStage.PERSIST_HEADERS)
                above.reverse()
                return _HeaderChain(found, above)
            child = segment[-1]
            state.set_height(child.height)

    @staticmethod
    def _header_window(child: TipSet, head: TipSet, floor: int) -> int:
        """How many headers to ask for below child: down to just above our head when child is above it
        (Lotus collectHeaders), else down to the finality floor (a fork: Lotus syncFork)."""
        gap = child.height - 1 - head.height
        if gap < 1:
            gap = child.height - max(floor, 0)
        return max(1, min(MAX_HEADER_REQUEST, gap))

    def load_local_tipset(self, key: TipSetKey) -> TipSet | None:
        """The tipset if the store has its headers (validated or not), else None (blocking)."""
        try:
            return self.chain.load_tipset(key)
        except (TipSetNotFound, BlockNotFound, DecodeError, InvalidTipSet):
            return None

    def _check_segment(
        self,
        child: TipSet,
        segment: Sequence[TipSet],
        above: list[TipSetKey],
        now: float,
        floor: int,
        target: TipSet,
    ) -> TipSet | None:
        """Check and store tipsets walking back from child (blocking); the validated tipset reached,
        or None to go on. Appends the keys of unvalidated ones to `above`."""
        for ts in segment:
            if not child.is_child_of(ts):
                raise SyncError(f"the headers at height {ts.height} are not the parents of {child.key}")
            weight = self.chain.tipset_weight(ts)
            if weight is not None:
                try:
                    check_junction(child, weight)
                except BadHeader as exc:
                    raise self._reject(exc, above, child.cids) from None
                return ts
            self._check_known_bad(ts, above)
            try:
                check_tipset_headers(ts, now=now)
                check_link(child, ts, self.policy, self.beacon)
            except BadHeader as exc:
                raise self._reject(exc, above, child.cids if exc.block in child.cids else ts.cids) from None
            if ts.height == 0:
                reason = self.bad.mark(target.cids, f"chain of another genesis {ts.key}", target.cids)
                raise InvalidChain(f"the target's chain starts at another genesis ({ts.key})", reason)
            if ts.height < floor:
                reason = self.bad.mark(target.cids, "fork past finality", target.cids)
                raise InvalidChain(
                    f"the target's chain leaves ours more than {self.policy.chain_finality} epochs below our"
                    f" head (still unknown at height {ts.height})",
                    reason,
                )
            self.chain.put_tipset(ts)
            above.append(ts.key)
            child = ts
        return None

    # -- stage 2: messages, validation, execution -------------------------------------------------------
    async def _sync_messages(
        self, target: TipSet, chain: _HeaderChain, peers: Sequence[Peer], state: SyncerState
    ) -> None:
        keys = chain.keys
        if self.check_ahead_from is None or len(keys) < self.check_ahead_from:
            await self._sync_batches(keys, peers, state, None)
            return
        pool = await self._run(VerifierPool)
        ahead = CheckAhead(self.sm, pool)
        try:
            await self._sync_batches(keys, peers, state, ahead)
        finally:
            self.checks_ahead += ahead.submitted
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(pool.close)

    async def _sync_batches(
        self, keys: Sequence[TipSetKey], peers: Sequence[Peer], state: SyncerState, ahead: CheckAhead | None
    ) -> None:
        send, receive = trio.open_memory_channel[tuple[int, list[tuple[FullBlock, ...]]] | SyncError](1)

        async def fetch_batches() -> None:
            # The next batch is fetched while the one before is validated; at most two are held.
            async with send:
                try:
                    for start in range(0, len(keys), self.message_batch):
                        batch = keys[start : start + self.message_batch]
                        await send.send((start, await self._full_tipsets(batch, peers, state)))
                except SyncError as exc:
                    await send.send(exc)

        failure: SyncError | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fetch_batches)
            try:
                async with receive:
                    async for item in receive:
                        if isinstance(item, SyncError):
                            raise item
                        await self._apply_batch(keys, *item, state, ahead)
            except SyncError as exc:
                failure = exc
                nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _apply_batch(
        self,
        keys: Sequence[TipSetKey],
        start: int,
        full: Sequence[tuple[FullBlock, ...]],
        state: SyncerState,
        ahead: CheckAhead | None = None,
    ) -> None:
        state.set_stage(SyncStage.MESSAGES)
        if ahead is not None:
            ahead.extend(full)
        if not full:
            return
        done = 0
        while done < len(full):
            done, last = await self._run(self._apply_slice, keys, start, full, done, ahead)
            state.set_height(last.height)
        await self._run(self._take_heaviest, last)
        if self.after_batch is not None:
            self.after_batch()

    def _apply_slice(
        self,
        keys: Sequence[TipSetKey],
        start: int,
        full: Sequence[tuple[FullBlock, ...]],
        first: int,
        ahead: CheckAhead | None,
    ) -> tuple[int, TipSet]:
        """_apply_full on full[first], full[first + 1]... for about APPLY_SLICE seconds (blocking): one trip
        to a worker thread for several tipsets, not one each (on a busy machine every trip waits for the
        scheduler twice, for the thread and for the event loop). Returns the index after the last
        tipset applied, and that tipset."""
        until = time.monotonic() + APPLY_SLICE
        i = first
        while True:
            above = keys[start + i + 1 :]
            last = (
                self._apply_full(full[i], above) if ahead is None else self._apply_full(full[i], above, ahead)
            )
            i += 1
            if i == len(full) or time.monotonic() >= until:
                return i, last

    async def _full_tipsets(
        self, batch: Sequence[TipSetKey], peers: Sequence[Peer], state: SyncerState
    ) -> list[tuple[FullBlock, ...]]:
        """The batch's tipsets with their messages, oldest first: from the store where it has them,
        else from peers."""
        tipsets, found = await self._run(self._fill_local, batch)
        missing = [i for i, blocks in enumerate(found) if blocks is None]
        while missing:
            # One request from the newest tipset lacking messages back to the oldest (a request walks
            # back by parents; tipsets in between whose messages we have come again, cheaply).
            oldest, newest = missing[0], missing[-1]
            state.set_stage(SyncStage.FETCHING_MESSAGES)
            try:
                run = tipsets[newest : oldest - 1 if oldest else None : -1]
                with _Timed(self.timings, "message_fetch"):
                    answer = await self._retrying(partial(self.exchange.messages, run, prefer=peers))
            except ExchangeError as exc:
                raise SyncError(
                    f"cannot fetch the messages of height {tipsets[newest].height}: {exc}"
                ) from None
            if not answer:
                raise SyncError(f"peers sent no messages for height {tipsets[newest].height}")
            for offset, blocks in enumerate(answer[: newest - oldest + 1]):
                found[newest - offset] = blocks
            missing = [i for i in missing if found[i] is None]
        return [blocks for blocks in found if blocks is not None]

    def _fill_local(
        self, batch: Sequence[TipSetKey]
    ) -> tuple[list[TipSet], list[tuple[FullBlock, ...] | None]]:
        tipsets = [self.chain.load_tipset(key) for key in batch]
        found: list[tuple[FullBlock, ...] | None] = []
        for ts in tipsets:
            try:
                blocks = []
                for header in ts.blocks:
                    bls, secpk = self.chain.messages_for_block(header)
                    blocks.append(FullBlock(header, tuple(bls), tuple(secpk)))
                found.append(tuple(blocks))
            except (BlockNotFound, DecodeError):
                found.append(None)
        return tipsets, found

    def _apply_full(
        self, blocks: Sequence[FullBlock], above: Sequence[TipSetKey], ahead: CheckAhead | None = None
    ) -> TipSet:
        """Validate a tipset's blocks, store their messages, execute it, record its weight (blocking);
        ahead: the sync's checks run ahead, handed over as lookback states become known."""
        ts = TipSet(tuple(b.header for b in blocks))
        if self.is_validated(ts):
            return ts
        for block in blocks:
            cid = block.cid()
            if self.is_validated_block(cid):
                continue
            reason = self.bad.get(cid)
            if reason is not None:
                self.bad.mark_linked([c for key in above for c in key.cids], reason, f"chain contained {cid}")
                raise InvalidChain(f"chain contains block {cid}, marked bad: {reason}", reason)
            before = self.sm.executions
            try:
                with _Timed(self.timings, "execution"):
                    self._parent_state(ts)
                if ahead is not None:
                    with _Timed(self.timings, "checks_ahead"):
                        ahead.advance(ts.height)
                with _Timed(self.timings, "validation"):
                    validate_block(self.sm, self.beacon, block, now=self._clock())
                self.timings.blocks += 1
            except BlockFromFuture as exc:
                raise SyncError(f"cannot sync yet: block {cid}: {exc}") from None
            except BlockValidationError as exc:
                reason = self.bad.mark([cid], f"{type(exc).__name__}: {exc}", ts.cids)
                self.bad.mark_linked([c for key in above for c in key.cids], reason, f"linked to {cid}")
                _log.warning(
                    "sync.bad_block",
                    block=str(cid),
                    height=ts.height,
                    rule=type(exc).__name__,
                    error=str(exc),
                )
                raise InvalidChain(
                    f"block {cid} at height {ts.height} is invalid: {type(exc).__name__}: {exc}", reason
                ) from None
            finally:
                self._count_executions(before, ts.parents)
            self.store_block(block)
            self._validated.put(cid, True)
            self.tracker.add(block.header)
        # Valid: its blocks are, each on the executed parent. ts itself is executed when it becomes
        # the head (fork choice) or when its child is validated, not twice.
        self.chain.put_tipset(ts, weight_of(self.chain.blockstore, ts, self.sm.read_tree))
        # The base fee its children carry, from the messages in hand (validating the child would read
        # and decode them again from the store).
        messages = [(b.bls_messages, b.secp_messages) for b in blocks]
        remember_base_fee(self.chain.blockstore, ts, messages, self.policy)
        return ts

    def _parent_state(self, ts: TipSet) -> None:
        """Execute ts's parent ahead of validation (which needs its state), if it is stored."""
        parent = self.load_local_tipset(ts.parents)
        if parent is not None:
            self.sm.state_of(parent)

    def _count_executions(self, before: int, key: TipSetKey) -> None:
        """Count the messages of the tipset validation executed (the parent), if it executed one."""
        if self.sm.executions > before:
            self.tipsets_applied += 1
            with contextlib.suppress(ChainStoreError):
                self.vm_applied += len(self.sm.state_of(self.chain.load_tipset(key)).receipts)

    def _execute(self, ts: TipSet) -> None:
        """The state after ts: what the message pool reads once ts is the head."""
        before = self.sm.executions
        result = self.sm.state_of(ts)
        if self.sm.executions > before:
            self.vm_applied += len(result.receipts)
            self.tipsets_applied += 1

    # -- fork choice ------------------------------------------------------------------------------------
    def _take_heaviest(self, ts: TipSet) -> bool:
        """Make the largest tipset validated blocks form at ts's height and parents the head, if it is
        heavier than the head (blocking); whether the head changed."""
        with _Timed(self.timings, "fork_choice"):
            expanded = self.tracker.expand(ts)
            head = self.chain.head()
            if head.height == ts.height and head.parents == ts.parents and head.key != expanded.key:
                expanded = self._merge(expanded, head)
            weight = weight_of(self.chain.blockstore, expanded, self.sm.read_tree)
            if weight < self.chain.head_weight():
                return False
        with _Timed(self.timings, "execution"):
            self._execute(expanded)
        with _Timed(self.timings, "fork_choice"):
            self.chain.put_tipset(expanded, weight)
            try:
                changed = self.chain.take_heavier(expanded, weight)
            except ChainStoreError as exc:
                raise SyncError(f"cannot switch to {expanded.key}: {exc}") from None
        if changed:
            _log.debug("sync.head", height=expanded.height, blocks=len(expanded.blocks), weight=weight)
        return changed

    @staticmethod
    def _merge(ts: TipSet, other: TipSet) -> TipSet:
        miners = {b.miner for b in ts.blocks}
        extra = [b for b in other.blocks if b.miner not in miners]
        return TipSet((*ts.blocks, *extra)) if extra else ts

    def take_heaviest(self, ts: TipSet) -> bool:
        """Fork choice around a validated tipset (blocking; for the mining loop's own tipsets)."""
        return self._take_heaviest(ts)
