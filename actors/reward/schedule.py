"""Filecoin's minting schedule: simple (exponential decay) plus baseline (tied to network growth).

Of the 1.1 billion FIL storage mining allocation, 330 million mint on a fixed schedule that halves every
six years (simple minting) and 770 million mint as the network's effective time advances (baseline
minting): effective time moves forward only while the cumulative realised power (network raw power,
capped at the baseline) keeps up with the cumulative baseline, a target that starts at 2.5 EiB and
doubles every year. The reward for an epoch is the supply minted between the previous and the current
epoch under both curves. See docs/reward.md.

All values are fixed point with the same constants and rounding as builtin-actors `actors/reward`
(`logic.rs`, `expneg.rs`), so every epoch's reward matches the reference to the atto.
"""

from typing import Final

from actors.smoothing import ONE, PRECISION
from chain import fixed_point

FIL: Final = 10**18

# Per-epoch growth factor of the baseline, 2^(1/epochs-per-year), Q.128.
BASELINE_EXPONENT: Final = 340282591298641078465964189926313473653
# The baseline at the network's launch: 2.5 EiB (2,888,888,880,000,000,000 bytes).
BASELINE_INITIAL_VALUE: Final = 2_888_888_880_000_000_000
# The baseline one epoch before launch, so that the first update lands on the initial value.
INIT_BASELINE_POWER: Final = ((BASELINE_INITIAL_VALUE << (2 * PRECISION)) // BASELINE_EXPONENT) >> PRECISION
SIMPLE_TOTAL: Final = 330_000_000 * FIL
BASELINE_TOTAL: Final = 770_000_000 * FIL
# lambda = ln(2) / (6 years of 30-second epochs), and e^lambda - 1, both Q.128.
LAMBDA: Final = 37396271439864487274534522888786
EXP_LAM_SUB_ONE: Final = 37396273494747879394193016954629


def expneg(x: int) -> int:
    """e^-x for a non-negative Q.128 x, in Q.128."""
    return fixed_point.expneg(x, PRECISION)


def baseline_power_from_prev(prev_power: int) -> int:
    """The baseline one epoch after a baseline of prev_power."""
    return (prev_power * BASELINE_EXPONENT) >> PRECISION


def compute_r_theta(
    effective_network_time: int, baseline_at_effective_time: int, cumsum_realized: int, cumsum_baseline: int
) -> int:
    """The fractional effective network time (Q.128): how far the realised cumsum got between the
    last two whole effective epochs."""
    if effective_network_time == 0:
        return 0
    shortfall = ((cumsum_baseline - cumsum_realized) << PRECISION) // baseline_at_effective_time
    return (effective_network_time << PRECISION) - shortfall


def _baseline_supply(theta: int, baseline_total: int) -> int:
    """Baseline supply minted by effective time theta, in Q.128 atto."""
    return (ONE - expneg((theta * LAMBDA) >> PRECISION)) * baseline_total


def compute_reward(
    epoch: int, prev_theta: int, curr_theta: int, simple_total: int, baseline_total: int
) -> int:
    """The block reward of an epoch (attoFIL): simple minting at that epoch plus the baseline supply
    minted between the previous and the current effective network time."""
    simple = (simple_total * EXP_LAM_SUB_ONE * expneg(LAMBDA * epoch)) >> PRECISION
    baseline = _baseline_supply(curr_theta, baseline_total) - _baseline_supply(prev_theta, baseline_total)
    return (simple + baseline) >> PRECISION
