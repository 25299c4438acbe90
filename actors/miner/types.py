"""The storage miner actor's interface: method numbers, params and returns (builtin-actors v9 shapes).

This module is a leaf (it imports no other actor module) so that the market, power and reward
actors can import the miner's types without an import cycle. Every struct is a CBOR array in field
order, as go-state-types builtin/v9/miner.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

from actors.miner.bitfield import BitField
from actors.smoothing import FilterEstimate
from chain.encoding import dagcbor
from chain.encoding.bigint import encode_bigint
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.expect import (
    expect_bigint,
    expect_bool,
    expect_bytes,
    expect_cid,
    expect_int,
    expect_list,
    expect_tuple,
    expect_uint,
)
from chain.types.address import Address
from chain.types.block import PoStProof
from chain.types.sector import MAX_PROOF_BYTES, PieceInfo, expect_deal_ids

# Lists in params are bounded so that decoding a hostile message stays cheap; the actor enforces the
# policy's (smaller) limits on top.
MAX_LIST: Final = 100_000
MAX_ADDRESSES: Final = 256
MAX_PEER_BYTES: Final = 4096
# Decoding cap on a ProveCommitAggregate's proof bytes; the actor enforces the policy's
# max_aggregated_proof_size below it.
MAX_AGGREGATE_PROOF_BYTES: Final = 64 << 20


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


def _addresses(raw: Any, what: str, max_len: int = MAX_ADDRESSES) -> tuple[Address, ...]:
    return tuple(Address.from_cbor(a, what) for a in expect_list(raw, what, max_len))


def _multiaddrs(raw: Any, what: str) -> tuple[bytes, ...]:
    return tuple(expect_bytes(m, what, max_len=MAX_PEER_BYTES) for m in expect_list(raw, what, MAX_ADDRESSES))


@dataclass(frozen=True, slots=True)
class PowerPair:
    """Raw-byte and quality-adjusted power, added and subtracted together."""

    raw: int = 0
    qa: int = 0

    def __add__(self, other: "PowerPair") -> "PowerPair":
        return PowerPair(self.raw + other.raw, self.qa + other.qa)

    def __sub__(self, other: "PowerPair") -> "PowerPair":
        return PowerPair(self.raw - other.raw, self.qa - other.qa)

    def __neg__(self) -> "PowerPair":
        return PowerPair(-self.raw, -self.qa)

    def is_zero(self) -> bool:
        return self.raw == 0 and self.qa == 0

    def to_cbor(self) -> list[Any]:
        return [encode_bigint(self.raw), encode_bigint(self.qa)]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "PowerPair") -> "PowerPair":
        r, q = expect_tuple(raw, 2, what)
        return cls(expect_bigint(r, f"{what}.Raw"), expect_bigint(q, f"{what}.QA"))


@dataclass(frozen=True, slots=True)
class CronEventPayload:
    event_type: int

    def to_cbor(self) -> list[Any]:
        return [self.event_type]

    @classmethod
    def from_cbor(cls, raw: Any) -> "CronEventPayload":
        (event_type,) = expect_tuple(raw, 1, "CronEventPayload")
        return cls(expect_int(event_type, "CronEventPayload.EventType"))


@dataclass(frozen=True, slots=True)
class MinerConstructorParams:
    owner: Address
    worker: Address
    control_addresses: tuple[Address, ...]
    window_post_proof_type: int
    peer_id: bytes
    multi_addresses: tuple[bytes, ...]

    def to_cbor(self) -> list[Any]:
        return [
            self.owner.to_cbor(),
            self.worker.to_cbor(),
            [a.to_cbor() for a in self.control_addresses],
            self.window_post_proof_type,
            self.peer_id,
            list(self.multi_addresses),
        ]

    @classmethod
    def from_cbor(cls, raw: Any) -> "MinerConstructorParams":
        w = "MinerConstructorParams"
        owner, worker, control, proof, peer, addrs = expect_tuple(raw, 6, w)
        return cls(
            Address.from_cbor(owner, f"{w}.Owner"),
            Address.from_cbor(worker, f"{w}.Worker"),
            _addresses(control, f"{w}.ControlAddrs"),
            expect_int(proof, f"{w}.WindowPoStProofType"),
            expect_bytes(peer, f"{w}.PeerId", max_len=MAX_PEER_BYTES),
            _multiaddrs(addrs, f"{w}.Multiaddrs"),
        )


@dataclass(frozen=True, slots=True)
class GetControlAddressesReturn:
    owner: Address
    worker: Address
    control_addresses: tuple[Address, ...]

    def to_cbor(self) -> list[Any]:
        return [self.owner.to_cbor(), self.worker.to_cbor(), [a.to_cbor() for a in self.control_addresses]]

    @classmethod
    def from_cbor(cls, raw: Any) -> "GetControlAddressesReturn":
        w = "GetControlAddressesReturn"
        owner, worker, control = expect_tuple(raw, 3, w)
        return cls(
            Address.from_cbor(owner, f"{w}.Owner"),
            Address.from_cbor(worker, f"{w}.Worker"),
            _addresses(control, f"{w}.ControlAddrs"),
        )


@dataclass(frozen=True, slots=True)
class ChangeWorkerAddressParams:
    new_worker: Address
    new_control_addresses: tuple[Address, ...]

    def to_cbor(self) -> list[Any]:
        return [self.new_worker.to_cbor(), [a.to_cbor() for a in self.new_control_addresses]]

    @classmethod
    def from_cbor(cls, raw: Any) -> "ChangeWorkerAddressParams":
        w = "ChangeWorkerAddressParams"
        worker, control = expect_tuple(raw, 2, w)
        return cls(Address.from_cbor(worker, f"{w}.NewWorker"), _addresses(control, f"{w}.NewControlAddrs"))


@dataclass(frozen=True, slots=True)
class ChangePeerIDParams:
    new_id: bytes

    def to_cbor(self) -> list[Any]:
        return [self.new_id]

    @classmethod
    def from_cbor(cls, raw: Any) -> "ChangePeerIDParams":
        (new_id,) = expect_tuple(raw, 1, "ChangePeerIDParams")
        return cls(expect_bytes(new_id, "ChangePeerIDParams.NewID", max_len=MAX_PEER_BYTES))


@dataclass(frozen=True, slots=True)
class ChangeMultiaddrsParams:
    new_multi_addrs: tuple[bytes, ...]

    def to_cbor(self) -> list[Any]:
        return [list(self.new_multi_addrs)]

    @classmethod
    def from_cbor(cls, raw: Any) -> "ChangeMultiaddrsParams":
        (addrs,) = expect_tuple(raw, 1, "ChangeMultiaddrsParams")
        return cls(_multiaddrs(addrs, "ChangeMultiaddrsParams.NewMultiaddrs"))


@dataclass(frozen=True, slots=True)
class PoStPartition:
    index: int
    skipped: BitField

    def to_cbor(self) -> list[Any]:
        return [self.index, self.skipped.to_cbor()]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "PoStPartition") -> "PoStPartition":
        index, skipped = expect_tuple(raw, 2, what)
        return cls(expect_uint(index, f"{what}.Index"), _bitfield(skipped, f"{what}.Skipped"))


def _bitfield(raw: Any, what: str) -> BitField:
    try:
        return BitField.from_cbor(raw)
    except DecodeError as exc:
        raise DecodeError(f"{what}: {exc}") from None


@dataclass(frozen=True, slots=True)
class SubmitWindowedPoStParams:
    deadline: int
    partitions: tuple[PoStPartition, ...]
    proofs: tuple[PoStProof, ...]
    chain_commit_epoch: int
    chain_commit_rand: bytes

    def to_cbor(self) -> list[Any]:
        return [
            self.deadline,
            [p.to_cbor() for p in self.partitions],
            [p.to_cbor() for p in self.proofs],
            self.chain_commit_epoch,
            self.chain_commit_rand,
        ]

    @classmethod
    def from_cbor(cls, raw: Any) -> "SubmitWindowedPoStParams":
        w = "SubmitWindowedPoStParams"
        deadline, partitions, proofs, epoch, rand = expect_tuple(raw, 5, w)
        return cls(
            expect_uint(deadline, f"{w}.Deadline"),
            tuple(
                PoStPartition.from_cbor(p, f"{w}.Partitions")
                for p in expect_list(partitions, f"{w}.Partitions", MAX_LIST)
            ),
            tuple(PoStProof.from_cbor(p, f"{w}.Proofs") for p in expect_list(proofs, f"{w}.Proofs", 16)),
            expect_int(epoch, f"{w}.ChainCommitEpoch"),
            expect_bytes(rand, f"{w}.ChainCommitRand", max_len=64),
        )


@dataclass(frozen=True, slots=True)
class PreCommitSectorParams:
    """v9 PreCommitSectorParams; the replace-capacity fields are accepted but must be unset (CC
    upgrades went away in v9's successors and are not supported here)."""

    seal_proof: int
    sector_number: int
    sealed_cid: CID
    seal_rand_epoch: int
    deal_ids: tuple[int, ...]
    expiration: int
    replace_capacity: bool = False
    replace_sector_deadline: int = 0
    replace_sector_partition: int = 0
    replace_sector_number: int = 0

    def to_cbor(self) -> list[Any]:
        return [
            self.seal_proof,
            self.sector_number,
            self.sealed_cid,
            self.seal_rand_epoch,
            list(self.deal_ids),
            self.expiration,
            self.replace_capacity,
            self.replace_sector_deadline,
            self.replace_sector_partition,
            self.replace_sector_number,
        ]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "PreCommitSectorParams") -> "PreCommitSectorParams":
        w = what
        proof, number, sealed, rand_epoch, deals, expiration, replace, dl, part, replaced = expect_tuple(
            raw, 10, w
        )
        return cls(
            expect_int(proof, f"{w}.SealProof"),
            expect_uint(number, f"{w}.SectorNumber"),
            expect_cid(sealed, f"{w}.SealedCID"),
            expect_int(rand_epoch, f"{w}.SealRandEpoch"),
            expect_deal_ids(deals, f"{w}.DealIDs"),
            expect_int(expiration, f"{w}.Expiration"),
            expect_bool(replace, f"{w}.ReplaceCapacity"),
            expect_uint(dl, f"{w}.ReplaceSectorDeadline"),
            expect_uint(part, f"{w}.ReplaceSectorPartition"),
            expect_uint(replaced, f"{w}.ReplaceSectorNumber"),
        )


@dataclass(frozen=True, slots=True)
class PreCommitSectorBatchParams:
    sectors: tuple[PreCommitSectorParams, ...]

    def to_cbor(self) -> list[Any]:
        return [[s.to_cbor() for s in self.sectors]]

    @classmethod
    def from_cbor(cls, raw: Any) -> "PreCommitSectorBatchParams":
        (sectors,) = expect_tuple(raw, 1, "PreCommitSectorBatchParams")
        what = "PreCommitSectorBatchParams.Sectors"
        return cls(tuple(PreCommitSectorParams.from_cbor(s, what) for s in expect_list(sectors, what, 4096)))


@dataclass(frozen=True, slots=True)
class ProveCommitSectorParams:
    sector_number: int
    proof: bytes

    def to_cbor(self) -> list[Any]:
        return [self.sector_number, self.proof]

    @classmethod
    def from_cbor(cls, raw: Any) -> "ProveCommitSectorParams":
        number, proof = expect_tuple(raw, 2, "ProveCommitSectorParams")
        return cls(
            expect_uint(number, "ProveCommitSectorParams.SectorNumber"),
            expect_bytes(proof, "ProveCommitSectorParams.Proof", max_len=MAX_PROOF_BYTES),
        )


@dataclass(frozen=True, slots=True)
class ProveCommitAggregateParams:
    """v9 ProveCommitAggregateParams. filpy has no SNARK aggregation: AggregateProof is the DAG-CBOR
    array of the sectors' vanilla seal proofs, one per sector in ascending sector-number order
    (encode_aggregate_proof)."""

    sector_numbers: BitField
    aggregate_proof: bytes

    def to_cbor(self) -> list[Any]:
        return [self.sector_numbers.to_cbor(), self.aggregate_proof]

    @classmethod
    def from_cbor(cls, raw: Any) -> "ProveCommitAggregateParams":
        w = "ProveCommitAggregateParams"
        numbers, proof = expect_tuple(raw, 2, w)
        return cls(
            _bitfield(numbers, f"{w}.SectorNumbers"),
            expect_bytes(proof, f"{w}.AggregateProof", max_len=MAX_AGGREGATE_PROOF_BYTES),
        )

    def seal_proofs(self) -> tuple[bytes, ...]:
        """The per-sector proofs (DecodeError if AggregateProof is not a CBOR array of byte strings)."""
        return decode_aggregate_proof(self.aggregate_proof)


def encode_aggregate_proof(proofs: Iterable[bytes]) -> bytes:
    """The AggregateProof of these seal proofs (given in ascending sector-number order)."""
    return dagcbor.encode(list(proofs))


def decode_aggregate_proof(data: bytes) -> tuple[bytes, ...]:
    what = "ProveCommitAggregateParams.AggregateProof"
    raw = dagcbor.decode(data)
    return tuple(
        expect_bytes(p, f"{what} entry", max_len=MAX_PROOF_BYTES) for p in expect_list(raw, what, MAX_LIST)
    )


@dataclass(frozen=True, slots=True)
class CheckSectorProvenParams:
    sector_number: int

    def to_cbor(self) -> list[Any]:
        return [self.sector_number]

    @classmethod
    def from_cbor(cls, raw: Any) -> "CheckSectorProvenParams":
        (number,) = expect_tuple(raw, 1, "CheckSectorProvenParams")
        return cls(expect_uint(number, "CheckSectorProvenParams.SectorNumber"))


@dataclass(frozen=True, slots=True)
class SectorDeclaration:
    """A (deadline, partition, sectors) triple: v9's TerminationDeclaration, FaultDeclaration and
    RecoveryDeclaration all have this shape."""

    deadline: int
    partition: int
    sectors: BitField

    def to_cbor(self) -> list[Any]:
        return [self.deadline, self.partition, self.sectors.to_cbor()]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "Declaration") -> "SectorDeclaration":
        deadline, partition, sectors = expect_tuple(raw, 3, what)
        return cls(
            expect_uint(deadline, f"{what}.Deadline"),
            expect_uint(partition, f"{what}.Partition"),
            _bitfield(sectors, f"{what}.Sectors"),
        )


def _declarations(raw: Any, what: str) -> tuple[SectorDeclaration, ...]:
    (items,) = expect_tuple(raw, 1, what)
    return tuple(SectorDeclaration.from_cbor(d, what) for d in expect_list(items, what, MAX_LIST))


@dataclass(frozen=True, slots=True)
class TerminateSectorsParams:
    terminations: tuple[SectorDeclaration, ...]

    def to_cbor(self) -> list[Any]:
        return [[d.to_cbor() for d in self.terminations]]

    @classmethod
    def from_cbor(cls, raw: Any) -> "TerminateSectorsParams":
        return cls(_declarations(raw, "TerminateSectorsParams.Terminations"))


@dataclass(frozen=True, slots=True)
class TerminateSectorsReturn:
    done: bool

    def to_cbor(self) -> list[Any]:
        return [self.done]

    @classmethod
    def from_cbor(cls, raw: Any) -> "TerminateSectorsReturn":
        (done,) = expect_tuple(raw, 1, "TerminateSectorsReturn")
        return cls(expect_bool(done, "TerminateSectorsReturn.Done"))


@dataclass(frozen=True, slots=True)
class DeclareFaultsParams:
    faults: tuple[SectorDeclaration, ...]

    def to_cbor(self) -> list[Any]:
        return [[d.to_cbor() for d in self.faults]]

    @classmethod
    def from_cbor(cls, raw: Any) -> "DeclareFaultsParams":
        return cls(_declarations(raw, "DeclareFaultsParams.Faults"))


@dataclass(frozen=True, slots=True)
class DeclareFaultsRecoveredParams:
    recoveries: tuple[SectorDeclaration, ...]

    def to_cbor(self) -> list[Any]:
        return [[d.to_cbor() for d in self.recoveries]]

    @classmethod
    def from_cbor(cls, raw: Any) -> "DeclareFaultsRecoveredParams":
        return cls(_declarations(raw, "DeclareFaultsRecoveredParams.Recoveries"))


@dataclass(frozen=True, slots=True)
class DeferredCronEventParams:
    event_payload: bytes
    reward_smoothed: FilterEstimate
    quality_adj_power_smoothed: FilterEstimate

    def to_cbor(self) -> list[Any]:
        return [self.event_payload, self.reward_smoothed.to_cbor(), self.quality_adj_power_smoothed.to_cbor()]

    @classmethod
    def from_cbor(cls, raw: Any) -> "DeferredCronEventParams":
        w = "DeferredCronEventParams"
        payload, reward, power = expect_tuple(raw, 3, w)
        return cls(
            expect_bytes(payload, f"{w}.EventPayload", max_len=1024),
            FilterEstimate.from_cbor(reward, f"{w}.RewardSmoothed"),
            FilterEstimate.from_cbor(power, f"{w}.QualityAdjPowerSmoothed"),
        )

    def payload(self) -> CronEventPayload:
        """The decoded event payload (DecodeError if it is not a CronEventPayload)."""
        return CronEventPayload.from_cbor(dagcbor.decode(self.event_payload))


@dataclass(frozen=True, slots=True)
class ApplyRewardParams:
    reward: int
    penalty: int

    def to_cbor(self) -> list[Any]:
        return [encode_bigint(self.reward), encode_bigint(self.penalty)]

    @classmethod
    def from_cbor(cls, raw: Any) -> "ApplyRewardParams":
        reward, penalty = expect_tuple(raw, 2, "ApplyRewardParams")
        return cls(
            expect_bigint(reward, "ApplyRewardParams.Reward"),
            expect_bigint(penalty, "ApplyRewardParams.Penalty"),
        )


# Block headers are a few hundred bytes; bound what a report may carry.
MAX_HEADER_BYTES: Final = 1 << 16


@dataclass(frozen=True, slots=True)
class ReportConsensusFaultParams:
    header1: bytes
    header2: bytes
    header_extra: bytes

    def to_cbor(self) -> list[Any]:
        return [self.header1, self.header2, self.header_extra]

    @classmethod
    def from_cbor(cls, raw: Any) -> "ReportConsensusFaultParams":
        w = "ReportConsensusFaultParams"
        h1, h2, extra = expect_tuple(raw, 3, w)
        return cls(
            expect_bytes(h1, f"{w}.BlockHeader1", max_len=MAX_HEADER_BYTES),
            expect_bytes(h2, f"{w}.BlockHeader2", max_len=MAX_HEADER_BYTES),
            expect_bytes(extra, f"{w}.BlockHeaderExtra", max_len=MAX_HEADER_BYTES),
        )


@dataclass(frozen=True, slots=True)
class WithdrawBalanceParams:
    amount_requested: int

    def to_cbor(self) -> list[Any]:
        return [encode_bigint(self.amount_requested)]

    @classmethod
    def from_cbor(cls, raw: Any) -> "WithdrawBalanceParams":
        (amount,) = expect_tuple(raw, 1, "WithdrawBalanceParams")
        return cls(expect_bigint(amount, "WithdrawBalanceParams.AmountRequested"))


@dataclass(frozen=True, slots=True)
class WithdrawBalanceReturn:
    """Serialised transparently: the CBOR is the amount itself, not an array."""

    amount_withdrawn: int

    def to_cbor(self) -> bytes:
        return encode_bigint(self.amount_withdrawn)

    @classmethod
    def from_cbor(cls, raw: Any) -> "WithdrawBalanceReturn":
        return cls(expect_bigint(raw, "WithdrawBalanceReturn"))


@dataclass(frozen=True, slots=True)
class PieceInclusionExtra:
    """What a payment voucher's condition names: a piece that must sit in a proven sector."""

    sector_number: int
    piece: PieceInfo

    def to_cbor(self) -> list[Any]:
        return [self.sector_number, self.piece.to_cbor()]

    @classmethod
    def from_cbor(cls, raw: Any) -> "PieceInclusionExtra":
        number, piece = expect_tuple(raw, 2, "PieceInclusionExtra")
        return cls(
            expect_uint(number, "PieceInclusionExtra.SectorNumber"),
            PieceInfo.from_cbor(piece, "PieceInclusionExtra.Piece"),
        )


@dataclass(frozen=True, slots=True)
class VerifyPieceInclusionParams:
    """The params a payment channel sends to a voucher's ModVerifyParams actor (paych
    PaymentVerifyParams): Extra is a CBOR PieceInclusionExtra, Proof the proofs.pip bytes."""

    extra: bytes
    proof: bytes

    def to_cbor(self) -> list[Any]:
        return [self.extra, self.proof]

    @classmethod
    def from_cbor(cls, raw: Any) -> "VerifyPieceInclusionParams":
        extra, proof = expect_tuple(raw, 2, "VerifyPieceInclusionParams")
        return cls(
            expect_bytes(extra, "VerifyPieceInclusionParams.Extra", max_len=4096),
            expect_bytes(proof, "VerifyPieceInclusionParams.Proof", max_len=MAX_PROOF_BYTES),
        )

    def decoded_extra(self) -> PieceInclusionExtra:
        """The piece and sector Extra names (DecodeError if Extra is not a PieceInclusionExtra)."""
        return PieceInclusionExtra.from_cbor(dagcbor.decode(self.extra))
