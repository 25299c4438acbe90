"""The reward actor: mints block rewards on the baseline/simple schedule and pays them to miners.

Methods and state as builtin-actors v9 `actors/reward`: the system actor calls AwardBlockReward once
per block with the block's gas reward attached; the power actor calls UpdateNetworkKPI at the end of
every epoch with the network's raw power, which advances the minting schedule (actors.reward.schedule)
and the smoothed reward estimate that miners use for pledges. Rewards go to the miner through
miner.ApplyRewards (which locks most of them in the vesting table); if the miner refuses them they are
burnt. See docs/reward.md.
"""

from typing import Final

from actors import builtin
from actors.dispatch import METHOD_SEND, ActorDef, encode_params, exported, exports
from actors.miner.types import ApplyRewardParams, MinerMethod
from actors.reward.state import RewardState
from actors.reward.types import AwardBlockRewardParams, RewardMethod, ThisEpochRewardReturn
from chain.encoding.schema import StoragePower, replace
from chain.vm.exitcode import illegal_argument, illegal_state, not_found
from chain.vm.runtime import Runtime

# Penalties for bad messages in a block are scaled up by this before being charged to the miner.
PENALTY_MULTIPLIER: Final = 3
# Null rounds are caught up one epoch at a time; bound the loop so a corrupt state cannot spin.
MAX_CATCH_UP_EPOCHS: Final = 1 << 22


@exports(RewardMethod.Constructor)
def constructor(rt: Runtime, curr_realized_power: StoragePower | None) -> None:
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    if curr_realized_power is None:
        raise illegal_argument("argument should not be nil")
    rt.set_state(RewardState.new(curr_realized_power))


@exports(RewardMethod.AwardBlockReward)
def award_block_reward(rt: Runtime, params: AwardBlockRewardParams) -> None:
    """Pay a block's producer: the epoch reward share for its wins plus its gas reward, less nothing
    here; the penalty (times PENALTY_MULTIPLIER) is charged by the miner as fee debt."""
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    prior_balance = rt.current_balance()
    if params.penalty < 0:
        raise illegal_argument(f"negative penalty {params.penalty}")
    if params.gas_reward < 0:
        raise illegal_argument(f"negative gas reward {params.gas_reward}")
    if prior_balance < params.gas_reward:
        raise illegal_state(
            f"actor current balance {prior_balance} insufficient to pay gas reward {params.gas_reward}"
        )
    if params.win_count <= 0:
        raise illegal_argument(f"invalid win count {params.win_count}")
    miner = rt.resolve_address(params.miner)
    if miner is None:
        raise not_found(f"failed to resolve miner address {params.miner}")
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


@exports(RewardMethod.ThisEpochReward)
def this_epoch_reward(rt: Runtime) -> ThisEpochRewardReturn:
    rt.validate_immediate_caller_accept_any()
    state = rt.state(RewardState)
    return ThisEpochRewardReturn(state.this_epoch_reward_smoothed, state.this_epoch_baseline_power)


@exports(RewardMethod.UpdateNetworkKPI)
def update_network_kpi(rt: Runtime, curr_realized_power: StoragePower | None) -> None:
    """Catch up over null rounds to the current epoch, then compute the next epoch's reward."""
    rt.validate_immediate_caller_is(builtin.STORAGE_POWER_ACTOR_ADDR)
    if curr_realized_power is None:
        raise illegal_argument("argument cannot be nil")
    state = rt.state(RewardState)
    prev = state.epoch
    if rt.curr_epoch - prev > MAX_CATCH_UP_EPOCHS:
        raise illegal_state(f"reward state at epoch {prev} is too far behind {rt.curr_epoch}")
    while state.epoch < rt.curr_epoch:
        state = state.next_epoch(curr_realized_power)
    state = state.next_epoch_with_reward(curr_realized_power)
    smoothed = state.this_epoch_reward_smoothed.next(state.this_epoch_reward, state.epoch - prev)
    rt.set_state(replace(state, this_epoch_reward_smoothed=smoothed))


ACTOR = ActorDef.of(builtin.REWARD_ACTOR_CODE, "reward", RewardState, exported(RewardMethod, globals()))
