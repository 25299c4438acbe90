"""Expected consensus arithmetic: how many times a miner wins an epoch, and a tipset's weight.

All of it is integer fixed-point (Q.256) so that every node gets the same answers; the constants and
the evaluation order are lotus's (chain/types/electionproof.go, chain/consensus/filcns/weight.go).
"""

import hashlib
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Final

PRECISION: Final = 256
ONE: Final = 1 << PRECISION
BLOCKS_PER_EPOCH: Final = 5  # expected leaders per epoch
MAX_WIN_COUNT: Final = 3 * BLOCKS_PER_EPOCH

# Weight: WRatio = 1/2 of the expected blocks' contribution (filcns/weight.go).
W_RATIO_NUM: Final = 1
W_RATIO_DEN: Final = 2

# e^-x as a rational function (numerator and denominator coefficients, highest degree first), given in
# Q.128 and used in Q.256.
_EXP_NUM_Q128: Final = (
    -648770010757830093818553637600,
    67469480939593786226847644286976,
    -3197587544499098424029388939001856,
    89244641121992890118377641805348864,
    -1579656163641440567800982336819953664,
    17685496037279256458459817590917169152,
    -115682590513835356866803355398940131328,
    340282366920938463463374607431768211456,
)
_EXP_DENO_Q128: Final = (
    1225524182432722209606361,
    114095592300906098243859450,
    5665570424063336070530214243,
    194450132448609991765137938448,
    5068267641632683791026134915072,
    104716890604972796896895427629056,
    1748338658439454459487681798864896,
    23704654329841312470660182937960448,
    259380097567996910282699886670381056,
    2250336698853390384720606936038375424,
    14978272436876548034486263159246028800,
    72144088983913131323343765784380833792,
    224599776407103106596571252037123047424,
    340282366920938463463374607431768211456,
)
EXP_NUM_COEFS: Final = tuple(c << (PRECISION - 128) for c in _EXP_NUM_Q128)
EXP_DENO_COEFS: Final = tuple(c << (PRECISION - 128) for c in _EXP_DENO_Q128)


def polyval(coefs: Sequence[int], x: int) -> int:
    """Horner evaluation in Q.256; >> floors negative values as Go's arithmetic shift does."""
    result = coefs[0]
    for c in coefs[1:]:
        result = ((result * x) >> PRECISION) + c
    return result


def expneg(x: int) -> int:
    """e^-x for x in Q.256, in Q.256."""
    return (polyval(EXP_NUM_COEFS, x) << PRECISION) // polyval(EXP_DENO_COEFS, x)


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
