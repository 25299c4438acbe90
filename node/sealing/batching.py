"""When the batchers send, and how they cut what is ready into messages (pure functions).

Pre-commits: PreCommitSector for one sector, PreCommitSectorBatch for several, at most
`max_pre_commit_batch` (and the policy's pre_commit_sector_batch_max_size) each.

Commits: ProveCommitAggregate for `min_aggregate`..policy.max_aggregated_sectors sectors whose
AggregateProof (the CBOR array of their vanilla proofs) stays within policy.max_aggregated_proof_size,
which keeps the message within the pool's message size limit; ProveCommitSector for each sector left
over (fewer than min_aggregate ready, or the remainder of a cut).

A batch goes out when it is full, when nothing else is on its way to the batcher (no sector in an earlier
working state), when its oldest sector has waited `wait` epochs, or when the earliest deadline of its
sectors is within `slack` epochs.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chain.params import Policy


@dataclass(frozen=True, slots=True)
class CommitPlan:
    """One commit message: an aggregate of several sectors, or one sector's ProveCommitSector."""

    sectors: tuple[int, ...]
    aggregate: bool


def cbor_header_size(length: int) -> int:
    """Bytes of the CBOR header of a byte string or array of this length."""
    if length < 24:
        return 1
    if length < 1 << 8:
        return 2
    if length < 1 << 16:
        return 3
    if length < 1 << 32:
        return 5
    return 9


def aggregate_proof_size(proof_sizes: Sequence[int]) -> int:
    """The size of the AggregateProof (actors.miner.types.encode_aggregate_proof) of proofs this big."""
    return cbor_header_size(len(proof_sizes)) + sum(cbor_header_size(n) + n for n in proof_sizes)


def plan_pre_commits(numbers: Sequence[int], *, max_batch: int, policy: Policy) -> list[tuple[int, ...]]:
    """The pre-commit messages for these sectors, in sector-number order."""
    size = max(1, min(max_batch, policy.pre_commit_sector_batch_max_size))
    ordered = sorted(numbers)
    return [tuple(ordered[i : i + size]) for i in range(0, len(ordered), size)]


def plan_commits(proof_sizes: Mapping[int, int], *, min_aggregate: int, policy: Policy) -> list[CommitPlan]:
    """The commit messages for these sectors (sector number -> its proof's size), in sector order."""
    smallest = max(min_aggregate, policy.min_aggregated_sectors, 2)
    ordered = sorted(proof_sizes)
    plans: list[CommitPlan] = []
    current: list[int] = []

    def close() -> None:
        if len(current) >= smallest:
            plans.append(CommitPlan(tuple(current), True))
        else:
            plans.extend(CommitPlan((n,), False) for n in current)
        current.clear()

    for number in ordered:
        candidate = [proof_sizes[n] for n in current] + [proof_sizes[number]]
        fits = (
            len(candidate) <= policy.max_aggregated_sectors
            and aggregate_proof_size(candidate) <= policy.max_aggregated_proof_size
        )
        if not fits:
            close()
        current.append(number)
    close()
    return plans


def batch_due(
    *,
    head: int,
    ready_since: int,
    wait: int,
    deadline: int | None,
    slack: int,
    full: bool,
    upstream: int,
) -> str | None:
    """Why a batch should go now (for the log), or None to keep waiting."""
    if full:
        return "full"
    if upstream == 0:
        return "nothing else on the way"
    if head - ready_since >= wait:
        return f"waited {head - ready_since} epochs"
    if deadline is not None and head >= deadline - slack:
        return f"deadline {deadline} is near"
    return None
