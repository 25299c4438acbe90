"""SyncState (lotus node/impl/full/sync.go): what the node's chain sync is doing.

A node that syncs from peers (the network issue) offers `node.syncer`, whose workers are reported as
Lotus's ActiveSyncs. A node without one (a single-node devnet) makes its own chain and is always in
sync: one worker, complete, at the head; `lotus sync wait` and `lotus sync status` read that as
synced.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final, Protocol

from chain.types.tipset import TipSet
from node.fullnode import FullNode
from rpc.methods.sync_types import ActiveSync, SyncState, SyncStateStage
from rpc.registry import READ, method

# Lotus numbers its sync workers from 1.
DEVNET_WORKER: Final = 1


class SyncWorker(Protocol):
    """One worker of a syncer, as SyncState reports it."""

    @property
    def worker_id(self) -> int: ...
    @property
    def base(self) -> TipSet | None: ...
    @property
    def target(self) -> TipSet | None: ...
    @property
    def stage(self) -> int: ...  # SyncStateStage's numbers
    @property
    def height(self) -> int: ...
    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime: ...
    @property
    def message(self) -> str: ...


class Syncer(Protocol):
    """What SyncState reads of a node's chain sync (`node.syncer`)."""

    def workers(self) -> Sequence[SyncWorker]: ...

    @property
    def vm_applied(self) -> int: ...


def _worker(w: SyncWorker) -> ActiveSync:
    return ActiveSync(
        worker_id=w.worker_id,
        base=w.base,
        target=w.target,
        stage=SyncStateStage(w.stage),
        height=w.height,
        start=w.start,
        end=w.end,
        message=w.message,
    )


def in_sync(node: FullNode) -> SyncState:
    """A node that makes its own chain: one complete worker at the head."""
    head = node.chain.head()
    made = datetime.fromtimestamp(head.min_timestamp(), UTC)
    worker = ActiveSync(
        worker_id=DEVNET_WORKER,
        base=head,
        target=head,
        stage=SyncStateStage.SYNC_COMPLETE,
        height=head.height,
        start=made,
        end=made,
        message="",
    )
    return SyncState(active_syncs=(worker,), vm_applied=0)


@method("SyncState", perm=READ)
async def sync_state(node: FullNode) -> SyncState:
    """The chain sync's workers: from which tipset to which, at what stage and height."""
    syncer: Syncer | None = getattr(node, "syncer", None)
    if syncer is None:
        return in_sync(node)
    return SyncState(active_syncs=tuple(_worker(w) for w in syncer.workers()), vm_applied=syncer.vm_applied)
