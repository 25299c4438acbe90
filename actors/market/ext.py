"""What the market asks of other actors: method numbers and the shapes of their returns (v9).

The miner's and the reward actor's types come from their modules; the power actor's return is read
here (only its raw byte power matters to the market).
"""

from typing import Final

from actors.miner.types import GetControlAddressesReturn, MinerMethod
from actors.power import CurrentTotalPowerReturn
from actors.reward import RewardMethod, ThisEpochRewardReturn

MINER_CONTROL_ADDRESSES_METHOD: Final = int(MinerMethod.ControlAddresses)
REWARD_THIS_EPOCH_REWARD_METHOD: Final = int(RewardMethod.ThisEpochReward)
POWER_CURRENT_TOTAL_POWER_METHOD: Final = 9  # builtin-actors power Method::CurrentTotalPower

__all__ = [
    "MINER_CONTROL_ADDRESSES_METHOD",
    "POWER_CURRENT_TOTAL_POWER_METHOD",
    "REWARD_THIS_EPOCH_REWARD_METHOD",
    "CurrentTotalPowerReturn",
    "GetControlAddressesReturn",
    "ThisEpochRewardReturn",
]
