"""Paid retrieval: the deal terms, the provider's "pause until paid" gate and the client's payer.

The terms and messages are go-fil-markets' (retrievalmarket/types.go, map-encoded): a `DealProposal
{PayloadCID, ID, Params{PieceCID, PricePerByte, PaymentInterval, PaymentIntervalIncrease,
UnsealPrice}}`, answered and driven by `DealResponse{Status, ID, PaymentOwed, Message}`, paid with
`DealPayment{ID, PaymentChannel, PaymentVoucher}`. The arithmetic is theirs too: the unseal price is
paid before any byte; then the provider sends up to the next interval boundary (PaymentInterval, then
each interval PaymentIntervalIncrease longer) and waits for a voucher covering the bytes up to the
boundary below what it sent (IntervalLowerBound); the last payment covers every byte sent.

The provider is strict where go-fil-markets would wait for more: every payment of a deal must use the
channel and lane of its first, and must cover all that was asked for; a voucher refused by the check, a
short one, or none within the timeout ends the deal with an `Errored` response whose message says why,
and the provider sends nothing more.

Transport-neutral: `provider_transfer` and `client_transfer` speak through `MessageChannel`s (send,
receive), which node/markets/retrieval_deals.py's libp2p stream provides. What they need from the
payment-channel manager is a pair of callbacks (node/markets/paych_retrieval.py):

- provider: `PaymentCheck(payment) -> funds added` (PaychVoucherAdd on the voucher: checks the signature,
  channel, lane and nonce, and returns the delta over the best voucher seen);
- client: `VoucherSource(amount, received) -> DealPayment` (PaychVoucherCreate for the cumulative amount
  on the deal's lane).
"""

from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated, Any, Protocol

import structlog
import trio

from actors.paych.types import SignedVoucher
from chain.encoding.cid import CID
from chain.encoding.schema import CborMap, Name, TokenAmount, Uint64
from chain.types.address import Address

_log = structlog.get_logger(__name__)


class DealStatus(IntEnum):
    """go-fil-markets retrievalmarket.DealStatus."""

    New = 0
    Unsealing = 1
    Unsealed = 2
    WaitForAcceptance = 3
    PaymentChannelCreating = 4
    PaymentChannelAddingFunds = 5
    Accepted = 6
    FundsNeededUnseal = 7
    Failing = 8
    Rejected = 9
    FundsNeeded = 10
    SendFunds = 11
    SendFundsLastPayment = 12
    Ongoing = 13
    FundsNeededLastPayment = 14
    Completed = 15
    DealNotFound = 16
    Errored = 17
    BlocksComplete = 18
    Finalizing = 19
    Completing = 20
    CheckComplete = 21
    CheckFunds = 22
    InsufficientFunds = 23
    PaymentChannelAllocatingLane = 24
    Cancelling = 25
    Cancelled = 26
    RetryLegacy = 27
    WaitForAcceptanceLegacy = 28
    ClientWaitingForLastBlocks = 29
    PaymentChannelAddingInitialFunds = 30
    Erroring = 31
    Rejecting = 32
    DealNotFoundCleanup = 33
    FinalizingBlockstore = 34


class RetrievalParams(CborMap, kw_only=True):
    """go-fil-markets retrievalmarket.Params."""

    # go-fil-markets' first field, Selector (an embedded IPLD selector node, null for the whole DAG), is
    # left out: only whole-DAG retrievals are made, and the transport that carries these messages adds
    # `Selector: null` on the wire and accepts it (not written yet; docs/retrieval.md).
    piece_cid: Annotated[CID | None, Name("PieceCID")] = None
    price_per_byte: TokenAmount
    payment_interval: Uint64
    payment_interval_increase: Uint64
    unseal_price: TokenAmount = 0

    def interval_lower_bound(self, current: int) -> int:
        """The last interval boundary at or below current bytes."""
        size, lower, target = self.payment_interval, 0, 0
        while target <= current:
            lower = target
            target += size
            size += self.payment_interval_increase
        return lower

    def next_interval(self, current: int) -> int:
        """The first interval boundary above current bytes."""
        size, boundary = self.payment_interval, 0
        while boundary <= current:
            boundary += size
            size += self.payment_interval_increase
        return boundary

    def outstanding(self, funds_received: int, sent: int, *, last: bool) -> int:
        """What the client owes after `sent` bytes (OutstandingBalance): unsealing first, then the bytes
        up to the interval's lower bound, or every byte sent for the last payment."""
        if funds_received < self.unseal_price:
            return self.unseal_price - funds_received
        if self.price_per_byte == 0:
            return 0
        due_bytes = sent if last else self.interval_lower_bound(sent)
        return max(0, due_bytes * self.price_per_byte - (funds_received - self.unseal_price))

    def bytes_allowed(self, funds_received: int) -> int:
        """How many bytes in total the provider may send with funds_received paid."""
        if funds_received < self.unseal_price:
            return 0
        if self.price_per_byte == 0:
            return 1 << 63
        paid_bytes = (funds_received - self.unseal_price) // self.price_per_byte
        return self.next_interval(paid_bytes)


class DealProposal(CborMap):
    payload_cid: Annotated[CID, Name("PayloadCID")]
    id: Annotated[Uint64, Name("ID")]
    params: RetrievalParams


class DealResponse(CborMap, kw_only=True):
    status: Uint64  # a DealStatus; any number decodes, as in go-fil-markets
    id: Annotated[Uint64, Name("ID")]
    payment_owed: TokenAmount = 0
    message: str = ""


class DealPayment(CborMap):
    id: Annotated[Uint64, Name("ID")]
    payment_channel: Address
    payment_voucher: SignedVoucher


class PaymentError(Exception):
    """A payment refused or not made; the message says why."""


PaymentCheck = Callable[[DealPayment], Awaitable[int]]
VoucherSource = Callable[[int, int], Awaitable[DealPayment]]


class MessageChannel(Protocol):
    async def send(self, message: Any) -> None: ...

    async def receive(self) -> Any: ...


@dataclass
class ProviderPayments:
    """The provider's gate: how much may be sent now, and the pause until the next payment."""

    proposal: DealProposal
    check: PaymentCheck
    funds_received: int = 0
    sent: int = 0
    channel: Address | None = None  # the channel and lane of the first payment, which the rest must use
    lane: int | None = None

    @property
    def params(self) -> RetrievalParams:
        return self.proposal.params

    def allowance(self) -> int:
        return max(0, self.params.bytes_allowed(self.funds_received) - self.sent)

    def owed(self, *, last: bool) -> int:
        return self.params.outstanding(self.funds_received, self.sent, last=last)

    async def receive(self, payment: DealPayment) -> None:
        """A payment arrived: check it (PaymentError if the check refuses it) and count its funds."""
        deal = self.proposal.id
        if payment.id != deal:
            raise PaymentError(f"payment for deal {payment.id} arrived on deal {deal}")
        voucher = payment.payment_voucher
        if self.channel is not None and (payment.payment_channel, voucher.lane) != (self.channel, self.lane):
            raise PaymentError(
                f"deal {deal} is paid on lane {self.lane} of channel {self.channel}, not on lane "
                f"{voucher.lane} of {payment.payment_channel}"
            )
        added = await self.check(payment)
        if added <= 0:
            raise PaymentError(f"the voucher for deal {deal} adds no funds")
        self.channel, self.lane = payment.payment_channel, voucher.lane
        self.funds_received += added


async def provider_transfer(
    gate: ProviderPayments,
    data: AsyncIterable[bytes],
    channel: MessageChannel,
    *,
    payment_timeout: float = 60.0,
) -> int:
    """Send data as ("data", bytes) messages, pausing at each interval with a ("response",
    DealResponse(FundsNeeded...)) until the gate has been paid; payments come in as ("payment",
    DealPayment) messages, read by this function. Returns the bytes sent."""
    deal = gate.proposal.id

    async def collect(owed: int, status: DealStatus) -> None:
        await channel.send(("response", DealResponse(status=status, id=deal, payment_owed=owed)))
        before = gate.funds_received
        with trio.fail_after(payment_timeout):
            kind, payment = await channel.receive()
        if kind != "payment":
            raise PaymentError(f"deal {deal}: expected a payment, got {kind}")
        await gate.receive(payment)
        if gate.funds_received - before < owed:
            raise PaymentError(
                f"deal {deal}: the voucher adds {gate.funds_received - before} attoFIL but {owed} are owed "
                f"after {gate.sent} bytes at {gate.params.price_per_byte} attoFIL per byte"
            )

    try:
        if gate.owed(last=False) > 0:
            await collect(gate.owed(last=False), DealStatus.FundsNeededUnseal)
        await channel.send(("response", DealResponse(status=DealStatus.Ongoing, id=deal)))
        async for chunk in data:
            view = memoryview(chunk)
            while view:
                allowed = gate.allowance()
                if allowed == 0:
                    await collect(gate.owed(last=False), DealStatus.FundsNeeded)
                    continue
                part = bytes(view[:allowed])
                await channel.send(("data", part))
                gate.sent += len(part)
                view = view[len(part) :]
        last = gate.owed(last=True)
        if last > 0:
            await collect(last, DealStatus.FundsNeededLastPayment)
    except trio.TooSlowError:
        await _end(channel, deal, f"the client did not pay within {payment_timeout} s")
        raise PaymentError(f"deal {deal}: the client did not pay within {payment_timeout} s") from None
    except PaymentError as exc:
        await _end(channel, deal, str(exc))
        raise
    await channel.send(("response", DealResponse(status=DealStatus.Completed, id=deal)))
    return gate.sent


async def _end(channel: MessageChannel, deal: int, why: str) -> None:
    """Tell the client why the deal ends; a client already gone does not hide the reason."""
    with trio.move_on_after(5):
        try:
            await channel.send(("response", DealResponse(status=DealStatus.Errored, id=deal, message=why)))
        except Exception as exc:  # the transport's own failure: the reason is logged by the caller
            _log.info("retrieval.end_not_sent", deal=deal, error=str(exc))


@dataclass
class ClientPayments:
    """The client's payer: pays only for what it received, never beyond its budget."""

    params: RetrievalParams
    voucher_for: VoucherSource
    max_total: int
    received: int = 0
    paid: int = 0

    def due(self) -> int:
        """The most the provider can rightly ask for now: unsealing plus every byte received."""
        return self.params.unseal_price + self.received * self.params.price_per_byte - self.paid

    async def pay(self, owed: int) -> DealPayment:
        if owed <= 0:
            raise PaymentError(f"asked to pay {owed} attoFIL")
        if owed > self.due():
            raise PaymentError(
                f"the provider asks for {owed} attoFIL, but {self.received} bytes received at "
                f"{self.params.price_per_byte} per byte (unsealing {self.params.unseal_price}) "
                f"leave {self.due()} due"
            )
        if self.paid + owed > self.max_total:
            raise PaymentError(f"paying {owed} more would exceed the budget of {self.max_total} attoFIL")
        payment = await self.voucher_for(owed, self.received)
        self.paid += owed
        return payment


async def client_transfer(
    payer: ClientPayments, channel: MessageChannel, sink: Callable[[bytes], Awaitable[None]]
) -> int:
    """Receive ("data", bytes) into sink and answer each FundsNeeded* response with a payment from the
    payer, until Completed; PaymentError if the provider errs or asks for what is not due."""
    while True:
        kind, message = await channel.receive()
        if kind == "data":
            await sink(message)
            payer.received += len(message)
            continue
        response: DealResponse = message
        if response.status in (
            DealStatus.FundsNeeded,
            DealStatus.FundsNeededLastPayment,
            DealStatus.FundsNeededUnseal,
        ):
            await channel.send(("payment", await payer.pay(response.payment_owed)))
        elif response.status == DealStatus.Completed:
            return payer.received
        elif response.status in (
            DealStatus.Errored,
            DealStatus.Rejected,
            DealStatus.DealNotFound,
            DealStatus.Failing,
        ):
            raise PaymentError(
                f"the provider ended deal {response.id}: {_status_name(response.status)} {response.message}"
            )


def _status_name(status: int) -> str:
    try:
        return DealStatus(status).name
    except ValueError:
        return f"status {status}"
