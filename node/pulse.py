"""A pulse: an event that wakes every task waiting on it, then re-arms itself for the next change.

A waiter that checks with a checkpoint in between (an await) takes `pulse.next` before it looks at what
it waits for and waits on that event only when the thing was not there: a change made meanwhile has set
that very event, so no wake-up is lost. `until` needs no such care: its check runs without a checkpoint.
"""

from collections.abc import Callable
from typing import TypeVar

import trio

T = TypeVar("T")


class Pulse:
    """See the module doc."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = trio.Event()

    @property
    def next(self) -> trio.Event:
        """The event the next `fire` sets."""
        return self._event

    def fire(self) -> None:
        """Wake every task waiting on `next`."""
        self._event.set()
        self._event = trio.Event()

    async def until(self, check: Callable[[], T | None]) -> T:
        """The first value of check that is not None: tried now and again after every fire."""
        while (found := check()) is None:
            await self._event.wait()
        return found
