"""One function applied to items in a worker thread, in the order the items were submitted, as many
items a trip as are waiting: a drain.

    pushes = ThreadDrain(node.mpool.push, name="mpool push")
    outcomes = await pushes.run([signed_a, signed_b])   # each item's result, or the exception it raised

The first submission starts a worker thread (from trio's thread cache) that takes every item waiting
at that moment, applies the function to each in turn, hands the outcomes back to the submitters' trio
loop and takes what arrived meanwhile, until nothing waits; then the thread goes back to the cache.
While items keep coming the thread never waits on the event loop between passes, and a pass costs
the loop one wake-up, where a `trio.to_thread.run_sync` per batch cost a thread hand-off and a
round trip through the scheduler before the next batch could start (bench/bench_rpc.py, docs/rpc.md).

Each item is applied on its own (an exception fails that item only); items run one at a time, so the
function sees them exactly as calls one after another. A submitter that is cancelled while it waits
leaves its items queued: they still run (as a worker thread's call runs to its end), and nobody else
waits on them. A pass holds at most `max_pass` items (whole submissions; one larger submission is a
pass of its own), so that the first answers go out while later items are still being worked on.
"""

import threading
from collections.abc import Callable, Sequence
from typing import Final, Generic, TypeVar

import structlog
import trio

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_MAX_PASS: Final = 64

_log = structlog.get_logger(__name__)


class DrainStopped(Exception):
    """The worker thread stopped before it applied the function to this item."""


class _Job(Generic[T, R]):
    """One submission: its items, their outcomes once applied, and the submitter's loop to wake."""

    __slots__ = ("done", "items", "outcomes", "token")

    def __init__(self, items: Sequence[T], token: trio.lowlevel.TrioToken) -> None:
        self.items = items
        self.token = token
        self.done = trio.Event()
        self.outcomes: list[R | Exception] = []


class ThreadDrain(Generic[T, R]):
    def __init__(self, fn: Callable[[T], R], *, name: str, max_pass: int = DEFAULT_MAX_PASS) -> None:
        if max_pass < 1:
            raise ValueError(f"a pass needs room for at least one item, got {max_pass}")
        self._fn = fn
        self._name = name
        self._max_pass = max_pass
        self._lock = threading.Lock()
        self._waiting: list[_Job[T, R]] = []
        self._running = False
        self.passes = 0  # passes made so far (read by tests and benches)

    @property
    def busy(self) -> bool:
        """Whether a worker thread is on (items waiting or being applied)."""
        with self._lock:
            return self._running

    async def run(self, items: Sequence[T]) -> list[R | Exception]:
        """Apply the function to each item in the worker thread, after every item submitted before;
        each item's result, or the exception it raised."""
        if not items:
            return []
        job: _Job[T, R] = _Job(items, trio.lowlevel.current_trio_token())
        with self._lock:
            self._waiting.append(job)
            start = not self._running
            self._running = True
        if start:
            try:
                trio.lowlevel.start_thread_soon(self._work, self._stopped, name=f"{self._name} drain")
            except BaseException:  # no thread could be started: nobody is left waiting
                with self._lock:
                    stranded, self._waiting = self._waiting, []
                    self._running = False
                for other in stranded:
                    other.outcomes = [DrainStopped(f"{self._name}: no worker thread")] * len(other.items)
                    other.done.set()
                raise
        await job.done.wait()
        return job.outcomes

    # -- the worker thread --------------------------------------------------------------------------
    def _take(self) -> list[_Job[T, R]]:
        """The jobs of the next pass (empty when none waits: the thread is then no longer running)."""
        with self._lock:
            waiting = self._waiting
            taken = 0
            count = 0
            for job in waiting:
                if count and count + len(job.items) > self._max_pass:
                    break
                count += len(job.items)
                taken += 1
            batch, self._waiting = waiting[:taken], waiting[taken:]
            if not batch:
                self._running = False
            return batch

    def _work(self) -> None:
        fn = self._fn
        batch: list[_Job[T, R]] = []
        try:
            while batch := self._take():
                for job in batch:
                    outcomes = job.outcomes
                    for item in job.items:
                        try:
                            outcomes.append(fn(item))
                        except Exception as exc:  # the item's own outcome, handed to its submitter
                            outcomes.append(exc)
                self.passes += 1
                if not _wake(batch):
                    # The submitters' loop is gone (its trio.run returned): nobody waits on the rest.
                    with self._lock:
                        self._waiting.clear()
                        self._running = False
                    return
        except BaseException:
            # Only from the function itself (KeyboardInterrupt, SystemExit): every submitter still
            # waiting is woken with DrainStopped for what was not applied, then the error goes on.
            with self._lock:
                stranded = batch + self._waiting
                self._waiting = []
                self._running = False
            for job in stranded:
                missing = len(job.items) - len(job.outcomes)
                job.outcomes.extend([DrainStopped(f"{self._name}: the worker thread stopped")] * missing)
            _wake(stranded)
            raise

    def _stopped(self, result: object) -> None:
        """The worker thread's end (called in that thread): an error that escaped is logged."""
        error = getattr(result, "error", None)
        if error is not None:
            _log.error("drain worker stopped", drain=self._name, error=repr(error))


def _wake(jobs: list[_Job[T, R]]) -> bool:
    """Set the jobs' events on their loops, one wake-up per loop; False if a loop has ended."""
    by_token: dict[trio.lowlevel.TrioToken, list[trio.Event]] = {}
    for job in jobs:
        by_token.setdefault(job.token, []).append(job.done)
    alive = True
    for token, events in by_token.items():
        try:
            token.run_sync_soon(_set_all, events)
        except trio.RunFinishedError:
            alive = False
    return alive


def _set_all(events: list[trio.Event]) -> None:
    for event in events:
        event.set()
