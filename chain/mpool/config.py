"""The message pool's limits (lotus chain/messagepool/config.go and messagepool.go)."""

from dataclasses import dataclass, field
from typing import Final

from chain.types.address import Address

# Lotus buildconstants.BlockMessageLimit: most messages in a block; cbor-gen's MaxLength bounds each of
# a block's BLS and secp256k1 message lists.
BLOCK_MESSAGE_LIMIT: Final = 10_000
BLOCK_SIG_TYPE_LIMIT: Final = 8192


@dataclass(frozen=True, slots=True)
class MpoolConfig:
    # Lotus MemPoolSizeLimitHiDefault / LoDefault: above high, prune down to low.
    size_limit_high: int = 30_000
    size_limit_low: int = 20_000
    # Seconds between two prunes triggered by additions (Lotus PruneCooldownDefault).
    prune_cooldown: float = 60.0
    # A replacement must carry at least this percentage of the replaced message's GasPremium (Lotus's
    # default ReplaceByFeeRatio, 1.25x; Lotus's pool itself takes 1.10x, filpy enforces the 1.25x its
    # own MpoolPushMessage uses for replacements).
    replace_by_fee_percent: int = 125
    # GasEstimateMessageGas multiplies the gas used by this (Lotus GasLimitOverestimation).
    gas_limit_overestimation: float = 1.25
    # A message may leave at most this many nonces unfilled after its sender's next one (Lotus
    # MaxNonceGap), and a sender may have this many messages pending (MaxActorPendingMessages).
    max_nonce_gap: int = 4
    max_pending_per_actor: int = 1000
    # Senders whose messages are selected first and never pruned (Lotus PriorityAddrs).
    priority_addrs: tuple[Address, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.replace_by_fee_percent < 110:
            raise ValueError(
                f"replace_by_fee_percent must be at least 110, got {self.replace_by_fee_percent}"
            )
        if self.gas_limit_overestimation < 1:
            raise ValueError("gas_limit_overestimation cannot be less than 1")
        if not 0 < self.size_limit_low <= self.size_limit_high:
            raise ValueError("size limits must satisfy 0 < size_limit_low <= size_limit_high")


def min_replacement_premium(premium: int, percent: int) -> int:
    """The least GasPremium that replaces a message paying premium: percent of it (rounded up), and
    always more than it."""
    return max(-(-premium * percent // 100), premium + 1)
