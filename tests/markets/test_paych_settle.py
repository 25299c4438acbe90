"""Settling: the client settles, the provider's settler redeems its best voucher of each lane before the
settle delay ends (without being asked), and the provider collects what the vouchers redeemed."""

import trio

from chain.types.address import Address
from node.fullnode import FullNode
from node.markets.paych_settler import PaychSettler
from node.markets.paych_types import VoucherSpec
from tests.markets.conftest import Parties
from tests.markets.devnode import CLIENT, FIL, PROVIDER


def balance_of(node: FullNode, address: Address) -> int:
    actor = node.state.actor_after(address, node.chain.head())
    return 0 if actor is None else actor.balance


async def test_settler_redeems_the_best_vouchers_before_the_settle_delay_ends(
    parties: Parties, nursery: trio.Nursery
) -> None:
    client, provider, miner = parties.client, parties.provider, parties.miner
    settler = PaychSettler(provider.paych)
    await nursery.start(settler.run)
    channel = await parties.open_channel(10 * FIL)
    vouchers = []
    for amount, lane in ((2 * FIL, 0), (5 * FIL, 0), (1 * FIL, 1)):
        made = await client.paych.create_voucher(channel, VoucherSpec(amount=amount), lane)
        assert made.voucher is not None
        vouchers.append(made.voucher)
        await provider.paych.add_voucher(channel, made.voucher, b"", 0)

    # While the channel is not settling, the settler leaves the vouchers alone.
    for _ in range(2):
        await settler.wait_processed(await miner.mine())
    assert settler.submitted == []

    settle = await client.paych.settle(channel)
    lookup = await miner.land(client, settle)
    assert lookup.receipt.exit_code == 0
    state = await provider.paych.channel_state(channel)
    assert (
        state is not None and state.state.settling_at == lookup.height - 1 + client.policy.paych_settle_delay
    )
    settling_at = state.state.settling_at

    # One tipset at a time, each seen by the settler, until its messages are on chain.
    for _ in range(6):
        await settler.wait_processed(await miner.mine())
        state = await provider.paych.channel_state(channel)
        assert state is not None
        if state.state.to_send == 6 * FIL:
            break
    assert client.chain.head().height < settling_at
    assert len(settler.submitted) == 2  # lane 0's 5 FIL voucher and lane 1's
    assert {lane: (s.redeemed, s.nonce) for lane, s in state.lanes.items()} == {
        0: (5 * FIL, 2),
        1: (1 * FIL, 1),
    }
    assert all(held.submitted for held in await provider.paych.list_vouchers(channel))

    # Nothing more to submit; once the delay has passed, the provider collects.
    await miner.mine_until(lambda: client.chain.head().height >= settling_at)
    await settler.wait_processed(client.chain.head())
    assert len(settler.submitted) == 2
    client_before, provider_before = balance_of(client, CLIENT), balance_of(client, PROVIDER)
    collect = await provider.paych.collect(channel)
    lookup = await miner.land(provider, collect)
    assert lookup.receipt.exit_code == 0
    assert await provider.paych.channel_state(channel) is None  # the actor is gone
    gas = provider_before + 6 * FIL - balance_of(client, PROVIDER)
    assert 0 < gas < FIL // 100  # paid 6 FIL, less the collect message's gas
    assert balance_of(client, CLIENT) == client_before + 4 * FIL  # the rest back to the client
    funds = await client.paych.available_funds(channel)
    assert (funds.confirmed_amt, funds.voucher_reedeemed_amt) == (10 * FIL, 6 * FIL)
