"""Gas arithmetic against Lotus's own test tables (lotus chain/vm/burn_test.go, chain/store/basefee_test.go)
and the price list's per-operation rules."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.params import DEVNET
from chain.vm.exitcode import ActorError, ExitCode
from chain.vm.gas import (
    PRICES,
    GasTracker,
    compute_gas_outputs,
    compute_gas_overestimation_burn,
    compute_next_base_fee,
)

# (used, limit, refund, burn): lotus TestGasBurn.
GAS_BURN = [
    (100, 200, 10, 90),
    (100, 150, 30, 20),
    (1000, 1300, 240, 60),
    (500, 700, 140, 60),
    (200, 200, 0, 0),
    (20000, 21000, 1000, 0),
    (0, 2000, 0, 2000),
    (500, 651, 121, 30),
    (500, 5000, 0, 4500),
    (7499_000_000, 7500_000_000, 1_000_000, 0),
    (3750_000_000, 7500_000_000, 375_000_000, 3_375_000_000),
    (1, 7500_000_000, 0, 7_499_999_999),
]


@pytest.mark.parametrize(("used", "limit", "refund", "burn"), GAS_BURN)
def test_overestimation_burn_matches_lotus(used: int, limit: int, refund: int, burn: int) -> None:
    assert compute_gas_overestimation_burn(used, limit) == (refund, burn)


# (used, limit, fee cap, premium, base fee burn, over-estimation burn, miner penalty, miner tip, refund)
# with base fee 10: lotus TestGasOutputs.
GAS_OUTPUTS = [
    (100, 110, 11, 1, 1000, 0, 0, 110, 100),
    (100, 130, 11, 1, 1000, 60, 0, 130, 240),
    (100, 110, 10, 1, 1000, 0, 0, 0, 100),
    (100, 110, 6, 1, 600, 0, 400, 0, 60),
]


@pytest.mark.parametrize("case", GAS_OUTPUTS)
def test_gas_outputs_match_lotus(case: tuple[int, ...]) -> None:
    used, limit, fee_cap, premium, burn, over, penalty, tip, refund = case
    out = compute_gas_outputs(used, limit, 10, fee_cap, premium)
    assert (out.base_fee_burn, out.over_estimation_burn, out.miner_penalty, out.miner_tip, out.refund) == (
        burn,
        over,
        penalty,
        tip,
        refund,
    )


@given(
    used=st.integers(0, 10_000_000_000),
    extra=st.integers(0, 10_000_000_000),
    base_fee=st.integers(0, 10**12),
    fee_cap=st.integers(0, 10**12),
    premium_share=st.integers(0, 100),
)
def test_gas_outputs_add_up_to_what_the_sender_paid(
    used: int, extra: int, base_fee: int, fee_cap: int, premium_share: int
) -> None:
    limit = used + extra
    premium = fee_cap * premium_share // 100
    out = compute_gas_outputs(used, limit, base_fee, fee_cap, premium)
    assert out.base_fee_burn + out.over_estimation_burn + out.miner_tip + out.refund == limit * fee_cap
    assert min(out.base_fee_burn, out.over_estimation_burn, out.miner_tip, out.refund, out.miner_penalty) >= 0
    assert out.gas_refund + out.gas_burned == limit - used


def test_no_network_fee_skips_only_the_base_fee_burn() -> None:
    out = compute_gas_outputs(100, 110, 10, 11, 1, charge_network_fee=False)
    assert out.base_fee_burn == 0
    assert out.refund == 110 * 11 - 110


# (base fee, gas limit used, blocks, next base fee after the Smoke upgrade): lotus TestBaseFee.
BASE_FEE = [
    (100_000_000, 0, 1, 87_500_000),
    (100_000_000, 0, 5, 87_500_000),
    (100_000_000, 5_000_000_000, 1, 100_000_000),
    (100_000_000, 10_000_000_000, 2, 100_000_000),
    (100_000_000, 20_000_000_000, 2, 112_500_000),
    (100_000_000, 15_000_000_000, 2, 106_250_000),
]


@pytest.mark.parametrize(("base_fee", "used", "blocks", "expected"), BASE_FEE)
def test_next_base_fee_matches_lotus(base_fee: int, used: int, blocks: int, expected: int) -> None:
    assert compute_next_base_fee(base_fee, used, blocks, DEVNET) == expected


def test_next_base_fee_never_falls_below_the_minimum() -> None:
    assert compute_next_base_fee(100, 0, 1, DEVNET) == DEVNET.minimum_base_fee
    with pytest.raises(ValueError, match="at least one block"):
        compute_next_base_fee(100, 0, 0, DEVNET)


def test_price_list_rules() -> None:
    p = PRICES
    assert p.on_chain_message(100) == 38863 + (36 + 100) * 1300
    assert p.on_chain_return_value(10) == 13000
    assert p.on_method_invocation(0, 0) == 29233
    assert p.on_method_invocation(1, 0) == 29233 + 27500 + 159672
    assert p.on_method_invocation(1, 2) == 29233 + 27500 - 5377
    assert p.on_method_invocation(0, 2) == 29233 - 5377
    assert p.on_ipld_get() == 114617
    assert p.on_ipld_put(10) == 353640 + 13000
    assert p.on_create_actor() == 1108454 + 76 * 1300
    assert p.on_delete_actor() == -76 * 1300
    assert p.on_verify_signature(1) == 1637292
    assert p.on_verify_signature(2) == 16598605
    assert p.on_verify_post(3) == 117680921 + 3 * 43780


def test_gas_tracker_runs_out() -> None:
    gas = GasTracker(100)
    gas.charge(60)
    gas.charge(-10)  # refunds are allowed
    assert gas.used == 50 and gas.available == 50
    with pytest.raises(ActorError) as err:
        gas.charge(51, "big thing")
    assert err.value.exit_code == ExitCode.SysErrOutOfGas
    assert "big thing" in err.value.message
    assert gas.used == 100 and gas.exhausted
