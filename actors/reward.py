"""The reward actor: mints block rewards on the baseline/simple schedule and pays them to miners.

Methods and state as builtin-actors v9 `actors/reward`: the system actor calls AwardBlockReward once
per block with the block's gas reward attached; the power actor calls UpdateNetworkKPI at the end of
every epoch with the network's raw power, which advances the minting schedule (actors.reward_schedule)
and the smoothed reward estimate that miners use for pledges. Rewards go to the miner through
miner.ApplyRewards (which locks most of them in the vesting table); if the miner refuses them they are
burnt. See docs/reward.md.
"""

from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any, Final

from actors import builtin
from actors.dispatch import METHOD_SEND, ActorDef, MethodDef, encode_params
from actors.miner.types import ApplyRewardParams, MinerMethod
from actors.reward_schedule import (
    BASELINE_INITIAL_VALUE,
    BASELINE_TOTAL,
    INIT_BASELINE_POWER,
    SIMPLE_TOTAL,
    baseline_power_from_prev,
    compute_r_theta,
    compute_reward,
)
from actors.smoothing import FilterEstimate
from chain.encoding.bigint import encode_bigint
from chain.encoding.expect import expect_bigint, expect_int, expect_tuple
from chain.types.address import Address
from chain.vm.exitcode import ActorError, ExitCode
from chain.vm.runtime import Runtime

# Penalties for bad messages in a block are scaled up by this before being charged to the miner.
PENALTY_MULTIPLIER: Final = 3
EPOCH_UNDEFINED: Final = -1
# The initial smoothed reward: 36.266 FIL per epoch, falling by 1.0982e-7 FIL per epoch.
INITIAL_REWARD_POSITION_ESTIMATE: Final = 36_266_260_308_195_979_333
INITIAL_REWARD_VELOCITY_ESTIMATE: Final = -109_897_758_509
# Null rounds are caught up one epoch at a time; bound the loop so a corrupt state cannot spin.
MAX_CATCH_UP_EPOCHS: Final = 1 << 22


class RewardMethod(IntEnum):
    Constructor = 1
    AwardBlockReward = 2
    ThisEpochReward = 3
    UpdateNetworkKPI = 4


@dataclass(frozen=True, slots=True)
class RewardState:
    cumsum_baseline: int
    cumsum_realized: int
    effective_network_time: int
    effective_baseline_power: int
    this_epoch_reward: int
    this_epoch_reward_smoothed: FilterEstimate
    this_epoch_baseline_power: int
    epoch: int
    total_storage_power_reward: int
    simple_total: int
    baseline_total: int

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

    def to_cbor(self) -> list[Any]:
        return [
            encode_bigint(self.cumsum_baseline),
            encode_bigint(self.cumsum_realized),
            self.effective_network_time,
            encode_bigint(self.effective_baseline_power),
            encode_bigint(self.this_epoch_reward),
            self.this_epoch_reward_smoothed.to_cbor(),
            encode_bigint(self.this_epoch_baseline_power),
            self.epoch,
            encode_bigint(self.total_storage_power_reward),
            encode_bigint(self.simple_total),
            encode_bigint(self.baseline_total),
        ]

    @classmethod
    def from_cbor(cls, raw: Any) -> "RewardState":
        w = "RewardState"
        f = expect_tuple(raw, 11, w)
        return cls(
            cumsum_baseline=expect_bigint(f[0], f"{w}.CumsumBaseline"),
            cumsum_realized=expect_bigint(f[1], f"{w}.CumsumRealized"),
            effective_network_time=expect_int(f[2], f"{w}.EffectiveNetworkTime"),
            effective_baseline_power=expect_bigint(f[3], f"{w}.EffectiveBaselinePower"),
            this_epoch_reward=expect_bigint(f[4], f"{w}.ThisEpochReward"),
            this_epoch_reward_smoothed=FilterEstimate.from_cbor(f[5], f"{w}.ThisEpochRewardSmoothed"),
            this_epoch_baseline_power=expect_bigint(f[6], f"{w}.ThisEpochBaselinePower"),
            epoch=expect_int(f[7], f"{w}.Epoch"),
            total_storage_power_reward=expect_bigint(f[8], f"{w}.TotalStoragePowerReward"),
            simple_total=expect_bigint(f[9], f"{w}.SimpleTotal"),
            baseline_total=expect_bigint(f[10], f"{w}.BaselineTotal"),
        )


@dataclass(frozen=True, slots=True)
class AwardBlockRewardParams:
    miner: Address
    penalty: int  # for bad messages in the block, >= 0
    gas_reward: int  # the block's gas fees, sent along with this call, >= 0
    win_count: int  # election wins of the block, > 0

    def to_cbor(self) -> list[Any]:
        return [
            self.miner.to_cbor(),
            encode_bigint(self.penalty),
            encode_bigint(self.gas_reward),
            self.win_count,
        ]

    @classmethod
    def from_cbor(cls, raw: Any) -> "AwardBlockRewardParams":
        w = "AwardBlockRewardParams"
        miner, penalty, gas_reward, win_count = expect_tuple(raw, 4, w)
        return cls(
            Address.from_cbor(miner, f"{w}.Miner"),
            expect_bigint(penalty, f"{w}.Penalty"),
            expect_bigint(gas_reward, f"{w}.GasReward"),
            expect_int(win_count, f"{w}.WinCount"),
        )


@dataclass(frozen=True, slots=True)
class ThisEpochRewardReturn:
    this_epoch_reward_smoothed: FilterEstimate
    this_epoch_baseline_power: int

    def to_cbor(self) -> list[Any]:
        return [self.this_epoch_reward_smoothed.to_cbor(), encode_bigint(self.this_epoch_baseline_power)]

    @classmethod
    def from_cbor(cls, raw: Any) -> "ThisEpochRewardReturn":
        w = "ThisEpochRewardReturn"
        smoothed, baseline = expect_tuple(raw, 2, w)
        return cls(
            FilterEstimate.from_cbor(smoothed, f"{w}.ThisEpochRewardSmoothed"),
            expect_bigint(baseline, f"{w}.ThisEpochBaselinePower"),
        )


def optional_power(raw: Any) -> int | None:
    """The params of Constructor and UpdateNetworkKPI: a big integer, or null."""
    return None if raw is None else expect_bigint(raw, "StoragePower")


def constructor(rt: Runtime, curr_realized_power: int | None) -> None:
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    if curr_realized_power is None:
        raise ActorError(ExitCode.ErrIllegalArgument, "argument should not be nil")
    rt.set_state(RewardState.new(curr_realized_power))


def award_block_reward(rt: Runtime, params: AwardBlockRewardParams) -> None:
    """Pay a block's producer: the epoch reward share for its wins plus its gas reward, less nothing
    here; the penalty (times PENALTY_MULTIPLIER) is charged by the miner as fee debt."""
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    prior_balance = rt.current_balance()
    if params.penalty < 0:
        raise ActorError(ExitCode.ErrIllegalArgument, f"negative penalty {params.penalty}")
    if params.gas_reward < 0:
        raise ActorError(ExitCode.ErrIllegalArgument, f"negative gas reward {params.gas_reward}")
    if prior_balance < params.gas_reward:
        raise ActorError(
            ExitCode.ErrIllegalState,
            f"actor current balance {prior_balance} insufficient to pay gas reward {params.gas_reward}",
        )
    if params.win_count <= 0:
        raise ActorError(ExitCode.ErrIllegalArgument, f"invalid win count {params.win_count}")
    miner = rt.resolve_address(params.miner)
    if miner is None:
        raise ActorError(ExitCode.ErrNotFound, f"failed to resolve miner address {params.miner}")
    penalty = params.penalty * PENALTY_MULTIPLIER

    state = rt.state(RewardState)
    block_reward = state.this_epoch_reward * params.win_count // rt.policy.blocks_per_epoch
    total_reward = params.gas_reward + block_reward
    if total_reward > prior_balance:
        # The actor ran dry: pay out what is left (the gas reward is covered, checked above).
        total_reward = prior_balance
        block_reward = total_reward - params.gas_reward
    rt.set_state(replace(state, total_storage_power_reward=state.total_storage_power_reward + block_reward))

    sent = rt.send(
        miner, MinerMethod.ApplyRewards, encode_params(ApplyRewardParams(total_reward, penalty)), total_reward
    )
    if not sent.ok:
        # The miner refused the reward; it is burnt rather than left in the reward actor.
        rt.send(builtin.BURNT_FUNDS_ACTOR_ADDR, METHOD_SEND, b"", total_reward)


def this_epoch_reward(rt: Runtime) -> ThisEpochRewardReturn:
    rt.validate_immediate_caller_accept_any()
    state = rt.state(RewardState)
    return ThisEpochRewardReturn(state.this_epoch_reward_smoothed, state.this_epoch_baseline_power)


def update_network_kpi(rt: Runtime, curr_realized_power: int | None) -> None:
    """Catch up over null rounds to the current epoch, then compute the next epoch's reward."""
    rt.validate_immediate_caller_is(builtin.STORAGE_POWER_ACTOR_ADDR)
    if curr_realized_power is None:
        raise ActorError(ExitCode.ErrIllegalArgument, "argument cannot be nil")
    state = rt.state(RewardState)
    prev = state.epoch
    if rt.curr_epoch - prev > MAX_CATCH_UP_EPOCHS:
        raise ActorError(
            ExitCode.ErrIllegalState, f"reward state at epoch {prev} is too far behind {rt.curr_epoch}"
        )
    while state.epoch < rt.curr_epoch:
        state = state.next_epoch(curr_realized_power)
    state = state.next_epoch_with_reward(curr_realized_power)
    smoothed = state.this_epoch_reward_smoothed.next(state.this_epoch_reward, state.epoch - prev)
    rt.set_state(replace(state, this_epoch_reward_smoothed=smoothed))


ACTOR = ActorDef(
    code=builtin.REWARD_ACTOR_CODE,
    name="reward",
    state_type=RewardState,
    methods=(
        MethodDef(RewardMethod.Constructor, "Constructor", constructor, optional_power),
        MethodDef(
            RewardMethod.AwardBlockReward,
            "AwardBlockReward",
            award_block_reward,
            AwardBlockRewardParams.from_cbor,
        ),
        MethodDef(RewardMethod.ThisEpochReward, "ThisEpochReward", this_epoch_reward),
        MethodDef(RewardMethod.UpdateNetworkKPI, "UpdateNetworkKPI", update_network_kpi, optional_power),
    ),
)
