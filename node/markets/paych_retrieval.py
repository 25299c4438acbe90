"""The payment-channel manager as paid retrieval's payer and checker (node/markets/retrieval_payment.py).

The client pays each interval with a voucher for what it owes on top of what the deal's lane holds
(`voucher_source`); the provider counts what a voucher adds over the best one it has on that lane, after
the manager's checks (signature by the channel's From, channel, nonce, funds: `payment_check`). The
provider redeems the lane's best voucher later (PaychVoucherSubmit, or the settler when the channel
settles).
"""

from actors.paych.types import SignedVoucher
from chain.encoding.errors import DecodeError
from chain.types.address import Address
from node.markets.paych import PaychManager
from node.markets.paych_types import PaychError
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
        return DealPayment(deal_id, channel, made.voucher.to_bytes())

    return voucher_for


def payment_check(manager: PaychManager) -> PaymentCheck:
    """The provider's PaymentCheck: store the payment's voucher (PaychVoucherAdd); what it adds."""

    async def check(payment: DealPayment) -> int:
        try:
            sv = SignedVoucher.from_bytes(payment.payment_voucher)
        except DecodeError as exc:
            raise PaymentError(f"the payment for deal {payment.id} carries no voucher: {exc}") from None
        try:
            return await manager.add_voucher(payment.payment_channel, sv, b"", 0)
        except PaychError as exc:
            raise PaymentError(f"the voucher for deal {payment.id} is refused: {exc}") from None

    return check
