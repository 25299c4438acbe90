"""The sealing pipeline's settings (Lotus's [Sealing] config section, in epochs where Lotus uses time
so that a devnet's fast epochs scale them).

`SealingConfig.for_policy(policy)` gives Lotus's defaults on mainnet and shorter waits on test networks,
whose epochs are seconds and whose proving periods are minutes.
"""

from dataclasses import dataclass, replace
from typing import Final

from chain.params import Policy

FIL: Final = 10**18


@dataclass(frozen=True, slots=True)
class SealingConfig:
    # how many proof jobs (AddPiece, PreCommit1/2, Committing, FinalizeSector) run at once
    max_sealing_jobs: int = 1
    # a sector open for deals starts sealing this many seconds after it was opened (Lotus WaitDealsDelay)
    wait_deals_delay: float = 6 * 3600.0
    # ... or once the earliest deal start epoch in it is this close (Lotus StartEpochSealingBuffer)
    start_epoch_sealing_buffer: int = 480
    # tipsets on top of a message before it counts as landed (Lotus MessageConfidence)
    message_confidence: int = 5
    # tipsets on top of the seed's epoch before the seed is drawn (Lotus InteractivePoRepConfidence)
    seed_confidence: int = 6
    # a batcher waits at most this many epochs for more sectors (Lotus PreCommitBatchWait and
    # CommitBatchWait, 24 hours), and never once nothing else is on its way to it
    pre_commit_batch_wait: int = 2880
    commit_batch_wait: int = 2880
    # a pre-commit batch or a commit batch is sent this many epochs before its first deadline at
    # the latest (Lotus PreCommitBatchSlack and CommitBatchSlack: 3 and 1 hours)
    pre_commit_batch_slack: int = 360
    commit_batch_slack: int = 120
    # the most sectors in one PreCommitSectorBatch (Lotus MaxPreCommitBatch); the policy's limit caps it
    max_pre_commit_batch: int = 256
    # ProveCommitAggregate from this many sectors (Lotus MinCommitBatch); the policy's
    # min_aggregated_sectors applies too. Fewer are sent as ProveCommitSector messages.
    min_commit_batch: int = 4
    # a committed-capacity sector lives this long (Lotus CommittedCapacitySectorLifetime, 540 days),
    # clamped to what the policy allows
    committed_capacity_lifetime: int = 540 * 2880
    # a message not on chain and not in the pool this many epochs after it was sent is sent again
    resend_after: int = 20
    # failures: the first retry waits retry_min seconds, each next one twice as long, up to retry_max;
    # after max_retries failures in a row the sector is given up (FailedUnrecoverable)
    retry_min: float = 60.0
    retry_max: float = 3600.0
    max_retries: int = 20
    # fees: the most a message may pay, per sector it carries (Lotus MaxPreCommitGasFee,
    # MaxCommitGasFee)
    max_pre_commit_fee: int = FIL * 25 // 1000
    max_commit_fee: int = FIL * 5 // 100
    # seal a committed-capacity sector in place of each sector the chain terminates for faults
    # (node/sealing/replacement.py)
    replace_terminated: bool = True
    # collateral above what the chain asks at the head (the pledge can grow by the time the message
    # runs); the miner keeps any excess as available balance
    collateral_margin_percent: int = 5

    @classmethod
    def for_policy(cls, policy: Policy) -> "SealingConfig":
        if policy.network_name == "mainnet":
            return cls()
        # a devnet: epochs of a few seconds, a proving period of minutes
        return cls(
            wait_deals_delay=60.0,
            start_epoch_sealing_buffer=4 * policy.pre_commit_challenge_delay + 20,
            message_confidence=1,
            seed_confidence=2,
            pre_commit_batch_wait=4,
            commit_batch_wait=4,
            pre_commit_batch_slack=2,
            commit_batch_slack=4,
            min_commit_batch=policy.min_aggregated_sectors,
            committed_capacity_lifetime=policy.max_sector_expiration_extension,
            resend_after=10,
            retry_min=2.0,
            retry_max=60.0,
        )

    def with_overrides(self, **changes: object) -> "SealingConfig":
        return replace(self, **changes)  # type: ignore[arg-type]
