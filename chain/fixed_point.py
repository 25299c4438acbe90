"""Integer fixed-point arithmetic shared by consensus (Q.256) and the reward actors (Q.128).

Filecoin evaluates e^-x with one rational approximation everywhere (lotus electionproof.go,
builtin-actors reward/expneg.rs); its coefficients are given in Q.128 and scaled to the precision in
use. Shifts floor negative values, as Go's big.Int arithmetic shift and Rust's do, so results agree
to the last bit.
"""

from collections.abc import Sequence
from functools import cache, lru_cache
from typing import Final

# e^-x as a rational function: numerator and denominator coefficients, Q.128, highest degree first.
EXPNEG_NUM_Q128: Final = (
    -648770010757830093818553637600,
    67469480939593786226847644286976,
    -3197587544499098424029388939001856,
    89244641121992890118377641805348864,
    -1579656163641440567800982336819953664,
    17685496037279256458459817590917169152,
    -115682590513835356866803355398940131328,
    340282366920938463463374607431768211456,
)
EXPNEG_DENOM_Q128: Final = (
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


def polyval(coefficients: Sequence[int], x: int, precision: int) -> int:
    """Horner's rule in Q.precision, coefficients highest degree first."""
    result = coefficients[0]
    for c in coefficients[1:]:
        result = ((result * x) >> precision) + c
    return result


@cache
def expneg_coefficients(precision: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The e^-x numerator and denominator coefficients scaled from Q.128 to Q.precision."""
    if precision < 128:
        raise ValueError("the e^-x coefficients need at least 128 bits of precision")
    shift = precision - 128
    return tuple(c << shift for c in EXPNEG_NUM_Q128), tuple(c << shift for c in EXPNEG_DENOM_Q128)


# A pure function of its arguments, asked again for the same x: the reward actor's baseline supply at
# the previous effective time is the one it computed at the previous epoch (and the same again while
# the effective time stands still), an election's lambda is the same for every block of a miner at a
# given power.
@lru_cache(maxsize=256)
def expneg(x: int, precision: int) -> int:
    """e^-x for a non-negative Q.precision x, in Q.precision."""
    num, denom = expneg_coefficients(precision)
    return (polyval(num, x, precision) << precision) // polyval(denom, x, precision)
