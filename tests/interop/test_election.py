"""ref/election.json: lotus's golden values for the election (WinCount) arithmetic."""

from typing import Any

import pytest

from chain.consensus.expected import (
    BLOCKS_PER_EPOCH,
    EXP_DENO_COEFS,
    EXP_NUM_COEFS,
    MAX_WIN_COUNT,
    PRECISION,
    Poisson,
    compute_win_count,
    election_lambda,
    expneg,
)
from tests.vectors import CaseChecks, cases, require

CHECKS = CaseChecks("election", key="kind")


def test_constants() -> None:
    data = require("ref/election.json")
    constants = data["constants"]
    assert constants["precision_bits"] == PRECISION
    assert constants["blocks_per_epoch (ExpectedLeadersPerEpoch)"] == BLOCKS_PER_EPOCH
    assert constants["MaxWinCount"].endswith(str(MAX_WIN_COUNT))
    shift = PRECISION - 128
    assert [int(c) << shift for c in constants["exp_num_coefs_high_to_low"]] == list(EXP_NUM_COEFS)
    assert [int(c) << shift for c in constants["exp_deno_coefs_high_to_low"]] == list(EXP_DENO_COEFS)


@CHECKS.on("lambda")
def _lambda(case: dict[str, Any]) -> None:
    lam = election_lambda(int(case["power"]), int(case["total_power"]))
    if "expected_lambda_q256" in case:
        assert lam == int(case["expected_lambda_q256"])
    assert lam / (1 << PRECISION) == pytest.approx(case["expected_lambda_float"], rel=1e-12)


@CHECKS.on("poisson_icdf")
def _poisson(case: dict[str, Any]) -> None:
    lam = int(case["lambda_q256"])
    assert lam == case["lambda_base"] << (PRECISION - case["lambda_shift"])
    poisson = Poisson(lam)
    assert poisson.icdf == int(case["expected_icdf0"])
    expected = [int(v) for v in case["expected_next_1_to_15"]]
    assert len(expected) == 15
    assert [poisson.next() for _ in expected] == expected


@CHECKS.on("expneg_table")
def _expneg_table(case: dict[str, Any]) -> None:
    rows = case["rows_x_y"]
    assert len(rows) == case["count"] == 256
    step = (5 << PRECISION) // 255
    for i, (x, y) in enumerate(rows):
        assert int(x) == i * step
        assert expneg(int(x)) == int(y), f"row {i}"


@CHECKS.on("win_count_statistical_property")
def _win_count_mean(case: dict[str, Any]) -> None:
    assert "power=20, totalPower=100" in case["inputs"]
    samples = 1_000_000
    total = 0
    for i in range(samples):
        n = i + 1_000_000
        total += compute_win_count(n.to_bytes(5, "little"), 20, 100)
    assert 0.99 <= total / samples <= 1.01


@pytest.mark.parametrize("case", cases("ref/election.json"))
def test_election_case(case: dict[str, Any]) -> None:
    CHECKS.run(case)
