"""What the storage client and the storage provider share in driving their deals: the deal store, one
task per live deal (`_drive(key)`, started by sending its key on `_start_send`), state changes written
by a worker thread, and a pulse that wakes whoever waits for a deal to reach a state."""

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import partial
from typing import Any, Generic, TypeVar

import trio

from node.fullnode import FullNode
from node.markets.deal_states import TERMINAL, StorageDealStatus
from node.markets.deal_store import DealStore, R
from node.pulse import Pulse

T = TypeVar("T")


class DealDriver(ABC, Generic[R]):
    node: FullNode
    store: DealStore[R]

    def __init__(self, node: FullNode, store: DealStore[R]) -> None:
        self.node = node
        self.store = store
        self._start_send, self._start_receive = trio.open_memory_channel[bytes](math.inf)
        self._changes = Pulse()
        self._ready = trio.Event()

    @abstractmethod
    async def _drive(self, key: bytes) -> None:
        """Take the deal stored under key through its states."""

    async def _drivers(self, nursery: trio.Nursery) -> None:
        async for key in self._start_receive:
            nursery.start_soon(self._drive, key)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.node.run_sync(fn, *args)

    def _epoch(self) -> int:
        return self.node.chain.head().height

    async def _store_move(self, record: R, state: StorageDealStatus, message: str, **changes: Any) -> R:
        """Record the deal's next state (a worker thread writes it) and wake whoever waits on deals."""
        moved = await self._call(partial(self.store.move, record, state, self._epoch(), message, **changes))
        self._changes.fire()
        return moved

    async def _wait_for(self, key: bytes, states: tuple[StorageDealStatus, ...]) -> R:
        """Wait until the deal under key is in one of the states (or a terminal one); its record."""
        return await self._changes.until(lambda: _reached(self.store.get(key), states))


def _reached(record: R | None, states: tuple[StorageDealStatus, ...]) -> R | None:
    """The record if it is in one of the states or a terminal one."""
    if record is not None and (record.state in states or record.state in TERMINAL):
        return record
    return None
