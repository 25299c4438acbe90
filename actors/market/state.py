"""The market actor's state (builtin-actors v9 layout) and the bookkeeping its methods share.

State is a 12-field array: Proposals (AMT, bitwidth 5) and States (AMT, bitwidth 6) by deal ID,
PendingProposals (HAMT set of proposal CIDs), EscrowTable and LockedTable (balance tables), NextID,
DealOpsByEpoch (set-multimap epoch -> deal IDs), LastCron, the three locked totals, and
PendingDealAllocationIds (HAMT, kept empty here: there is no verified registry).

`MarketTables` opens the collections a method touches, lazily, and `commit` flushes them into the next
state, as builtin-actors' MarketStateMutation does; balance movements keep the locked totals in step.
"""

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Final, Generic, Protocol, TypeVar, cast

from actors.abi import EPOCH_UNDEFINED
from actors.balance_table import BalanceTable
from actors.market.types import DealProposal, DealState
from actors.util.sets import HamtSet, SetMultimap
from actors.util.stored import reading
from chain.encoding.cid import CID
from chain.encoding.schema import CborTuple, ChainEpoch, Name, TokenAmount, Uint64, replace
from chain.params import Policy
from chain.state.amt import MAX_INDEX as AMT_MAX_INDEX
from chain.state.amt import Amt
from chain.state.hamt import DEFAULT_BITWIDTH, Hamt
from chain.store.blockstore import Blockstore
from chain.types.address import Address
from chain.vm.exitcode import illegal_state, insufficient_funds

T = TypeVar("T")


class _Flushable(Protocol):
    def flush(self) -> CID: ...


C = TypeVar("C", bound=_Flushable)

PROPOSALS_AMT_BITWIDTH: Final = 5
STATES_AMT_BITWIDTH: Final = 6


class MarketState(CborTuple):
    proposals: CID
    states: CID
    pending_proposals: CID
    escrow_table: CID
    locked_table: CID
    next_id: Annotated[Uint64, Name("NextID")]
    deal_ops_by_epoch: CID
    last_cron: ChainEpoch
    total_client_locked_collateral: TokenAmount
    total_provider_locked_collateral: TokenAmount
    total_client_storage_fee: TokenAmount
    pending_deal_allocation_ids: CID

    @classmethod
    def new(cls, store: Blockstore) -> "MarketState":
        empty_balances = BalanceTable.new(store).flush()
        return cls(
            proposals=Amt.new(store, PROPOSALS_AMT_BITWIDTH).flush(),
            states=Amt.new(store, STATES_AMT_BITWIDTH).flush(),
            pending_proposals=HamtSet.new(store).flush(),
            escrow_table=empty_balances,
            locked_table=empty_balances,
            next_id=0,
            deal_ops_by_epoch=SetMultimap.new(store).flush(),
            last_cron=EPOCH_UNDEFINED,
            total_client_locked_collateral=0,
            total_provider_locked_collateral=0,
            total_client_storage_fee=0,
            pending_deal_allocation_ids=Hamt.new(store, DEFAULT_BITWIDTH).flush(),
        )

    @property
    def total_locked(self) -> int:
        return (
            self.total_client_locked_collateral
            + self.total_provider_locked_collateral
            + self.total_client_storage_fee
        )


class LockReason(Enum):
    CLIENT_COLLATERAL = "client collateral"
    CLIENT_STORAGE_FEE = "client storage fee"
    PROVIDER_COLLATERAL = "provider collateral"


def deal_payment_remaining(deal: DealProposal, slash_epoch: int) -> int:
    """What the client still owes for a deal slashed at slash_epoch (refunded to it)."""
    if slash_epoch > deal.end_epoch:
        raise illegal_state(f"deal slash epoch {slash_epoch} after end epoch {deal.end_epoch}")
    # Payment runs from start to end whenever the deal was slashed.
    remaining = deal.end_epoch - max(slash_epoch, deal.start_epoch)
    return deal.storage_price_per_epoch * remaining


@dataclass(frozen=True, slots=True)
class DealUpdate:
    """The outcome of a cron update of one active deal."""

    slashed: int  # provider collateral burnt
    next_epoch: int  # when to process the deal next (EPOCH_UNDEFINED when removed)
    remove: bool


class _Lazy(Generic[C]):
    """A MarketTables attribute: the collection whose root is the state's `field`, loaded on first use
    and flushed into the next state by `commit`."""

    __slots__ = ("field", "load")

    def __init__(self, field: str, load: Callable[[Blockstore, CID], C]) -> None:
        self.field = field
        self.load = load

    def __get__(self, tables: "MarketTables", owner: object = None) -> C:
        opened = tables._opened.get(self.field)
        if opened is None:
            root = getattr(tables._state, self.field)
            opened = tables._opened[self.field] = _open(lambda: self.load(tables._store, root))
        return cast(C, opened)


class MarketTables:
    """The market's collections opened over one state; `commit` returns the state after the changes."""

    def __init__(self, store: Blockstore, state: MarketState) -> None:
        self._store = store
        self._state = state
        self._opened: dict[str, _Flushable] = {}  # state field -> its collection, once opened
        self.next_id = state.next_id
        self.total_client_locked_collateral = state.total_client_locked_collateral
        self.total_provider_locked_collateral = state.total_provider_locked_collateral
        self.total_client_storage_fee = state.total_client_storage_fee

    # -- collections, opened lazily (see _Lazy) -------------------------------------------------------
    proposals = _Lazy("proposals", lambda store, root: Amt.load(store, root, PROPOSALS_AMT_BITWIDTH))
    states = _Lazy("states", lambda store, root: Amt.load(store, root, STATES_AMT_BITWIDTH))
    pending = _Lazy("pending_proposals", HamtSet.load)
    escrow = _Lazy("escrow_table", BalanceTable.load)
    locked = _Lazy("locked_table", BalanceTable.load)
    deal_ops = _Lazy("deal_ops_by_epoch", SetMultimap.load)

    def commit(self, **changes: Any) -> MarketState:
        """Flush every opened collection into a new state; `changes` sets other fields (e.g. last_cron)."""
        fields: dict[str, Any] = {
            "next_id": self.next_id,
            "total_client_locked_collateral": self.total_client_locked_collateral,
            "total_provider_locked_collateral": self.total_provider_locked_collateral,
            "total_client_storage_fee": self.total_client_storage_fee,
        }
        fields.update((field, opened.flush()) for field, opened in self._opened.items())
        fields.update(changes)
        return replace(self._state, **fields)

    # -- deals ----------------------------------------------------------------------------------------
    def proposal(self, deal_id: int) -> DealProposal | None:
        # The last uint64 is no AMT index, and no deal ID either.
        raw = self.proposals.get(deal_id) if deal_id <= AMT_MAX_INDEX else None
        return None if raw is None else _decode(DealProposal.from_cbor, raw, f"deal proposal {deal_id}")

    def deal_state(self, deal_id: int) -> DealState | None:
        raw = self.states.get(deal_id) if deal_id <= AMT_MAX_INDEX else None
        return None if raw is None else _decode(DealState.from_cbor, raw, f"deal state {deal_id}")

    def generate_deal_id(self) -> int:
        deal_id = self.next_id
        self.next_id += 1
        return deal_id

    # -- balances -------------------------------------------------------------------------------------
    def balance_covered(self, address: Address, amount_to_lock: int) -> bool:
        """Whether address's escrow can cover amount_to_lock on top of what is locked already."""
        return self.locked.get(address) + amount_to_lock <= self.escrow.get(address)

    def maybe_lock_balance(self, address: Address, amount: int) -> None:
        if amount < 0:
            raise illegal_state(f"cannot lock a negative amount {amount}")
        previous = self.locked.get(address)
        escrow = self.escrow.get(address)
        if previous + amount > escrow:
            raise insufficient_funds(
                f"not enough balance to lock for {address}: escrow {escrow} < locked {previous} + {amount}",
            )
        self.locked.add(address, amount)

    def lock_client_and_provider_balances(self, proposal: DealProposal) -> None:
        self.maybe_lock_balance(proposal.client, proposal.client_balance_requirement)
        self.maybe_lock_balance(proposal.provider, proposal.provider_collateral)
        self.total_client_locked_collateral += proposal.client_collateral
        self.total_client_storage_fee += proposal.total_storage_fee
        self.total_provider_locked_collateral += proposal.provider_collateral

    def unlock_balance(self, address: Address, amount: int, reason: LockReason) -> None:
        if amount < 0:
            raise illegal_state(f"cannot unlock a negative amount {amount}")
        self.locked.must_subtract(address, amount)
        if reason is LockReason.CLIENT_COLLATERAL:
            self.total_client_locked_collateral -= amount
        elif reason is LockReason.CLIENT_STORAGE_FEE:
            self.total_client_storage_fee -= amount
        else:
            self.total_provider_locked_collateral -= amount

    def transfer_balance(self, source: Address, destination: Address, amount: int) -> None:
        """Move a locked storage payment of source into destination's (unlocked) escrow."""
        if amount < 0:
            raise illegal_state(f"cannot transfer a negative amount {amount}")
        self.escrow.must_subtract(source, amount)
        self.unlock_balance(source, amount, LockReason.CLIENT_STORAGE_FEE)
        self.escrow.add(destination, amount)

    def slash_balance(self, address: Address, amount: int, reason: LockReason) -> None:
        """Remove a locked amount from address's escrow altogether (the caller burns it)."""
        if amount < 0:
            raise illegal_state(f"cannot slash a negative amount {amount}")
        self.escrow.must_subtract(address, amount)
        self.unlock_balance(address, amount, reason)

    # -- cron processing ------------------------------------------------------------------------------
    def update_pending_deal_state(
        self, policy: Policy, state: DealState, deal: DealProposal, epoch: int
    ) -> DealUpdate:
        """Pay the provider for the epochs since the last update; settle a slashed or expired deal."""
        ever_updated = state.last_updated_epoch != EPOCH_UNDEFINED
        ever_slashed = state.slash_epoch != EPOCH_UNDEFINED
        if ever_updated and state.last_updated_epoch > epoch:
            raise illegal_state(f"deal updated at future epoch {state.last_updated_epoch}")
        if deal.start_epoch > epoch:
            # Scheduled before its start: nothing is due yet.
            return DealUpdate(0, EPOCH_UNDEFINED, False)

        if ever_slashed:
            if epoch < state.slash_epoch:
                raise illegal_state(f"current epoch less than deal slash epoch {state.slash_epoch}")
            if state.slash_epoch > deal.end_epoch:
                raise illegal_state(f"deal slash epoch {state.slash_epoch} after deal end {deal.end_epoch}")
            payment_end = state.slash_epoch
        else:
            payment_end = min(deal.end_epoch, epoch)
        if ever_updated and state.last_updated_epoch > deal.start_epoch:
            payment_start = state.last_updated_epoch
        else:
            payment_start = deal.start_epoch

        payment = deal.storage_price_per_epoch * (payment_end - payment_start)
        if payment > 0:
            self.transfer_balance(deal.client, deal.provider, payment)

        if ever_slashed:
            # The client gets back what it has not paid and its collateral; the provider loses its own.
            self.unlock_balance(
                deal.client, deal_payment_remaining(deal, state.slash_epoch), LockReason.CLIENT_STORAGE_FEE
            )
            self.unlock_balance(deal.client, deal.client_collateral, LockReason.CLIENT_COLLATERAL)
            self.slash_balance(deal.provider, deal.provider_collateral, LockReason.PROVIDER_COLLATERAL)
            return DealUpdate(deal.provider_collateral, EPOCH_UNDEFINED, True)

        if epoch >= deal.end_epoch:
            self._process_deal_expired(deal, state)
            return DealUpdate(0, EPOCH_UNDEFINED, True)

        # The end epoch is not looked at on purpose: expiry may be processed up to one interval late,
        # so that many deals ending together cannot load one cron tick.
        return DealUpdate(0, epoch + policy.market_deal_updates_interval, False)

    def process_deal_init_timed_out(self, deal: DealProposal) -> int:
        """A deal that reached its start epoch without being activated: unlock the client's funds and
        burn the provider's collateral (the whole of it, as v9's penalty for a missed activation)."""
        self.unlock_balance(deal.client, deal.total_storage_fee, LockReason.CLIENT_STORAGE_FEE)
        self.unlock_balance(deal.client, deal.client_collateral, LockReason.CLIENT_COLLATERAL)
        slashed = deal.provider_collateral
        self.slash_balance(deal.provider, slashed, LockReason.PROVIDER_COLLATERAL)
        self.unlock_balance(deal.provider, deal.provider_collateral - slashed, LockReason.PROVIDER_COLLATERAL)
        return slashed

    def _process_deal_expired(self, deal: DealProposal, state: DealState) -> None:
        if state.sector_start_epoch == EPOCH_UNDEFINED:
            raise illegal_state("start sector epoch undefined")
        self.unlock_balance(deal.provider, deal.provider_collateral, LockReason.PROVIDER_COLLATERAL)
        self.unlock_balance(deal.client, deal.client_collateral, LockReason.CLIENT_COLLATERAL)


def _open(load: Callable[[], T]) -> T:
    with reading("market state"):
        return load()


def _decode(decoder: Callable[[Any, str], T], raw: Any, what: str) -> T:
    with reading(f"stored {what}"):
        return decoder(raw, what)
