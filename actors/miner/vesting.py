"""The miner's vesting table: locked block rewards that unlock linearly over time.

VestingFunds is a list of (epoch, amount) sorted by epoch, stored as one block (builtin-actors v9
`vesting_state.rs`): amounts unlock once their epoch has passed. New rewards vest in steps of
reward_vesting_step epochs, each step's epoch rounded up to the vesting quantum counted from the
proving period start, so entries of rewards from nearby epochs merge.
"""

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
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
        funds = self.funds
        if funds is _SORTED[0]:
            # Sorted: what vests is a prefix, found without reading every entry.
            if not funds or funds[0].epoch >= current_epoch:
                return self, 0
            cut = bisect_left(funds, current_epoch, key=_epoch_of)
            _SORTED[0] = kept = funds[cut:]
            return VestingFunds(kept), sum(f.amount for f in funds[:cut])
        keep = [f for f in funds if f.epoch >= current_epoch]
        if len(keep) == len(self.funds):
            # Nothing vests (most block rewards: entries are a vesting quantum apart): the table as it
            # is, not a copy checked entry by entry.
            return self, 0
        unlocked = sum(f.amount for f in self.funds if f.epoch < current_epoch)
        return VestingFunds(tuple(keep)), unlocked

    def add_locked(
        self, current_epoch: int, amount: int, proving_period_start: int, spec: VestSpec
    ) -> "VestingFunds":
        """Schedule amount to vest linearly over spec.vest_period from current_epoch."""
        # The steps' epochs only grow (quantizing up keeps their order), so the new amounts come out
        # sorted; steps that quantize to the same epoch are summed.
        added: list[tuple[int, int]] = []
        for vest_epoch, step in vesting_steps(current_epoch, amount, proving_period_start, spec):
            if added and added[-1][0] == vest_epoch:
                added[-1] = (vest_epoch, added[-1][1] + step)
            else:
                added.append((vest_epoch, step))
        return VestingFunds(_merge(self.funds, added))

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


def vesting_steps(
    current_epoch: int, amount: int, proving_period_start: int, spec: VestSpec
) -> Iterator[tuple[int, int]]:
    """The (epoch, amount) steps in which amount vests linearly over spec.vest_period from
    current_epoch, in epoch order; two steps may quantize to the same epoch."""
    begin = current_epoch + spec.initial_delay
    quant = QuantSpec(spec.quantization, proving_period_start)
    vested = 0
    epoch = begin
    # Each step vests at least one quantum's worth; the loop ends when all is vested, after at most
    # vest_period / step_duration + 1 steps.
    while vested < amount:
        epoch += spec.step_duration
        vest_epoch = quant.quantize_up(epoch)
        elapsed = vest_epoch - begin
        target = amount if elapsed >= spec.vest_period else amount * elapsed // spec.vest_period
        yield vest_epoch, target - vested
        vested = target


def _merge(funds: tuple[VestingFund, ...], added: list[tuple[int, int]]) -> tuple[VestingFund, ...]:
    """funds with added (sorted by epoch) summed in: a merge of two sorted lists that keeps the
    entries it does not change, as the table is rewritten on every block reward."""
    if funds is not _SORTED[0] and any(a.epoch >= b.epoch for a, b in pairwise(funds)):
        # Not a table this actor wrote (those are sorted, one entry per epoch): read it as add_locked
        # always has, keeping the last entry of each epoch, sorted.
        by_epoch = {f.epoch: f for f in funds}
        funds = tuple(by_epoch[e] for e in sorted(by_epoch))
    out: list[VestingFund] = []
    i, n = 0, len(funds)
    for epoch, amount in added:
        while i < n and funds[i].epoch < epoch:
            out.append(funds[i])
            i += 1
        if i < n and funds[i].epoch == epoch:
            out.append(VestingFund(epoch, funds[i].amount + amount))
            i += 1
        else:
            out.append(VestingFund(epoch, amount))
    out.extend(funds[i:])
    _SORTED[0] = merged = tuple(out)
    return merged


def _epoch_of(fund: VestingFund) -> int:
    return fund.epoch


# The entries of the last table known to be sorted, one entry per epoch: what _merge gave, or what
# unlock_vested kept of such a table. The next block reward's table holds that very tuple (put_declared
# enters the table in the block cache, get_vesting reads it back from there), so its order is not
# checked again entry by entry, nor every entry read to find what vests. By identity: a tuple cannot
# change, so the one held here stays sorted; a table from elsewhere is walked as before.
_SORTED: list[tuple[VestingFund, ...] | None] = [None]
