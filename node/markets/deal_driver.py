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

T = TypeVar("T")


class DealDriver(ABC, Generic[R]):
    node: FullNode
    store: DealStore[R]

    def __init__(self, node: FullNode, store: DealStore[R]) -> None:
        self.node = node
        self.store = store
        self._start_send, self._start_receive = trio.open_memory_channel[bytes](math.inf)
        self._changed = trio.Event()
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
        self._pulse()
        return moved

    def _pulse(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _wait_for(self, key: bytes, states: tuple[StorageDealStatus, ...]) -> R:
        """Wait until the deal under key is in one of the states (or a terminal one); its record."""
        while True:
            changed = self._changed
            record = self.store.get(key)
            if record is not None and (record.state in states or record.state in TERMINAL):
                return record
            await changed.wait()
