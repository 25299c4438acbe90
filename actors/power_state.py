"""The storage power actor's state: network power totals, the claims table and the cron event queue.

Layout as builtin-actors v9 `actors/power/src/state.rs`: claims are a HAMT (bitwidth 5) from a miner's
ID address bytes to its Claim; the cron queue is a multimap, a HAMT (bitwidth 6) from a zigzag-varint
epoch key to an AMT (bitwidth 6) of the CronEvents enrolled for that epoch, appended in order.
"""

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Final

from actors.smoothing import FilterEstimate
from actors.util.keys import i64_key, parse_i64_key
from chain.encoding.bigint import encode_bigint
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.expect import (
    expect_bigint,
    expect_bytes,
    expect_cid,
    expect_int,
    expect_optional_cid,
    expect_tuple,
)
from chain.params import Policy
from chain.state.amt import Amt
from chain.state.hamt import Hamt
from chain.store.blockstore import Blockstore
from chain.types.address import Address
from chain.vm.exitcode import ActorError, ExitCode

CLAIMS_HAMT_BITWIDTH: Final = 5
CRON_QUEUE_HAMT_BITWIDTH: Final = 6
CRON_QUEUE_AMT_BITWIDTH: Final = 6
# The network's QA power estimate before any observation: 750 PiB, growing 3.84 PiB per epoch.
INITIAL_QA_POWER_ESTIMATE_POSITION: Final = 750_000 * (1 << 30)
INITIAL_QA_POWER_ESTIMATE_VELOCITY: Final = 3_840 * (1 << 30)
MAX_CRON_PAYLOAD: Final = 1024


@dataclass(frozen=True, slots=True)
class Claim:
    window_post_proof_type: int
    raw_byte_power: int
    quality_adj_power: int

    def to_cbor(self) -> list[Any]:
        return [
            self.window_post_proof_type,
            encode_bigint(self.raw_byte_power),
            encode_bigint(self.quality_adj_power),
        ]

    @classmethod
    def from_cbor(cls, raw: Any) -> "Claim":
        proof, raw_power, qa_power = expect_tuple(raw, 3, "Claim")
        return cls(
            expect_int(proof, "Claim.WindowPoStProofType"),
            expect_bigint(raw_power, "Claim.RawBytePower"),
            expect_bigint(qa_power, "Claim.QualityAdjPower"),
        )


@dataclass(frozen=True, slots=True)
class CronEvent:
    miner_addr: Address
    callback_payload: bytes

    def to_cbor(self) -> list[Any]:
        return [self.miner_addr.to_cbor(), self.callback_payload]

    @classmethod
    def from_cbor(cls, raw: Any) -> "CronEvent":
        miner, payload = expect_tuple(raw, 2, "CronEvent")
        return cls(
            Address.from_cbor(miner, "CronEvent.MinerAddr"),
            expect_bytes(payload, "CronEvent.CallbackPayload", max_len=MAX_CRON_PAYLOAD),
        )


def _illegal_state(what: str, exc: Exception) -> ActorError:
    return ActorError(ExitCode.ErrIllegalState, f"{what}: {exc}")


class ClaimsTable:
    """The claims HAMT, opened for reading and updating."""

    __slots__ = ("_hamt",)

    def __init__(self, hamt: Hamt) -> None:
        self._hamt = hamt

    @classmethod
    def load(cls, store: Blockstore, root: CID) -> "ClaimsTable":
        try:
            return cls(Hamt.load(store, root, CLAIMS_HAMT_BITWIDTH))
        except (DecodeError, KeyError, LookupError) as exc:
            raise _illegal_state("failed to load claims", exc) from None

    def get(self, miner: Address) -> Claim | None:
        raw = self._hamt.get(miner.to_bytes())
        if raw is None:
            return None
        try:
            return Claim.from_cbor(raw)
        except DecodeError as exc:
            raise _illegal_state(f"bad claim of {miner}", exc) from None

    def contains(self, miner: Address) -> bool:
        return self._hamt.contains(miner.to_bytes())

    def set(self, miner: Address, claim: Claim) -> None:
        if claim.raw_byte_power < 0:
            raise ActorError(ExitCode.ErrIllegalState, f"negative claim raw power {claim.raw_byte_power}")
        if claim.quality_adj_power < 0:
            raise ActorError(ExitCode.ErrIllegalState, f"negative claim QA power {claim.quality_adj_power}")
        self._hamt.set(miner.to_bytes(), claim.to_cbor())

    def delete(self, miner: Address) -> bool:
        return self._hamt.delete(miner.to_bytes())

    def flush(self) -> CID:
        return self._hamt.flush()


class CronQueue:
    """The cron event multimap: epoch -> events enrolled for it, in enrolment order."""

    __slots__ = ("_hamt", "_store")

    def __init__(self, store: Blockstore, hamt: Hamt) -> None:
        self._store = store
        self._hamt = hamt

    @classmethod
    def load(cls, store: Blockstore, root: CID) -> "CronQueue":
        try:
            return cls(store, Hamt.load(store, root, CRON_QUEUE_HAMT_BITWIDTH))
        except (DecodeError, LookupError) as exc:
            raise _illegal_state("failed to load cron events", exc) from None

    def add(self, epoch: int, event: CronEvent) -> None:
        key = i64_key(epoch)
        root = self._hamt.get(key)
        events = (
            Amt.new(self._store, CRON_QUEUE_AMT_BITWIDTH)
            if root is None
            else Amt.load(self._store, expect_cid(root, "cron queue link"), CRON_QUEUE_AMT_BITWIDTH)
        )
        events.set(events.count(), event.to_cbor())
        self._hamt.set(key, events.flush())

    def events_at(self, epoch: int) -> list[CronEvent]:
        root = self._hamt.get(i64_key(epoch))
        if root is None:
            return []
        try:
            events = Amt.load(self._store, expect_cid(root, "cron queue link"), CRON_QUEUE_AMT_BITWIDTH)
            return [CronEvent.from_cbor(raw) for raw in events.values()]
        except (DecodeError, LookupError) as exc:
            raise _illegal_state(f"failed to load cron events at {epoch}", exc) from None

    def remove_all(self, epoch: int) -> None:
        self._hamt.delete(i64_key(epoch))

    def epochs(self) -> Iterator[int]:
        """Every epoch with events, in no particular order."""
        for key, _ in self._hamt.items():
            try:
                yield parse_i64_key(key)
            except DecodeError as exc:
                raise _illegal_state("bad cron queue key", exc) from None

    def flush(self) -> CID:
        return self._hamt.flush()


@dataclass(frozen=True, slots=True)
class PowerState:
    # totals over miners above the consensus minimum
    total_raw_byte_power: int
    total_bytes_committed: int  # totals over every miner
    total_quality_adj_power: int
    total_qa_bytes_committed: int
    total_pledge_collateral: int
    # snapshots taken at the end of the previous epoch, what CurrentTotalPower reports
    this_epoch_raw_byte_power: int
    this_epoch_quality_adj_power: int
    this_epoch_pledge_collateral: int
    this_epoch_qa_power_smoothed: FilterEstimate
    miner_count: int
    miner_above_min_power_count: int
    cron_event_queue: CID
    first_cron_epoch: int
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
            raise ActorError(ExitCode.ErrNotFound, f"no claim for actor {miner}")
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
            raise ActorError(ExitCode.ErrIllegalState, "negative count of miners above the minimum power")
        claims.set(miner, new)
        return state

    def delete_claim(self, policy: Policy, claims: ClaimsTable, miner: Address) -> "PowerState":
        """Remove a miner's claim, taking its power out of the totals first; no-op without a claim."""
        claim = claims.get(miner)
        if claim is None:
            return self
        state = self.add_to_claim(policy, claims, miner, -claim.raw_byte_power, -claim.quality_adj_power)
        claims.delete(miner)
        return state

    def miner_meets_consensus_minimum(self, store: Blockstore, policy: Policy, miner: Address) -> bool:
        """Whether a miner's power makes it eligible to win blocks (power state.rs
        miner_nominal_power_meets_consensus_minimum)."""
        claim = ClaimsTable.load(store, self.claims).get(miner)
        if claim is None:
            raise ActorError(ExitCode.ErrNotFound, f"no claim for actor {miner}")
        if claim.raw_byte_power >= policy.consensus_miner_min_power:
            return True
        if self.miner_above_min_power_count >= policy.consensus_miner_min_miners:
            return False
        return claim.raw_byte_power > 0

    def to_cbor(self) -> list[Any]:
        return [
            encode_bigint(self.total_raw_byte_power),
            encode_bigint(self.total_bytes_committed),
            encode_bigint(self.total_quality_adj_power),
            encode_bigint(self.total_qa_bytes_committed),
            encode_bigint(self.total_pledge_collateral),
            encode_bigint(self.this_epoch_raw_byte_power),
            encode_bigint(self.this_epoch_quality_adj_power),
            encode_bigint(self.this_epoch_pledge_collateral),
            self.this_epoch_qa_power_smoothed.to_cbor(),
            self.miner_count,
            self.miner_above_min_power_count,
            self.cron_event_queue,
            self.first_cron_epoch,
            self.claims,
            self.proof_validation_batch,
        ]

    @classmethod
    def from_cbor(cls, raw: Any) -> "PowerState":
        w = "PowerState"
        f = expect_tuple(raw, 15, w)
        return cls(
            total_raw_byte_power=expect_bigint(f[0], f"{w}.TotalRawBytePower"),
            total_bytes_committed=expect_bigint(f[1], f"{w}.TotalBytesCommitted"),
            total_quality_adj_power=expect_bigint(f[2], f"{w}.TotalQualityAdjPower"),
            total_qa_bytes_committed=expect_bigint(f[3], f"{w}.TotalQABytesCommitted"),
            total_pledge_collateral=expect_bigint(f[4], f"{w}.TotalPledgeCollateral"),
            this_epoch_raw_byte_power=expect_bigint(f[5], f"{w}.ThisEpochRawBytePower"),
            this_epoch_quality_adj_power=expect_bigint(f[6], f"{w}.ThisEpochQualityAdjPower"),
            this_epoch_pledge_collateral=expect_bigint(f[7], f"{w}.ThisEpochPledgeCollateral"),
            this_epoch_qa_power_smoothed=FilterEstimate.from_cbor(f[8], f"{w}.ThisEpochQAPowerSmoothed"),
            miner_count=expect_int(f[9], f"{w}.MinerCount"),
            miner_above_min_power_count=expect_int(f[10], f"{w}.MinerAboveMinPowerCount"),
            cron_event_queue=expect_cid(f[11], f"{w}.CronEventQueue"),
            first_cron_epoch=expect_int(f[12], f"{w}.FirstCronEpoch"),
            claims=expect_cid(f[13], f"{w}.Claims"),
            proof_validation_batch=expect_optional_cid(f[14], f"{w}.ProofValidationBatch"),
        )
