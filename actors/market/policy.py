"""The market's bounds on deals (builtin-actors v9 market policy), parameterised by chain/params.Policy.

Price and client collateral are bounded only by the total FIL supply, as in v9; the provider
collateral has a floor: the policy's share of the circulating supply, scaled by the deal's share of
the network's (raw or baseline) power.
"""

from typing import Final

from chain.params import Policy

FIL: Final = 10**18
TOTAL_FILECOIN: Final = 2_000_000_000 * FIL

# Sector sizes by registered seal proof number: every version (V1, V1_1, synthetic, NI) comes in the
# same five sizes, in this order (go-state-types abi.RegisteredSealProof).
_SECTOR_SIZES: Final = (2 << 10, 8 << 20, 512 << 20, 32 << 30, 64 << 30)
_SEAL_PROOF_COUNT: Final = 20
MIN_PIECE_SIZE: Final = 128


def seal_proof_sector_size(seal_proof: int) -> int | None:
    """The sector size of a registered seal proof, or None for an unknown proof number."""
    if not 0 <= seal_proof < _SEAL_PROOF_COUNT:
        return None
    return _SECTOR_SIZES[seal_proof % len(_SECTOR_SIZES)]


def piece_size_error(size: int) -> str | None:
    """Why a padded piece size is invalid (abi.PaddedPieceSize.Validate), or None."""
    if size < MIN_PIECE_SIZE:
        return f"minimum piece size is {MIN_PIECE_SIZE} bytes, got {size}"
    if size & (size - 1):
        return f"padded piece size must be a power of two, got {size}"
    return None


def deal_duration_bounds(policy: Policy) -> tuple[int, int]:
    return policy.market_deal_min_duration, policy.market_deal_max_duration


def deal_price_per_epoch_bounds() -> tuple[int, int]:
    return 0, TOTAL_FILECOIN


def deal_client_collateral_bounds() -> tuple[int, int]:
    return 0, TOTAL_FILECOIN


def deal_provider_collateral_bounds(
    policy: Policy,
    piece_size: int,
    network_raw_power: int,
    baseline_power: int,
    circulating_supply: int,
) -> tuple[int, int]:
    """min = supply * num/denom * piece_size / max(raw power, baseline power, piece_size), floored."""
    lock_target = circulating_supply * policy.market_prov_collateral_percent_supply_num
    share_denominator = max(network_raw_power, baseline_power, piece_size)
    numerator = piece_size * lock_target
    denominator = share_denominator * policy.market_prov_collateral_percent_supply_denom
    return numerator // denominator, TOTAL_FILECOIN


def gen_rand_next_epoch(policy: Policy, start_epoch: int, deal_id: int) -> int:
    """The first cron epoch of a deal: spread over the update interval by deal ID, at or after its start,
    so that no single epoch can be loaded with every deal."""
    interval = policy.market_deal_updates_interval
    offset = deal_id % interval
    previous = (start_epoch // interval) * interval
    if previous + offset >= start_epoch:
        return previous + offset
    return -(-start_epoch // interval) * interval + offset
