"""The block-mining service of the node's local miners, as Lotus's miner/miner.go.

Each epoch e has its time on the wall clock: the base's timestamp + block delay x (e - base height),
i.e. genesis time + e x block delay, which is the timestamp a block at e must carry (the consensus
rule, chain/consensus/validation.py). A propagation delay into the epoch (a quarter of the block delay,
at most Lotus's 6 s), the service takes the heaviest head as its base and, for every local miner, runs
the election (chain/consensus/producer.py: ticket, election proof, WinCount, Winning PoSt) with the
messages the pool selects on that base. Each block made is validated (chain/consensus/validation.py)
before anything is applied: a block failing validation is logged at error level and dropped. The blocks
of one epoch form one tipset; its state is computed (the message pool reads the state after the head)
and it becomes the head if it is heavier (`take_heavier`, which tells the chain's subscribers). When no
local miner wins, the epoch is a null round and the next epoch is tried on the same base, as on
Filecoin. All of this runs in a worker thread (FullNode.run_sync): the event loop keeps answering RPC.

Catching up. The next epoch is always the one after the base (and after null rounds tried on it), as
Lotus's miner does; when its time has passed (a node restarted after a stop, mining resumed after a
pause, a slow block) it is mined at once, with its timestamp in the past, and so on epoch after epoch
until the chain reaches the wall clock. Jumping straight to the current epoch instead would make every
epoch in between a null round whose cron runs the miner's deadlines without a Window PoSt: past one
proving period (120 epochs on the devnet) the sectors are faulty, the miner has no power left and
nobody can ever mine again. Catching up keeps the Window PoSt going (the mining loop waits for its
pacers, the Window PoSt scheduler, to have handled each head) and costs about 25 ms per empty epoch.

Block delay 0 (`filpy devnet --block-delay 0`): blocks are mined only on demand, when a message enters
the pool or `mine_now` is called (Filpy.MineTipset). Epochs then do not follow the wall clock: by the
consensus rule every block carries its parent's timestamp, so the whole chain carries the timestamp of
its first block made with delay 0 (the genesis time for a devnet made so).

`add_miner(miner, pacer=...)` mines with one more local miner from the next epoch on (a miner created
while the node runs, paced by its Window PoSt scheduler). `set_enabled(False)` pauses the loop
(Filpy.SetMining); `mine_now()` mines the next epoch whatever the loop does (at its time when
timestamps follow the clock), trying up to MINE_ATTEMPTS epochs. The same miner never makes two blocks
at one height (Lotus's minedBlockHeights check; two would be a consensus fault).
"""

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

import structlog
import trio

from chain.consensus.election import InvalidWorker, mining_base
from chain.consensus.fullblock import FullBlock
from chain.consensus.producer import ProducerError, produce_block
from chain.consensus.validation import BlockValidationError, validate_block
from chain.consensus.weight import weight_of
from chain.mpool.pool import MpoolChange, MpoolUpdate
from chain.stmgr.miners import power_state
from chain.sync.state import ActiveSync, SyncStage
from chain.types.beacon import BeaconEntry
from chain.types.message import SignedMessage
from chain.types.tipset import TipSet, TipSetKey
from node.daemon import TaskStatus, describe_error
from node.fullnode import FullNode
from node.mining.local import LocalMiner
from node.pulse import Pulse

# Lotus's PropagationDelaySecs on mainnet (6 s of 30); devnets wait a quarter of their block delay.
MAX_PROPAGATION_DELAY: Final = 6.0
PROPAGATION_SHARE: Final = 0.25
# Epochs mine_now (Filpy.MineTipset) tries before answering that nobody won.
MINE_ATTEMPTS: Final = 5
# The longest the loop waits for a pacer (the Window PoSt scheduler) to handle a head before mining on.
PACER_TIMEOUT: Final = 30.0
# While catching up with the wall clock, a progress line every this many epochs.
CATCH_UP_LOG_EVERY: Final = 100
# Behind the clock by this many epochs (a day at 4 s), catching up takes minutes: said as a warning.
CATCH_UP_WARN_EPOCHS: Final = 21_600
# After an attempt failed for an unexpected reason, wait this long (at least) before the next one.
FAILURE_BACKOFF: Final = 1.0

# How long a miner on a network waits for a bootstrap peer, then for the sync it starts, before mining
# on its own chain (a node restarted behind its peers should follow them, not mine the epochs it missed).
NETWORK_START_WAIT: Final = 30.0
# The least time given to a missing beacon round before the epoch is skipped.
MIN_BEACON_WAIT: Final = 1.0

# Something that must have handled a head before a block is mined on it: the Window PoSt scheduler's
# wait_processed, so that its proofs get into the next block even when epochs follow each other fast.
Pacer = Callable[[TipSet], Awaitable[None]]
# The drand beacon service's wait_entry(round, timeout=...): the entry once it arrives, LookupError after.
WaitEntry = Callable[..., Awaitable[BeaconEntry]]

log = structlog.get_logger("miner")


@dataclass(slots=True)
class MiningStats:
    tipsets: int = 0  # tipsets mined that became the head
    null_rounds: int = 0  # epochs tried where no local miner won
    beacon_skips: int = 0  # epochs not mined because their beacon round had not arrived
    dropped: int = 0  # blocks made that failed validation
    failures: int = 0  # attempts that failed for another reason
    last_epoch: int | None = None


class MiningService:
    """Mines blocks with the node's local miners (see the module docstring). A node service."""

    name = "miner"

    def __init__(
        self,
        node: FullNode,
        miners: Sequence[LocalMiner],
        *,
        enabled: bool = True,
        clock: Callable[[], float] = time.time,
        propagation_delay: float | None = None,
        pacers: Sequence[Pacer] = (),
        wait_entry: WaitEntry | None = None,
    ) -> None:
        if not miners:
            raise ValueError("the mining service needs at least one miner")
        self.node = node
        self.miners = tuple(miners)
        self.block_delay = node.policy.block_delay_secs
        if propagation_delay is None:
            propagation_delay = min(self.block_delay * PROPAGATION_SHARE, MAX_PROPAGATION_DELAY)
        self.propagation_delay = propagation_delay
        self.stats = MiningStats()
        self._clock = clock
        self._pacers = list(pacers)
        self._wait_entry = wait_entry
        self._enabled = enabled
        self._wake = Pulse()
        self._pokes = 0  # how many times _poke was called: a poke while busy is not lost
        self._lock = trio.Lock()
        self._tried: tuple[TipSetKey, int] | None = None  # the last epoch tried on a base
        self._highest_tried = node.chain.head().height  # no sibling for the head found at start
        self._last_mined = -1  # the highest epoch a local miner made a block at
        self._caught_up_logged = 0
        self._cannot_mine: dict[str, str] = {}  # why local miners could not mine, as last logged
        self._last_failure = ""
        self._beacon_stalled: int | None = None  # the round mining waits for, as last logged
        self._waiting_for_sync = False

    # -- controls ---------------------------------------------------------------------------------------
    @property
    def on_demand(self) -> bool:
        """Block delay 0: mine only when asked or when a message arrives."""
        return self.block_delay == 0

    @property
    def enabled(self) -> bool:
        return self._enabled

    def set_enabled(self, enabled: bool) -> None:
        """Pause (False) or resume (True) the loop; a block being made is finished first. Call from
        the trio thread."""
        if enabled != self._enabled:
            log.info("mining resumed" if enabled else "mining paused")
        self._enabled = enabled
        self._poke()

    def add_pacer(self, pacer: Pacer) -> None:
        self._pacers.append(pacer)

    def add_miner(self, miner: LocalMiner, *, pacer: Pacer | None = None) -> None:
        """Mine with one more local miner from the next epoch tried on (a miner created while the node
        runs), paced by its Window PoSt scheduler; a miner already mined with is left as it is. Call
        from the trio thread."""
        if any(m.address == miner.address for m in self.miners):
            return
        self.miners = (*self.miners, miner)  # a new tuple: a block being made keeps the miners it had
        if pacer is not None:
            self._pacers.append(pacer)
        log.info("mining with a new miner", miner=miner.address.to_string(self.node.address_network))
        self._poke()

    def _poke(self) -> None:
        self._pokes += 1
        self._wake.fire()

    async def _nap(self, seconds: float) -> bool:
        """Sleep for seconds, or until poked (resumed, a message arrived); whether it was poked."""
        wake = self._wake.next
        with trio.move_on_after(seconds):
            await wake.wait()
        return wake.is_set()

    # -- epochs -----------------------------------------------------------------------------------------
    def epoch_time(self, base: TipSet, epoch: int) -> int:
        """The wall-clock time of epoch on base: the timestamp a block there carries."""
        return base.min_timestamp() + self.block_delay * (epoch - base.height)

    def next_epoch(self, base: TipSet) -> int:
        """The epoch to try next on base: the one after it, or after the last null round tried on it,
        and never one a local miner has made a block at."""
        epoch = base.height + 1
        if self._tried is not None and self._tried[0] == base.key:
            epoch = max(epoch, self._tried[1] + 1)
        return max(epoch, self._last_mined + 1)

    # -- the service ------------------------------------------------------------------------------------
    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        log.info(
            "mining",
            miners=[m.address.to_string(self.node.address_network) for m in self.miners],
            block_delay=self.block_delay,
            mode="on demand" if self.on_demand else "every epoch",
            enabled=self._enabled,
            network=self.node.sync is not None,
        )
        if self.on_demand:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_pool, self.node.mpool.subscribe())
                if self.node.mpool.size:
                    self._poke()
                task_status.started()
                await self._run_on_demand()
        else:
            task_status.started()
            await self._wait_for_network()
            await self._run_timed()

    async def _wait_for_network(self) -> None:
        """On a network with bootstrap peers: wait (bounded) for one of them, then for the syncs their
        hellos start, so that a node that was down follows the chain instead of mining the epochs it
        missed on its own. A node without bootstrap peers (the first of a network) mines at once."""
        host, sync = self.node.host, self.node.sync
        if host is None or sync is None or not host.bootstrap_peers:
            return
        with trio.move_on_after(NETWORK_START_WAIT) as scope:
            if not host.connected_peers():
                log.info("mining waits for a bootstrap peer", timeout=NETWORK_START_WAIT)
            while not host.connected_peers():
                await trio.sleep(0.1)
            await trio.sleep(min(2.0, max(self.block_delay / 2, 0.5)))  # hellos exchanged, syncs begun
            while _running_syncs(sync.sync_state().active_syncs):
                await trio.sleep(0.25)
        if scope.cancelled_caught:
            log.warning(
                "mining without waiting longer for the network",
                peers=len(host.connected_peers()),
                timeout=NETWORK_START_WAIT,
            )

    async def _run_timed(self) -> None:
        while True:
            if not self._enabled:
                await self._nap(math.inf)
                continue
            base = self.node.chain.head()
            epoch = self.next_epoch(base)
            if self.node.sync is not None and self._sibling_due(base):
                epoch = base.height
                base = await self.node.run_sync(self.node.chain.load_tipset, base.parents)
            wait = self.epoch_time(base, epoch) + self.propagation_delay - self._clock()
            if wait > 0 and (await self._nap(wait) or self.node.sync is None):
                continue  # the head may have changed meanwhile: look again
            if self.node.sync is not None:
                # The round cutoff: the heaviest tipset below the epoch, blocks of other miners at the
                # epoch before it included once they are dealt with (a block of this epoch that came
                # first is a sibling to join, not a base).
                base = await self._network_base(epoch)
                if self.next_epoch(base) > epoch or self._behind_peers(epoch):  # tried, or behind
                    await self._nap(min(1.0, self.propagation_delay or 1.0))
                    continue
            late = self._clock() - self.epoch_time(base, epoch) - self.propagation_delay
            self._log_catch_up(base, epoch, late)
            try:
                await self._attempt(base, epoch)
            except Exception as exc:
                self._log_failure(exc, epoch)
                await self._nap(max(FAILURE_BACKOFF, float(self.block_delay)))

    def _sibling_due(self, head: TipSet) -> bool:
        """Whether the head holds other miners' blocks of an epoch not tried here yet whose time is now:
        then our blocks of that epoch join them (same parents) rather than wait for the next epoch.
        (Another miner's block can be the head before our cutoff when this node was slow.)"""
        ours = {m.address for m in self.miners}
        return (
            head.height > max(self._highest_tried, self._last_mined)
            and not any(b.miner in ours for b in head.blocks)
            and self._clock() < self.epoch_time(head, head.height) + self.block_delay
        )

    async def _network_base(self, epoch: int) -> TipSet:
        assert self.node.sync is not None
        base = await self.node.sync.mining_base(epoch)
        while base.height >= epoch:
            base = await self.node.run_sync(self.node.chain.load_tipset, base.parents)
        return base

    def _behind_peers(self, epoch: int) -> bool:
        """Whether a sync towards a chain past this epoch runs: the node is catching up with its peers,
        and a block made now would be on a chain they have left behind."""
        assert self.node.sync is not None
        behind = any(
            s.target is not None and s.target.height > epoch
            for s in _running_syncs(self.node.sync.sync_state().active_syncs)
        )
        if behind != self._waiting_for_sync:
            self._waiting_for_sync = behind
            log.info("mining waits for the chain sync" if behind else "chain synced: mining", epoch=epoch)
        return behind

    def _log_failure(self, exc: Exception, epoch: int | None) -> None:
        # The traceback once: the same failure at every epoch would fill the log.
        error = describe_error(exc)
        repeated = error == self._last_failure
        self._last_failure = error
        log.error("mining attempt failed", epoch=epoch, error=error, exc_info=None if repeated else exc)

    def _log_catch_up(self, base: TipSet, epoch: int, late: float) -> None:
        behind = int(late // self.block_delay)
        if behind < 2:
            if self._caught_up_logged:
                log.info("caught up with the wall clock", height=base.height)
                self._caught_up_logged = 0
            return
        if self._caught_up_logged == 0 and behind >= CATCH_UP_WARN_EPOCHS:
            log.warning(
                "the chain is far behind the wall clock: every epoch since its head is mined in turn",
                epochs_behind=behind,
                hours_behind=round(late / 3600, 1),
                hint="a new devnet (`filpy devnet --reset`, or a genesis with a recent Timestamp) starts at "
                "the clock",
            )
        if self._caught_up_logged == 0 or epoch - self._caught_up_logged >= CATCH_UP_LOG_EVERY:
            log.info("catching up with the wall clock", epoch=epoch, epochs_behind=behind)
            self._caught_up_logged = epoch

    async def _watch_pool(self, updates: trio.MemoryReceiveChannel[MpoolUpdate]) -> None:
        while True:
            async with updates:
                async for update in updates:
                    if update.type == MpoolChange.ADD:
                        self._poke()
            # The pool dropped a slow subscriber: subscribe again, and look at what is pending.
            updates = self.node.mpool.subscribe()
            self._poke()

    async def _run_on_demand(self) -> None:
        seen = 0
        while True:
            if self._pokes == seen:
                await self._nap(math.inf)
            seen = self._pokes
            if not self._enabled or not self.node.mpool.size:
                continue
            try:
                await self.mine_now()
            except Exception as exc:
                self._log_failure(exc, None)

    # -- mining one epoch -------------------------------------------------------------------------------
    async def mine_now(self) -> TipSet | None:
        """Mine the next epoch now (Filpy.MineTipset), paused or not: at once when blocks do not
        follow the clock or the epoch's time has come, else at its time. Tries up to MINE_ATTEMPTS
        epochs; the new head, or None when no local miner won in any."""
        for _ in range(MINE_ATTEMPTS):
            base = self.node.chain.head()
            epoch = self.next_epoch(base)
            if not self.on_demand:
                wait = self.epoch_time(base, epoch) - self._clock()
                if wait > 0:
                    await trio.sleep(wait)
            mined = await self._attempt(base, epoch)
            if mined is not None:
                return mined
        return None

    async def _attempt(self, base: TipSet, epoch: int) -> TipSet | None:
        """Try epoch on base with every local miner; the new head, or None (a null round, its beacon
        round missing, or the head moved while waiting for the lock)."""
        async with self._lock:
            networked = self.node.sync is not None
            if (not networked and self.node.chain.head().key != base.key) or epoch <= self._last_mined:
                return None
            await self._pace(base)
            if not await self._beacon_ready(base, epoch):
                self._tried = (base.key, epoch)
                self._highest_tried = max(self._highest_tried, epoch)
                self.stats.beacon_skips += 1
                return None
            now = self._clock()
            began = time.monotonic()
            try:
                try:
                    blocks = await self.node.run_sync(self._make_blocks, base, epoch, now)
                except LookupError as exc:  # a beacon round went missing after all (a store trimmed)
                    self._beacon_missing(epoch, -1)
                    self.stats.beacon_skips += 1
                    log.info("epoch skipped", epoch=epoch, error=str(exc))
                    return None
                if blocks and networked:
                    head = await self._submit(blocks)
                else:
                    head = await self.node.run_sync(self._apply, epoch, blocks) if blocks else None
            except BaseException:
                self.stats.failures += 1
                raise
            finally:
                self._tried = (base.key, epoch)
                self._highest_tried = max(self._highest_tried, epoch)
            if blocks:
                self._last_mined = epoch
            if head is not None:
                self.stats.tipsets += 1
                self.stats.last_epoch = epoch
                self._log_mined(base, epoch, blocks or [], head, began)
            return head

    async def _beacon_ready(self, base: TipSet, epoch: int) -> bool:
        """Whether the beacon rounds a block at epoch on base carries (those since base's last) have all
        arrived, waiting for them while the epoch lasts (at least MIN_BEACON_WAIT). Rounds that never
        come stop mining, as a Lotus miner without drand."""
        missing = self._first_missing_round(base, epoch)
        if missing is not None and self._wait_entry is not None:
            left = self.epoch_time(base, epoch + 1) + self.propagation_delay - self._clock()
            deadline = trio.current_time() + max(left, MIN_BEACON_WAIT)
            while missing is not None and trio.current_time() < deadline:
                try:
                    await self._wait_entry(missing, timeout=deadline - trio.current_time())
                except LookupError:
                    break
                missing = self._first_missing_round(base, epoch)
        if missing is None:
            self._beacon_resumed(epoch)
            return True
        self._beacon_missing(epoch, missing)
        return False

    def _first_missing_round(self, base: TipSet, epoch: int) -> int | None:
        beacon = self.node.beacon
        last = beacon.max_beacon_round_for_epoch(epoch)
        entries = base.blocks[0].beacon_entries
        first = entries[-1].round + 1 if entries else last
        for round_ in range(min(first, last), last + 1):
            try:
                beacon.entry(round_)
            except LookupError:
                return round_
        return None

    def _beacon_missing(self, epoch: int, round_: int) -> None:
        if self._beacon_stalled is None:
            log.warning(
                "no beacon entry for the epoch: not mining until the beacon's rounds arrive",
                epoch=epoch,
                round=round_,
            )
        self._beacon_stalled = round_

    def _beacon_resumed(self, epoch: int) -> None:
        if self._beacon_stalled is not None:
            log.info("beacon rounds arrived: mining again", epoch=epoch, skipped=self.stats.beacon_skips)
            self._beacon_stalled = None

    async def _pace(self, base: TipSet) -> None:
        for pacer in self._pacers:
            with trio.move_on_after(PACER_TIMEOUT) as scope:
                await pacer(base)
            if scope.cancelled_caught:
                log.warning(
                    "mining without waiting longer for a pacer", height=base.height, timeout=PACER_TIMEOUT
                )

    def _make_blocks(self, base: TipSet, epoch: int, now: float) -> list[FullBlock]:
        """In a worker thread: the validated blocks of the local miners at epoch on base (none: a null
        round, or no miner has power)."""
        if self._network_has_no_power(base):
            self.stats.null_rounds += 1
            return []
        messages = self.node.mpool.select(base)
        dropped = self.stats.dropped
        blocks = [b for m in self.miners if (b := self._produce(m, base, epoch, messages, now)) is not None]
        if not blocks:
            self.stats.null_rounds += 1
            if self.stats.dropped > dropped:
                log.warning("null round: the blocks made failed validation", epoch=epoch, base=base.height)
            else:
                log.info("null round: no local miner won", epoch=epoch, base_height=base.height)
                self._explain_null_round(base, epoch)
            return []
        self._cannot_mine = {}
        return blocks

    def _apply(self, epoch: int, blocks: Sequence[FullBlock]) -> TipSet | None:
        """In a worker thread, for a node on its own: the blocks' tipset, its state computed, made the
        head if heavier; the new head or None."""
        ts = TipSet(tuple(b.header for b in blocks))
        self.node.state.state_of(ts)  # the message pool reads the state after the head it is given
        weight = weight_of(self.node.chain.blockstore, ts)
        self.node.chain.put_tipset(ts, weight)
        if not self.node.chain.take_heavier(ts, weight):
            log.warning("mined tipset is not heavier than the head: kept, not made the head", height=epoch)
            return None
        return ts

    async def _submit(self, blocks: Sequence[FullBlock]) -> TipSet | None:
        """For a node on a network: each block to the sync service (tracked for fork choice with the
        other miners' blocks of its epoch, made part of the head if heavier, gossiped); the new head."""
        assert self.node.sync is not None
        changed = False
        for block in blocks:
            changed = await self.node.sync.submit_block(block, validated=True) or changed
        return self.node.chain.head() if changed else None

    def _log_mined(
        self, base: TipSet, epoch: int, blocks: Sequence[FullBlock], head: TipSet, began: float
    ) -> None:
        log.info(
            "mined",
            height=epoch,
            tipset=str(head.key),
            miners=[b.header.miner.to_string(self.node.address_network) for b in blocks],
            blocks=len(head.blocks),
            messages=sum(len(b.bls_messages) + len(b.secp_messages) for b in blocks),
            wins=sum(b.header.election_proof.win_count for b in blocks if b.header.election_proof),
            null_rounds=epoch - base.height - 1,
            ms=round((time.monotonic() - began) * 1000, 1),
        )

    def _network_has_no_power(self, base: TipSet) -> bool:
        """Whether no miner has power after base: then no block can ever follow it (its weight is not
        even defined, as in Lotus). Said once, with what the user can do."""
        tree = self.node.state.tree(self.node.state.state_of(base).state_root)
        if power_state(tree).total_quality_adj_power > 0:
            return False
        reason = "no miner has power any more"
        if self._cannot_mine.get("*") != reason:
            self._cannot_mine = {"*": reason}
            log.error(
                "no block can be mined on this chain: no miner has power after its head",
                height=base.height,
                hint="sectors lose their power when their Window PoSts are missed; start a new devnet "
                "with `filpy devnet --reset`",
            )
        return True

    def _explain_null_round(self, base: TipSet, epoch: int) -> None:
        """When a local miner may not mine at all (no power, no sector, fee debt...), say why, once."""
        reasons = {}
        for miner in self.miners:
            mbase = mining_base(self.node.state, self.node.beacon, miner.address, base, epoch)
            address = miner.address.to_string(self.node.address_network)
            if mbase is None:
                reasons[address] = "no miner actor or no active sector at the lookback epoch"
            elif mbase.ineligible is not None:
                reasons[address] = mbase.ineligible
        if reasons == self._cannot_mine:
            return
        self._cannot_mine = reasons
        for address, reason in reasons.items():
            log.warning("miner may not mine", miner=address, epoch=epoch, reason=reason)

    def _produce(
        self, miner: LocalMiner, base: TipSet, epoch: int, messages: Sequence[SignedMessage], now: float
    ) -> FullBlock | None:
        address = miner.address.to_string(self.node.address_network)
        try:
            block = produce_block(
                self.node.state,
                self.node.beacon,
                parent=base,
                miner=miner.address,
                worker_key=miner.worker_key,
                epoch=epoch,
                messages=messages,
                read_sector=miner.read_sector,
            )
        except (ProducerError, InvalidWorker) as exc:
            log.error("cannot make a block", miner=address, epoch=epoch, error=str(exc))
            return None
        if block is None:
            return None
        try:
            validate_block(self.node.state, self.node.beacon, block, now=now)
        except BlockValidationError as exc:
            self.stats.dropped += 1
            log.error(
                "produced block failed validation: dropped, not applied",
                miner=address,
                epoch=epoch,
                block=str(block.header.cid()),
                rule=type(exc).__name__,
                error=str(exc),
            )
            return None
        return block


def _running_syncs(syncs: Sequence[ActiveSync]) -> list[ActiveSync]:
    return [s for s in syncs if s.stage not in _SYNC_IDLE]


_SYNC_IDLE: Final = frozenset({SyncStage.IDLE, SyncStage.COMPLETE, SyncStage.ERRORED})
