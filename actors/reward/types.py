"""The reward actor's methods, params and returns (builtin-actors v9 actors/reward)."""

from enum import IntEnum

from actors.smoothing import FilterEstimate
from chain.encoding.schema import CborTuple, Int64, StoragePower, TokenAmount
from chain.types.address import Address


class RewardMethod(IntEnum):
    Constructor = 1
    AwardBlockReward = 2
    ThisEpochReward = 3
    UpdateNetworkKPI = 4


class AwardBlockRewardParams(CborTuple):
    miner: Address
    penalty: TokenAmount  # for bad messages in the block, >= 0
    gas_reward: TokenAmount  # the block's gas fees, sent along with this call, >= 0
    win_count: Int64  # election wins of the block, > 0


class ThisEpochRewardReturn(CborTuple):
    this_epoch_reward_smoothed: FilterEstimate
    this_epoch_baseline_power: StoragePower
