"""State methods about storage miners and power (lotus node/impl/full/state.go), at a tipset's parent
state as every State method.

A sector, deadline or partition query about an address that is not a miner answers code 1 ("... is
not a storage miner actor"); one about an address with no actor, Lotus's ActorNotFound code.
"""

import base58

from actors.miner.deadlines import Partition
from actors.miner.policy import DeadlineInfo
from actors.miner.state import MinerInfo, SectorOnChainInfo
from chain.encoding.carry import carried
from chain.encoding.errors import DecodeError
from chain.encoding.multihash import Multihash
from chain.encoding.schema import BigInt, Uint64
from chain.params import Policy
from chain.stmgr.miners import MinerPower as StateMinerPowerResult
from chain.types.address import Address
from chain.types.bitfield import BitField
from chain.types.tipset import TipSet, TipSetKey
from node.fullnode import FullNode
from rpc.methods.query import at_tipset
from rpc.methods.state_types import (
    ApiDeadline,
    ApiMinerInfo,
    ApiPartition,
    DlineInfo,
    MinerPower,
    PowerClaim,
)
from rpc.registry import READ, method


@method("StateListMiners", perm=READ)
async def state_list_miners(node: FullNode, tsk: TipSetKey) -> tuple[Address, ...]:
    """Every miner with a power claim."""
    return tuple(await at_tipset(node, tsk, node.state.list_miners))


def peer_id_text(data: bytes) -> str | None:
    """A libp2p peer ID (a multihash) as its base58 text; None when the bytes are not one, as Lotus
    (peer.IDFromBytes) leaves PeerId out then."""
    if not data:
        return None
    try:
        if Multihash.from_bytes(data).to_bytes() != data:
            return None
    except (DecodeError, ValueError):
        return None
    return str(base58.b58encode(data).decode("ascii"))


def api_miner_info(info: MinerInfo) -> ApiMinerInfo:
    pending = info.pending_worker_key
    return carried(
        ApiMinerInfo,
        info,
        new_worker=None if pending is None else pending.new_worker,
        worker_change_epoch=-1 if pending is None else pending.effective_at,
        peer_id=peer_id_text(info.peer_id),
        window_post_proof_type=int(info.window_post_proof_type),
    )


@method("StateMinerInfo", perm=READ)
async def state_miner_info(node: FullNode, miner: Address, tsk: TipSetKey) -> ApiMinerInfo:
    """A miner's owner, worker, control addresses, peer ID, proof type and sector size."""
    return api_miner_info(await at_tipset(node, tsk, lambda ts: node.state.miner_info(miner, ts)))


def api_miner_power(power: StateMinerPowerResult) -> MinerPower:
    return MinerPower(
        PowerClaim(power.miner.raw_byte_power, power.miner.quality_adj_power),
        PowerClaim(power.total.raw_byte_power, power.total.quality_adj_power),
        power.has_min_power,
    )


@method("StateMinerPower", perm=READ)
async def state_miner_power(node: FullNode, miner: Address, tsk: TipSetKey) -> MinerPower:
    """A miner's power, the network's total power, and whether the miner has the consensus minimum."""
    return api_miner_power(await at_tipset(node, tsk, lambda ts: node.state.miner_power(miner, ts)))


@method("StateMinerSectors", perm=READ)
async def state_miner_sectors(
    node: FullNode, miner: Address, sectors: BitField | None, tsk: TipSetKey
) -> tuple[SectorOnChainInfo, ...]:
    """A miner's sectors: those numbered in the bitfield, or all when it is null."""
    return tuple(await at_tipset(node, tsk, lambda ts: node.state.miner_sectors(miner, ts, sectors)))


@method("StateMinerActiveSectors", perm=READ)
async def state_miner_active_sectors(
    node: FullNode, miner: Address, tsk: TipSetKey
) -> tuple[SectorOnChainInfo, ...]:
    """The sectors a miner is proving: live and not faulty."""
    return tuple(await at_tipset(node, tsk, lambda ts: node.state.miner_active_sectors(miner, ts)))


@method("StateSectorGetInfo", perm=READ)
async def state_sector_get_info(
    node: FullNode, miner: Address, sector_number: Uint64, tsk: TipSetKey
) -> SectorOnChainInfo | None:
    """A miner's sector; null when it has no such sector."""
    return await at_tipset(node, tsk, lambda ts: node.state.sector_info(miner, sector_number, ts))


@method("StateMinerDeadlines", perm=READ)
async def state_miner_deadlines(node: FullNode, miner: Address, tsk: TipSetKey) -> tuple[ApiDeadline, ...]:
    """Each of a miner's proving deadlines: the partitions proven in its current window."""

    def read(ts: TipSet) -> tuple[ApiDeadline, ...]:
        return tuple(ApiDeadline(d.partitions_posted, 0, 0) for d in node.state.miner_deadlines(miner, ts))

    return await at_tipset(node, tsk, read)


def api_partition(partition: Partition) -> ApiPartition:
    return ApiPartition(
        all_sectors=partition.sectors,
        faulty_sectors=partition.faults,
        recovering_sectors=partition.recoveries,
        live_sectors=partition.live(),
        active_sectors=partition.active(),
    )


@method("StateMinerPartitions", perm=READ)
async def state_miner_partitions(
    node: FullNode, miner: Address, deadline_index: Uint64, tsk: TipSetKey
) -> tuple[ApiPartition, ...]:
    """The partitions of one of a miner's deadlines, with their sector sets."""

    def read(ts: TipSet) -> tuple[ApiPartition, ...]:
        return tuple(api_partition(p) for p in node.state.miner_partitions(miner, deadline_index, ts))

    return await at_tipset(node, tsk, read)


@method("StateMinerFaults", perm=READ)
async def state_miner_faults(node: FullNode, miner: Address, tsk: TipSetKey) -> BitField:
    """The numbers of a miner's faulty sectors."""
    return await at_tipset(node, tsk, lambda ts: node.state.miner_faults(miner, ts))


@method("StateMinerRecoveries", perm=READ)
async def state_miner_recoveries(node: FullNode, miner: Address, tsk: TipSetKey) -> BitField:
    """The numbers of a miner's faulty sectors declared recovering."""
    return await at_tipset(node, tsk, lambda ts: node.state.miner_recoveries(miner, ts))


def dline_info(info: DeadlineInfo, policy: Policy) -> DlineInfo:
    return carried(DlineInfo, info, policy)


@method("StateMinerProvingDeadline", perm=READ)
async def state_miner_proving_deadline(node: FullNode, miner: Address, tsk: TipSetKey) -> DlineInfo:
    """A miner's deadline open at a tipset's epoch, or the next one to open."""
    info = await at_tipset(node, tsk, lambda ts: node.state.proving_deadline(miner, ts))
    return dline_info(info, node.policy)


@method("StateMinerAvailableBalance", perm=READ)
async def state_miner_available_balance(node: FullNode, miner: Address, tsk: TipSetKey) -> BigInt:
    """What a miner could withdraw: its balance less locked rewards, pre-commit deposits, initial
    pledge and fee debt, plus rewards vested by now."""
    return await at_tipset(node, tsk, lambda ts: node.state.available_balance(miner, ts))
