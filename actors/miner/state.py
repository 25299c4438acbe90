"""The miner actor's state: its info, balances, pre-commits, sectors and the handles to its deadlines.

MinerState has builtin-actors v9's fifteen fields in order. Pre-committed sectors are a HAMT
(bitwidth 5, u64-varint keys) of SectorPreCommitOnChainInfo, their clean-up schedule an AMT (bitwidth
6) of epoch -> bitfield of sector numbers, and proven sectors an AMT (bitwidth 5) of
SectorOnChainInfo indexed by sector number. SectorOnChainInfo carries one field more than v9: the
sector's unsealed CID (CommD), which piece inclusion checks need (see docs/actors.md).
"""

from dataclasses import dataclass, replace
from typing import Any, Final

from actors.miner.bitfield import BitField
from actors.miner.policy import QuantSpec, qa_power_for_weight
from actors.miner.types import PowerPair
from actors.miner.vesting import VestingFunds, VestSpec
from actors.util.keys import u64_key
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
    expect_optional_cid,
    expect_tuple,
    expect_uint,
)
from chain.state.amt import Amt
from chain.state.hamt import Hamt
from chain.store.blockstore import Blockstore, get_cbor, put_cbor
from chain.types.address import Address
from chain.types.sector import expect_deal_ids
from chain.vm.exitcode import ActorError, ExitCode

PRECOMMIT_HAMT_BITWIDTH: Final = 5
PRECOMMIT_EXPIRY_AMT_BITWIDTH: Final = 6
SECTORS_AMT_BITWIDTH: Final = 5


def illegal_state(what: str, exc: Exception | None = None) -> ActorError:
    return ActorError(ExitCode.ErrIllegalState, what if exc is None else f"{what}: {exc}")


def _optional_address(raw: Any, what: str) -> Address | None:
    return None if raw is None else Address.from_cbor(raw, what)


@dataclass(frozen=True, slots=True)
class WorkerKeyChange:
    new_worker: Address
    effective_at: int

    def to_cbor(self) -> list[Any]:
        return [self.new_worker.to_cbor(), self.effective_at]

    @classmethod
    def from_cbor(cls, raw: Any) -> "WorkerKeyChange":
        worker, epoch = expect_tuple(raw, 2, "WorkerKeyChange")
        return cls(
            Address.from_cbor(worker, "WorkerKeyChange.NewWorker"),
            expect_int(epoch, "WorkerKeyChange.EffectiveAt"),
        )


@dataclass(frozen=True, slots=True)
class BeneficiaryTerm:
    quota: int = 0
    used_quota: int = 0
    expiration: int = 0

    def to_cbor(self) -> list[Any]:
        return [encode_bigint(self.quota), encode_bigint(self.used_quota), self.expiration]

    @classmethod
    def from_cbor(cls, raw: Any) -> "BeneficiaryTerm":
        quota, used, expiration = expect_tuple(raw, 3, "BeneficiaryTerm")
        return cls(
            expect_bigint(quota, "BeneficiaryTerm.Quota"),
            expect_bigint(used, "BeneficiaryTerm.UsedQuota"),
            expect_int(expiration, "BeneficiaryTerm.Expiration"),
        )


@dataclass(frozen=True, slots=True)
class MinerInfo:
    """v9 MinerInfo. The beneficiary is always the owner (no ChangeBeneficiary here)."""

    owner: Address
    worker: Address
    control_addresses: tuple[Address, ...]
    pending_worker_key: WorkerKeyChange | None
    peer_id: bytes
    multiaddrs: tuple[bytes, ...]
    window_post_proof_type: int
    sector_size: int
    window_post_partition_sectors: int
    consensus_fault_elapsed: int
    pending_owner_address: Address | None
    beneficiary: Address
    beneficiary_term: BeneficiaryTerm
    pending_beneficiary_term: None = None

    def control_set(self) -> tuple[Address, ...]:
        """Addresses allowed to act for the miner: control addresses, worker and owner."""
        return (*self.control_addresses, self.worker, self.owner)

    def to_cbor(self) -> list[Any]:
        return [
            self.owner.to_cbor(),
            self.worker.to_cbor(),
            [a.to_cbor() for a in self.control_addresses],
            None if self.pending_worker_key is None else self.pending_worker_key.to_cbor(),
            self.peer_id,
            list(self.multiaddrs),
            self.window_post_proof_type,
            self.sector_size,
            self.window_post_partition_sectors,
            self.consensus_fault_elapsed,
            None if self.pending_owner_address is None else self.pending_owner_address.to_cbor(),
            self.beneficiary.to_cbor(),
            self.beneficiary_term.to_cbor(),
            None,
        ]

    @classmethod
    def from_cbor(cls, raw: Any) -> "MinerInfo":
        w = "MinerInfo"
        f = expect_tuple(raw, 14, w)
        if f[13] is not None:
            raise DecodeError(f"{w}.PendingBeneficiaryTerm: beneficiary changes are not supported")
        return cls(
            owner=Address.from_cbor(f[0], f"{w}.Owner"),
            worker=Address.from_cbor(f[1], f"{w}.Worker"),
            control_addresses=tuple(
                Address.from_cbor(a, f"{w}.ControlAddresses") for a in expect_list(f[2], w, 256)
            ),
            pending_worker_key=None if f[3] is None else WorkerKeyChange.from_cbor(f[3]),
            peer_id=expect_bytes(f[4], f"{w}.PeerId"),
            multiaddrs=tuple(expect_bytes(m, f"{w}.Multiaddrs") for m in expect_list(f[5], w, 256)),
            window_post_proof_type=expect_int(f[6], f"{w}.WindowPoStProofType"),
            sector_size=expect_uint(f[7], f"{w}.SectorSize"),
            window_post_partition_sectors=expect_uint(f[8], f"{w}.WindowPoStPartitionSectors"),
            consensus_fault_elapsed=expect_int(f[9], f"{w}.ConsensusFaultElapsed"),
            pending_owner_address=_optional_address(f[10], f"{w}.PendingOwnerAddress"),
            beneficiary=Address.from_cbor(f[11], f"{w}.Beneficiary"),
            beneficiary_term=BeneficiaryTerm.from_cbor(f[12]),
        )


@dataclass(frozen=True, slots=True)
class SectorPreCommitInfo:
    seal_proof: int
    sector_number: int
    sealed_cid: CID
    seal_rand_epoch: int
    deal_ids: tuple[int, ...]
    expiration: int
    unsealed_cid: CID | None  # CommD; None for a sector without deals (CommD of zeros)

    def to_cbor(self) -> list[Any]:
        return [
            self.seal_proof,
            self.sector_number,
            self.sealed_cid,
            self.seal_rand_epoch,
            list(self.deal_ids),
            self.expiration,
            self.unsealed_cid,
        ]

    @classmethod
    def from_cbor(cls, raw: Any) -> "SectorPreCommitInfo":
        w = "SectorPreCommitInfo"
        proof, number, sealed, rand_epoch, deals, expiration, unsealed = expect_tuple(raw, 7, w)
        return cls(
            expect_int(proof, f"{w}.SealProof"),
            expect_uint(number, f"{w}.SectorNumber"),
            expect_cid(sealed, f"{w}.SealedCID"),
            expect_int(rand_epoch, f"{w}.SealRandEpoch"),
            expect_deal_ids(deals, f"{w}.DealIDs"),
            expect_int(expiration, f"{w}.Expiration"),
            expect_optional_cid(unsealed, f"{w}.UnsealedCid"),
        )


@dataclass(frozen=True, slots=True)
class SectorPreCommitOnChainInfo:
    info: SectorPreCommitInfo
    pre_commit_deposit: int
    pre_commit_epoch: int

    def to_cbor(self) -> list[Any]:
        return [self.info.to_cbor(), encode_bigint(self.pre_commit_deposit), self.pre_commit_epoch]

    @classmethod
    def from_cbor(cls, raw: Any) -> "SectorPreCommitOnChainInfo":
        w = "SectorPreCommitOnChainInfo"
        info, deposit, epoch = expect_tuple(raw, 3, w)
        return cls(
            SectorPreCommitInfo.from_cbor(info),
            expect_bigint(deposit, f"{w}.PreCommitDeposit"),
            expect_int(epoch, f"{w}.PreCommitEpoch"),
        )


@dataclass(frozen=True, slots=True)
class SectorOnChainInfo:
    sector_number: int
    seal_proof: int
    sealed_cid: CID
    deal_ids: tuple[int, ...]
    activation: int
    expiration: int
    deal_weight: int
    verified_deal_weight: int
    initial_pledge: int
    expected_day_reward: int
    expected_storage_pledge: int
    replaced_sector_age: int
    replaced_day_reward: int
    sector_key_cid: CID | None
    simple_qa_power: bool
    unsealed_cid: CID  # filpy: the sector's CommD, for piece inclusion proofs

    def to_cbor(self) -> list[Any]:
        return [
            self.sector_number,
            self.seal_proof,
            self.sealed_cid,
            list(self.deal_ids),
            self.activation,
            self.expiration,
            encode_bigint(self.deal_weight),
            encode_bigint(self.verified_deal_weight),
            encode_bigint(self.initial_pledge),
            encode_bigint(self.expected_day_reward),
            encode_bigint(self.expected_storage_pledge),
            self.replaced_sector_age,
            encode_bigint(self.replaced_day_reward),
            self.sector_key_cid,
            self.simple_qa_power,
            self.unsealed_cid,
        ]

    @classmethod
    def from_cbor(cls, raw: Any) -> "SectorOnChainInfo":
        w = "SectorOnChainInfo"
        f = expect_tuple(raw, 16, w)
        return cls(
            sector_number=expect_uint(f[0], f"{w}.SectorNumber"),
            seal_proof=expect_int(f[1], f"{w}.SealProof"),
            sealed_cid=expect_cid(f[2], f"{w}.SealedCID"),
            deal_ids=expect_deal_ids(f[3], f"{w}.DealIDs"),
            activation=expect_int(f[4], f"{w}.Activation"),
            expiration=expect_int(f[5], f"{w}.Expiration"),
            deal_weight=expect_bigint(f[6], f"{w}.DealWeight"),
            verified_deal_weight=expect_bigint(f[7], f"{w}.VerifiedDealWeight"),
            initial_pledge=expect_bigint(f[8], f"{w}.InitialPledge"),
            expected_day_reward=expect_bigint(f[9], f"{w}.ExpectedDayReward"),
            expected_storage_pledge=expect_bigint(f[10], f"{w}.ExpectedStoragePledge"),
            replaced_sector_age=expect_int(f[11], f"{w}.ReplacedSectorAge"),
            replaced_day_reward=expect_bigint(f[12], f"{w}.ReplacedDayReward"),
            sector_key_cid=expect_optional_cid(f[13], f"{w}.SectorKeyCID"),
            simple_qa_power=expect_bool(f[14], f"{w}.SimpleQAPower"),
            unsealed_cid=expect_cid(f[15], f"{w}.UnsealedCID"),
        )


def sector_power(sector_size: int, sector: SectorOnChainInfo) -> PowerPair:
    duration = sector.expiration - sector.activation
    return PowerPair(
        sector_size,
        qa_power_for_weight(sector_size, duration, sector.deal_weight, sector.verified_deal_weight),
    )


def sectors_power(sector_size: int, sectors: list[SectorOnChainInfo]) -> PowerPair:
    total = PowerPair()
    for sector in sectors:
        total = total + sector_power(sector_size, sector)
    return total


class Sectors:
    """The proven sectors AMT."""

    __slots__ = ("_amt",)

    def __init__(self, amt: Amt) -> None:
        self._amt = amt

    @classmethod
    def load(cls, store: Blockstore, root: CID) -> "Sectors":
        try:
            return cls(Amt.load(store, root, SECTORS_AMT_BITWIDTH))
        except (DecodeError, LookupError) as exc:
            raise illegal_state("failed to load sectors", exc) from None

    def get(self, number: int) -> SectorOnChainInfo | None:
        raw = self._amt.get(number)
        if raw is None:
            return None
        try:
            return SectorOnChainInfo.from_cbor(raw)
        except DecodeError as exc:
            raise illegal_state(f"bad sector {number}", exc) from None

    def must_get(self, number: int) -> SectorOnChainInfo:
        sector = self.get(number)
        if sector is None:
            raise ActorError(ExitCode.ErrNotFound, f"sector {number} not found")
        return sector

    def load_all(self, numbers: BitField) -> list[SectorOnChainInfo]:
        return [self.must_get(n) for n in numbers]

    def put(self, sector: SectorOnChainInfo) -> None:
        self._amt.set(sector.sector_number, sector.to_cbor())

    def delete(self, numbers: BitField) -> None:
        for n in numbers:
            self._amt.delete(n)

    def flush(self) -> CID:
        return self._amt.flush()


class PreCommits:
    """The pre-committed sectors HAMT."""

    __slots__ = ("_hamt",)

    def __init__(self, hamt: Hamt) -> None:
        self._hamt = hamt

    @classmethod
    def load(cls, store: Blockstore, root: CID) -> "PreCommits":
        try:
            return cls(Hamt.load(store, root, PRECOMMIT_HAMT_BITWIDTH))
        except (DecodeError, LookupError) as exc:
            raise illegal_state("failed to load pre-commits", exc) from None

    def get(self, number: int) -> SectorPreCommitOnChainInfo | None:
        raw = self._hamt.get(u64_key(number))
        if raw is None:
            return None
        try:
            return SectorPreCommitOnChainInfo.from_cbor(raw)
        except DecodeError as exc:
            raise illegal_state(f"bad pre-commit {number}", exc) from None

    def put(self, info: SectorPreCommitOnChainInfo) -> None:
        self._hamt.set(u64_key(info.info.sector_number), info.to_cbor())

    def delete(self, number: int) -> bool:
        return self._hamt.delete(u64_key(number))

    def flush(self) -> CID:
        return self._hamt.flush()


class BitFieldQueue:
    """An AMT of epoch -> bitfield, epochs rounded up by a quantisation (builtin-actors BitFieldQueue)."""

    __slots__ = ("_amt", "_quant")

    def __init__(self, amt: Amt, quant: QuantSpec) -> None:
        self._amt = amt
        self._quant = quant

    @classmethod
    def load(cls, store: Blockstore, root: CID, bitwidth: int, quant: QuantSpec) -> "BitFieldQueue":
        try:
            return cls(Amt.load(store, root, bitwidth), quant)
        except (DecodeError, LookupError) as exc:
            raise illegal_state("failed to load bitfield queue", exc) from None

    def _get(self, epoch: int) -> BitField:
        raw = self._amt.get(epoch)
        if raw is None:
            return BitField()
        try:
            return BitField.from_cbor(raw)
        except DecodeError as exc:
            raise illegal_state(f"bad bitfield queue entry at {epoch}", exc) from None

    def add(self, epoch: int, values: BitField) -> None:
        at = self._quant.quantize_up(epoch)
        if at < 0:
            raise illegal_state(f"queue epoch {at} is negative")
        self._amt.set(at, (self._get(at) | values).to_cbor())

    def pop_until(self, epoch: int) -> BitField:
        """Remove and return the union of every entry at or before epoch."""
        popped = BitField()
        due = [index for index, _ in self._amt.items() if index <= epoch]
        for index in due:
            popped = popped | self._get(index)
            self._amt.delete(index)
        return popped

    def flush(self) -> CID:
        return self._amt.flush()


@dataclass(frozen=True, slots=True)
class MinerState:
    info: CID
    pre_commit_deposits: int
    locked_funds: int
    vesting_funds: CID
    fee_debt: int
    initial_pledge: int
    pre_committed_sectors: CID
    pre_committed_sectors_cleanup: CID
    allocated_sectors: CID
    sectors: CID
    proving_period_start: int
    current_deadline: int
    deadlines: CID
    early_terminations: BitField  # always empty: terminations are processed when they happen
    deadline_cron_active: bool

    # -- sub-structures ------------------------------------------------------------------------------
    def get_info(self, store: Blockstore) -> MinerInfo:
        try:
            return MinerInfo.from_cbor(get_cbor(store, self.info))
        except (DecodeError, LookupError) as exc:
            raise illegal_state("could not read miner info", exc) from None

    def with_info(self, store: Blockstore, info: MinerInfo) -> "MinerState":
        return replace(self, info=put_cbor(store, info.to_cbor()))

    def get_vesting(self, store: Blockstore) -> VestingFunds:
        try:
            return VestingFunds.from_cbor(get_cbor(store, self.vesting_funds))
        except (DecodeError, LookupError) as exc:
            raise illegal_state("failed to load vesting funds", exc) from None

    def with_vesting(self, store: Blockstore, funds: VestingFunds) -> "MinerState":
        return replace(self, vesting_funds=put_cbor(store, funds.to_cbor()))

    def get_allocated(self, store: Blockstore) -> BitField:
        try:
            return BitField.from_cbor(get_cbor(store, self.allocated_sectors))
        except (DecodeError, LookupError) as exc:
            raise illegal_state("failed to load allocated sectors", exc) from None

    def precommit_cleanup_queue(self, store: Blockstore, quant: QuantSpec) -> BitFieldQueue:
        return BitFieldQueue.load(
            store, self.pre_committed_sectors_cleanup, PRECOMMIT_EXPIRY_AMT_BITWIDTH, quant
        )

    # -- balances ------------------------------------------------------------------------------------
    def unlocked_balance(self, balance: int) -> int:
        unlocked = balance - self.locked_funds - self.pre_commit_deposits - self.initial_pledge
        if unlocked < 0:
            raise illegal_state(f"negative unlocked balance {unlocked}")
        return unlocked

    def available_balance(self, balance: int) -> int:
        """What the miner may spend: unlocked balance less fee debt (may be negative)."""
        return self.unlocked_balance(balance) - self.fee_debt

    def apply_penalty(self, penalty: int) -> "MinerState":
        if penalty < 0:
            raise illegal_state(f"applying negative penalty {penalty}")
        return replace(self, fee_debt=self.fee_debt + penalty)

    def add_initial_pledge(self, amount: int) -> "MinerState":
        total = self.initial_pledge + amount
        if total < 0:
            raise illegal_state(f"negative initial pledge {total}")
        return replace(self, initial_pledge=total)

    def add_pre_commit_deposit(self, amount: int) -> "MinerState":
        total = self.pre_commit_deposits + amount
        if total < 0:
            raise illegal_state(f"negative pre-commit deposit {total}")
        return replace(self, pre_commit_deposits=total)

    def unlock_vested_funds(self, store: Blockstore, epoch: int) -> tuple["MinerState", int]:
        funds, unlocked = self.get_vesting(store).unlock_vested(epoch)
        if unlocked == 0:
            return self, 0
        return replace(self.with_vesting(store, funds), locked_funds=self.locked_funds - unlocked), unlocked

    def add_locked_funds(
        self, store: Blockstore, epoch: int, amount: int, spec: VestSpec
    ) -> tuple["MinerState", int]:
        """Lock amount in the vesting table, first releasing what has vested; returns that release."""
        if amount < 0:
            raise illegal_state(f"cannot lock a negative amount {amount}")
        funds, vested = self.get_vesting(store).unlock_vested(epoch)
        funds = funds.add_locked(epoch, amount, self.proving_period_start, spec)
        state = replace(self.with_vesting(store, funds), locked_funds=self.locked_funds - vested + amount)
        return state, vested

    def repay_partial_debt(
        self, store: Blockstore, epoch: int, balance: int
    ) -> tuple["MinerState", int, int]:
        """Pay fee debt from unvested funds first, then from the unlocked balance, as far as they go.

        Returns (state, paid from vesting, paid from balance); the caller burns both."""
        funds, from_vesting = self.get_vesting(store).unlock_unvested(epoch, self.fee_debt)
        state = replace(
            self.with_vesting(store, funds),
            locked_funds=self.locked_funds - from_vesting,
            fee_debt=self.fee_debt - from_vesting,
        )
        from_balance = min(state.unlocked_balance(balance), state.fee_debt)
        return replace(state, fee_debt=state.fee_debt - from_balance), from_vesting, from_balance

    def repay_debts(self, balance: int) -> tuple["MinerState", int]:
        """Pay all fee debt from the unlocked balance or abort (ErrInsufficientFunds)."""
        if self.unlocked_balance(balance) < self.fee_debt:
            raise ActorError(ExitCode.ErrInsufficientFunds, "unlocked balance can not repay fee debt")
        return replace(self, fee_debt=0), self.fee_debt

    def check_balance_invariants(self, balance: int) -> None:
        for name in ("pre_commit_deposits", "locked_funds", "initial_pledge", "fee_debt"):
            if getattr(self, name) < 0:
                raise ActorError(1000, f"balance invariants broken: negative {name}")
        if balance < self.pre_commit_deposits + self.locked_funds + self.initial_pledge:
            raise ActorError(1000, "balance invariants broken: balance below locked amounts")

    def continue_deadline_cron(self) -> bool:
        return self.pre_commit_deposits != 0 or self.initial_pledge != 0 or self.locked_funds != 0

    # -- encoding ------------------------------------------------------------------------------------
    def to_cbor(self) -> list[Any]:
        return [
            self.info,
            encode_bigint(self.pre_commit_deposits),
            encode_bigint(self.locked_funds),
            self.vesting_funds,
            encode_bigint(self.fee_debt),
            encode_bigint(self.initial_pledge),
            self.pre_committed_sectors,
            self.pre_committed_sectors_cleanup,
            self.allocated_sectors,
            self.sectors,
            self.proving_period_start,
            self.current_deadline,
            self.deadlines,
            self.early_terminations.to_cbor(),
            self.deadline_cron_active,
        ]

    @classmethod
    def from_cbor(cls, raw: Any) -> "MinerState":
        w = "MinerState"
        f = expect_tuple(raw, 15, w)
        return cls(
            info=expect_cid(f[0], f"{w}.Info"),
            pre_commit_deposits=expect_bigint(f[1], f"{w}.PreCommitDeposits"),
            locked_funds=expect_bigint(f[2], f"{w}.LockedFunds"),
            vesting_funds=expect_cid(f[3], f"{w}.VestingFunds"),
            fee_debt=expect_bigint(f[4], f"{w}.FeeDebt"),
            initial_pledge=expect_bigint(f[5], f"{w}.InitialPledge"),
            pre_committed_sectors=expect_cid(f[6], f"{w}.PreCommittedSectors"),
            pre_committed_sectors_cleanup=expect_cid(f[7], f"{w}.PreCommittedSectorsCleanUp"),
            allocated_sectors=expect_cid(f[8], f"{w}.AllocatedSectors"),
            sectors=expect_cid(f[9], f"{w}.Sectors"),
            proving_period_start=expect_int(f[10], f"{w}.ProvingPeriodStart"),
            current_deadline=expect_uint(f[11], f"{w}.CurrentDeadline"),
            deadlines=expect_cid(f[12], f"{w}.Deadlines"),
            early_terminations=BitField.from_cbor(f[13]),
            deadline_cron_active=expect_bool(f[14], f"{w}.DeadlineCronActive"),
        )

    @classmethod
    def new(
        cls, store: Blockstore, info: MinerInfo, period_start: int, deadline_index: int, deadlines: CID
    ) -> "MinerState":
        return cls(
            info=put_cbor(store, info.to_cbor()),
            pre_commit_deposits=0,
            locked_funds=0,
            vesting_funds=put_cbor(store, VestingFunds().to_cbor()),
            fee_debt=0,
            initial_pledge=0,
            pre_committed_sectors=Hamt.new(store, PRECOMMIT_HAMT_BITWIDTH).flush(),
            pre_committed_sectors_cleanup=Amt.new(store, PRECOMMIT_EXPIRY_AMT_BITWIDTH).flush(),
            allocated_sectors=put_cbor(store, BitField().to_cbor()),
            sectors=Amt.new(store, SECTORS_AMT_BITWIDTH).flush(),
            proving_period_start=period_start,
            current_deadline=deadline_index,
            deadlines=deadlines,
            early_terminations=BitField(),
            deadline_cron_active=False,
        )
