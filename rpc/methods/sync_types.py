"""The shape of SyncState (lotus api/api_full.go SyncState, ActiveSync, SyncStateStage)."""

from enum import IntEnum
from typing import Annotated

from chain.encoding.schema import ChainEpoch, LotusJson, Name, Uint64
from chain.types.tipset import TipSet
from rpc.jsontypes import GoTime


class SyncStateStage(IntEnum):
    """lotus api.SyncStateStage."""

    IDLE = 0
    HEADERS = 1
    PERSIST_HEADERS = 2
    MESSAGES = 3
    SYNC_COMPLETE = 4
    SYNC_ERRORED = 5
    FETCHING_MESSAGES = 6


class ActiveSync(LotusJson):
    """One sync worker: from which tipset (Base) to which (Target), at what stage and height."""

    worker_id: Annotated[Uint64, Name("WorkerID")]
    base: TipSet | None
    target: TipSet | None
    stage: SyncStateStage
    height: ChainEpoch
    start: GoTime
    end: GoTime
    message: str


class SyncState(LotusJson):
    """lotus api.SyncState: the sync workers, and how many messages the VM has applied."""

    active_syncs: tuple[ActiveSync, ...]
    vm_applied: Annotated[Uint64, Name("VMApplied")]
