"""node/markets/paych.py against a devnet node with mined blocks: channels created and funded by real
messages, requests queued behind a message in flight and merged, vouchers created, checked, added,
listed and submitted, every refusal with its words."""

from dataclasses import replace
from pathlib import Path

import pytest
import trio

from actors import builtin
from actors.paych.types import LaneState, SignedVoucher
from chain.crypto.keys import PrivateKey
from chain.encoding.cid import CID
from chain.types.address import Address
from node.fullnode import FullNode
from node.markets import paych_types
from node.markets.paych import PaychManager
from node.markets.paych_store import PaychStore
from tests.consensus.devchain import BOB
from tests.markets.conftest import Parties
from tests.markets.devnode import CLIENT, CLIENT_KEY, FIL, PROVIDER, PROVIDER_KEY, party


def nonce_of(node: FullNode, address: Address) -> int:
    actor = node.state.actor_after(address, node.chain.head())
    return 0 if actor is None else actor.nonce


def balance_of(node: FullNode, address: Address) -> int:
    actor = node.state.actor_after(address, node.chain.head())
    return 0 if actor is None else actor.balance


def signed(
    channel: Address, lane: int, nonce: int, amount: int, key: PrivateKey = CLIENT_KEY
) -> SignedVoucher:
    sv = SignedVoucher(channel, 0, 0, b"", None, lane, nonce, amount, 0)
    return replace(sv, signature=key.sign(sv.signing_bytes()))


async def create(node: FullNode, channel: Address, amount: int, lane: int) -> SignedVoucher:
    made = await node.paych.create_voucher(channel, paych_types.VoucherSpec(amount=amount), lane)
    assert made.voucher is not None and made.shortfall == 0
    return made.voucher


async def test_get_creates_then_funds_a_channel(parties: Parties) -> None:
    client, miner = parties.client, parties.miner
    nothing = await client.paych.available_funds_by_from_to(CLIENT, PROVIDER)
    assert nothing == paych_types.ChannelAvailableFunds(channel=None, from_=CLIENT, to=PROVIDER)

    got = await client.paych.get_paych(CLIENT, PROVIDER, 10 * FIL)
    assert got.channel is None and isinstance(got.wait_sentinel, CID)
    creating = await client.paych.available_funds_by_from_to(CLIENT, PROVIDER)
    assert (creating.channel, creating.pending_amt, creating.pending_wait_sentinel) == (
        None,
        10 * FIL,
        got.wait_sentinel,
    )
    assert got.wait_sentinel is not None
    sentinel = got.wait_sentinel
    channel = await miner.run_until(lambda: client.paych.get_wait_ready(sentinel))
    assert await client.paych.get_wait_ready(sentinel) == channel  # answered at once from now on

    state = await client.paych.channel_state(channel)
    assert state is not None and state.actor.code == builtin.PAYCH_ACTOR_CODE
    assert state.actor.balance == 10 * FIL and state.lanes == {}
    ids = [client.state.lookup_id(a, client.chain.head()) for a in (CLIENT, PROVIDER)]
    assert [state.state.from_, state.state.to] == ids
    assert await client.paych.list_channels() == [channel]
    assert await client.paych.status(channel) == paych_types.PaychStatus(
        CLIENT, paych_types.Direction.OUTBOUND
    )
    # The pair is the same pair when a party is written as its ID address.
    by_id = await client.paych.available_funds_by_from_to(ids[0], PROVIDER)
    assert (by_id.channel, by_id.from_) == (channel, CLIENT)
    funds = await client.paych.available_funds(channel)
    assert funds == paych_types.ChannelAvailableFunds(
        channel=channel, from_=CLIENT, to=PROVIDER, confirmed_amt=10 * FIL
    )

    # PaychFund adds funds nobody reserves; an off-chain get reserves from them without a message.
    funded = await client.paych.fund(CLIENT, PROVIDER, 4 * FIL)
    assert funded.channel == channel and funded.wait_sentinel is not None
    mid = await client.paych.available_funds(channel)
    assert (mid.pending_amt, mid.pending_available_amt, mid.pending_wait_sentinel) == (
        4 * FIL,
        4 * FIL,
        funded.wait_sentinel,
    )
    sentinel = funded.wait_sentinel
    assert await miner.run_until(lambda: client.paych.get_wait_ready(sentinel)) == channel
    funds = await client.paych.available_funds(channel)
    assert (funds.confirmed_amt, funds.non_reserved_amt, funds.pending_amt) == (14 * FIL, 4 * FIL, 0)
    sent = nonce_of(client, CLIENT)
    assert await client.paych.get_paych(CLIENT, PROVIDER, 3 * FIL, off_chain=True) == paych_types.ChannelInfo(
        channel, None
    )
    assert (await client.paych.available_funds(channel)).non_reserved_amt == 1 * FIL
    with pytest.raises(
        paych_types.PaychError,
        match=rf"not enough funds available in the payment channel {channel}; "
        rf"add funds with 'filpy paych add-funds {CLIENT} {PROVIDER} 2'",
    ):
        await client.paych.get_paych(CLIENT, PROVIDER, 2 * FIL, off_chain=True)
    assert client.mpool.pending_for(CLIENT) == [] and nonce_of(client, CLIENT) == sent

    # A reserving get the non-reserved funds cannot cover sends its whole amount.
    more = await client.paych.get_paych(CLIENT, PROVIDER, 3 * FIL)
    assert more.channel == channel and more.wait_sentinel is not None
    sentinel = more.wait_sentinel
    await miner.run_until(lambda: client.paych.get_wait_ready(sentinel))
    assert balance_of(client, channel) == 17 * FIL
    funds = await client.paych.available_funds(channel)
    assert (funds.confirmed_amt, funds.non_reserved_amt) == (17 * FIL, 1 * FIL)


async def test_requests_that_cannot_go_ahead(parties: Parties) -> None:
    client = parties.client
    with pytest.raises(
        paych_types.PaychError,
        match=rf"payment channel doesn't exist, create with 'filpy paych add-funds {CLIENT} {PROVIDER} 1.5'",
    ):
        await client.paych.get_paych(CLIENT, PROVIDER, 3 * FIL // 2, off_chain=True)
    with pytest.raises(
        paych_types.PaychError, match="can't fund payment channels without on-chain operations"
    ):
        await client.paych.get_paych(CLIENT, PROVIDER, FIL, reserve=False, off_chain=True)
    with pytest.raises(paych_types.PaychError, match="amount must not be negative"):
        await client.paych.get_paych(CLIENT, PROVIDER, -1)
    # the provider's wallet does not hold CLIENT's key: the message cannot be signed
    with pytest.raises(paych_types.PaychError, match=r"initializing paych actor: key not found for t1"):
        await parties.provider.paych.get_paych(CLIENT, PROVIDER, FIL)
    with pytest.raises(paych_types.PaychError, match="Could not find wait msg cid"):
        await client.paych.get_wait_ready(CID.hash_of(b"never sent"))
    assert await client.paych.list_channels() == []


async def test_concurrent_gets_are_queued_and_merged(parties: Parties) -> None:
    client, miner = parties.client, parties.miner
    first = await client.paych.get_paych(CLIENT, PROVIDER, 1 * FIL)
    results: list[paych_types.ChannelInfo] = []

    async def get(amount: int) -> None:
        results.append(await client.paych.get_paych(CLIENT, PROVIDER, amount))

    async with trio.open_nursery() as nursery:
        for amount in (2 * FIL, 3 * FIL):
            nursery.start_soon(get, amount)
        await trio.sleep(0.2)
        # Both wait behind the create message, queued (Lotus's QueuedAmt), nothing sent for them yet.
        queued = await client.paych.available_funds_by_from_to(CLIENT, PROVIDER)
        assert (queued.pending_amt, queued.queued_amt) == (1 * FIL, 5 * FIL)
        assert len(client.mpool.pending_for(CLIENT)) == 1 and results == []
        await miner.mine_until(lambda: len(results) == 2)
    # One add-funds message for both, after the create landed.
    channel = results[0].channel
    assert channel is not None and results[0] == results[1]
    assert results[0].wait_sentinel is not None and results[0].wait_sentinel != first.wait_sentinel
    sentinel = results[0].wait_sentinel
    await miner.run_until(lambda: client.paych.get_wait_ready(sentinel))
    assert nonce_of(client, CLIENT) == 2  # the create and one add-funds message
    assert balance_of(client, channel) == 6 * FIL
    funds = await client.paych.available_funds(channel)
    assert (funds.confirmed_amt, funds.non_reserved_amt, funds.queued_amt) == (6 * FIL, 0, 0)


async def test_vouchers_created_added_listed_and_submitted(parties: Parties) -> None:
    client, provider, miner = parties.client, parties.provider, parties.miner
    channel = await parties.open_channel(10 * FIL)
    assert [await client.paych.allocate_lane(channel) for _ in range(2)] == [0, 1]

    a1 = await create(client, channel, 3 * FIL, 0)
    a2 = await create(client, channel, 5 * FIL, 0)  # cumulative: the lane's total
    b1 = await create(client, channel, 4 * FIL, 1)
    assert [(v.lane, v.nonce, v.amount) for v in (a1, a2, b1)] == [
        (0, 1, 3 * FIL),
        (0, 2, 5 * FIL),
        (1, 1, 4 * FIL),
    ]
    # 5 + 7 on the lanes would be 12 FIL of 10: no voucher, the shortfall
    short = await client.paych.create_voucher(channel, paych_types.VoucherSpec(amount=7 * FIL), 1)
    assert short.voucher is None and short.shortfall == 2 * FIL
    assert [held.voucher for held in await client.paych.list_vouchers(channel)] == [a1, a2, b1]
    assert (await client.paych.available_funds(channel)).voucher_reedeemed_amt == 9 * FIL

    # The provider checks and stores them: each adds what it brings to its lane.
    await provider.paych.check_voucher_valid(channel, a1)
    assert await provider.paych.status(channel) == paych_types.PaychStatus(
        PROVIDER, paych_types.Direction.INBOUND
    )
    assert await provider.paych.add_voucher(channel, a1, b"", 0) == 3 * FIL
    assert await provider.paych.add_voucher(channel, a2, b"", 2 * FIL) == 2 * FIL
    assert await provider.paych.add_voucher(channel, a2, b"", 0) == 0  # again: nothing new
    assert await provider.paych.add_voucher(channel, b1, b"", 0) == 4 * FIL
    a3 = await create(client, channel, 6 * FIL, 0)
    with pytest.raises(
        paych_types.PaychError,
        match=rf"addVoucher: supplied token amount too low; minD={2 * FIL}, D={FIL}; "
        rf"laneAmt={5 * FIL}; v.Amt={6 * FIL}",
    ):
        await provider.paych.add_voucher(channel, a3, b"", 2 * FIL)
    assert await provider.paych.add_voucher(channel, a3, b"", 0) == 1 * FIL
    assert await provider.paych.allocate_lane(channel) == 2  # past the lanes the vouchers use

    assert await provider.paych.check_voucher_spendable(channel, a3, b"", b"")
    assert await provider.paych.best_spendable_by_lane(channel) == {0: a3, 1: b1}
    cid = await provider.paych.submit_voucher(channel, a3, b"", b"")
    assert (await miner.land(provider, cid)).receipt.exit_code == 0
    state = await provider.paych.channel_state(channel)
    assert state is not None and state.lanes == {0: LaneState(6 * FIL, 3)} and state.state.to_send == 6 * FIL

    # Submitted: a3, and the lower nonces of its lane it supersedes.
    flags = {
        (h.voucher.lane, h.voucher.nonce): h.submitted for h in await provider.paych.list_vouchers(channel)
    }
    assert flags == {(0, 1): True, (0, 2): True, (0, 3): True, (1, 1): False}
    assert not await provider.paych.check_voucher_spendable(channel, a3, b"", b"")
    with pytest.raises(paych_types.PaychError, match="cannot submit voucher that has already been submitted"):
        await provider.paych.submit_voucher(channel, a3, b"", b"")
    assert (await client.paych.available_funds(channel)).voucher_reedeemed_amt == 10 * FIL


async def test_vouchers_that_must_fail(parties: Parties, tmp_path: Path) -> None:
    client, provider, miner = parties.client, parties.provider, parties.miner
    channel = await parties.open_channel(10 * FIL)
    good = await create(client, channel, 2 * FIL, 0)
    assert await provider.paych.add_voucher(channel, good, b"", 0) == 2 * FIL
    # A voucher may name the channel by its ID address.
    channel_id = client.state.lookup_id(channel, client.chain.head())
    assert await provider.paych.add_voucher(channel, signed(channel_id, 7, 1, FIL), b"", 0) == FIL

    # Signed by someone other than the channel's From.
    with pytest.raises(
        paych_types.VoucherInvalid,
        match=rf"voucher signature invalid: secp256k1 signature was not made by the signer's key "
        rf"\(the channel's From is {CLIENT}\)",
    ):
        await provider.paych.add_voucher(channel, signed(channel, 1, 1, FIL, key=PROVIDER_KEY), b"", 0)
    # More than the channel holds: 2 FIL on lane 0, 1 on lane 7 and 8 on lane 1.
    with pytest.raises(
        paych_types.InsufficientFunds,
        match="not enough funds in channel to cover voucher - shortfall: 1000000000000000000",
    ):
        await provider.paych.check_voucher_valid(channel, signed(channel, 1, 1, 8 * FIL))
    # Lane and nonce replays.
    with pytest.raises(
        paych_types.VoucherInvalid, match="nonce too low: lane 0 is at nonce 1, voucher has 1"
    ):
        await provider.paych.add_voucher(channel, signed(channel, 0, 1, 3 * FIL), b"", 0)
    with pytest.raises(
        paych_types.VoucherInvalid, match="voucher amount is lower than amount for voucher with lower nonce"
    ):
        await provider.paych.add_voucher(channel, signed(channel, 0, 2, 1 * FIL), b"", 0)
    with pytest.raises(
        paych_types.PaychError,
        match=rf"voucher ChannelAddr doesn't match channel address, got t0999, expected {channel}",
    ):
        await provider.paych.add_voucher(channel, signed(Address.new_id(999), 5, 1, FIL), b"", 0)
    with pytest.raises(
        paych_types.PaychError, match="cannot submit voucher that has not been added to channel"
    ):
        await provider.paych.check_voucher_spendable(channel, signed(channel, 3, 1, FIL), b"", b"")
    with pytest.raises(
        paych_types.PaychError,
        match=f"cannot create vouchers on {channel}: this node is not the channel's payer",
    ):
        await provider.paych.create_voucher(channel, paych_types.VoucherSpec(amount=FIL), 0)
    with pytest.raises(paych_types.ChannelNotTracked, match=f"channel not tracked: {channel}"):
        await party(client, tmp_path / "other", PROVIDER_KEY).paych.list_vouchers(channel)
    stranger = party(client, tmp_path / "stranger", BOB)
    with pytest.raises(
        paych_types.PaychError,
        match=rf"cannot add voucher for channel {channel}: wallet does not have key for address {PROVIDER}",
    ):
        await stranger.paych.add_voucher(channel, good, b"", 0)
    with pytest.raises(paych_types.PaychError, match="payment channel t0999 not found on chain"):
        await provider.paych.check_voucher_valid(Address.new_id(999), good)

    # Redeemed on chain, the voucher is spent: a node that lost track of that (a fresh store) still
    # cannot submit it again: the chain refuses the stale nonce (at gas estimation).
    cid = await provider.paych.submit_voucher(channel, good, b"", b"")
    await miner.land(provider, cid)
    forgetful = party(client, tmp_path / "forgetful", PROVIDER_KEY, store=PaychStore.in_memory())
    with pytest.raises(paych_types.VoucherInvalid, match="nonce too low"):
        await forgetful.paych.add_voucher(channel, good, b"", 0)  # the chain's lane says so too
    manager = PaychManager(forgetful, forgetful.paych.store)
    await manager.check_voucher_valid(channel, await create(client, channel, 3 * FIL, 0))
    with pytest.raises(
        paych_types.PaychError,
        match=r"submitting voucher: gas estimation failed: "
        r".*voucher has an outdated nonce, existing: 1, voucher: 1",
    ):
        await manager.submit_voucher(channel, good, b"", b"")


async def test_new_payment_waits_for_the_funds_its_vouchers_need(parties: Parties) -> None:
    client, miner = parties.client, parties.miner
    specs = [paych_types.VoucherSpec(amount=FIL), paych_types.VoucherSpec(amount=2 * FIL, min_settle=500)]
    payment = await miner.run_until(lambda: client.paych.new_payment(CLIENT, PROVIDER, specs))
    assert payment.wait_sentinel is not None  # the create message, waited for
    assert await client.paych.list_channels() == [payment.channel]
    assert balance_of(client, payment.channel) == 2 * FIL
    assert [(v.channel_addr, v.lane, v.nonce, v.amount, v.min_settle_height) for v in payment.vouchers] == [
        (payment.channel, 0, 1, FIL, 0),
        (payment.channel, 0, 2, 2 * FIL, 500),
    ]
    with pytest.raises(paych_types.PaychError, match="PaychNewPayment needs at least one voucher"):
        await client.paych.new_payment(CLIENT, PROVIDER, [])

    # Paying as data arrives: a voucher for 1 FIL more than the lane holds, once the channel has it.
    channel = payment.channel
    short = await client.paych.create_voucher_for_more(channel, 0, FIL)
    assert short.voucher is None and short.shortfall == FIL
    funded = await client.paych.fund(CLIENT, PROVIDER, FIL)
    assert funded.wait_sentinel is not None
    sentinel = funded.wait_sentinel
    await miner.run_until(lambda: client.paych.get_wait_ready(sentinel))
    more = await client.paych.create_voucher_for_more(channel, 0, FIL)
    assert more.voucher is not None and (more.voucher.nonce, more.voucher.amount) == (3, 3 * FIL)
    with pytest.raises(paych_types.PaychError, match="a voucher must add a positive amount, got 0"):
        await client.paych.create_voucher_for_more(channel, 0, 0)
