"""The vesting table's add_locked: the merge gives exactly what rebuilding the whole table gave."""

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.miner.policy import QuantSpec
from actors.miner.vesting import VestingFund, VestingFunds, VestSpec
from chain.params import DEVNET, MAINNET


def rebuilt(
    funds: VestingFunds, current_epoch: int, amount: int, proving_period_start: int, spec: VestSpec
) -> VestingFunds:
    """add_locked as it was before the merge: every entry into a dict, the steps added, all sorted."""
    begin = current_epoch + spec.initial_delay
    quant = QuantSpec(spec.quantization, proving_period_start)
    merged = {f.epoch: f.amount for f in funds.funds}
    vested = 0
    epoch = begin
    while vested < amount:
        epoch += spec.step_duration
        vest_epoch = quant.quantize_up(epoch)
        elapsed = vest_epoch - begin
        target = amount if elapsed >= spec.vest_period else amount * elapsed // spec.vest_period
        merged[vest_epoch] = merged.get(vest_epoch, 0) + target - vested
        vested = target
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
