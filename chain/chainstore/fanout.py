"""Publishing values to trio subscribers from any thread, without ever waiting on a subscriber.

The chain store publishes head changes and the message pool its updates from whatever thread changed
them (usually a worker thread of `trio.to_thread.run_sync`). Each subscriber is a bounded trio memory
channel; delivery is scheduled on the subscriber's trio loop with `TrioToken.run_sync_soon`, which is
thread-safe, never blocks and runs callbacks in the order they were scheduled. A subscriber whose buffer
is full when a value arrives is closed and dropped (it sees the end of its channel), as Lotus closes a
slow head-change subscriber: a slow reader never holds up the publisher or the other subscribers.

Values are numbered: a subscriber receives the values published after it subscribed, and nothing
published before, even if an earlier delivery is still scheduled when it subscribes.
"""

import threading
from dataclasses import dataclass
from typing import Generic, TypeVar

import structlog
import trio

T = TypeVar("T")

_log = structlog.get_logger(__name__)


@dataclass(eq=False, slots=True)
class _Subscriber(Generic[T]):
    send: trio.MemorySendChannel[T]
    token: trio.lowlevel.TrioToken
    after: int  # the sequence number of the last value published before it subscribed


class Fanout(Generic[T]):
    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._subscribers: list[_Subscriber[T]] = []
        self._seq = 0

    def subscribe(self, buffer: int, first: T | None = None) -> trio.MemoryReceiveChannel[T]:
        """A channel of the values published from now on, preceded by `first` if given.

        Call from a trio task; the subscription lives until the receiver closes its end, or is
        dropped for falling `buffer` values behind.
        """
        if buffer < 1:
            raise ValueError(f"a subscriber needs a buffer of at least 1, got {buffer}")
        token = trio.lowlevel.current_trio_token()
        send, receive = trio.open_memory_channel[T](buffer)
        if first is not None:
            send.send_nowait(first)
        with self._lock:
            self._subscribers.append(_Subscriber(send, token, self._seq))
        return receive

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def publish(self, value: T) -> None:
        """Hand value to every subscriber's loop; returns at once, from any thread."""
        finished: list[_Subscriber[T]] = []
        # Scheduling under the lock keeps deliveries in the order of the sequence numbers.
        with self._lock:
            self._seq += 1
            seq = self._seq
            tokens: dict[trio.lowlevel.TrioToken, list[_Subscriber[T]]] = {}
            for sub in self._subscribers:
                tokens.setdefault(sub.token, []).append(sub)
            for token, subs in tokens.items():
                try:
                    token.run_sync_soon(self._deliver, seq, value, subs)
                except trio.RunFinishedError:
                    finished += subs  # that trio run is over: they can never read again
        if finished:
            self._drop(finished, "its trio run has finished")

    def _deliver(self, seq: int, value: T, subs: list[_Subscriber[T]]) -> None:
        dropped: list[_Subscriber[T]] = []
        for sub in subs:
            if sub.after >= seq:
                continue
            try:
                sub.send.send_nowait(value)
            except trio.WouldBlock:
                _log.warning(
                    "subscriber dropped: too slow",
                    feed=self._name,
                    buffer=sub.send.statistics().max_buffer_size,
                )
                dropped.append(sub)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                dropped.append(sub)
        if dropped:
            self._drop(dropped, None)

    def _drop(self, subs: list[_Subscriber[T]], reason: str | None) -> None:
        with self._lock:
            self._subscribers = [s for s in self._subscribers if s not in subs]
        for sub in subs:
            if reason is not None:
                _log.info("subscriber dropped", feed=self._name, reason=reason)
            sub.send.close()
