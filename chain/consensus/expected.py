"""Expected consensus arithmetic: how many times a miner wins an epoch, and a tipset's weight.

All of it is integer fixed-point (Q.256) so that every node gets the same answers; the constants and
the evaluation order are lotus's (chain/types/electionproof.go, chain/consensus/filcns/weight.go).
"""

import hashlib
from collections.abc import Iterable
from functools import lru_cache
from typing import Final

from chain import fixed_point

PRECISION: Final = 256
ONE: Final = 1 << PRECISION
BLOCKS_PER_EPOCH: Final = 5  # expected leaders per epoch
MAX_WIN_COUNT: Final = 3 * BLOCKS_PER_EPOCH

# Weight: WRatio = 1/2 of the expected blocks' contribution (filcns/weight.go).
W_RATIO_NUM: Final = 1
W_RATIO_DEN: Final = 2

EXP_NUM_COEFS, EXP_DENO_COEFS = fixed_point.expneg_coefficients(PRECISION)


def expneg(x: int) -> int:
    """e^-x for x in Q.256, in Q.256."""
    return fixed_point.expneg(x, PRECISION)


def election_lambda(power: int, total_power: int) -> int:
    """The expected number of wins per epoch of a miner, BlocksPerEpoch * power / total, in Q.256."""
    if total_power <= 0:
        raise ValueError("total power must be positive")
    return ((power * BLOCKS_PER_EPOCH) << PRECISION) // total_power


class Poisson:
    """The inverse CDF of a Poisson distribution, one k at a time: icdf(k) = 1 - P(X <= k), Q.256."""

    __slots__ = ("icdf", "k", "lam", "pmf")

    def __init__(self, lam: int) -> None:
        self.lam = lam
        self.pmf = expneg(lam)
        self.icdf = ONE - self.pmf
        self.k = 0

    def next(self) -> int:
        self.k += 1
        self.pmf = ((self.pmf // self.k) * self.lam) >> PRECISION
        self.icdf -= self.pmf
        return self.icdf


@lru_cache(maxsize=1024)
def win_thresholds(power: int, total_power: int) -> tuple[int, ...]:
    """icdf(0..MAX_WIN_COUNT-1): a ticket hash below icdf(j-1) wins at least j times."""
    poisson = Poisson(election_lambda(power, total_power))
    thresholds = [poisson.icdf]
    for _ in range(MAX_WIN_COUNT - 1):
        thresholds.append(poisson.next())
    return tuple(thresholds)


def compute_win_count(vrf_proof: bytes, power: int, total_power: int) -> int:
    """How many blocks an ElectionProof VRF output wins: Poisson sortition capped at MaxWinCount."""
    h = int.from_bytes(hashlib.blake2b(vrf_proof, digest_size=32).digest(), "big")
    wins = 0
    for threshold in win_thresholds(power, total_power):
        if h >= threshold:
            break
        wins += 1
    return wins


def tipset_weight(parent_weight: int, total_qa_power: int, win_counts: Iterable[int]) -> int:
    """Weight of a tipset on top of its parent, given the network power in its parent state.

    w = parent + (log2P << 8) + ((log2P * WRatioNum * sum(WinCount)) << 8) / (BlocksPerEpoch * WRatioDen)
    with log2P = bitlen(totalQAPower) - 1 (lotus filcns/weight.go).
    """
    if total_qa_power <= 0:
        raise ValueError("total quality-adjusted power must be positive")
    log2p = total_qa_power.bit_length() - 1
    total_wins = sum(win_counts)
    bonus = ((log2p * W_RATIO_NUM * total_wins) << 8) // (BLOCKS_PER_EPOCH * W_RATIO_DEN)
    return parent_weight + (log2p << 8) + bonus
