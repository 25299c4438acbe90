"""The payment-channel API's shapes, declared once (lotus api/api_full.go), and the voucher text form.

These are what the manager (node/markets/paych.py) returns and what the Paych* RPC methods take and
answer; their JSON is Lotus's. The CLI passes vouchers as base64url of their CBOR, without padding
(lotus cli/paych.go EncodedString, chain/actors/builtin/paych DecodeSignedVoucher).
"""

import base64
import binascii
import re
from enum import IntEnum
from typing import Final

from actors.paych.types import ModVerifyParams, SignedVoucher
from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.schema import ChainEpoch, LotusJson, TokenAmount
from chain.types.address import Address, AddressOrUndef


class Direction(IntEnum):
    """Which way a channel pays, seen from this node (lotus api.PCHDir; the store's DirInbound and
    DirOutbound have the same numbers)."""

    INBOUND = 1  # we are the channel's To: we receive vouchers and redeem them
    OUTBOUND = 2  # we are the channel's From: we fund it and sign vouchers


class PaychGetOpts(LotusJson):
    """api.PaychGetOpts: OffChain refuses to send any message (only funds already in the channel)."""

    off_chain: bool = False


class ChannelInfo(LotusJson):
    """api.ChannelInfo: the channel (undefined while its creation is pending) and the message to wait
    for (null when nothing was sent)."""

    channel: AddressOrUndef
    wait_sentinel: CID | None


class ChannelAvailableFunds(LotusJson, kw_only=True):
    """api.ChannelAvailableFunds (Lotus's spelling of VoucherReedeemedAmt kept)."""

    channel: Address | None  # None: no channel between From and To yet
    from_: Address
    to: Address
    confirmed_amt: TokenAmount = 0  # funds confirmed on chain
    pending_amt: TokenAmount = 0  # funds waiting for a create or add-funds message
    non_reserved_amt: TokenAmount = 0  # part of ConfirmedAmt not reserved by a PaychGet
    pending_available_amt: TokenAmount = 0  # part of PendingAmt that will be non-reserved
    pending_wait_sentinel: CID | None = None  # the create or add-funds message in flight
    queued_amt: TokenAmount = 0  # asked for by requests queued behind that message
    voucher_reedeemed_amt: TokenAmount = 0  # redeemed on chain plus the vouchers stored here


class PaychStatus(LotusJson):
    """api.PaychStatus."""

    control_addr: Address  # our side of the channel
    direction: Direction


class VoucherCreateResult(LotusJson):
    """api.VoucherCreateResult: the voucher, or none and the shortfall when the channel lacks funds."""

    voucher: SignedVoucher | None
    shortfall: TokenAmount


class VoucherSpec(LotusJson, kw_only=True):
    """api.VoucherSpec: one voucher of a PaychNewPayment."""

    amount: TokenAmount
    time_lock_min: ChainEpoch = 0
    time_lock_max: ChainEpoch = 0
    min_settle: ChainEpoch = 0
    extra: ModVerifyParams | None = None


class PaymentInfo(LotusJson):
    """api.PaymentInfo: PaychNewPayment's channel, the message to wait for, and the vouchers."""

    channel: Address
    wait_sentinel: CID | None
    vouchers: tuple[SignedVoucher, ...]


# -- vouchers as text ---------------------------------------------------------------------------------


_NOT_BASE64URL: Final = re.compile(r"[^A-Za-z0-9_-]")


def encode_voucher(sv: SignedVoucher) -> str:
    """The voucher's CBOR as unpadded base64url: what `paych voucher create` prints."""
    return base64.urlsafe_b64encode(sv.to_bytes()).rstrip(b"=").decode("ascii")


def decode_voucher(text: str) -> SignedVoucher:
    """A voucher from its text form; DecodeError saying what is wrong (bad base64, bad CBOR, the
    field that does not decode)."""
    raw = text.strip()
    if not raw:
        raise DecodeError("voucher: empty text")
    if "=" in raw:
        raise DecodeError("voucher: base64url without padding expected, found '='")
    bad = _NOT_BASE64URL.search(raw)
    if bad is not None:
        raise DecodeError(f"voucher: not base64url: {bad.group()!r} at offset {bad.start()}")
    try:
        data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"voucher: not base64url: {exc}") from None
    try:
        return SignedVoucher.from_cbor(dagcbor.decode(data))
    except DecodeError as exc:
        raise DecodeError(f"voucher: {exc}") from None


# -- refusals -----------------------------------------------------------------------------------------


class PaychError(Exception):
    """A payment-channel operation refused or failed; the message says why (in Lotus's words where
    Lotus has them)."""


class ChannelNotTracked(PaychError):
    """The channel is not in this node's store (lotus paychmgr.ErrChannelNotTracked)."""

    def __init__(self, channel: Address | str) -> None:
        super().__init__(f"channel not tracked: {channel}")


class VoucherInvalid(PaychError):
    """A voucher that could never be redeemed as it is: bad signature, stale nonce, too much."""


class InsufficientFunds(VoucherInvalid):
    """The channel's balance does not cover what its lanes would redeem with this voucher."""

    def __init__(self, shortfall: int) -> None:
        super().__init__(f"not enough funds in channel to cover voucher - shortfall: {shortfall}")
        self.shortfall = shortfall
