"""Win counts and tipset weight beyond the golden values: limits, monotonicity, hand-computed weights."""

import itertools

import pytest

from chain.consensus.expected import (
    MAX_WIN_COUNT,
    compute_win_count,
    election_lambda,
    tipset_weight,
    win_thresholds,
)


def test_all_power_wins_at_most_max_and_no_power_never_wins() -> None:
    # A hash of 0 is below every positive threshold: the cap applies.
    thresholds = win_thresholds(100, 100)
    assert len(thresholds) == MAX_WIN_COUNT
    assert all(a > b for a, b in itertools.pairwise(thresholds))
    assert compute_win_count(b"", 0, 100) == 0
    assert max(compute_win_count(bytes([i]), 100, 100) for i in range(256)) <= MAX_WIN_COUNT


def test_more_power_never_wins_less() -> None:
    for i in range(200):
        proof = i.to_bytes(2, "big")
        counts = [compute_win_count(proof, p, 1000) for p in (1, 10, 100, 500, 1000)]
        assert counts == sorted(counts)


def test_lambda_rejects_zero_total() -> None:
    with pytest.raises(ValueError, match="positive"):
        election_lambda(1, 0)


def test_weight_by_hand() -> None:
    # total power 2^40 + 5 -> log2P = 40; 3 wins -> (40*1*3 << 8) // 10 = 3072
    assert tipset_weight(1000, (1 << 40) + 5, [1, 2]) == 1000 + (40 << 8) + 3072
    # no wins: only the power term
    assert tipset_weight(0, 2048, []) == 11 << 8
    with pytest.raises(ValueError):
        tipset_weight(0, 0, [1])
