"""The miner's rules as pure functions: proving-period arithmetic, proof types, power and money.

Everything here follows builtin-actors v9 `actors/miner/src/{deadline_info,deadlines,policy,monies}.rs`
with the timing and projection constants read from chain/params.Policy, so that the devnet profile
runs the same rules on a short clock.
"""

from dataclasses import dataclass
from typing import Final

from actors.smoothing import PRECISION, FilterEstimate, extrapolated_cum_sum_of_ratio
from chain.params import Policy
from proofs.registered import POST_PARAMS, SEAL_PARAMS


@dataclass(frozen=True, slots=True)
class ProofInfo:
    sector_size: int
    window_post_proof: int
    window_post_partition_sectors: int


# The seal proofs a miner may use: those proofs/ can seal and verify (proofs/registered.py), each with
# its sector size, the Window PoSt proof it pairs with and that proof's partition size.
SEAL_PROOFS: Final = {
    int(p.proof): ProofInfo(p.sector_size, int(p.window_post), POST_PARAMS[p.window_post].sectors)
    for p in SEAL_PARAMS.values()
}
WINDOW_POST_PROOFS: Final = {info.window_post_proof: info for info in SEAL_PROOFS.values()}

# Sector quality: multipliers of committed capacity, deal and verified deal space-time (x10 precision).
SECTOR_QUALITY_PRECISION: Final = 20
QUALITY_BASE_MULTIPLIER: Final = 10
DEAL_WEIGHT_MULTIPLIER: Final = 10
VERIFIED_DEAL_WEIGHT_MULTIPLIER: Final = 100

LOCK_TARGET_FACTOR_NUM: Final = 3
LOCK_TARGET_FACTOR_DENOM: Final = 10
TERMINATION_REWARD_FACTOR_NUM: Final = 1
TERMINATION_REWARD_FACTOR_DENOM: Final = 2
LOCKED_REWARD_FACTOR_NUM: Final = 3
LOCKED_REWARD_FACTOR_DENOM: Final = 4
INITIAL_PLEDGE_MAX_PER_BYTE: Final = 10**18 // (32 << 30)  # 1 FIL per 32 GiB
CONSENSUS_FAULT_FACTOR: Final = 5
CONSENSUS_FAULT_REPORTER_SHARE: Final = 4


def allowed_window_post_proofs(policy: Policy) -> set[int]:
    return {SEAL_PROOFS[p].window_post_proof for p in policy.allowed_seal_proofs if p in SEAL_PROOFS}


# -- time ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuantSpec:
    """Epochs of the form offset + k * unit."""

    unit: int
    offset: int

    def quantize_up(self, epoch: int) -> int:
        offset = self.offset % self.unit
        return offset - ((offset - epoch) // self.unit) * self.unit

    def quantize_down(self, epoch: int) -> int:
        offset = self.offset % self.unit
        return offset + ((epoch - offset) // self.unit) * self.unit


@dataclass(frozen=True, slots=True)
class DeadlineInfo:
    """One deadline of one proving period, as seen from current_epoch."""

    current_epoch: int
    period_start: int
    index: int
    open: int
    close: int
    challenge: int  # the epoch whose randomness challenges this deadline's PoSt
    fault_cutoff: int  # declarations for this deadline must come before this epoch
    proving_period: int

    @classmethod
    def of(cls, policy: Policy, period_start: int, index: int, current_epoch: int) -> "DeadlineInfo":
        if index < policy.wpost_period_deadlines:
            opens = period_start + index * policy.wpost_challenge_window
            return cls(
                current_epoch,
                period_start,
                index,
                opens,
                opens + policy.wpost_challenge_window,
                opens - policy.wpost_challenge_lookback,
                opens - policy.fault_declaration_cutoff,
                policy.wpost_proving_period,
            )
        after_last = period_start + policy.wpost_proving_period
        return cls(
            current_epoch,
            period_start,
            index,
            after_last,
            after_last,
            after_last,
            0,
            policy.wpost_proving_period,
        )

    @classmethod
    def from_epoch(cls, policy: Policy, period_start_seed: int, current_epoch: int) -> "DeadlineInfo":
        """The deadline current_epoch falls in, for a miner whose periods start at period_start_seed
        plus multiples of the proving period."""
        start = QuantSpec(policy.wpost_proving_period, period_start_seed).quantize_down(current_epoch)
        index = (current_epoch - start) // policy.wpost_challenge_window % policy.wpost_period_deadlines
        return cls.of(policy, start, index, current_epoch)

    def period_started(self) -> bool:
        return self.current_epoch >= self.period_start

    def is_open(self) -> bool:
        return self.open <= self.current_epoch < self.close

    def has_elapsed(self) -> bool:
        return self.current_epoch >= self.close

    def last(self) -> int:
        return self.close - 1

    def fault_cutoff_passed(self) -> bool:
        return self.current_epoch >= self.fault_cutoff

    def next_period_start(self) -> int:
        return self.period_start + self.proving_period

    def next_not_elapsed(self) -> "DeadlineInfo":
        """This deadline in the first proving period where it has not yet closed."""
        if not self.has_elapsed():
            return self
        periods = (self.current_epoch - self.close) // self.proving_period + 1
        shift = periods * self.proving_period
        return DeadlineInfo(
            self.current_epoch,
            self.period_start + shift,
            self.index,
            self.open + shift,
            self.close + shift,
            self.challenge + shift,
            self.fault_cutoff + shift,
            self.proving_period,
        )

    def quant_spec(self) -> QuantSpec:
        """Expirations in this deadline's partitions are rounded up to the deadline's last epoch."""
        return QuantSpec(self.proving_period, self.last())


def deadline_is_mutable(policy: Policy, proving_period_start: int, index: int, current_epoch: int) -> bool:
    """Whether sectors may be added to or removed from a deadline now: only while it does not open
    within the next challenge window."""
    info = DeadlineInfo.of(policy, proving_period_start, index, current_epoch).next_not_elapsed()
    return current_epoch < info.open - policy.wpost_challenge_window


def proving_period_offset(policy: Policy, digest: bytes) -> int:
    """The miner's proving period offset, from digest = blake2b-256(CBOR(address) || int64-BE epoch)."""
    return int.from_bytes(digest[:8], "big") % policy.wpost_proving_period


def current_proving_period_start(policy: Policy, current_epoch: int, offset: int) -> int:
    progress = (current_epoch - offset) % policy.wpost_proving_period
    return current_epoch - progress


# -- power --------------------------------------------------------------------------------------------


def quality_for_weight(size: int, duration: int, deal_weight: int, verified_weight: int) -> int:
    space_time = size * duration
    base = (space_time - deal_weight - verified_weight) * QUALITY_BASE_MULTIPLIER
    weighted = base + deal_weight * DEAL_WEIGHT_MULTIPLIER + verified_weight * VERIFIED_DEAL_WEIGHT_MULTIPLIER
    return ((weighted << SECTOR_QUALITY_PRECISION) // space_time) // QUALITY_BASE_MULTIPLIER


def qa_power_for_weight(size: int, duration: int, deal_weight: int, verified_weight: int) -> int:
    return (
        size * quality_for_weight(size, duration, deal_weight, verified_weight)
    ) >> SECTOR_QUALITY_PRECISION


def qa_power_max(size: int) -> int:
    return size * VERIFIED_DEAL_WEIGHT_MULTIPLIER // QUALITY_BASE_MULTIPLIER


# -- money --------------------------------------------------------------------------------------------


def expected_reward_for_power(
    reward: FilterEstimate, network_qa_power: FilterEstimate, qa_sector_power: int, projection: int
) -> int:
    """The reward a sector of this power is expected to earn over the next `projection` epochs."""
    if network_qa_power.estimate() == 0:
        return reward.estimate()
    ratio = extrapolated_cum_sum_of_ratio(projection, 0, reward, network_qa_power)
    return max((qa_sector_power * ratio) >> PRECISION, 0)


def _at_least_one_atto(amount: int) -> int:
    return amount if amount > 0 else 1


def pre_commit_deposit_for_power(
    policy: Policy, reward: FilterEstimate, network_qa_power: FilterEstimate, qa_sector_power: int
) -> int:
    return _at_least_one_atto(
        expected_reward_for_power(
            reward, network_qa_power, qa_sector_power, policy.pre_commit_deposit_projection
        )
    )


def initial_pledge_for_power(
    policy: Policy,
    qa_power: int,
    baseline_power: int,
    reward: FilterEstimate,
    network_qa_power: FilterEstimate,
    circulating_supply: int,
) -> int:
    """Storage pledge (projected reward) plus a consensus pledge (the sector's share of 30% of the
    circulating supply), capped at 1 FIL per 32 GiB."""
    base = _at_least_one_atto(
        expected_reward_for_power(reward, network_qa_power, qa_power, policy.initial_pledge_projection)
    )
    share_denom = max(network_qa_power.estimate(), baseline_power, qa_power)
    additional = (circulating_supply * LOCK_TARGET_FACTOR_NUM * qa_power) // (
        share_denom * LOCK_TARGET_FACTOR_DENOM
    )
    return min(base + additional, INITIAL_PLEDGE_MAX_PER_BYTE * qa_power)


def pledge_penalty_for_continued_fault(
    policy: Policy, reward: FilterEstimate, network_qa_power: FilterEstimate, qa_power: int
) -> int:
    return expected_reward_for_power(reward, network_qa_power, qa_power, policy.continued_fault_projection)


def pledge_penalty_for_termination(
    policy: Policy,
    day_reward: int,
    sector_age: int,
    twenty_day_reward_at_activation: int,
    network_qa_power: FilterEstimate,
    qa_sector_power: int,
    reward: FilterEstimate,
    replaced_day_reward: int,
    replaced_sector_age: int,
) -> int:
    """The larger of 3.5 days of projected reward and the storage pledge plus half the reward the
    sector earned per day of age (capped at 140 days)."""
    cap = policy.termination_lifetime_cap
    capped_age = min(sector_age, cap)
    expected = day_reward * capped_age + replaced_day_reward * min(replaced_sector_age, cap - capped_age)
    penalized = expected * TERMINATION_REWARD_FACTOR_NUM // TERMINATION_REWARD_FACTOR_DENOM
    lower_bound = expected_reward_for_power(
        reward, network_qa_power, qa_sector_power, policy.termination_penalty_lower_bound_projection
    )
    return max(lower_bound, twenty_day_reward_at_activation + penalized // policy.epochs_in_day)


def consensus_fault_penalty(policy: Policy, this_epoch_reward: int) -> int:
    return this_epoch_reward * CONSENSUS_FAULT_FACTOR // policy.blocks_per_epoch


def reward_for_consensus_slash_report(policy: Policy, this_epoch_reward: int) -> int:
    return this_epoch_reward // (policy.blocks_per_epoch * CONSENSUS_FAULT_REPORTER_SHARE)


def locked_reward_from_reward(reward: int) -> int:
    """The part of a block reward locked in the vesting table (3/4); the rest is free at once."""
    return reward * LOCKED_REWARD_FACTOR_NUM // LOCKED_REWARD_FACTOR_DENOM
