"""The beacon entry of an epoch: StateGetBeaconEntry on /rpc/v1, BeaconGetEntry on /rpc/v0 (lotus
node/impl/full/state.go StateGetBeaconEntry; v0api's BeaconGetEntry calls it).

Up to the head's epoch the entry is the one the chain used (its blocks carry it); for a later epoch
it is asked of the beacon (Lotus waits for drand; the devnet's mock beacon answers at once, a drand
beacon from the rounds that have arrived: one that has not is an RpcError).
"""

from chain.chainstore.store import ChainStoreError
from chain.encoding.schema import ChainEpoch
from chain.stmgr.randomness import BeaconEntryNotFound
from chain.types.beacon import BeaconEntry
from node.fullnode import FullNode
from rpc.errors import answer_errors
from rpc.registry import READ, method


async def beacon_entry(node: FullNode, epoch: int) -> BeaconEntry:
    head = node.chain.head()
    if epoch > head.height:
        with answer_errors(LookupError, prefix=f"getting the beacon entry of epoch {epoch}"):
            return node.beacon.entry(node.beacon.max_beacon_round_for_epoch(epoch))
    with answer_errors(
        BeaconEntryNotFound, ChainStoreError, prefix=f"getting the beacon entry of epoch {epoch}"
    ):
        return await node.run_sync(node.state.beacon_entry, head, max(epoch, 0))


@method("StateGetBeaconEntry", perm=READ, api="v1")
async def state_get_beacon_entry(node: FullNode, epoch: ChainEpoch) -> BeaconEntry:
    """The beacon entry of an epoch (the chain's up to the head, then the beacon's)."""
    return await beacon_entry(node, epoch)


@method("BeaconGetEntry", perm=READ, api="v0")
async def beacon_get_entry(node: FullNode, epoch: ChainEpoch) -> BeaconEntry:
    """The beacon entry of an epoch (v0's name of StateGetBeaconEntry)."""
    return await beacon_entry(node, epoch)
