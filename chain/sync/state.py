"""What each sync worker is doing, for SyncState over RPC (Lotus chain/syncstate.go, api.SyncState).

A worker's `SyncerState` is written by the worker as it goes (stage, height reached, error) and read
by RPC handlers in other threads: every access holds its lock, and `snapshot()` copies it out as a
frozen `ActiveSync`. The RPC layer declares the JSON (Lotus's `ActiveSync` field names; `start` and
`end` are None where Lotus writes Go's zero time).
"""

import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import IntEnum

from chain.types.tipset import TipSet


class SyncStage(IntEnum):
    """Lotus api.SyncStateStage: the numbers are what SyncState answers."""

    IDLE = 0
    HEADERS = 1
    PERSIST_HEADERS = 2
    MESSAGES = 3
    COMPLETE = 4
    ERRORED = 5
    FETCHING_MESSAGES = 6

    def describe(self) -> str:
        """Lotus's SyncStateStage.String()."""
        return _STAGE_NAMES[self]


_STAGE_NAMES = {
    SyncStage.IDLE: "idle",
    SyncStage.HEADERS: "header sync",
    SyncStage.PERSIST_HEADERS: "persisting headers",
    SyncStage.MESSAGES: "message sync",
    SyncStage.COMPLETE: "complete",
    SyncStage.ERRORED: "error",
    SyncStage.FETCHING_MESSAGES: "fetching messages",
}


@dataclass(frozen=True, slots=True)
class ActiveSync:
    """One worker's sync (Lotus api.ActiveSync)."""

    worker_id: int
    base: TipSet | None = None  # our head when the sync started
    target: TipSet | None = None  # the tipset being synced to
    stage: SyncStage = SyncStage.IDLE
    height: int = 0  # how far the current stage got
    start: datetime | None = None
    end: datetime | None = None
    message: str = ""  # the error, when stage is ERRORED


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """Lotus api.SyncState: the workers (running, then the last few finished), and how many messages
    the syncer has had executed since the node started (VMApplied)."""

    active_syncs: tuple[ActiveSync, ...]
    vm_applied: int


def _now() -> datetime:
    return datetime.now(UTC)


class SyncerState:
    """A worker's state as it changes (Lotus SyncerState); thread-safe."""

    def __init__(self, worker_id: int) -> None:
        self._lock = threading.Lock()
        self._data = ActiveSync(worker_id)

    def init(self, base: TipSet, target: TipSet) -> None:
        with self._lock:
            self._data = ActiveSync(self._data.worker_id, base, target, SyncStage.HEADERS, 0, _now())

    def set_stage(self, stage: SyncStage) -> None:
        with self._lock:
            end = _now() if stage == SyncStage.COMPLETE else self._data.end
            self._data = replace(self._data, stage=stage, end=end)

    def set_height(self, height: int) -> None:
        with self._lock:
            self._data = replace(self._data, height=height)

    def error(self, message: str) -> None:
        with self._lock:
            self._data = replace(self._data, stage=SyncStage.ERRORED, message=message, end=_now())

    def snapshot(self) -> ActiveSync:
        with self._lock:
            return self._data
