"""The storage power actor's methods, params and returns (builtin-actors v9 actors/power)."""

from enum import IntEnum
from typing import Annotated, Final

from actors.abi import Multiaddrs, PeerID, WindowPoStProofType
from actors.smoothing import FilterEstimate
from chain.encoding.schema import BytesKind, CborTuple, ChainEpoch, Name, StoragePower, TokenAmount
from chain.types.address import Address

MAX_CRON_PAYLOAD: Final = 1024
CronPayload = Annotated[bytes, BytesKind(max_len=MAX_CRON_PAYLOAD)]


class PowerMethod(IntEnum):
    """builtin-actors v9 power method numbers. Seal proofs are verified by the miner at ProveCommit,
    so SubmitPoRepForBulkVerify (8) has no handler (docs/actors.md)."""

    Constructor = 1
    CreateMiner = 2
    UpdateClaimedPower = 3
    EnrollCronEvent = 4
    OnEpochTickEnd = 5
    UpdatePledgeTotal = 6
    SubmitPoRepForBulkVerify = 8
    CurrentTotalPower = 9


class CreateMinerParams(CborTuple):
    owner: Address
    worker: Address
    window_post_proof_type: WindowPoStProofType
    peer: PeerID
    multiaddrs: Multiaddrs


class CreateMinerReturn(CborTuple):
    id_address: Annotated[Address, Name("IDAddress")]
    robust_address: Address


class UpdateClaimedPowerParams(CborTuple):
    raw_byte_delta: StoragePower
    quality_adjusted_delta: StoragePower


class EnrollCronEventParams(CborTuple):
    event_epoch: ChainEpoch
    payload: CronPayload


class CurrentTotalPowerReturn(CborTuple):
    raw_byte_power: StoragePower
    quality_adj_power: StoragePower
    pledge_collateral: TokenAmount
    quality_adj_power_smoothed: FilterEstimate
