"""A miner's proving, in filpy's own namespace (`Filpy.`): what `lotus-miner proving info|deadlines|
faults|check` show, for `filpy miner proving ...` (cli/proving.py). The chain-side views answer for any
miner at a tipset, as Lotus's State methods do; the check and the local reasons need the node to run
the miner's Window PoSt scheduler (node/mining/local_proving.py: `filpy devnet`, or `filpy daemon`
with mining.enabled).

- `Filpy.ProvingMiners()` (read): the miners whose Window PoSts this node makes.
- `Filpy.ProvingInfo(miner, tsk)` (read): the current deadline, the proving period, sector counts.
- `Filpy.ProvingDeadlines(miner, tsk)` (read): each deadline's next window and its partitions' sectors.
- `Filpy.ProvingFaults(miner, tsk)` (read): each faulty sector, whether declared recovering, and why the
  node's last check found it unprovable when this node proves for the miner.
- `Filpy.ProvingCheck(miner, deadline)` (admin, as lotus-miner's CheckProvable): the live sectors of a
  deadline checked on disk now (every replica read and hashed): good, or bad with the reason.
"""

from chain.encoding.schema import Uint64
from chain.types.address import Address
from chain.types.tipset import EMPTY_TSK, TipSet, TipSetKey
from node.fullnode import FullNode
from node.mining.proving import (
    DeadlineView,
    FaultySector,
    ProvingInfo,
    SectorCheck,
    check_view,
    deadlines_view,
    faults_view,
    proving_info,
)
from node.mining.wdpost import WindowPoStScheduler
from rpc.errors import RpcError
from rpc.methods.query import at_tipset, tipset_of
from rpc.registry import ADMIN, READ, method

NAMESPACE = "Filpy"


def _scheduler(node: FullNode, miner: Address, ts: TipSet) -> WindowPoStScheduler | None:
    if node.proving is None:
        return None
    found = node.proving.scheduler(miner)
    if found is None:
        found = node.proving.scheduler(node.state.lookup_id(miner, ts))
    return found


@method("ProvingMiners", perm=READ, namespace=NAMESPACE)
async def proving_miners(node: FullNode) -> tuple[Address, ...]:
    """The miners whose Window PoSts this node makes."""
    return tuple(node.proving.miners()) if node.proving is not None else ()


@method("ProvingInfo", perm=READ, namespace=NAMESPACE)
async def proving_info_method(node: FullNode, miner: Address, tsk: TipSetKey) -> ProvingInfo:
    """A miner's current deadline, proving period and sector counts at a tipset."""
    return await at_tipset(node, tsk, lambda ts: proving_info(node.state, node.policy, miner, ts))


@method("ProvingDeadlines", perm=READ, namespace=NAMESPACE)
async def proving_deadlines(node: FullNode, miner: Address, tsk: TipSetKey) -> tuple[DeadlineView, ...]:
    """Each of a miner's deadlines: its next window and its partitions' sector sets."""
    return await at_tipset(node, tsk, lambda ts: deadlines_view(node.state, node.policy, miner, ts))


@method("ProvingFaults", perm=READ, namespace=NAMESPACE)
async def proving_faults(node: FullNode, miner: Address, tsk: TipSetKey) -> tuple[FaultySector, ...]:
    """A miner's faulty sectors, with the reason when this node proves for it."""

    def read(ts: TipSet) -> tuple[FaultySector, ...]:
        scheduler = _scheduler(node, miner, ts)
        reason = scheduler.declarer.known_reason if scheduler is not None else None
        return faults_view(node.state, node.policy, miner, ts, reason)

    return await at_tipset(node, tsk, read)


@method("ProvingCheck", perm=ADMIN, namespace=NAMESPACE)
async def proving_check(node: FullNode, miner: Address, deadline: Uint64) -> tuple[SectorCheck, ...]:
    """The live sectors of one of a miner's deadlines checked on disk now, at the head."""
    if deadline >= node.policy.wpost_period_deadlines:
        raise RpcError(
            f"deadline {deadline} does not exist: a proving period has "
            f"{node.policy.wpost_period_deadlines} deadlines (0 to "
            f"{node.policy.wpost_period_deadlines - 1})"
        )
    ts = await tipset_of(node, EMPTY_TSK)
    scheduler = await at_tipset(node, ts.key, lambda at: _scheduler(node, miner, at))
    if scheduler is None:
        raise RpcError(
            f"this node does not prove for {miner.to_string(node.address_network)}: the check reads the "
            "sectors of a miner whose Window PoSts this node makes (Filpy.ProvingMiners lists them)"
        )
    store = scheduler.sectors
    return await at_tipset(node, ts.key, lambda at: check_view(node.state, store, miner, deadline, at))
