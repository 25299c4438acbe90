"""The storage power actor's state: network power totals, the claims table and the cron event queue.

Layout as builtin-actors v9 `actors/power/src/state.rs`: claims are a HAMT (bitwidth 5) from a miner's
ID address bytes to its Claim; the cron queue is a multimap, a HAMT (bitwidth 6) from a zigzag-varint
epoch key to an AMT (bitwidth 6) of the CronEvents enrolled for that epoch, appended in order.
"""

from collections.abc import Iterator
from typing import Annotated, Final

from actors.abi import WindowPoStProofType
from actors.power.types import CronPayload
from actors.smoothing import FilterEstimate
from actors.util.keys import i64_key, parse_i64_key
from actors.util.stored import reading
from actors.util.tables import MapOf
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.schema import CborTuple, ChainEpoch, Int64, Name, StoragePower, TokenAmount, replace
from chain.params import Policy
from chain.state.amt import Amt
from chain.state.hamt import Hamt
from chain.store.blockstore import Blockstore
from chain.types.address import Address
from chain.vm.exitcode import illegal_state, not_found

CLAIMS_HAMT_BITWIDTH: Final = 5
CRON_QUEUE_HAMT_BITWIDTH: Final = 6
CRON_QUEUE_AMT_BITWIDTH: Final = 6
# The network's QA power estimate before any observation: 750 PiB, growing 3.84 PiB per epoch.
INITIAL_QA_POWER_ESTIMATE_POSITION: Final = 750_000 * (1 << 30)
INITIAL_QA_POWER_ESTIMATE_VELOCITY: Final = 3_840 * (1 << 30)


class Claim(CborTuple):
    window_post_proof_type: WindowPoStProofType
    raw_byte_power: StoragePower
    quality_adj_power: StoragePower


class CronEvent(CborTuple):
    miner_addr: Address
    callback_payload: CronPayload


class ClaimsTable(MapOf[Address, Claim]):
    """The claims HAMT, keyed by the miner's ID address bytes."""

    bitwidth = CLAIMS_HAMT_BITWIDTH
    value_type = Claim
    what = "claims"

    @staticmethod
    def key_bytes(key: Address) -> bytes:
        return key.to_bytes()

    def set(self, miner: Address, claim: Claim) -> None:
        if claim.raw_byte_power < 0:
            raise illegal_state(f"negative claim raw power {claim.raw_byte_power}")
        if claim.quality_adj_power < 0:
            raise illegal_state(f"negative claim QA power {claim.quality_adj_power}")
        super().set(miner, claim)


class CronQueue:
    """The cron event multimap: epoch -> events enrolled for it, in enrolment order."""

    __slots__ = ("_hamt", "_store")

    def __init__(self, store: Blockstore, hamt: Hamt) -> None:
        self._store = store
        self._hamt = hamt

    @classmethod
    def load(cls, store: Blockstore, root: CID) -> "CronQueue":
        with reading("cron events"):
            return cls(store, Hamt.load(store, root, CRON_QUEUE_HAMT_BITWIDTH))

    def _events(self, root: object) -> Amt:
        if type(root) is not CID:
            raise DecodeError("cron queue entry is not a CID link")
        return Amt.load(self._store, root, CRON_QUEUE_AMT_BITWIDTH)

    def add(self, epoch: int, event: CronEvent) -> None:
        key = i64_key(epoch)
        root = self._hamt.get(key)
        with reading(f"cron events at {epoch}"):
            events = Amt.new(self._store, CRON_QUEUE_AMT_BITWIDTH) if root is None else self._events(root)
        events.set(events.count(), event.to_cbor())
        self._hamt.set(key, events.flush())

    def events_at(self, epoch: int) -> list[CronEvent]:
        root = self._hamt.get(i64_key(epoch))
        if root is None:
            return []
        with reading(f"cron events at {epoch}"):
            return [CronEvent.from_cbor(raw) for raw in self._events(root).values()]

    def remove_all(self, epoch: int) -> None:
        self._hamt.delete(i64_key(epoch))

    def epochs(self) -> Iterator[int]:
        """Every epoch with events, in no particular order."""
        for key, _ in self._hamt.items():
            with reading("cron queue key"):
                epoch = parse_i64_key(key)
            yield epoch

    def flush(self) -> CID:
        return self._hamt.flush()


class PowerState(CborTuple):
    # totals over miners above the consensus minimum
    total_raw_byte_power: StoragePower
    total_bytes_committed: StoragePower  # totals over every miner
    total_quality_adj_power: StoragePower
    total_qa_bytes_committed: Annotated[StoragePower, Name("TotalQABytesCommitted")]
    total_pledge_collateral: TokenAmount
    # snapshots taken at the end of the previous epoch, what CurrentTotalPower reports
    this_epoch_raw_byte_power: StoragePower
    this_epoch_quality_adj_power: StoragePower
    this_epoch_pledge_collateral: TokenAmount
    this_epoch_qa_power_smoothed: Annotated[FilterEstimate, Name("ThisEpochQAPowerSmoothed")]
    miner_count: Int64
    miner_above_min_power_count: Int64
    cron_event_queue: CID
    first_cron_epoch: ChainEpoch
    claims: CID
    proof_validation_batch: CID | None  # always None: seal proofs are verified at ProveCommit

    @classmethod
    def new(cls, store: Blockstore) -> "PowerState":
        return cls(
            total_raw_byte_power=0,
            total_bytes_committed=0,
            total_quality_adj_power=0,
            total_qa_bytes_committed=0,
            total_pledge_collateral=0,
            this_epoch_raw_byte_power=0,
            this_epoch_quality_adj_power=0,
            this_epoch_pledge_collateral=0,
            this_epoch_qa_power_smoothed=FilterEstimate.of(
                INITIAL_QA_POWER_ESTIMATE_POSITION, INITIAL_QA_POWER_ESTIMATE_VELOCITY
            ),
            miner_count=0,
            miner_above_min_power_count=0,
            cron_event_queue=Hamt.new(store, CRON_QUEUE_HAMT_BITWIDTH).flush(),
            first_cron_epoch=0,
            claims=Hamt.new(store, CLAIMS_HAMT_BITWIDTH).flush(),
            proof_validation_batch=None,
        )

    def current_total_power(self, policy: Policy) -> tuple[int, int]:
        """(raw, QA) network power: over miners above the minimum once enough of them are, else over all."""
        if self.miner_above_min_power_count < policy.consensus_miner_min_miners:
            return self.total_bytes_committed, self.total_qa_bytes_committed
        return self.total_raw_byte_power, self.total_quality_adj_power

    def add_to_claim(
        self, policy: Policy, claims: ClaimsTable, miner: Address, raw: int, qa: int
    ) -> "PowerState":
        """Add (possibly negative) power to a miner's claim and to the network totals."""
        old = claims.get(miner)
        if old is None:
            raise not_found(f"no claim for actor {miner}")
        new = replace(
            old, raw_byte_power=old.raw_byte_power + raw, quality_adj_power=old.quality_adj_power + qa
        )
        min_power = policy.consensus_miner_min_power
        prev_below = old.raw_byte_power < min_power
        still_below = new.raw_byte_power < min_power
        state = replace(
            self,
            total_qa_bytes_committed=self.total_qa_bytes_committed + qa,
            total_bytes_committed=self.total_bytes_committed + raw,
        )
        if prev_below and not still_below:
            state = replace(
                state,
                miner_above_min_power_count=state.miner_above_min_power_count + 1,
                total_quality_adj_power=state.total_quality_adj_power + new.quality_adj_power,
                total_raw_byte_power=state.total_raw_byte_power + new.raw_byte_power,
            )
        elif not prev_below and still_below:
            state = replace(
                state,
                miner_above_min_power_count=state.miner_above_min_power_count - 1,
                total_quality_adj_power=state.total_quality_adj_power - old.quality_adj_power,
                total_raw_byte_power=state.total_raw_byte_power - old.raw_byte_power,
            )
        elif not prev_below and not still_below:
            state = replace(
                state,
                total_quality_adj_power=state.total_quality_adj_power + qa,
                total_raw_byte_power=state.total_raw_byte_power + raw,
            )
        if state.miner_above_min_power_count < 0:
            raise illegal_state("negative count of miners above the minimum power")
        claims.set(miner, new)
        return state

    def delete_claim(self, policy: Policy, claims: ClaimsTable, miner: Address) -> "PowerState":
        """Remove a miner's claim, taking its power out of the totals first; no-op without a claim."""
        claim = claims.get(miner)
        if claim is None:
            return self
        state = self.add_to_claim(policy, claims, miner, -claim.raw_byte_power, -claim.quality_adj_power)
        claims.remove(miner)
        return state

    def miner_meets_consensus_minimum(self, store: Blockstore, policy: Policy, miner: Address) -> bool:
        """Whether a miner's power makes it eligible to win blocks (power state.rs
        miner_nominal_power_meets_consensus_minimum)."""
        claim = ClaimsTable.load(store, self.claims).get(miner)
        if claim is None:
            raise not_found(f"no claim for actor {miner}")
        return self.claim_meets_consensus_minimum(policy, claim)

    def claim_meets_consensus_minimum(self, policy: Policy, claim: Claim) -> bool:
        """miner_meets_consensus_minimum for a miner whose claim (in this state's table) the caller has."""
        if claim.raw_byte_power >= policy.consensus_miner_min_power:
            return True
        if self.miner_above_min_power_count >= policy.consensus_miner_min_miners:
            return False
        return claim.raw_byte_power > 0
