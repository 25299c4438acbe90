"""The rules a voucher must pass before a node accepts or signs it (lotus paychmgr/paych.go
checkVoucherValid, laneState, totalRedeemedWithVoucher), as plain functions of the voucher and the
channel's view: its lanes on chain with this node's stored vouchers applied over them, its balance, and
its From key.

Amounts are cumulative per lane: a voucher sets its lane's redeemed amount, so what it adds is its
amount minus what the lane holds already, and the vouchers of all lanes together may not redeem more than
the channel's balance.
"""

from collections.abc import Iterable, Mapping

from actors.paych.types import LaneState, SignedVoucher
from chain.crypto.signature import SignatureError, verify
from chain.types.address import Address
from node.markets.paych_types import InsufficientFunds, VoucherInvalid


def lanes_with_vouchers(
    on_chain: Mapping[int, LaneState], stored: Iterable[SignedVoucher]
) -> dict[int, LaneState]:
    """The channel's lanes as this node knows them: the chain's, replaced by any stored voucher whose
    nonce is not below the lane's (lotus channelAccessor.laneState)."""
    lanes = dict(on_chain)
    for sv in stored:
        lane = lanes.get(sv.lane)
        if lane is not None and sv.nonce < lane.nonce:
            continue
        lanes[sv.lane] = LaneState(sv.amount, sv.nonce)
    return lanes


def total_redeemed(lanes: Mapping[int, LaneState]) -> int:
    return sum(lane.redeemed for lane in lanes.values())


def total_redeemed_with(lanes: Mapping[int, LaneState], sv: SignedVoucher) -> int:
    """What all lanes would redeem once sv is redeemed too."""
    total = total_redeemed(lanes)
    lane = lanes.get(sv.lane)
    if lane is None:
        return total + sv.amount
    if sv.nonce > lane.nonce:
        return total + sv.amount - lane.redeemed
    return total


def check_voucher(
    sv: SignedVoucher,
    *,
    signer: Address,
    balance: int,
    lanes: Mapping[int, LaneState],
    height: int,
) -> None:
    """Raise VoucherInvalid (InsufficientFunds for a shortfall) unless sv is signed by signer (the
    channel's From key), moves its lane forward and fits the channel's balance. The caller has checked
    that sv names the channel."""
    if sv.merges:
        raise VoucherInvalid("don't currently support paych lane merges")
    if sv.amount < 0:
        raise VoucherInvalid(f"voucher amount must be non-negative, was {sv.amount}")
    if sv.time_lock_max != 0 and height > sv.time_lock_max:
        raise VoucherInvalid(f"voucher has expired: TimeLockMax {sv.time_lock_max} is before epoch {height}")
    if sv.signature is None:
        raise VoucherInvalid("voucher has no signature")
    try:
        verify(sv.signature, signer, sv.signing_bytes())
    except SignatureError as exc:
        raise VoucherInvalid(f"voucher signature invalid: {exc} (the channel's From is {signer})") from None
    lane = lanes.get(sv.lane)
    if lane is not None:
        if sv.nonce <= lane.nonce:
            raise VoucherInvalid(
                f"nonce too low: lane {sv.lane} is at nonce {lane.nonce}, voucher has {sv.nonce}"
            )
        if sv.amount <= lane.redeemed:
            raise VoucherInvalid(
                f"voucher amount is lower than amount for voucher with lower nonce: lane {sv.lane} "
                f"holds {lane.redeemed}, voucher {sv.amount}"
            )
    total = total_redeemed_with(lanes, sv)
    if total > balance:
        raise InsufficientFunds(total - balance)


def next_nonce(stored: Iterable[SignedVoucher], lane: int) -> int:
    """The nonce of the next voucher on lane: one past the highest stored (lotus nextNonceForLane)."""
    return max((sv.nonce for sv in stored if sv.lane == lane), default=0) + 1


def best_by_lane(vouchers: Iterable[SignedVoucher]) -> dict[int, SignedVoucher]:
    """The voucher of the highest amount on each lane (lotus BestSpendableByLane, given the spendable
    ones)."""
    best: dict[int, SignedVoucher] = {}
    for sv in vouchers:
        held = best.get(sv.lane)
        if held is None or sv.amount > held.amount:
            best[sv.lane] = sv
    return best
