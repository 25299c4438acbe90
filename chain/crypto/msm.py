"""Multi-scalar multiplication, sum k_i P_i, over pyblst's points with small scalars (the random weights
of a batch verification, chain.crypto.signature.verify_bls_batch).

pyblst's `scalar_mul` always walks 256 bits (~167 us in G2 here, whatever the scalar), and its `+`
(blst's add-or-double: it doubles equal points and takes the point at infinity) costs ~2 us in G2.
A 64-bit weight times one point by `+` alone is 64 doublings; summing many weighted points, the
doublings are shared (Straus's interleaving): one accumulator, doubled once per bit of the largest
scalar, to which each point's table entry is added where its scalar has a digit. The digits are the
width-4 non-adjacent form (odd digits in -7..7, at least three zeros after each), so each point costs a
table of P, 3P, 5P, 7P (four operations) and about one addition per five bits: ~17 operations for a
64-bit weight, against 64 doublings and 32 additions by plain double-and-add. With at most one
scalar above 1 there is no doubling to share: that one goes to `scalar_mul`, as fast then.
"""

from collections.abc import Sequence
from typing import Protocol, Self, TypeVar

_WIDTH = 4
_MODULUS = 1 << _WIDTH
_HALF = _MODULUS >> 1


class Point(Protocol):
    """What the sum needs of a group element (pyblst's BlstP1Element and BlstP2Element)."""

    def __add__(self, other: Self, /) -> Self: ...

    def __neg__(self) -> Self: ...

    def scalar_mul(self, scalar: int, /) -> Self: ...


P = TypeVar("P", bound=Point)


def naf_digits(scalar: int) -> list[tuple[int, int]]:
    """The non-zero digits of scalar's width-4 non-adjacent form, lowest first: (bit position, digit),
    each digit odd in -7..7; sum digit * 2^position == scalar."""
    if scalar < 0:
        raise ValueError(f"a weight is not negative, got {scalar}")
    out: list[tuple[int, int]] = []
    position = 0
    while scalar:
        zeros = (scalar & -scalar).bit_length() - 1  # skip the trailing zeros at once
        scalar >>= zeros
        position += zeros
        digit = scalar & (_MODULUS - 1)
        if digit > _HALF:
            digit -= _MODULUS
        out.append((position, digit))
        scalar -= digit  # now a multiple of 2^_WIDTH
    return out


def multi_scalar_mul(points: Sequence[P], scalars: Sequence[int]) -> P | None:
    """sum scalars[i] * points[i] (scalars not negative; each costs by its bit length, so meant for
    small ones); None when every scalar is zero or there are no points."""
    if len(points) != len(scalars):
        raise ValueError(f"{len(points)} points for {len(scalars)} scalars")
    if any(scalar < 0 for scalar in scalars):
        raise ValueError(f"a weight is not negative, got {min(scalars)}")
    if sum(scalar > 1 for scalar in scalars) <= 1:
        # No doubling to share: pyblst's own multiplication is as fast as 64 doublings here.
        total: P | None = None
        for point, scalar in zip(points, scalars, strict=True):
            if scalar:
                term = point if scalar == 1 else point.scalar_mul(scalar)
                total = term if total is None else total + term
        return total
    at: dict[int, list[tuple[list[P], int]]] = {}  # bit position -> (point's odd multiples, digit)
    for point, scalar in zip(points, scalars, strict=True):
        digits = naf_digits(scalar)
        if not digits:
            continue
        largest = max(abs(d) for _, d in digits)
        odd = [point]  # point, 3 point, 5 point, 7 point: as far as its digits need
        if largest > 1:
            double = point + point
            while 2 * len(odd) - 1 < largest:
                odd.append(odd[-1] + double)
        for position, digit in digits:
            at.setdefault(position, []).append((odd, digit))
    total = None
    for position in range(max(at), -1, -1):
        if total is not None:
            total = total + total
        for odd, digit in at.get(position, ()):
            term = odd[digit >> 1] if digit > 0 else -odd[-digit >> 1]
            total = term if total is None else total + term
    return total
