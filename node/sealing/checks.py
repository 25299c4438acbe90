"""What the pipeline works out from the chain before it sends: a sector's expiration, its deals' health,
the collateral a message must carry, and which sectors a message waiting in the pool already carries
(so that a restart adopts it instead of sending a second one). Synchronous: called in worker threads.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from actors.miner.policy import qa_power_for_weight
from actors.miner.types import (
    MinerMethod,
    PreCommitSectorBatchParams,
    PreCommitSectorParams,
    ProveCommitAggregateParams,
    ProveCommitSectorParams,
)
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.params import Policy
from chain.types.address import Address
from chain.types.message import SignedMessage
from chain.types.tipset import TipSet
from node.sealing.chain import SealingChain
from node.sealing.types import SectorRecord


class DealProblem(Exception):
    """A deal of the sector can no longer be sealed as it is (gone, expired, activated elsewhere)."""


def sector_expiration(record: SectorRecord, head: int, policy: Policy, cc_lifetime: int) -> int:
    """Lotus preCommitInfo's expiration: the last deal's end (a committed-capacity sector: its
    lifetime), no earlier than the shortest lifetime the actor accepts for a pre-commit drawn at the
    ticket's epoch, no later than the actor's limit for a pre-commit sent at head."""
    ends = [p.deal_info.deal_schedule.end_epoch for p in record.pieces if p.deal_info is not None]
    expiration = max(ends) if ends else head + cc_lifetime
    earliest = (
        record.ticket.epoch
        + policy.max_pre_commit_randomness_lookback
        + policy.max_prove_commit_duration
        + policy.min_sector_expiration
    )
    latest = head + policy.max_sector_expiration_extension
    return min(max(expiration, earliest), latest)


def check_deals(chain: SealingChain, miner: Address, record: SectorRecord, ts: TipSet) -> None:
    """Lotus checkPieces: every deal is published for this miner and piece, not yet active, and can
    still start (DealProblem names the first that cannot)."""
    for piece in record.pieces:
        if piece.deal_info is not None:
            check_deal(chain, miner, piece.deal_info.deal_id, piece.piece.piece_cid, piece.piece.size, ts)


def check_deal(
    chain: SealingChain, miner: Address, deal_id: int, piece_cid: CID, piece_size: int, ts: TipSet
) -> None:
    """The deal is published for this miner and this piece, not yet active, and can still start at ts
    (DealProblem says which of these it is not)."""
    deal = chain.deal(deal_id, ts)
    if deal is None:
        raise DealProblem(f"deal {deal_id} is not published on chain (never published, or expired)")
    proposal = deal.proposal
    if proposal.piece_cid != piece_cid or proposal.piece_size != piece_size:
        raise DealProblem(
            f"deal {deal_id} is for piece {proposal.piece_cid} of {proposal.piece_size} bytes, "
            f"not {piece_cid} of {piece_size}"
        )
    if proposal.provider != miner:  # stored proposals name the provider by ID address
        raise DealProblem(f"deal {deal_id} is with provider {proposal.provider}, not {miner}")
    if deal.state.sector_start_epoch != -1:
        raise DealProblem(f"deal {deal_id} is already active in a sector")
    if proposal.start_epoch <= ts.height:
        raise DealProblem(
            f"deal {deal_id} should have started at epoch {proposal.start_epoch} (now {ts.height})"
        )


def deal_weights(chain: SealingChain, record: SectorRecord, duration: int, ts: TipSet) -> tuple[int, int]:
    """(deal weight, verified deal weight) of the sector as the actor computes them at activation."""
    space = verified = 0
    for deal_id in record.deal_ids:
        deal = chain.deal(deal_id, ts)
        if deal is None:
            continue
        if deal.proposal.verified_deal:
            verified += deal.proposal.piece_size
        else:
            space += deal.proposal.piece_size
    return space * duration, verified * duration


def sector_pledge(chain: SealingChain, record: SectorRecord, sector_size: int, ts: TipSet) -> int:
    """The initial pledge the actor will lock when the sector is proven (at about the next epoch)."""
    duration = max(1, record.expiration - (ts.height + 1))
    weight, verified = deal_weights(chain, record, duration, ts)
    return chain.initial_pledge(qa_power_for_weight(sector_size, duration, weight, verified), ts)


def collateral(needed: int, available: int, margin_percent: int) -> int:
    """What a message must carry for the miner to hold `needed` more than it does: the need with a
    margin, less the miner's available balance (Lotus's CollateralFromMinerBalance)."""
    return max(0, needed * (100 + margin_percent) // 100 - available)


@dataclass(frozen=True, slots=True)
class PendingCarrier:
    """A message in the pool that carries some of the miner's sectors."""

    message: SignedMessage
    sectors: frozenset[int]


def _sectors_of(method: int, params: bytes) -> Iterable[int]:
    try:
        if method == MinerMethod.PreCommitSector:
            return [PreCommitSectorParams.from_bytes(params).sector_number]
        if method == MinerMethod.PreCommitSectorBatch:
            return [p.sector_number for p in PreCommitSectorBatchParams.from_bytes(params).sectors]
        if method == MinerMethod.ProveCommitSector:
            return [ProveCommitSectorParams.from_bytes(params).sector_number]
        if method == MinerMethod.ProveCommitAggregate:
            return list(ProveCommitAggregateParams.from_bytes(params).sector_numbers)
    except DecodeError:
        return []
    return []


PRE_COMMIT_METHODS = frozenset({MinerMethod.PreCommitSector, MinerMethod.PreCommitSectorBatch})
COMMIT_METHODS = frozenset({MinerMethod.ProveCommitSector, MinerMethod.ProveCommitAggregate})


def pending_carriers(
    pending: Sequence[SignedMessage], miner: Address, methods: frozenset[MinerMethod]
) -> list[PendingCarrier]:
    """The pool's messages (of the worker) to the miner with one of these methods, and their sectors."""
    out = []
    for signed in pending:
        msg = signed.message
        if msg.to == miner and msg.method in methods:
            out.append(PendingCarrier(signed, frozenset(_sectors_of(msg.method, msg.params))))
    return out
