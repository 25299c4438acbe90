"""SyncState and the bad-block methods (lotus node/impl/full/sync.go): what the node's chain sync is
doing, and the blocks it refuses.

A node on a network has a sync service (`node.sync`, node/chainsync/service.py), whose workers are
reported as Lotus's ActiveSyncs: the ones running and the last few finished, by worker ID. A node
without one (an in-process node of the tests that makes its own chain) is always in sync: one worker,
complete, at the head; `lotus sync wait` and `lotus sync status` read that as synced. A sync service
that has not run a worker yet (no peer offered a chain) answers the same.
"""

from datetime import UTC, datetime
from typing import Final

from chain.encoding.cid import CID
from chain.sync import state as sync_state_types
from node.fullnode import FullNode, SyncControl
from rpc.errors import RpcError
from rpc.methods.sync_types import ActiveSync, SyncState, SyncStateStage
from rpc.registry import ADMIN, READ, method

# Lotus numbers its sync workers from 1.
DEVNET_WORKER: Final = 1
# What Go's zero time.Time is written as (a worker that has not started or not finished).
GO_ZERO_TIME: Final = datetime(1, 1, 1, tzinfo=UTC)
NO_SYNC: Final = "this node does not sync from a network"


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


def _active(worker: sync_state_types.ActiveSync) -> ActiveSync:
    return ActiveSync(
        worker_id=worker.worker_id,
        base=worker.base,
        target=worker.target,
        stage=SyncStateStage(int(worker.stage)),
        height=worker.height,
        start=worker.start or GO_ZERO_TIME,
        end=worker.end or GO_ZERO_TIME,
        message=worker.message,
    )


def _sync(node: FullNode) -> SyncControl:
    if node.sync is None:
        raise RpcError(NO_SYNC)
    return node.sync


@method("SyncState", perm=READ)
async def sync_state(node: FullNode) -> SyncState:
    """The chain sync's workers: from which tipset to which, at what stage and height."""
    if node.sync is None:
        return in_sync(node)
    status = node.sync.sync_state()
    if not status.active_syncs:
        # No peer has offered a chain yet (a lone devnet mining its own blocks). Lotus's own blocks go
        # through its syncer, so its workers always show the head; say the same, not an empty list.
        return in_sync(node)
    return SyncState(
        active_syncs=tuple(_active(w) for w in status.active_syncs), vm_applied=status.vm_applied
    )


@method("SyncCheckBad", perm=READ)
async def sync_check_bad(node: FullNode, block: CID) -> str:
    """Why the node considers a block bad, or "" when it does not."""
    return _sync(node).check_bad(block)


@method("SyncMarkBad", perm=ADMIN)
async def sync_mark_bad(node: FullNode, block: CID) -> None:
    """Refuse a block from now on (and any chain that builds on it)."""
    _sync(node).mark_bad(block)


@method("SyncUnmarkBad", perm=ADMIN)
async def sync_unmark_bad(node: FullNode, block: CID) -> None:
    """Forget that a block is bad."""
    _sync(node).unmark_bad(block)


@method("SyncUnmarkAllBad", perm=ADMIN)
async def sync_unmark_all_bad(node: FullNode) -> None:
    """Forget every bad block."""
    _sync(node).unmark_all_bad()
