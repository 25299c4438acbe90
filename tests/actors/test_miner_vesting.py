"""The vesting table: add_locked's merge gives exactly the table rebuilt from the vesting schedule, and
unlock_vested exactly the table filtered."""

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.miner import vesting
from actors.miner.policy import QuantSpec
from actors.miner.vesting import VestingFund, VestingFunds, VestSpec
from chain.params import DEVNET, MAINNET


def rebuilt(
    funds: VestingFunds, current_epoch: int, amount: int, proving_period_start: int, spec: VestSpec
) -> VestingFunds:
    """What add_locked must give, by another route than its loop: the steps' epochs first (each
    step_duration on, quantized up, until one is vest_period past the start), then each step's share as
    what has vested by its epoch less what had by the step before, summed per epoch into a dict with the
    old entries, all sorted."""
    begin = current_epoch + spec.initial_delay
    quant = QuantSpec(spec.quantization, proving_period_start)

    def vested_by(epoch: int) -> int:
        return min(amount, amount * (epoch - begin) // spec.vest_period)

    steps: list[int] = []
    while amount > 0 and (not steps or steps[-1] - begin < spec.vest_period):
        steps.append(quant.quantize_up(begin + (len(steps) + 1) * spec.step_duration))
    merged = {f.epoch: f.amount for f in funds.funds}
    for before, epoch in zip([begin, *steps], steps, strict=False):
        merged[epoch] = merged.get(epoch, 0) + vested_by(epoch) - vested_by(before)
    return VestingFunds(tuple(VestingFund(e, a) for e, a in sorted(merged.items())))


specs = st.builds(
    VestSpec,
    initial_delay=st.integers(0, 50),
    vest_period=st.integers(1, 400),
    step_duration=st.integers(1, 60),
    quantization=st.integers(1, 60),
)
tables = st.lists(st.tuples(st.integers(0, 600), st.integers(0, 10**20)), max_size=40)


@settings(max_examples=400, deadline=None)
@given(
    table=tables,
    shuffle=st.booleans(),
    current_epoch=st.integers(0, 500),
    amount=st.integers(0, 10**21),
    start=st.integers(-100, 1000),
    spec=specs,
)
def test_add_locked_equals_rebuilding_the_table(
    table: list[tuple[int, int]], shuffle: bool, current_epoch: int, amount: int, start: int, spec: VestSpec
) -> None:
    # Tables this actor wrote are sorted with one entry per epoch; others (unsorted, repeated epochs)
    # must come out as the rebuild made them too.
    entries = table if shuffle else sorted({e: a for e, a in table}.items())
    funds = VestingFunds(tuple(VestingFund(e, a) for e, a in entries))
    new = funds.add_locked(current_epoch, amount, start, spec)
    old = rebuilt(funds, current_epoch, amount, start, spec)
    assert new == old
    assert new.to_cbor() == old.to_cbor()


def test_add_locked_over_a_chain_of_rewards() -> None:
    for policy in (DEVNET, MAINNET):
        spec = VestSpec.for_rewards(policy)
        new = old = VestingFunds()
        for epoch in range(0, 40 * spec.step_duration, spec.step_duration // 7 + 1):
            new, _ = new.unlock_vested(epoch)
            old, _ = old.unlock_vested(epoch)
            new = new.add_locked(epoch, 10**18 + epoch, 17, spec)
            old = rebuilt(old, epoch, 10**18 + epoch, 17, spec)
            assert new == old
        assert new.total() > 0


@settings(max_examples=300, deadline=None)
@given(table=tables, current_epoch=st.integers(-10, 700))
def test_unlock_vested_equals_filtering_the_table(table: list[tuple[int, int]], current_epoch: int) -> None:
    """unlock_vested, which gives back the table itself when nothing vests, equals the table filtered
    anew and the sum of what it dropped, for sorted and unsorted tables."""
    funds = VestingFunds(tuple(VestingFund(e, a) for e, a in table))
    kept, unlocked = funds.unlock_vested(current_epoch)
    assert kept == VestingFunds(tuple(f for f in funds.funds if f.epoch >= current_epoch))
    assert kept.to_cbor() == VestingFunds(tuple(f for f in funds.funds if f.epoch >= current_epoch)).to_cbor()
    assert unlocked == sum(f.amount for f in funds.funds if f.epoch < current_epoch)


@settings(max_examples=300, deadline=None)
@given(
    table=tables,
    current_epoch=st.integers(-10, 700),
    amount=st.integers(0, 10**21),
    start=st.integers(-100, 1000),
    spec=specs,
)
def test_a_table_known_sorted_unlocks_and_merges_as_one_walked(
    table: list[tuple[int, int]], current_epoch: int, amount: int, start: int, spec: VestSpec
) -> None:
    """A table remembered as sorted (vesting._SORTED, as add_locked leaves it) gives what walking it
    gives: the same table kept and sum unlocked, the same table after add_locked; what add_locked gives
    is sorted, one entry per epoch, and remembered."""
    funds = VestingFunds(tuple(VestingFund(e, a) for e, a in sorted(dict(table).items())))
    vesting._SORTED[0] = None
    expected_kept, expected_unlocked = funds.unlock_vested(current_epoch)
    vesting._SORTED[0] = None
    expected = expected_kept.add_locked(current_epoch, amount, start, spec)

    vesting._SORTED[0] = funds.funds
    kept, unlocked = funds.unlock_vested(current_epoch)
    assert (kept, unlocked) == (expected_kept, expected_unlocked)
    assert kept.to_cbor() == expected_kept.to_cbor()
    assert vesting._SORTED[0] is kept.funds
    new = kept.add_locked(current_epoch, amount, start, spec)
    assert new == expected and new.to_cbor() == expected.to_cbor()
    assert vesting._SORTED[0] is new.funds
    assert all(a.epoch < b.epoch for a, b in pairwise(new.funds))
