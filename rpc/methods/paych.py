"""The Paych* methods over the node's payment-channel manager (node/markets/paych.py), with Lotus's
names, params, JSON shapes (node/markets/paych_types.py) and permissions (lotus api/api_full.go
`//perm:`): PaychList, PaychStatus, PaychVoucherCheckValid and PaychVoucherCheckSpendable are read;
PaychVoucherAdd and PaychVoucherList write; the rest sign.

PaychGet takes `[from, to, amount, {OffChain}]` on /rpc/v1 and `[from, to, amount]` on /rpc/v0, which
has no PaychFund (lotus api/v0api). A refusal is an RpcError with the manager's message.
"""

from actors.paych.types import SignedVoucher
from chain.encoding.cid import CID
from chain.encoding.schema import Bytes, TokenAmount, Uint64
from chain.types.address import Address
from node.fullnode import FullNode
from node.markets.paych_types import (
    ChannelAvailableFunds,
    ChannelInfo,
    PaychError,
    PaychGetOpts,
    PaychStatus,
    PaymentInfo,
    VoucherCreateResult,
    VoucherSpec,
)
from rpc.errors import answer_errors
from rpc.registry import READ, SIGN, WRITE, method


@method("PaychGet", perm=SIGN, api="v1")
async def paych_get(
    node: FullNode, from_: Address, to: Address, amount: TokenAmount, opts: PaychGetOpts
) -> ChannelInfo:
    """Get or create the channel from `from` to `to` with `amount` reserved for the caller; funds are
    added by a message when the channel lacks them (never with OffChain)."""
    with answer_errors(PaychError):
        return await node.paych.get_paych(from_, to, amount, off_chain=opts.off_chain)


@method("PaychGet", perm=SIGN, api="v0")
async def paych_get_v0(node: FullNode, from_: Address, to: Address, amount: TokenAmount) -> ChannelInfo:
    """Get or create the channel from `from` to `to` with `amount` reserved for the caller (v0: never
    off-chain only)."""
    return await paych_get(node, from_, to, amount, PaychGetOpts())


@method("PaychFund", perm=SIGN, api="v1")
async def paych_fund(node: FullNode, from_: Address, to: Address, amount: TokenAmount) -> ChannelInfo:
    """Get or create the channel from `from` to `to` and add `amount` to it by a message, for later use."""
    with answer_errors(PaychError):
        return await node.paych.fund(from_, to, amount)


@method("PaychGetWaitReady", perm=SIGN)
async def paych_get_wait_ready(node: FullNode, sentinel: CID) -> Address:
    """Wait for the create or add-funds message `sentinel` (a WaitSentinel) to land; the channel."""
    with answer_errors(PaychError):
        return await node.paych.get_wait_ready(sentinel)


@method("PaychAvailableFunds", perm=SIGN)
async def paych_available_funds(node: FullNode, channel: Address) -> ChannelAvailableFunds:
    """What a tracked channel holds: confirmed, pending, non-reserved, queued and redeemed amounts."""
    with answer_errors(PaychError):
        return await node.paych.available_funds(channel)


@method("PaychAvailableFundsByFromTo", perm=SIGN)
async def paych_available_funds_by_from_to(
    node: FullNode, from_: Address, to: Address
) -> ChannelAvailableFunds:
    """What the active channel from `from` to `to` holds (no channel and zeros when there is none)."""
    with answer_errors(PaychError):
        return await node.paych.available_funds_by_from_to(from_, to)


@method("PaychList", perm=READ)
async def paych_list(node: FullNode) -> tuple[Address, ...]:
    """The channels this node tracks."""
    return tuple(await node.paych.list_channels())


@method("PaychStatus", perm=READ)
async def paych_status(node: FullNode, channel: Address) -> PaychStatus:
    """Our address on a tracked channel and its direction (1 inbound, 2 outbound)."""
    with answer_errors(PaychError):
        return await node.paych.status(channel)


@method("PaychSettle", perm=SIGN)
async def paych_settle(node: FullNode, channel: Address) -> CID:
    """Start settling the channel; the message."""
    with answer_errors(PaychError):
        return await node.paych.settle(channel)


@method("PaychCollect", perm=SIGN)
async def paych_collect(node: FullNode, channel: Address) -> CID:
    """Collect a settled channel: pay out the redeemed vouchers, return the rest to From; the message."""
    with answer_errors(PaychError):
        return await node.paych.collect(channel)


@method("PaychAllocateLane", perm=SIGN)
async def paych_allocate_lane(node: FullNode, channel: Address) -> Uint64:
    """A lane of the channel that no voucher of ours uses yet."""
    with answer_errors(PaychError):
        return await node.paych.allocate_lane(channel)


@method("PaychNewPayment", perm=SIGN)
async def paych_new_payment(
    node: FullNode, from_: Address, to: Address, vouchers: tuple[VoucherSpec, ...]
) -> PaymentInfo:
    """Reserve the last voucher's amount on the channel from `from` to `to`, take a new lane and sign
    the vouchers on it."""
    with answer_errors(PaychError):
        return await node.paych.new_payment(from_, to, vouchers)


@method("PaychVoucherCheckValid", perm=READ)
async def paych_voucher_check_valid(node: FullNode, channel: Address, voucher: SignedVoucher) -> None:
    """Fail unless the voucher could be redeemed: signed by the channel's From, ahead on its lane,
    within the channel's balance."""
    with answer_errors(PaychError):
        await node.paych.check_voucher_valid(channel, voucher)


@method("PaychVoucherCheckSpendable", perm=READ)
async def paych_voucher_check_spendable(
    node: FullNode, channel: Address, voucher: SignedVoucher, secret: Bytes, proof: Bytes
) -> bool:
    """Whether the stored voucher would be redeemed now (a state call of UpdateChannelState, with the
    secret and the proof for its condition)."""
    with answer_errors(PaychError):
        return await node.paych.check_voucher_spendable(channel, voucher, secret, proof)


@method("PaychVoucherCreate", perm=SIGN)
async def paych_voucher_create(
    node: FullNode, channel: Address, amount: TokenAmount, lane: Uint64
) -> VoucherCreateResult:
    """Sign a voucher for `amount` in total on `lane`; no voucher and the shortfall when the channel
    lacks funds."""
    with answer_errors(PaychError):
        return await node.paych.create_voucher(channel, VoucherSpec(amount=amount), lane)


@method("PaychVoucherAdd", perm=WRITE)
async def paych_voucher_add(
    node: FullNode, channel: Address, voucher: SignedVoucher, proof: Bytes, min_delta: TokenAmount
) -> TokenAmount:
    """Check and store a voucher paying us (kept with the proof for its condition); what it adds to its
    lane, which must be at least minDelta."""
    with answer_errors(PaychError):
        return await node.paych.add_voucher(channel, voucher, proof, min_delta)


@method("PaychVoucherList", perm=WRITE)
async def paych_voucher_list(node: FullNode, channel: Address) -> tuple[SignedVoucher, ...]:
    """The channel's stored vouchers."""
    with answer_errors(PaychError):
        return tuple(held.voucher for held in await node.paych.list_vouchers(channel))


@method("PaychVoucherSubmit", perm=SIGN)
async def paych_voucher_submit(
    node: FullNode, channel: Address, voucher: SignedVoucher, secret: Bytes, proof: Bytes
) -> CID:
    """Redeem a voucher on chain (UpdateChannelState with the secret and the proof); the message."""
    with answer_errors(PaychError):
        return await node.paych.submit_voucher(channel, voucher, secret, proof)
