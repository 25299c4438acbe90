"""The miner actor's state: its info, balances, pre-commits, sectors and the handles to its deadlines.

MinerState has builtin-actors v9's fifteen fields in order. Pre-committed sectors are a HAMT
(bitwidth 5, u64-varint keys) of SectorPreCommitOnChainInfo, their clean-up schedule an AMT (bitwidth
6) of epoch -> bitfield of sector numbers, and proven sectors an AMT (bitwidth 5) of
SectorOnChainInfo indexed by sector number. SectorOnChainInfo carries one field more than v9: the
sector's unsealed CID (CommD), which piece inclusion checks need (see docs/actors.md).
"""

from typing import Annotated, Final

from actors.abi import Multiaddrs, PeerID, RegisteredSealProof, WindowPoStProofType
from actors.miner.policy import QuantSpec, qa_power_for_weight
from actors.miner.types import ERR_BALANCE_INVARIANTS_BROKEN, ControlAddrs, PowerPair, SectorNumber
from actors.miner.vesting import VestingFunds, VestSpec
from actors.util.keys import u64_key
from actors.util.stored import reading
from actors.util.tables import ArrayOf, MapOf
from chain.encoding.cid import CID
from chain.encoding.schema import BigInt, CborTuple, ChainEpoch, Name, TokenAmount, Uint64, replace
from chain.state.amt import Amt
from chain.state.hamt import Hamt
from chain.store.blockstore import Blockstore, get_cbor, get_decoded, put_cbor, put_declared
from chain.types.address import Address
from chain.types.bitfield import BitField
from chain.types.sector import DealIDs
from chain.vm.exitcode import ActorError, illegal_state, insufficient_funds

PRECOMMIT_HAMT_BITWIDTH: Final = 5
PRECOMMIT_EXPIRY_AMT_BITWIDTH: Final = 6
SECTORS_AMT_BITWIDTH: Final = 5
SealedCID = Annotated[CID, Name("SealedCID")]


class WorkerKeyChange(CborTuple):
    new_worker: Address
    effective_at: ChainEpoch


class BeneficiaryTerm(CborTuple):
    quota: TokenAmount = 0
    used_quota: TokenAmount = 0
    expiration: ChainEpoch = 0


class PendingBeneficiaryChange(CborTuple):
    """v9's proposed beneficiary change. filpy has no ChangeBeneficiary, so its miners never hold one;
    the type is declared so that MinerInfo reads as v9 writes it."""

    new_beneficiary: Address
    new_quota: TokenAmount
    new_expiration: ChainEpoch
    approved_by_beneficiary: bool
    approved_by_nominee: bool


class MinerInfo(CborTuple):
    """v9 MinerInfo. The beneficiary is always the owner (no ChangeBeneficiary here)."""

    owner: Address
    worker: Address
    control_addresses: Annotated[ControlAddrs, Name("ControlAddresses")]
    pending_worker_key: WorkerKeyChange | None
    peer_id: PeerID
    multiaddrs: Multiaddrs
    window_post_proof_type: WindowPoStProofType
    sector_size: Uint64
    window_post_partition_sectors: Annotated[Uint64, Name("WindowPoStPartitionSectors")]
    consensus_fault_elapsed: ChainEpoch
    pending_owner_address: Address | None
    beneficiary: Address
    beneficiary_term: BeneficiaryTerm
    pending_beneficiary_term: PendingBeneficiaryChange | None = None

    def control_set(self) -> tuple[Address, ...]:
        """Addresses allowed to act for the miner: control addresses, worker and owner."""
        return (*self.control_addresses, self.worker, self.owner)


class SectorPreCommitInfo(CborTuple):
    seal_proof: RegisteredSealProof
    sector_number: SectorNumber
    sealed_cid: SealedCID
    seal_rand_epoch: ChainEpoch
    deal_ids: DealIDs
    expiration: ChainEpoch
    unsealed_cid: CID | None  # CommD; None for a sector without deals (CommD of zeros)


class SectorPreCommitOnChainInfo(CborTuple):
    info: SectorPreCommitInfo
    pre_commit_deposit: TokenAmount
    pre_commit_epoch: ChainEpoch


class SectorOnChainInfo(CborTuple):
    sector_number: SectorNumber
    seal_proof: RegisteredSealProof
    sealed_cid: SealedCID
    deal_ids: DealIDs
    activation: ChainEpoch
    expiration: ChainEpoch
    deal_weight: BigInt
    verified_deal_weight: BigInt
    initial_pledge: TokenAmount
    expected_day_reward: TokenAmount
    expected_storage_pledge: TokenAmount
    replaced_sector_age: ChainEpoch
    replaced_day_reward: TokenAmount
    sector_key_cid: Annotated[CID | None, Name("SectorKeyCID")]
    simple_qa_power: Annotated[bool, Name("SimpleQAPower")]
    unsealed_cid: Annotated[CID, Name("UnsealedCID")]  # filpy: the sector's CommD, for piece inclusion


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


class Sectors(ArrayOf[SectorOnChainInfo]):
    """The proven sectors AMT, by sector number."""

    bitwidth = SECTORS_AMT_BITWIDTH
    value_type = SectorOnChainInfo
    what = "sectors"
    missing = "sector {} not found"

    def load_all(self, numbers: BitField) -> list[SectorOnChainInfo]:
        return [self.must_get(n) for n in numbers]

    def put(self, sector: SectorOnChainInfo) -> None:
        self.set(sector.sector_number, sector)

    def delete(self, numbers: BitField) -> None:
        for n in numbers:
            self.remove(n)


class PreCommits(MapOf[int, SectorPreCommitOnChainInfo]):
    """The pre-committed sectors HAMT, by sector number (u64-varint keys)."""

    bitwidth = PRECOMMIT_HAMT_BITWIDTH
    value_type = SectorPreCommitOnChainInfo
    what = "pre-commits"

    @staticmethod
    def key_bytes(key: int) -> bytes:
        return u64_key(key)

    def put(self, info: SectorPreCommitOnChainInfo) -> None:
        self.set(info.info.sector_number, info)


class BitFieldQueue:
    """An AMT of epoch -> bitfield, epochs rounded up by a quantisation (builtin-actors BitFieldQueue)."""

    __slots__ = ("_amt", "_quant")

    def __init__(self, amt: Amt, quant: QuantSpec) -> None:
        self._amt = amt
        self._quant = quant

    @classmethod
    def load(cls, store: Blockstore, root: CID, bitwidth: int, quant: QuantSpec) -> "BitFieldQueue":
        with reading("bitfield queue"):
            return cls(Amt.load(store, root, bitwidth), quant)

    def _get(self, epoch: int) -> BitField:
        raw = self._amt.get(epoch)
        if raw is None:
            return BitField()
        with reading(f"bitfield queue entry at {epoch}"):
            return BitField.from_cbor(raw)

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


class MinerState(CborTuple):
    info: CID
    pre_commit_deposits: TokenAmount
    locked_funds: TokenAmount
    vesting_funds: CID
    fee_debt: TokenAmount
    initial_pledge: TokenAmount
    pre_committed_sectors: CID
    pre_committed_sectors_cleanup: Annotated[CID, Name("PreCommittedSectorsCleanUp")]
    allocated_sectors: CID
    sectors: CID
    proving_period_start: ChainEpoch
    current_deadline: Uint64
    deadlines: CID
    early_terminations: BitField  # always empty: terminations are processed when they happen
    deadline_cron_active: bool

    # -- sub-structures ------------------------------------------------------------------------------
    def get_info(self, store: Blockstore) -> MinerInfo:
        with reading("miner info"):
            return get_decoded(store, self.info, MinerInfo.from_cbor)

    def with_info(self, store: Blockstore, info: MinerInfo) -> "MinerState":
        return replace(self, info=put_declared(store, info))

    def get_vesting(self, store: Blockstore) -> VestingFunds:
        with reading("vesting funds"):
            return get_decoded(store, self.vesting_funds, VestingFunds.from_cbor)

    def with_vesting(self, store: Blockstore, funds: VestingFunds) -> "MinerState":
        return replace(self, vesting_funds=put_declared(store, funds))

    def get_allocated(self, store: Blockstore) -> BitField:
        with reading("allocated sectors"):
            return BitField.from_cbor(get_cbor(store, self.allocated_sectors))

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
        if self.fee_debt == 0 or self.locked_funds == 0:
            # Nothing to take from the vesting table: it is neither read nor written (as builtin-actors'
            # unlock_unvested_funds), which every block reward's ApplyRewards relies on to stay cheap.
            state, from_vesting = self, 0
        else:
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
            raise insufficient_funds("unlocked balance can not repay fee debt")
        return replace(self, fee_debt=0), self.fee_debt

    def check_balance_invariants(self, balance: int) -> None:
        for name in ("pre_commit_deposits", "locked_funds", "initial_pledge", "fee_debt"):
            if getattr(self, name) < 0:
                raise ActorError(ERR_BALANCE_INVARIANTS_BROKEN, f"balance invariants broken: negative {name}")
        if balance < self.pre_commit_deposits + self.locked_funds + self.initial_pledge:
            raise ActorError(
                ERR_BALANCE_INVARIANTS_BROKEN, "balance invariants broken: balance below locked amounts"
            )

    def continue_deadline_cron(self) -> bool:
        return self.pre_commit_deposits != 0 or self.initial_pledge != 0 or self.locked_funds != 0

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
