"""Paid retrieval paid through a real payment channel: the client's vouchers come from its manager, the
provider's gate counts what each adds after its manager's checks, and the provider redeems the lane's
last voucher on chain; a voucher the client did not sign, or one sent twice, adds nothing."""

from dataclasses import replace

import pytest

from actors.paych.types import LaneState, SignedVoucher
from chain.encoding.cid import CID
from node.markets.paych_retrieval import payment_check, voucher_source
from node.markets.retrieval_payment import (
    ClientPayments,
    DealPayment,
    DealProposal,
    PaymentError,
    ProviderPayments,
)
from tests.markets.conftest import Parties
from tests.markets.devnode import CLIENT, FIL, PROVIDER, PROVIDER_KEY
from tests.markets.transfer_pair import PARAMS, transfer

DEAL = 7


async def test_a_paid_retrieval_pays_through_the_channel(parties: Parties) -> None:
    client, provider, miner = parties.client, parties.provider, parties.miner
    channel = await parties.open_channel(FIL)
    lane = await client.paych.allocate_lane(channel)
    data = bytes(range(256)) * 2
    gate = ProviderPayments(DealProposal(CID.parse("bafkqaaa"), DEAL, PARAMS), payment_check(provider.paych))
    payer = ClientPayments(PARAMS, voucher_source(client.paych, channel, lane, DEAL), max_total=FIL)
    assert await transfer(gate, payer, data, seconds=60) == data
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
