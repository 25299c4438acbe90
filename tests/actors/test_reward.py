"""The reward actor on MockRuntime, and the minting schedule against builtin-actors' reference values."""

import pytest

from actors import builtin
from actors.dispatch import METHOD_SEND
from actors.miner.types import ApplyRewardParams, MinerMethod
from actors.reward.actor import ACTOR
from actors.reward.schedule import (
    BASELINE_INITIAL_VALUE,
    BASELINE_TOTAL,
    SIMPLE_TOTAL,
    baseline_power_from_prev,
    compute_r_theta,
    compute_reward,
)
from actors.reward.state import INITIAL_REWARD_POSITION_ESTIMATE, RewardState
from actors.reward.types import AwardBlockRewardParams, RewardMethod, ThisEpochRewardReturn
from actors.smoothing import PRECISION, FilterEstimate, extrapolated_cum_sum_of_ratio, ln
from chain.encoding import dagcbor
from chain.encoding.bigint import encode_bigint
from chain.types.address import Address
from chain.vm.exitcode import ExitCode
from tests.actors.aborts import aborts
from tests.actors.mock_runtime import MockRuntime

MINER = Address.new_id(1000)
FIL = 10**18


def constructed(power: int = 0, balance: int = 0) -> MockRuntime:
    rt = MockRuntime(receiver=builtin.REWARD_ACTOR_ADDR, balance=balance)
    rt.expect_validate_caller_addr(builtin.SYSTEM_ACTOR_ADDR)
    rt.call(ACTOR, RewardMethod.Constructor, encode_bigint(power))
    rt.verify()
    return rt


def test_schedule_matches_reference_values() -> None:
    # Lines of builtin-actors' actors/reward/testdata/TestSimpleReward.golden and
    # TestBaselineReward.golden (compute_reward over the simple and the baseline curve).
    assert compute_reward(0, 0, 0, SIMPLE_TOTAL, BASELINE_TOTAL) == 36266264293777134739
    assert compute_reward(5000, 0, 0, SIMPLE_TOTAL, BASELINE_TOTAL) == 36246341860983438171
    simple = compute_reward(0, 0, 0, SIMPLE_TOTAL, BASELINE_TOTAL)
    theta1 = 340282366920938463463374607398434878123
    assert compute_reward(0, 0, theta1, SIMPLE_TOTAL, BASELINE_TOTAL) - simple == 84621274052457285111


def test_baseline_doubles_in_a_year() -> None:
    power = BASELINE_INITIAL_VALUE
    for _ in range(365 * 2880):
        power = baseline_power_from_prev(power)
    assert abs(power - 2 * BASELINE_INITIAL_VALUE) / (2 * BASELINE_INITIAL_VALUE) < 1e-8


def test_r_theta_is_fractional_effective_time() -> None:
    def baseline_at(epoch: int) -> int:
        return (epoch + 1) * 2048

    half = compute_r_theta(1, baseline_at(1), 2048 + 2048, 2048 + 2 * 2048)
    assert half == 1 << (PRECISION - 1)
    assert compute_r_theta(0, 1, 5, 7) == 0


def test_ln_and_ratio_integral() -> None:
    assert abs(ln(2 << PRECISION) / (1 << PRECISION) - 0.6931471805599453) < 1e-12
    assert abs(ln(1 << PRECISION)) < 1 << (PRECISION - 100)
    # ln is computed for every integer, as builtin-actors and go-state-types do: for 0 the reference
    # takes k = -129 and x = 0, where the rational approximation is its numerator's constant
    # coefficient over a denominator constant of 1.0 (Q.128 values from go-state-types math/ln.go).
    ln2 = 235865763225513294137944142764154484399
    num0 = -1563932590352680681114104005183375350999
    assert ln(0) == -129 * ln2 + num0
    assert isinstance(ln(-(5 << PRECISION)), int)
    # constant numerator over a constant denominator: the integral is ratio * duration
    ratio = extrapolated_cum_sum_of_ratio(10, 0, FilterEstimate.of(6, 0), FilterEstimate.of(3, 0))
    assert ratio == 20 << PRECISION
    # a moving denominator takes the logarithmic branch and stays close to the numeric integral
    num, den = FilterEstimate.of(100, 0), FilterEstimate.of(1000, 50)
    exact = sum(100 / (1000 + 50 * (t + 0.5)) for t in range(100))
    assert abs(extrapolated_cum_sum_of_ratio(100, 0, num, den) / (1 << PRECISION) - exact) < 1e-3


def test_filter_converges_to_constant_observations() -> None:
    est = FilterEstimate.of(0, 0)
    for _ in range(20000):
        est = est.next(1000, 1)
    assert abs(est.estimate() - 1000) <= 1
    with pytest.raises(ValueError):
        est.next(1, 0)
    assert FilterEstimate.from_cbor(dagcbor.decode(dagcbor.encode(est.to_cbor()))) == est


def test_constructor_sets_first_epoch() -> None:
    rt = constructed(power=1 << 40)
    state = rt.state(RewardState)
    assert state.epoch == 0
    assert state.this_epoch_reward > 0
    assert state.this_epoch_reward_smoothed.estimate() == INITIAL_REWARD_POSITION_ESTIMATE
    assert RewardState.from_cbor(dagcbor.decode(dagcbor.encode(state.to_cbor()))) == state


def test_constructor_rejects_nil_power_and_other_callers() -> None:
    rt = MockRuntime(receiver=builtin.REWARD_ACTOR_ADDR)
    rt.expect_validate_caller_addr(builtin.SYSTEM_ACTOR_ADDR)
    with aborts(ExitCode.ErrIllegalArgument):
        rt.call_raw(ACTOR, RewardMethod.Constructor, dagcbor.encode(None))

    rt = MockRuntime(receiver=builtin.REWARD_ACTOR_ADDR, caller=Address.new_id(7))
    rt.expect_validate_caller_addr(builtin.SYSTEM_ACTOR_ADDR)
    with aborts(ExitCode.SysErrForbidden):
        rt.call(ACTOR, RewardMethod.Constructor, encode_bigint(0))


def award(rt: MockRuntime, params: AwardBlockRewardParams, *sends: tuple[object, ...]) -> None:
    """Call AwardBlockReward expecting the caller check, then the given expect_send argument tuples."""
    rt.expect_validate_caller_addr(builtin.SYSTEM_ACTOR_ADDR)
    for send in sends:
        rt.expect_send(*send)  # type: ignore[arg-type]
    rt.call(ACTOR, RewardMethod.AwardBlockReward, params)


def test_award_block_reward_pays_the_miner() -> None:
    rt = constructed(balance=1_000_000 * FIL)
    reward = rt.state(RewardState).this_epoch_reward
    gas = 10**9
    expected = reward * 2 // 5 + gas
    award(
        rt,
        AwardBlockRewardParams(MINER, penalty=7, gas_reward=gas, win_count=2),
        (MINER, MinerMethod.ApplyRewards, ApplyRewardParams(expected, 3 * 7), expected),
    )
    rt.verify()
    assert rt.state(RewardState).total_storage_power_reward == reward * 2 // 5
    assert rt.balance == 1_000_000 * FIL - expected


def test_award_burns_a_refused_reward() -> None:
    rt = constructed(balance=1_000_000 * FIL)
    total = rt.state(RewardState).this_epoch_reward // 5
    award(
        rt,
        AwardBlockRewardParams(MINER, 0, 0, 1),
        (MINER, MinerMethod.ApplyRewards, ApplyRewardParams(total, 0), total, None, ExitCode.ErrForbidden),
        (builtin.BURNT_FUNDS_ACTOR_ADDR, METHOD_SEND, None, total),
    )
    rt.verify()


def test_award_pays_out_the_rest_of_a_dry_balance() -> None:
    rt = constructed(balance=100)
    award(
        rt,
        AwardBlockRewardParams(MINER, 0, 40, 1),
        (MINER, MinerMethod.ApplyRewards, ApplyRewardParams(100, 0), 100),
    )
    rt.verify()
    assert rt.state(RewardState).total_storage_power_reward == 60


@pytest.mark.parametrize(
    ("params", "balance", "code"),
    [
        (AwardBlockRewardParams(MINER, -1, 0, 1), FIL, ExitCode.ErrIllegalArgument),
        (AwardBlockRewardParams(MINER, 0, -1, 1), FIL, ExitCode.ErrIllegalArgument),
        (AwardBlockRewardParams(MINER, 0, 2 * FIL, 1), FIL, ExitCode.ErrIllegalState),
        (AwardBlockRewardParams(MINER, 0, 0, 0), FIL, ExitCode.ErrIllegalArgument),
        (AwardBlockRewardParams(Address.new_actor(b"nobody"), 0, 0, 1), FIL, ExitCode.ErrNotFound),
    ],
)
def test_award_rejects(params: AwardBlockRewardParams, balance: int, code: ExitCode) -> None:
    rt = constructed(balance=balance)
    with aborts(code):
        award(rt, params)


def test_award_only_from_system() -> None:
    rt = constructed(balance=FIL)
    rt.caller = Address.new_id(50)
    with aborts(ExitCode.SysErrForbidden):
        award(rt, AwardBlockRewardParams(MINER, 0, 0, 1))


def test_this_epoch_reward() -> None:
    rt = constructed()
    rt.expect_validate_caller_any()
    ret = ThisEpochRewardReturn.from_cbor(rt.call_decoded(ACTOR, RewardMethod.ThisEpochReward))
    state = rt.state(RewardState)
    assert ret == ThisEpochRewardReturn(state.this_epoch_reward_smoothed, state.this_epoch_baseline_power)


def kpi(rt: MockRuntime, power: int) -> None:
    rt.expect_validate_caller_addr(builtin.STORAGE_POWER_ACTOR_ADDR)
    rt.call(ACTOR, RewardMethod.UpdateNetworkKPI, encode_bigint(power))


def test_update_network_kpi_advances_and_catches_up_null_rounds() -> None:
    rt = constructed()
    rt.caller = builtin.STORAGE_POWER_ACTOR_ADDR
    kpi(rt, 1 << 40)
    assert rt.state(RewardState).epoch == 1
    rt.curr_epoch = 10  # epochs 1..9 were null rounds
    kpi(rt, 1 << 40)
    state = rt.state(RewardState)
    assert state.epoch == 11
    assert state.cumsum_realized == 11 * (1 << 40)
    # the smoothed estimate follows the (slowly falling) reward
    assert state.this_epoch_reward_smoothed.estimate() < INITIAL_REWARD_POSITION_ESTIMATE


def test_realised_power_above_baseline_advances_effective_time() -> None:
    rt = constructed()
    rt.caller = builtin.STORAGE_POWER_ACTOR_ADDR
    for epoch in range(3):
        rt.curr_epoch = epoch
        kpi(rt, 10 * BASELINE_INITIAL_VALUE)
    state = rt.state(RewardState)
    assert state.effective_network_time >= 3
    assert state.this_epoch_reward > compute_reward(state.epoch, 0, 0, SIMPLE_TOTAL, BASELINE_TOTAL)


def test_update_network_kpi_rejects() -> None:
    rt = constructed()
    rt.caller = builtin.STORAGE_POWER_ACTOR_ADDR
    rt.expect_validate_caller_addr(builtin.STORAGE_POWER_ACTOR_ADDR)
    with aborts(ExitCode.ErrIllegalArgument):
        rt.call_raw(ACTOR, RewardMethod.UpdateNetworkKPI, dagcbor.encode(None))
    rt.caller = builtin.CRON_ACTOR_ADDR
    with aborts(ExitCode.SysErrForbidden):
        kpi(rt, 0)
