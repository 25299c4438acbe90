"""Fixed-point smoothing shared by the reward, power and miner actors.

The reward and power actors track their key series (the per-epoch block reward, the network's
quality-adjusted power) with an alpha-beta filter whose position and velocity are Q.128 fixed-point
numbers. The miner projects future rewards from those estimates (pledges, deposits, fees) with the
closed-form integral of their ratio. Every operation follows the reference arithmetic exactly
(builtin-actors `runtime/src/builtin/reward/smooth`, go-state-types `util/smoothing` and
`util/math`): same constants, same shifts, divisions rounding towards minus infinity, so the numbers
match the other implementations to the last atto.
"""

from typing import Annotated, Final

from chain.encoding.schema import BigInt, CborTuple, Name
from chain.fixed_point import polyval

PRECISION: Final = 128
ONE: Final = 1 << PRECISION

# Q.128 filter gains: alpha = 9.25e-4, beta = 2.84e-7; and the velocity below which the ratio of two
# estimates is integrated as if the denominator were constant (2^-50).
DEFAULT_ALPHA: Final = 314760000000000000000000000000000000
DEFAULT_BETA: Final = 96640100000000000000000000000000
CUMSUM_RATIO_EPSILON: Final = 302231454903657293676544

# Rational approximation of ln(x) on [1, 2) (numerator and denominator coefficients, Q.128,
# highest degree first) and ln(2) in Q.128.
_LN_NUM: Final = (
    261417938209272870992496419296200268025,
    7266615505142943436908456158054846846897,
    32458783941900493142649393804518050491988,
    17078670566130897220338060387082146864806,
    -35150353308172866634071793531642638290419,
    -20351202052858059355702509232125230498980,
    -1563932590352680681114104005183375350999,
)
_LN_DENOM: Final = (
    49928077726659937662124949977867279384,
    2508163877009111928787629628566491583994,
    21757751789594546643737445330202599887121,
    53400635271583923415775576342898617051826,
    41248834748603606604000911015235164348839,
    9015227820322455780436733526367238305537,
    340282366920938463463374607431768211456,
)
_LN2: Final = 235865763225513294137944142764154484399


def ln(z: int) -> int:
    """Natural logarithm of a Q.128 number, in Q.128.

    Defined for every integer, as the reference computes it: a non-positive z is not refused but
    run through the same shifts and rational approximation (bit length of |z|, arithmetic shifts,
    division rounding down as builtin-actors' div_floor; go-state-types divides Euclidean, which
    differs only where the denominator is negative). The miner meets such values when the network
    power estimate is projected to reach zero within a window; the reward it then computes is
    negative and clamped by the caller (actors.miner.policy.expected_reward_for_power)."""
    k = z.bit_length() - 1 - PRECISION
    x = z >> k if k > 0 else z << -k  # x in [1, 2) as Q.128
    num = polyval(_LN_NUM, x, PRECISION)
    denom = polyval(_LN_DENOM, x, PRECISION)
    return k * _LN2 + (num << PRECISION) // denom


class FilterEstimate(CborTuple):
    """An alpha-beta filter's state: position and velocity (per epoch), both Q.128."""

    position: Annotated[BigInt, Name("PositionEstimate")]
    velocity: Annotated[BigInt, Name("VelocityEstimate")]

    @classmethod
    def of(cls, position: int, velocity: int) -> "FilterEstimate":
        """An estimate from integer (Q.0) position and velocity."""
        return cls(position << PRECISION, velocity << PRECISION)

    def estimate(self) -> int:
        """The position as an integer."""
        return self.position >> PRECISION

    def next(
        self, observation: int, epoch_delta: int, alpha: int = DEFAULT_ALPHA, beta: int = DEFAULT_BETA
    ) -> "FilterEstimate":
        """Advance the filter by epoch_delta epochs (> 0) and correct it with an integer observation."""
        if epoch_delta <= 0:
            raise ValueError(f"a filter advances by a positive number of epochs, got {epoch_delta}")
        delta_t = epoch_delta << PRECISION
        position = ((delta_t * self.velocity) >> PRECISION) + self.position
        residual = (observation << PRECISION) - position
        position += (alpha * residual) >> PRECISION
        velocity = (residual * beta) // delta_t + self.velocity
        return FilterEstimate(position, velocity)


def extrapolated_cum_sum_of_ratio(
    delta: int, relative_start: int, numerator: FilterEstimate, denominator: FilterEstimate
) -> int:
    """The integral over [relative_start, relative_start + delta] of numerator(t) / denominator(t),
    both extrapolated linearly from their estimates; Q.128.

    With a non-negligible denominator velocity this is the closed form with logarithms; otherwise the
    denominator is taken as constant and the numerator's midpoint value is used.
    """
    delta_t = delta << PRECISION
    t0 = relative_start << PRECISION
    p1, v1 = numerator.position, numerator.velocity
    p2, v2 = denominator.position, denominator.velocity
    squared_v2 = (v2 * v2) >> PRECISION
    if squared_v2 > CUMSUM_RATIO_EPSILON:
        x2a = p2 + ((t0 * v2) >> PRECISION)
        x2b = x2a + ((delta_t * v2) >> PRECISION)
        ln_a, ln_b = ln(x2a), ln(x2b)
        m1 = (v2 * (p1 * (ln_b - ln_a))) >> PRECISION
        m2 = (v1 * (p2 * (ln_a - ln_b) + v2 * delta_t)) >> PRECISION
        return (m1 + m2) // squared_v2
    midpoint = p1 + ((v1 * (t0 + (delta_t >> 1))) >> PRECISION)
    return (midpoint * delta_t) // p2
