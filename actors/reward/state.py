"""The reward actor's state (builtin-actors v9 reward State, tuple of 11) and its epoch transitions."""

from typing import Final

from actors.abi import EPOCH_UNDEFINED
from actors.reward.schedule import (
    BASELINE_INITIAL_VALUE,
    BASELINE_TOTAL,
    INIT_BASELINE_POWER,
    SIMPLE_TOTAL,
    baseline_power_from_prev,
    compute_r_theta,
    compute_reward,
)
from actors.smoothing import FilterEstimate
from chain.encoding.schema import BigInt, CborTuple, ChainEpoch, StoragePower, TokenAmount, replace

# The initial smoothed reward: 36.266 FIL per epoch, falling by 1.0982e-7 FIL per epoch.
INITIAL_REWARD_POSITION_ESTIMATE: Final = 36_266_260_308_195_979_333
INITIAL_REWARD_VELOCITY_ESTIMATE: Final = -109_897_758_509
Spacetime = BigInt


class RewardState(CborTuple):
    cumsum_baseline: Spacetime
    cumsum_realized: Spacetime
    effective_network_time: ChainEpoch
    effective_baseline_power: StoragePower
    this_epoch_reward: TokenAmount
    this_epoch_reward_smoothed: FilterEstimate
    this_epoch_baseline_power: StoragePower
    epoch: ChainEpoch
    total_storage_power_reward: TokenAmount
    simple_total: TokenAmount
    baseline_total: TokenAmount

    @classmethod
    def new(cls, curr_realized_power: int) -> "RewardState":
        state = cls(
            cumsum_baseline=0,
            cumsum_realized=0,
            effective_network_time=0,
            effective_baseline_power=BASELINE_INITIAL_VALUE,
            this_epoch_reward=0,
            this_epoch_reward_smoothed=FilterEstimate.of(
                INITIAL_REWARD_POSITION_ESTIMATE, INITIAL_REWARD_VELOCITY_ESTIMATE
            ),
            this_epoch_baseline_power=INIT_BASELINE_POWER,
            epoch=EPOCH_UNDEFINED,
            total_storage_power_reward=0,
            simple_total=SIMPLE_TOTAL,
            baseline_total=BASELINE_TOTAL,
        )
        return state.next_epoch_with_reward(curr_realized_power)

    def next_epoch(self, curr_realized_power: int) -> "RewardState":
        """Advance one epoch: grow the baseline, add the capped realised power to its cumsum and move
        the effective network time forward while the realised cumsum is ahead of the baseline's."""
        baseline = baseline_power_from_prev(self.this_epoch_baseline_power)
        cumsum_realized = self.cumsum_realized + min(baseline, curr_realized_power)
        effective_time = self.effective_network_time
        effective_baseline = self.effective_baseline_power
        cumsum_baseline = self.cumsum_baseline
        # Each step adds a positive baseline, and the realised cumsum grows by at most one baseline
        # per epoch, so this runs at most a couple of times per epoch.
        while cumsum_realized > cumsum_baseline:
            effective_time += 1
            effective_baseline = baseline_power_from_prev(effective_baseline)
            cumsum_baseline += effective_baseline
        return replace(
            self,
            epoch=self.epoch + 1,
            this_epoch_baseline_power=baseline,
            cumsum_realized=cumsum_realized,
            effective_network_time=effective_time,
            effective_baseline_power=effective_baseline,
            cumsum_baseline=cumsum_baseline,
        )

    def _theta(self) -> int:
        return compute_r_theta(
            self.effective_network_time,
            self.effective_baseline_power,
            self.cumsum_realized,
            self.cumsum_baseline,
        )

    def next_epoch_with_reward(self, curr_realized_power: int) -> "RewardState":
        """Advance one epoch and compute the reward minted in it."""
        prev_theta = self._theta()
        advanced = self.next_epoch(curr_realized_power)
        reward = compute_reward(
            advanced.epoch, prev_theta, advanced._theta(), advanced.simple_total, advanced.baseline_total
        )
        return replace(advanced, this_epoch_reward=reward)
