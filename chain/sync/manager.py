"""Which targets get synced, by how many workers (Lotus chain/sync_manager.go, simplified).

Peers announce heads (hello, gossiped blocks): `set_peer_head(peer, tipset)`. A target is ignored when
a block of it is known bad, when it is lighter than our head (Lotus InformNewHead compares
ParentWeight), or when it or something heavier was synced recently. Otherwise it joins the sync of the
same tipset if one runs (its peer is added). A target on another chain than those being synced that is
lighter than one of them is ignored (Lotus addSyncTarget). It waits when it extends a tipset being
synced or waiting, when a worker is catching up and the target is more than `chain_finality` epochs
above our head (one worker walks that chain back, not two), or when every worker is busy; else it
starts a worker. `workers` syncs run at once (two by default: one can follow a fork while the other
follows the head); waiting targets are bounded (the lightest are dropped) and, when a worker
finishes, the heaviest waiting target goes next (its parents synced by then, or being synced).

Each announcement gets a `trio.Event` set once its target is done with: synced, failed, dropped or
superseded. The mining cutoff (node/chainsync/service.py) waits on them for blocks received in time.

`state()` gives the workers' states, running and the last few finished, for SyncState.
"""

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import structlog
import trio

from chain.sync.exchange import Peer
from chain.sync.state import ActiveSync, SyncerState, SyncStatus
from chain.sync.syncer import InvalidChain, Syncer, SyncError
from chain.types.tipset import TipSet, TipSetKey

if TYPE_CHECKING:
    from trio_typing import TaskStatus

# Lotus MaxSyncWorkers is 5; a Python node executes one tipset at a time anyway.
DEFAULT_WORKERS: Final = 2
SYNC_WORKER_HISTORY: Final = 3  # lotus SyncWorkerHistory
RECENT_SYNCED: Final = 10  # lotus RecentSyncBufferSize
MAX_WAITING: Final = 64

_log = structlog.get_logger(__name__)


@dataclass(eq=False)
class _Target:
    tipset: TipSet
    peers: list[Peer]
    done: list[trio.Event] = field(default_factory=list)

    def add_peer(self, peer: Peer | None) -> None:
        if peer is not None and peer not in self.peers:
            self.peers.append(peer)

    def finish(self) -> None:
        for event in self.done:
            event.set()


@dataclass(eq=False)
class _Worker:
    id: int
    target: _Target
    state: SyncerState


class SyncManager:
    def __init__(self, syncer: Syncer, *, workers: int = DEFAULT_WORKERS) -> None:
        if workers < 1:
            raise ValueError(f"at least one sync worker is needed, got {workers}")
        self.syncer = syncer
        self.max_workers = workers
        self._active: dict[int, _Worker] = {}
        self._waiting: dict[TipSetKey, _Target] = {}
        self._history: deque[SyncerState] = deque(maxlen=SYNC_WORKER_HISTORY)
        self._recent: deque[TipSet] = deque(maxlen=RECENT_SYNCED)
        self._next_id = 1
        self._nursery: trio.Nursery | None = None
        self.synced = 0  # targets synced
        self.failed = 0  # targets given up

    # -- announcements --------------------------------------------------------------------------------
    def set_peer_head(self, peer: Peer | None, tipset: TipSet) -> trio.Event:
        """A tipset a peer has (or None: one of ours); an event set once it is dealt with. Call from the
        trio thread."""
        done = trio.Event()
        target = self._schedule(peer, tipset, done)
        if target is None:
            done.set()
        return done

    def _schedule(self, peer: Peer | None, tipset: TipSet, done: trio.Event) -> _Target | None:
        syncer = self.syncer
        reason = syncer.bad_reason(tipset)
        if reason is not None:
            _log.info("sync.target_bad", height=tipset.height, reason=str(reason))
            return None
        head = syncer.chain.head()
        if tipset.key == head.key or tipset.parent_weight < head.parent_weight:
            return None
        if self._recently_synced(tipset):
            return None
        for worker in self._active.values():
            if worker.target.tipset.key == tipset.key:
                worker.target.add_peer(peer)
                worker.target.done.append(done)
                return worker.target
        waiting = self._waiting.get(tipset.key)
        if waiting is not None:
            waiting.add_peer(peer)
            waiting.done.append(done)
            return waiting
        active = [w.target.tipset for w in self._active.values()]
        related = any(ts.key == tipset.parents for ts in active) or any(
            t.tipset.key == tipset.parents or t.tipset.parents == tipset.key for t in self._waiting.values()
        )
        if not related and any(ts.parent_weight > tipset.parent_weight for ts in active):
            return None  # another chain, lighter than one being synced (Lotus addSyncTarget)
        target = _Target(tipset, [] if peer is None else [peer], [done])
        # While a worker catches up from far behind, the rest waits for it rather than walking the
        # same chain back in parallel.
        catching_up = bool(active) and tipset.height - head.height > self.syncer.policy.chain_finality
        if related or catching_up or len(self._active) >= self.max_workers or self._nursery is None:
            self._wait(target)
        else:
            self._spawn(target)
        return target

    def _recently_synced(self, tipset: TipSet) -> bool:
        return any(r.key == tipset.key or r.parent_weight > tipset.parent_weight for r in self._recent)

    def _wait(self, target: _Target) -> None:
        self._waiting[target.tipset.key] = target
        while len(self._waiting) > MAX_WAITING:
            lightest = min(self._waiting.values(), key=lambda t: t.tipset.parent_weight)
            del self._waiting[lightest.tipset.key]
            lightest.finish()

    # -- workers --------------------------------------------------------------------------------------
    def _spawn(self, target: _Target) -> None:
        assert self._nursery is not None
        worker = _Worker(self._next_id, target, SyncerState(self._next_id))
        self._next_id += 1
        self._active[worker.id] = worker
        self._nursery.start_soon(self._work, worker)

    async def _work(self, worker: _Worker) -> None:
        target = worker.target
        tipset = target.tipset
        _log.info("sync.worker_started", worker=worker.id, height=tipset.height, target=str(tipset.key))
        try:
            await self.syncer.sync(tipset, list(target.peers), worker.state)
        except InvalidChain as exc:
            self.failed += 1
            _log.warning("sync.target_invalid", worker=worker.id, height=tipset.height, error=str(exc))
        except SyncError as exc:
            self.failed += 1
            _log.warning("sync.target_failed", worker=worker.id, height=tipset.height, error=str(exc))
        except Exception as exc:  # a bug: the worker's target is dropped, the manager goes on
            self.failed += 1
            _log.exception("sync.worker_crashed", worker=worker.id, height=tipset.height)
            worker.state.error(f"{type(exc).__name__}: {exc}")
        else:
            self.synced += 1
            self._recent.append(tipset)
            _log.info("sync.worker_done", worker=worker.id, height=tipset.height)
        finally:
            del self._active[worker.id]
            self._history.append(worker.state)
            target.finish()
            self._next_target()

    def _next_target(self) -> None:
        """After a worker finished: the heaviest waiting target whose parents are not being synced;
        stale ones (bad, lighter than the head, synced) are dropped on the way."""
        while self._waiting and len(self._active) < self.max_workers and self._nursery is not None:
            head = self.syncer.chain.head()
            for key, target in list(self._waiting.items()):
                ts = target.tipset
                if (
                    self.syncer.bad_reason(ts) is not None
                    or ts.parent_weight < head.parent_weight
                    or ts.key == head.key
                    or self._recently_synced(ts)
                ):
                    del self._waiting[key]
                    target.finish()
            busy = {w.target.tipset.key for w in self._active.values()}
            ready = [t for t in self._waiting.values() if t.tipset.parents not in busy]
            if not ready:
                return
            best = max(ready, key=lambda t: (t.tipset.parent_weight, t.tipset.height))
            del self._waiting[best.tipset.key]
            self._spawn(best)

    # -- the service ----------------------------------------------------------------------------------
    async def run(self, *, task_status: "TaskStatus[None]" = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._next_target()
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None
                for target in self._waiting.values():
                    target.finish()

    # -- what it is doing -------------------------------------------------------------------------------
    def state(self) -> SyncStatus:
        workers = [w.state.snapshot() for w in self._active.values()]
        workers += [s.snapshot() for s in self._history]
        workers.sort(key=lambda s: s.worker_id)
        return SyncStatus(tuple(workers), self.syncer.vm_applied)

    def active(self) -> list[ActiveSync]:
        return [w.state.snapshot() for w in self._active.values()]

    @property
    def idle(self) -> bool:
        return not self._active and not self._waiting
