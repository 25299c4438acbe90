"""Paid retrieval paid through a real payment channel: the client's vouchers come from its manager, the
provider's gate counts what each adds after its manager's checks, and the provider redeems the lane's
last voucher on chain; a voucher the client did not sign, or one sent twice, adds nothing."""

from dataclasses import replace

import pytest
import trio

from actors.paych.types import LaneState, SignedVoucher
from chain.encoding.cid import CID
from node.markets.paych_retrieval import payment_check, voucher_source
from node.markets.retrieval_payment import (
    ClientPayments,
    DealPayment,
    DealProposal,
    PaymentError,
    ProviderPayments,
    RetrievalParams,
    client_transfer,
    provider_transfer,
)
from tests.markets.conftest import Parties
from tests.markets.devnode import CLIENT, FIL, PROVIDER, PROVIDER_KEY

PARAMS = RetrievalParams(
    price_per_byte=2, payment_interval=100, payment_interval_increase=50, unseal_price=11
)
DEAL = 7


class End:
    """One side of an in-memory message transport."""

    def __init__(self, out: trio.MemorySendChannel[object], into: trio.MemoryReceiveChannel[object]) -> None:
        self.out, self.into = out, into

    async def send(self, message: object) -> None:
        await self.out.send(message)

    async def receive(self) -> object:
        return await self.into.receive()


async def test_a_paid_retrieval_pays_through_the_channel(parties: Parties) -> None:
    client, provider, miner = parties.client, parties.provider, parties.miner
    channel = await parties.open_channel(FIL)
    lane = await client.paych.allocate_lane(channel)
    data = bytes(range(256)) * 2
    to_client_send, to_client_recv = trio.open_memory_channel[object](100)
    to_provider_send, to_provider_recv = trio.open_memory_channel[object](100)
    gate = ProviderPayments(DealProposal(CID.parse("bafkqaaa"), DEAL, PARAMS), payment_check(provider.paych))
    payer = ClientPayments(PARAMS, voucher_source(client.paych, channel, lane, DEAL), max_total=FIL)
    got = bytearray()

    async def sink(chunk: bytes) -> None:
        got.extend(chunk)

    async def chunks():  # type: ignore[no-untyped-def]
        for at in range(0, len(data), 70):
            yield data[at : at + 70]

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(provider_transfer, gate, chunks(), End(to_client_send, to_provider_recv))
            await client_transfer(payer, End(to_provider_send, to_client_recv), sink)
    assert bytes(got) == data
    total = PARAMS.unseal_price + PARAMS.price_per_byte * len(data)
    assert gate.funds_received == payer.paid == total
    stored = await provider.paych.list_vouchers(channel)
    assert [h.voucher.amount for h in stored] == [11, 211, 511, 911, total]  # cumulative on the lane

    best = await provider.paych.best_spendable_by_lane(channel)
    assert list(best) == [lane] and best[lane].amount == total
    lookup = await miner.land(provider, await provider.paych.submit_voucher(channel, best[lane], b"", b""))
    assert lookup.receipt.exit_code == 0
    state = await provider.paych.channel_state(channel)
    assert state is not None and state.lanes == {lane: LaneState(total, 5)}

    # A voucher the client did not sign, and one sent again, are not funds.
    check = payment_check(provider.paych)
    forged = replace(best[lane], nonce=6, amount=total + 100, signature=None)
    forged = replace(forged, signature=PROVIDER_KEY.sign(forged.signing_bytes()))
    with pytest.raises(PaymentError, match="the voucher for deal 7 is refused: voucher signature invalid"):
        await check(DealPayment(DEAL, channel, forged))
    assert await check(DealPayment(DEAL, channel, best[lane])) == 0
    # A channel that pays someone else is not the provider's payment.
    to_other = payment_check(provider.paych, recipient=lambda: CLIENT)
    with pytest.raises(PaymentError, match=f"channel {channel} does not pay {CLIENT}"):
        await to_other(DealPayment(DEAL, channel, best[lane]))
    assert (
        await payment_check(provider.paych, recipient=lambda: PROVIDER)(
            DealPayment(DEAL, channel, best[lane])
        )
        == 0
    )
    # The client pays only what its channel holds.
    source = voucher_source(client.paych, channel, lane, DEAL)
    with pytest.raises(PaymentError, match=f"payment channel {channel} lacks 1035 attoFIL to pay {FIL}"):
        await source(FIL, 0)
    assert isinstance((await source(1, 0)).payment_voucher, SignedVoucher)
