"""The payment-channel manager as paid retrieval's payer and checker (node/markets/retrieval_payment.py).

The client pays each interval with a voucher for what it owes on top of what the deal's lane holds
(`voucher_source`); the provider counts what a voucher adds over the best one it has on that lane, after
the manager's checks (signature by the channel's From, channel, nonce, funds: `payment_check`). The
provider redeems the lane's best voucher later (PaychVoucherSubmit, or the settler when the channel
settles).
"""

from collections.abc import Callable

from actors.paych.types import SignedVoucher
from chain.types.address import Address
from node.markets.paych import PaychManager
from node.markets.paych_types import Direction, PaychError
from node.markets.retrieval_payment import DealPayment, PaymentCheck, PaymentError, VoucherSource


def voucher_source(manager: PaychManager, channel: Address, lane: int, deal_id: int) -> VoucherSource:
    """The client's VoucherSource for one deal: `owed` more on `lane` of `channel` (a lane of its own,
    from PaychAllocateLane)."""

    async def voucher_for(owed: int, received: int) -> DealPayment:
        try:
            made = await manager.create_voucher_for_more(channel, lane, owed)
        except PaychError as exc:
            raise PaymentError(f"cannot pay {owed} attoFIL for deal {deal_id}: {exc}") from None
        if made.voucher is None:
            raise PaymentError(
                f"payment channel {channel} lacks {made.shortfall} attoFIL to pay {owed} for deal {deal_id}"
            )
        return DealPayment(deal_id, channel, made.voucher)

    return voucher_for


def payment_check(manager: PaychManager, recipient: Callable[[], Address] | None = None) -> PaymentCheck:
    """The provider's PaymentCheck: store the payment's voucher (PaychVoucherAdd); what it adds. With a
    recipient, the channel must pay that address (the payment address the provider's query gave)."""

    async def check(payment: DealPayment) -> int:
        channel = payment.payment_channel
        try:
            if recipient is not None and not await manager.pays_to(channel, recipient()):
                raise PaymentError(
                    f"the voucher for deal {payment.id} is refused: channel {channel} does not pay "
                    f"{recipient()}"
                )
            added = await manager.add_voucher(channel, payment.payment_voucher, b"", 0)
            return added or await _paid_to_ourselves(manager, channel, payment.payment_voucher)
        except PaychError as exc:
            raise PaymentError(f"the voucher for deal {payment.id} is refused: {exc}") from None

    return check


async def _paid_to_ourselves(manager: PaychManager, channel: Address, sv: SignedVoucher) -> int:
    """What a voucher adds when this node is also the client paying it (a retrieval from one's own
    provider, as on a single-node devnet): the client side stored the voucher as it made it, so
    PaychVoucherAdd sees it as known and adds nothing; it adds what it pays over the lane's voucher
    before it. 0 for a channel this node does not pay."""
    if (await manager.status(channel)).direction != Direction.OUTBOUND:
        return 0
    held = [h.voucher for h in await manager.list_vouchers(channel) if h.voucher.lane == sv.lane]
    if sv not in held:
        return 0
    return sv.amount - max((v.amount for v in held if v.nonce < sv.nonce), default=0)
