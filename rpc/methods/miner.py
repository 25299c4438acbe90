"""The storage miners this node serves, and their sealing: filpy's own methods (namespace `Filpy.`), the
back ends of `filpy miner create|list` and `filpy miner sectors|sealing`.

Lotus serves what these do from a separate API, lotus-miner's, one process per miner (SectorPledge,
SectorsList, SectorsStatus, SectorsSummary, WorkerJobs, with no miner parameter). A filpy node serves its
miners itself, possibly several, so these methods live on the full node's endpoint under filpy's
namespace (no Lotus name is taken), with Lotus's names and result shapes and the miner as first param:

- `Filpy.MinerCreate(owner, worker, sectorSize, pledge)` (admin): power.CreateMiner signed by the
  node's wallet, waited for, and the miner recorded as served (node/mining/create.py create_miner); a
  daemon that set `FullNode.on_miner_created` starts serving it at once, otherwise from its next start.
- `Filpy.MinerList()` (read): the miners served (`node.miners`, plus any miner whose sealing pipeline
  runs without a record, e.g. a genesis miner), each with whether its sealing pipeline runs.
- `Filpy.SectorPledge(miner)`, `Filpy.SectorStartSealing(miner, n)` (write), `Filpy.SectorsList(miner)`,
  `Filpy.SectorsSummary(miner)`, `Filpy.SectorsStatus(miner, n, onChain)`, `Filpy.SealingJobs(miner |
  null)` (read): the miner's sealing pipeline, found in `FullNode.sealing` (node/sealing/pipeline.py).

A miner is named by any of its addresses (an ID address, or the robust address, looked up at the head).
"""

from typing import Final

from chain.encoding.schema import LotusJson, TokenAmount, Uint64
from chain.stmgr.actors import ActorNotFound, StateQueryError
from chain.types.address import Address, Protocol
from node.fullnode import FullNode
from node.mining.create import LocalMinerRecord, MinerCreated, MinerCreateError, create_miner
from node.sealing.pipeline import PipelineError, SealingPipeline
from node.sealing.types import JobSector, SealingJob, SectorStatus
from proofs.registered import SEAL_PARAMS
from rpc.errors import RpcError, answer_errors
from rpc.jsontypes import JsonValue
from rpc.methods.query import read_or_answer
from rpc.registry import ADMIN, READ, WRITE, method

NAMESPACE: Final = "Filpy"


class ServedMiner(LotusJson):
    """A miner this node serves: its record (node/mining/create.py) and whether its sealing runs."""

    miner: LocalMinerRecord
    sealing: bool


# A miner the state does not know, or a state that cannot answer.
_NO_MINER = (ActorNotFound, StateQueryError)


def _name(node: FullNode, miner: Address) -> str:
    return miner.to_string(node.address_network)


async def _id_address(node: FullNode, miner: Address) -> Address:
    if miner.protocol == Protocol.ID:
        return miner
    doing = f"miner {_name(node, miner)}"
    found: Address = await read_or_answer(
        node, doing, _NO_MINER, node.state.lookup_id, miner, node.chain.head()
    )
    return found


async def _pipeline(node: FullNode, miner: Address) -> SealingPipeline:
    """The sealing pipeline of the miner; RpcError naming the miners that have one otherwise."""
    pipeline = node.sealing.get(await _id_address(node, miner))
    if pipeline is not None:
        return pipeline
    if not node.sealing:
        raise RpcError(
            f"this node seals for no miner, so not for {_name(node, miner)}: "
            "`filpy miner create` makes one (sealing starts when the node serves it)"
        )
    served = ", ".join(_name(node, m) for m in sorted(node.sealing, key=lambda m: m.id))
    raise RpcError(f"this node does not seal for {_name(node, miner)} (it seals for {served})")


def _record_from_chain(node: FullNode, miner: Address) -> LocalMinerRecord:
    """A record for a miner that has a pipeline but was not made by MinerCreate (a genesis miner), with
    owner and worker as key addresses as MinerCreate records them."""
    head = node.chain.head()
    info = node.state.miner_info(miner, head)
    seal_proof = next(
        (p.proof for p in SEAL_PARAMS.values() if p.window_post == info.window_post_proof_type), -1
    )
    return LocalMinerRecord(
        id_address=miner,
        robust_address=node.state.lookup_robust_address(miner, head),
        owner=node.state.account_key(info.owner, head),
        worker=node.state.account_key(info.worker, head),
        sector_size=info.sector_size,
        seal_proof=seal_proof,
    )


@method("MinerCreate", perm=ADMIN, namespace=NAMESPACE)
async def miner_create(
    node: FullNode, owner: Address, worker: Address, sector_size: Uint64, pledge: TokenAmount
) -> MinerCreated:
    """Create a storage miner (power.CreateMiner from the owner, the pledge as its balance), wait for it
    and serve it from this node; its addresses and the messages sent."""
    with answer_errors(MinerCreateError):
        created = await create_miner(
            node, node.miners, owner=owner, worker=worker, sector_size=sector_size, pledge=pledge
        )
    record = await node.run_sync(node.miners.get, created.id_address)
    if record is not None and node.on_miner_created is not None:
        await node.on_miner_created(record)
    return created


@method("MinerList", perm=READ, namespace=NAMESPACE)
async def miner_list(node: FullNode) -> tuple[ServedMiner, ...]:
    """The miners this node serves, by actor ID, and whether each one's sealing pipeline runs."""
    records = {r.id_address: r for r in await node.run_sync(node.miners.list)}
    for miner in node.sealing:
        if miner not in records:
            doing = f"miner {_name(node, miner)}"
            records[miner] = await read_or_answer(node, doing, _NO_MINER, _record_from_chain, node, miner)
    return tuple(ServedMiner(records[m], m in node.sealing) for m in sorted(records, key=lambda m: m.id))


@method("SectorPledge", perm=WRITE, namespace=NAMESPACE)
async def sector_pledge(node: FullNode, miner: Address) -> JobSector:
    """Open a committed-capacity sector of the miner and start sealing it (Lotus SectorPledge)."""
    pipeline = await _pipeline(node, miner)
    with answer_errors(PipelineError):
        number = await pipeline.pledge_sector()
    return JobSector((await _id_address(node, miner)).id, number)


@method("SectorStartSealing", perm=WRITE, namespace=NAMESPACE)
async def sector_start_sealing(node: FullNode, miner: Address, sector: Uint64) -> None:
    """Seal a sector that is open for deals now instead of waiting for more (Lotus SectorStartSealing)."""
    pipeline = await _pipeline(node, miner)
    with answer_errors(PipelineError, prefix=f"miner {_name(node, miner)}"):
        pipeline.start_sealing(sector)


@method("SectorsList", perm=READ, namespace=NAMESPACE)
async def sectors_list(node: FullNode, miner: Address) -> tuple[Uint64, ...]:
    """The numbers of every sector the miner's sealing pipeline knows (Lotus SectorsList)."""
    return tuple((await _pipeline(node, miner)).sectors_list())


@method("SectorsSummary", perm=READ, namespace=NAMESPACE)
async def sectors_summary(node: FullNode, miner: Address) -> JsonValue:
    """How many of the miner's sectors are in each state (Lotus SectorsSummary)."""
    return (await _pipeline(node, miner)).sectors_summary()


@method("SectorsStatus", perm=READ, namespace=NAMESPACE)
async def sectors_status(node: FullNode, miner: Address, sector: Uint64, on_chain: bool) -> SectorStatus:
    """A sector's state, pieces, tickets, messages and log, with its on-chain info when asked for and
    the chain has it (Lotus SectorsStatus)."""
    pipeline = await _pipeline(node, miner)
    with answer_errors(PipelineError, prefix=f"miner {_name(node, miner)}"):
        return await pipeline.sector_status(sector, on_chain=on_chain)


@method("SealingJobs", perm=READ, namespace=NAMESPACE)
async def sealing_jobs(node: FullNode, miner: Address | None) -> tuple[SealingJob, ...]:
    """The sealing jobs running (RunWait 0) or waiting for a slot (1) now, with their progress: the
    miner's, or every miner's for null (Lotus WorkerJobs)."""
    if miner is not None:
        return tuple((await _pipeline(node, miner)).sealing_jobs())
    miners = sorted(node.sealing, key=lambda m: m.id)
    return tuple(job for m in miners for job in node.sealing[m].sealing_jobs())
