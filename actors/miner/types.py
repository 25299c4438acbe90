"""The storage miner actor's interface: method numbers, params and returns (builtin-actors v9 shapes).

This module is a leaf (it imports no other actor's implementation) so that the market, power and
reward actors can import the miner's types without an import cycle. Every struct is a CBOR array in
field order, as go-state-types builtin/v9/miner.
"""

from collections.abc import Iterable
from enum import IntEnum
from typing import Annotated, Final

from actors.abi import Multiaddrs, PeerID, RegisteredSealProof, WindowPoStProofType
from actors.paych.types import PaymentVerifyParams
from actors.smoothing import FilterEstimate
from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.schema import (
    BytesKind,
    CborTuple,
    ChainEpoch,
    Int64,
    MaxLen,
    Name,
    StoragePower,
    TokenAmount,
    Uint64,
    kind_of,
)
from chain.types.address import Address
from chain.types.bitfield import BitField
from chain.types.block import PoStProof
from chain.types.sector import DealIDs, PieceInfo, Proof

# Lists in params are bounded so that decoding a hostile message stays cheap; the actor enforces the
# policy's (smaller) limits on top.
MAX_LIST: Final = 100_000
MAX_ADDRESSES: Final = 256
# Decoding cap on a ProveCommitAggregate's proof bytes; the actor enforces the policy's
# max_aggregated_proof_size below it.
MAX_AGGREGATE_PROOF_BYTES: Final = 64 << 20
# Block headers are a few hundred bytes; bound what a consensus fault report may carry.
MAX_HEADER_BYTES: Final = 1 << 16
MAX_CRON_PAYLOAD: Final = 1024
# builtin-actors' ERR_BALANCE_INVARIANTS_BROKEN: the miner's balances no longer add up.
ERR_BALANCE_INVARIANTS_BROKEN: Final = 1000

ControlAddrs = Annotated[tuple[Address, ...], MaxLen(MAX_ADDRESSES)]
SectorNumber = Uint64
Header = Annotated[bytes, BytesKind(max_len=MAX_HEADER_BYTES)]


class MinerMethod(IntEnum):
    """builtin-actors v9 miner method numbers, plus filpy's piece inclusion check (see docs/actors.md)."""

    Constructor = 1
    ControlAddresses = 2
    ChangeWorkerAddress = 3
    ChangePeerID = 4
    SubmitWindowedPoSt = 5
    PreCommitSector = 6
    ProveCommitSector = 7
    ExtendSectorExpiration = 8
    TerminateSectors = 9
    DeclareFaults = 10
    DeclareFaultsRecovered = 11
    OnDeferredCronEvent = 12
    CheckSectorProven = 13
    ApplyRewards = 14
    ReportConsensusFault = 15
    WithdrawBalance = 16
    ConfirmSectorProofsValid = 17
    ChangeMultiaddrs = 18
    CompactPartitions = 19
    CompactSectorNumbers = 20
    ConfirmUpdateWorkerKey = 21
    RepayDebt = 22
    ChangeOwnerAddress = 23
    DisputeWindowedPoSt = 24
    PreCommitSectorBatch = 25
    ProveCommitAggregate = 26
    # filpy: check a piece inclusion proof against a proven sector's CommD. builtin-actors numbers its
    # methods 1..35 and exports the rest under FRC-0042 hashes (>= 2^24); 64 is free in both.
    VerifyPieceInclusion = 64


# Deferred cron event types (the CronEventPayload the miner enrolls with the power actor).
CRON_EVENT_WORKER_KEY_CHANGE: Final = 0
CRON_EVENT_PROVING_DEADLINE: Final = 1
CRON_EVENT_PROCESS_EARLY_TERMINATIONS: Final = 2


class PowerPair(CborTuple):
    """Raw-byte and quality-adjusted power, added and subtracted together."""

    raw: StoragePower = 0
    qa: Annotated[StoragePower, Name("QA")] = 0

    def __add__(self, other: "PowerPair") -> "PowerPair":
        return PowerPair(self.raw + other.raw, self.qa + other.qa)

    def __sub__(self, other: "PowerPair") -> "PowerPair":
        return PowerPair(self.raw - other.raw, self.qa - other.qa)

    def __neg__(self) -> "PowerPair":
        return PowerPair(-self.raw, -self.qa)

    def is_zero(self) -> bool:
        return self.raw == 0 and self.qa == 0


class CronEventPayload(CborTuple):
    event_type: Int64


class MinerConstructorParams(CborTuple):
    """go-state-types v9 power.MinerConstructorParams."""

    owner: Annotated[Address, Name("OwnerAddr")]
    worker: Annotated[Address, Name("WorkerAddr")]
    control_addresses: Annotated[ControlAddrs, Name("ControlAddrs")]
    window_post_proof_type: WindowPoStProofType
    peer_id: PeerID
    multi_addresses: Annotated[Multiaddrs, Name("Multiaddrs")]


class GetControlAddressesReturn(CborTuple):
    owner: Address
    worker: Address
    control_addresses: Annotated[ControlAddrs, Name("ControlAddrs")]


class ChangeWorkerAddressParams(CborTuple):
    new_worker: Address
    new_control_addresses: Annotated[tuple[Address, ...], MaxLen(MAX_ADDRESSES), Name("NewControlAddrs")]


class ChangePeerIDParams(CborTuple):
    new_id: Annotated[PeerID, Name("NewID")]


class ChangeMultiaddrsParams(CborTuple):
    new_multi_addrs: Annotated[Multiaddrs, Name("NewMultiaddrs")]


class PoStPartition(CborTuple):
    index: Uint64
    skipped: BitField


class SubmitWindowedPoStParams(CborTuple):
    deadline: Uint64
    partitions: Annotated[tuple[PoStPartition, ...], MaxLen(MAX_LIST)]
    proofs: Annotated[tuple[PoStProof, ...], MaxLen(16)]
    chain_commit_epoch: ChainEpoch
    chain_commit_rand: Annotated[bytes, BytesKind(max_len=64)]


class PreCommitSectorParams(CborTuple):
    """v9 PreCommitSectorParams; the replace-capacity fields are accepted but must be unset (CC
    upgrades went away in v9's successors and are not supported here)."""

    seal_proof: RegisteredSealProof
    sector_number: SectorNumber
    sealed_cid: Annotated[CID, Name("SealedCID")]
    seal_rand_epoch: ChainEpoch
    deal_ids: DealIDs
    expiration: ChainEpoch
    replace_capacity: bool = False
    replace_sector_deadline: Uint64 = 0
    replace_sector_partition: Uint64 = 0
    replace_sector_number: SectorNumber = 0


class PreCommitSectorBatchParams(CborTuple):
    sectors: Annotated[tuple[PreCommitSectorParams, ...], MaxLen(4096)]


class ProveCommitSectorParams(CborTuple):
    sector_number: SectorNumber
    proof: Proof


AggregateProofs = Annotated[tuple[Proof, ...], MaxLen(MAX_LIST)]
_AGGREGATE_PROOFS: Final = kind_of(AggregateProofs, "AggregateProof")


class ProveCommitAggregateParams(CborTuple):
    """v9 ProveCommitAggregateParams. filpy has no SNARK aggregation: AggregateProof is the DAG-CBOR
    array of the sectors' vanilla seal proofs, one per sector in ascending sector-number order
    (encode_aggregate_proof)."""

    sector_numbers: BitField
    aggregate_proof: Annotated[bytes, BytesKind(max_len=MAX_AGGREGATE_PROOF_BYTES)]

    def seal_proofs(self) -> tuple[bytes, ...]:
        """The per-sector proofs (DecodeError if AggregateProof is not a CBOR array of byte strings)."""
        return decode_aggregate_proof(self.aggregate_proof)


def encode_aggregate_proof(proofs: Iterable[bytes]) -> bytes:
    """The AggregateProof of these seal proofs (given in ascending sector-number order)."""
    return dagcbor.encode(list(proofs))


def decode_aggregate_proof(data: bytes) -> tuple[bytes, ...]:
    proofs: tuple[bytes, ...] = _AGGREGATE_PROOFS.decode(
        dagcbor.decode(data), "ProveCommitAggregateParams.AggregateProof"
    )
    return proofs


class CheckSectorProvenParams(CborTuple):
    sector_number: SectorNumber


class SectorDeclaration(CborTuple):
    """A (deadline, partition, sectors) triple: v9's TerminationDeclaration, FaultDeclaration and
    RecoveryDeclaration all have this shape."""

    deadline: Uint64
    partition: Uint64
    sectors: BitField


Declarations = Annotated[tuple[SectorDeclaration, ...], MaxLen(MAX_LIST)]


class TerminateSectorsParams(CborTuple):
    terminations: Declarations


class TerminateSectorsReturn(CborTuple):
    done: bool


class DeclareFaultsParams(CborTuple):
    faults: Declarations


class DeclareFaultsRecoveredParams(CborTuple):
    recoveries: Declarations


class DeferredCronEventParams(CborTuple):
    event_payload: Annotated[bytes, BytesKind(max_len=MAX_CRON_PAYLOAD)]
    reward_smoothed: FilterEstimate
    quality_adj_power_smoothed: FilterEstimate

    def payload(self) -> CronEventPayload:
        """The decoded event payload (DecodeError if it is not a CronEventPayload)."""
        return CronEventPayload.from_bytes(self.event_payload)


class ApplyRewardParams(CborTuple):
    reward: TokenAmount
    penalty: TokenAmount


class ReportConsensusFaultParams(CborTuple):
    header1: Annotated[Header, Name("BlockHeader1")]
    header2: Annotated[Header, Name("BlockHeader2")]
    header_extra: Annotated[Header, Name("BlockHeaderExtra")]


class WithdrawBalanceParams(CborTuple):
    amount_requested: TokenAmount


class PieceInclusionExtra(CborTuple):
    """What a payment voucher's condition names: a piece that must sit in a proven sector."""

    sector_number: SectorNumber
    piece: PieceInfo


# VerifyPieceInclusion's params are what a payment channel sends to a voucher's condition actor:
# Extra is a CBOR PieceInclusionExtra, Proof the proofs.pip bytes.
VerifyPieceInclusionParams = PaymentVerifyParams
