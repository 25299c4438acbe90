"""What the market asks of other actors: method numbers and the shapes of their returns (v9).

The miner's and the reward actor's types come from their modules; the power actor's return is read
here (only its raw byte power matters to the market).
"""

from dataclasses import dataclass
from typing import Any, Final

from actors.miner.types import GetControlAddressesReturn, MinerMethod
from actors.reward import RewardMethod, ThisEpochRewardReturn
from actors.smoothing import FilterEstimate
from chain.encoding.bigint import encode_bigint
from chain.encoding.expect import expect_bigint, expect_tuple

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


@dataclass(frozen=True, slots=True)
class CurrentTotalPowerReturn:
    raw_byte_power: int
    quality_adj_power: int
    pledge_collateral: int
    quality_adj_power_smoothed: FilterEstimate

    def to_cbor(self) -> list[Any]:
        return [
            encode_bigint(self.raw_byte_power),
            encode_bigint(self.quality_adj_power),
            encode_bigint(self.pledge_collateral),
            self.quality_adj_power_smoothed.to_cbor(),
        ]

    @classmethod
    def from_cbor(cls, raw: Any) -> "CurrentTotalPowerReturn":
        raw_power, qa_power, pledge, smoothed = expect_tuple(raw, 4, "CurrentTotalPowerReturn")
        return cls(
            expect_bigint(raw_power, "CurrentTotalPowerReturn.RawBytePower"),
            expect_bigint(qa_power, "CurrentTotalPowerReturn.QualityAdjPower"),
            expect_bigint(pledge, "CurrentTotalPowerReturn.PledgeCollateral"),
            FilterEstimate.from_cbor(smoothed, "CurrentTotalPowerReturn.QualityAdjPowerSmoothed"),
        )
