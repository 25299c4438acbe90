"""chain.crypto.msm: the weighted sum by shared doublings equals the sum of pyblst's scalar_mul products,
in G1 and G2, and pyblst's `+` is the group law where the sum relies on it (doubling, the identity)."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyblst import BlstP1Element, BlstP2Element

from chain.crypto.msm import multi_scalar_mul, naf_digits
from chain.crypto.signature import BLS_DST

G2_POINTS = [BlstP2Element.hash_to_group(f"point {i}".encode(), BLS_DST) for i in range(6)]
G1_POINTS = [BlstP1Element.hash_to_group(f"point {i}".encode(), b"msm test") for i in range(6)]
WEIGHTS = st.integers(0, 2**64 - 1) | st.sampled_from([0, 1, 2, 7, 8, 9, 15, 16, 17, 2**63, 2**64 - 1])


def _by_scalar_mul(points: list[BlstP2Element], scalars: list[int]) -> BlstP2Element:
    total = BlstP2Element()  # the identity
    for point, scalar in zip(points, scalars, strict=True):
        total = total + point.scalar_mul(scalar)
    return total


def test_pyblst_addition_doubles_and_takes_the_identity() -> None:
    p, q = G2_POINTS[0], G2_POINTS[1]
    identity = BlstP2Element()
    assert p + p == p.scalar_mul(2)
    assert (p + q) + q == p + q.scalar_mul(2)
    assert p + identity == p and identity + p == p and identity + identity == identity
    assert p + -p == identity
    assert p.scalar_mul(0) == identity
    assert G1_POINTS[0] + G1_POINTS[0] == G1_POINTS[0].scalar_mul(2)


@given(st.integers(0, 2**70))
def test_naf_digits_sum_to_the_scalar(scalar: int) -> None:
    digits = naf_digits(scalar)
    assert sum(d << p for p, d in digits) == scalar
    assert all(d % 2 == 1 and -7 <= d <= 7 for _, d in digits)
    positions = [p for p, _ in digits]
    assert all(b - a >= 4 for a, b in itertools.pairwise(positions))  # non-adjacent


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(G2_POINTS) - 1), WEIGHTS), min_size=1, max_size=8))
def test_equals_the_sum_of_scalar_muls_in_g2(terms: list[tuple[int, int]]) -> None:
    points = [G2_POINTS[i] for i, _ in terms]  # a point may come twice, and cancel: -P + P
    scalars = [w for _, w in terms]
    got = multi_scalar_mul(points, scalars)
    expected = _by_scalar_mul(points, scalars)
    if got is None:
        assert all(s == 0 for s in scalars)
        assert expected == BlstP2Element()
    else:
        assert got == expected


@settings(max_examples=20, deadline=None)
@given(st.lists(WEIGHTS, min_size=1, max_size=4))
def test_equals_the_sum_of_scalar_muls_in_g1(scalars: list[int]) -> None:
    points = G1_POINTS[: len(scalars)]
    expected = BlstP1Element()
    for point, scalar in zip(points, scalars, strict=True):
        expected = expected + point.scalar_mul(scalar)
    got = multi_scalar_mul(points, scalars)
    assert (got if got is not None else BlstP1Element()) == expected


def test_refuses_what_it_cannot_sum() -> None:
    assert multi_scalar_mul([], []) is None
    with pytest.raises(ValueError, match="points for"):
        multi_scalar_mul(G2_POINTS[:2], [1])
    with pytest.raises(ValueError, match="not negative"):
        multi_scalar_mul(G2_POINTS[:1], [-1])


@pytest.mark.parametrize(
    "scalars",
    [[1, 2**64 - 1], [2**64 - 1, 0, 1], [5, 2**63 + 3], [1, 1, 1], [0, 3, 2**40]],
)
def test_one_multiplication_and_shared_doublings_agree(scalars: list[int]) -> None:
    """At most one scalar above 1 goes to scalar_mul, more to the shared doublings: both are the sum."""
    points = G2_POINTS[: len(scalars)]
    assert multi_scalar_mul(points, scalars) == _by_scalar_mul(points, scalars)
