"""The miner's vesting table: locked block rewards that unlock linearly over time.

VestingFunds is a list of (epoch, amount) sorted by epoch, stored as one block (builtin-actors v9
`vesting_state.rs`): amounts unlock once their epoch has passed. New rewards vest in steps of
reward_vesting_step epochs, each step's epoch rounded up to the vesting quantum counted from the
proving period start, so entries of rewards from nearby epochs merge.
"""

from dataclasses import dataclass
from typing import Annotated, Final

from actors.miner.policy import QuantSpec
from chain.encoding.schema import CborTuple, ChainEpoch, MaxLen, TokenAmount
from chain.params import Policy

# A table holds at most one entry per quantum over the vesting period; bound decoding generously.
MAX_VESTING_ENTRIES: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class VestSpec:
    initial_delay: int
    vest_period: int
    step_duration: int
    quantization: int

    @classmethod
    def for_rewards(cls, policy: Policy) -> "VestSpec":
        return cls(
            0, policy.reward_vesting_period, policy.reward_vesting_step, policy.reward_vesting_quantization
        )


class VestingFund(CborTuple):
    epoch: ChainEpoch
    amount: TokenAmount


class VestingFunds(CborTuple):
    funds: Annotated[tuple[VestingFund, ...], MaxLen(MAX_VESTING_ENTRIES)] = ()

    def total(self) -> int:
        return sum(f.amount for f in self.funds)

    def unlock_vested(self, current_epoch: int) -> tuple["VestingFunds", int]:
        """Drop every entry whose epoch is before current_epoch; return the rest and the sum dropped."""
        keep = [f for f in self.funds if f.epoch >= current_epoch]
        unlocked = sum(f.amount for f in self.funds if f.epoch < current_epoch)
        return VestingFunds(tuple(keep)), unlocked

    def add_locked(
        self, current_epoch: int, amount: int, proving_period_start: int, spec: VestSpec
    ) -> "VestingFunds":
        """Schedule amount to vest linearly over spec.vest_period from current_epoch."""
        begin = current_epoch + spec.initial_delay
        quant = QuantSpec(spec.quantization, proving_period_start)
        merged = {f.epoch: f.amount for f in self.funds}
        vested = 0
        epoch = begin
        # Each step vests at least one quantum's worth; the loop ends when all is vested, after at most
        # vest_period / step_duration + 1 steps.
        while vested < amount:
            epoch += spec.step_duration
            vest_epoch = quant.quantize_up(epoch)
            elapsed = vest_epoch - begin
            target = amount if elapsed >= spec.vest_period else amount * elapsed // spec.vest_period
            merged[vest_epoch] = merged.get(vest_epoch, 0) + target - vested
            vested = target
        return VestingFunds(tuple(VestingFund(e, a) for e, a in sorted(merged.items())))

    def unlock_unvested(self, current_epoch: int, target: int) -> tuple["VestingFunds", int]:
        """Take up to target from entries not yet vested (earliest first), e.g. to pay a penalty."""
        remaining = target
        out: list[VestingFund] = []
        for fund in self.funds:
            if fund.epoch >= current_epoch and remaining > 0:
                taken = min(remaining, fund.amount)
                remaining -= taken
                if fund.amount > taken:
                    out.append(VestingFund(fund.epoch, fund.amount - taken))
            else:
                out.append(fund)
        return VestingFunds(tuple(out)), target - remaining
