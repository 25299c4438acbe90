"""Paid retrieval: go-fil-markets' interval arithmetic, the provider pausing until paid, the client
paying only for what it received (with a fake voucher source in place of the payment channel manager)."""

import pytest
import trio

from actors.paych.types import SignedVoucher
from chain.encoding.cid import CID
from chain.types.address import Address
from node.markets.retrieval_payment import (
    ClientPayments,
    DealPayment,
    DealProposal,
    DealStatus,
    PaymentError,
    ProviderPayments,
    RetrievalParams,
)
from tests.markets.transfer_pair import PARAMS, transfer

CHANNEL = Address.new_id(1234)
ROOT = CID.parse("bafkqaaa")


def test_interval_arithmetic_matches_go_fil_markets() -> None:
    # Boundaries at 100, 250 (100 + 150), 450 (250 + 200), ...
    assert [PARAMS.next_interval(n) for n in (0, 99, 100, 249, 250, 449)] == [100, 100, 250, 250, 450, 450]
    assert [PARAMS.interval_lower_bound(n) for n in (0, 99, 100, 260, 450)] == [0, 0, 100, 250, 450]
    assert PARAMS.outstanding(0, 0, last=False) == 11  # unsealing first
    assert PARAMS.outstanding(11, 100, last=False) == 200
    assert PARAMS.outstanding(11, 120, last=False) == 200  # only up to the lower bound
    assert PARAMS.outstanding(11, 120, last=True) == 240
    assert (
        PARAMS.bytes_allowed(0) == 0 and PARAMS.bytes_allowed(11) == 100 and PARAMS.bytes_allowed(211) == 250
    )
    free = RetrievalParams(price_per_byte=0, payment_interval=1, payment_interval_increase=0)
    assert free.outstanding(0, 10**9, last=True) == 0


def voucher(amount: int, lane: int = 0) -> SignedVoucher:
    """An unsigned voucher: the fake check below stands for the manager's."""
    return SignedVoucher(CHANNEL, 0, 0, b"", None, lane, 1, amount, 0)


async def run(
    data: bytes,
    *,
    max_total: int,
    overcharge: int = 0,
    short: int = 0,
    lanes: tuple[int, ...] = (0,),
    stall_after: int | None = None,
) -> tuple[bytes, list[object], list[int]]:
    log: list[object] = []
    proposal = DealProposal(ROOT, 7, PARAMS)
    redeemed: list[int] = []

    async def check(payment: DealPayment) -> int:  # what PaychVoucherAdd would do: the delta of a voucher
        cumulative = payment.payment_voucher.amount
        delta = cumulative - sum(redeemed)
        redeemed.append(delta)
        return delta

    gate = ProviderPayments(proposal, check)
    gate.funds_received -= overcharge  # a provider that asks for more than is due
    paid_total = 0

    async def voucher_for(amount: int, received: int) -> DealPayment:
        nonlocal paid_total
        assert received * PARAMS.price_per_byte + PARAMS.unseal_price >= paid_total + amount
        if stall_after is not None and received >= stall_after:
            await trio.sleep_forever()  # a client that stops paying
        paid_total += amount - short  # a client that pays short by that much
        lane = lanes[min(len(redeemed), len(lanes) - 1)]
        return DealPayment(7, CHANNEL, voucher(paid_total, lane))

    payer = ClientPayments(PARAMS, voucher_for, max_total)
    got = await transfer(gate, payer, data, seconds=10, log=log, payment_timeout=0.5)
    return got, log, redeemed


async def test_the_transfer_pauses_at_each_interval_until_paid() -> None:
    data = bytes(range(256)) * 2  # 512 bytes: boundaries at 100, 250, 450
    got, log, redeemed = await run(data, max_total=10_000)
    assert got == data
    sent = 0
    asked: list[tuple[DealStatus, int, int]] = []
    for item in log:
        kind, message = item  # type: ignore[misc]
        if kind == "data":
            sent += len(message)
        elif kind == "response" and message.payment_owed:
            asked.append((message.status, message.payment_owed, sent))
    # Never more than the paid-for interval in flight: each request comes exactly at a boundary.
    assert asked == [
        (DealStatus.FundsNeededUnseal, 11, 0),
        (DealStatus.FundsNeeded, 200, 100),
        (DealStatus.FundsNeeded, 300, 250),
        (DealStatus.FundsNeeded, 400, 450),
        (DealStatus.FundsNeededLastPayment, 124, 512),
    ]
    assert sum(redeemed) == 11 + 2 * 512
    assert log[-1][1].status == DealStatus.Completed  # type: ignore[index]


async def test_the_client_refuses_an_overcharge_and_the_budget_holds() -> None:
    with pytest.raises(BaseExceptionGroup) as caught:
        await run(bytes(300), max_total=10_000, overcharge=5)
    assert any("asks for" in str(e) for e in caught.value.exceptions)
    with pytest.raises(BaseExceptionGroup) as caught:
        await run(bytes(300), max_total=100)
    assert any(isinstance(e, PaymentError) and "budget" in str(e) for e in caught.value.exceptions)


async def test_a_short_payment_ends_the_deal_with_the_reason() -> None:
    with pytest.raises(BaseExceptionGroup) as caught:
        await run(bytes(300), max_total=10_000, short=1)
    errors = [str(e) for e in caught.value.exceptions]
    # the provider says why, and the client hears it
    assert any("the voucher adds 10 attoFIL but 11 are owed after 0 bytes" in e for e in errors), errors
    assert any(e.startswith("the provider ended deal 7: Errored deal 7: the voucher adds 10") for e in errors)


async def test_payments_of_a_deal_stay_on_its_lane() -> None:
    with pytest.raises(BaseExceptionGroup) as caught:
        await run(bytes(300), max_total=10_000, lanes=(0, 1))
    errors = [str(e) for e in caught.value.exceptions]
    assert any(f"deal 7 is paid on lane 0 of channel {CHANNEL}, not on lane 1" in e for e in errors), errors


async def test_a_client_that_stops_paying_is_cut_off_after_the_timeout() -> None:
    with pytest.raises(BaseExceptionGroup) as caught:
        await run(bytes(300), max_total=10_000, stall_after=100)
    errors = [str(e) for e in caught.value.exceptions]
    assert any(e == "deal 7: the client did not pay within 0.5 s" for e in errors), errors
