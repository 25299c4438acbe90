"""Paid retrieval between two nodes: a provider whose retrieval ask has a price, a client that retrieves
through ClientRetrieve with a Lotus RetrievalOrder. The client's payment-channel manager creates and
funds a channel to the provider's payment address and pays each interval with a voucher on the deal's
lane; the provider checks each voucher before it sends more. The vouchers sum to the price of the bytes
sent, the data is the client's file, the provider redeems the lane's voucher, settles and collects, and
its balance rises by what the vouchers paid. A client that pays short is cut off with the reason, and
an order under the ask is refused."""

from pathlib import Path
from typing import Any, Final

import httpx
import pytest
import trio

from chain.types.address import Address
from chain.types.message import SignedMessage
from chain.types.tipset import TipSet
from node.markets.deal_states import StorageDealStatus as S
from node.markets.paych_retrieval import voucher_source
from node.markets.piecestore import FREE_ASK, RetrievalAsk
from node.markets.retrieval_deals import RetrievalRefused, retrieve_paid
from node.markets.retrieval_payment import (
    ClientPayments,
    DealPayment,
    DealProposal,
    DealStatus,
    RetrievalParams,
)
from node.markets.services import RETRIEVAL_ASK_KEY
from rpc.client import HttpClient, RpcCallError
from tests.markets.deal_net import ADMIN, CLIENT, WAIT, DealNet, deal_file, deal_net

pytestmark = pytest.mark.slow

ASK: Final = RetrievalAsk(
    price_per_byte=10**14, unseal_price=10**15, payment_interval=400, payment_interval_increase=300
)


async def stored(net: DealNet, path: Path) -> Any:
    """A file stored with the provider (the deal staged: the piece is in its piece store)."""
    imported = net.import_file(deal_file(path, size=1900))
    proposal = await net.start_deal(imported)
    await net.deal_reaches(proposal, S.StorageDealStaged)
    return imported


def balance(net: DealNet, address: Address, ts: TipSet) -> int:
    actor = net.provider_node.state.actor_after(address, ts)
    return 0 if actor is None else actor.balance


def gas_paid_by(net: DealNet, address: Address, executed: TipSet) -> int:
    """What address paid in gas for its messages included in executed's parent tipset."""
    state, chain = net.provider_node.state, net.provider_node.chain
    included = chain.load_tipset(executed.parents)
    key = state.account_key(address, included)
    paid = 0
    for msg in chain.messages_for_tipset(included):
        unsigned = msg.message if isinstance(msg, SignedMessage) else msg
        if state.account_key(unsigned.from_, included) == key:
            _, applied = state.replay(included, msg.cid())
            gas = applied.gas_costs
            paid += gas.base_fee_burn + gas.over_estimation_burn + gas.miner_tip
    return paid


async def test_a_priced_retrieval_is_paid_by_vouchers_and_collected(tmp_path: Path) -> None:
    net = deal_net(tmp_path)
    async with net.running():
        imported = await stored(net, tmp_path / "file")
        assert net.client_rpc is not None and net.provider_rpc is not None
        async with HttpClient(net.provider_rpc.url("/rpc/v0"), token=ADMIN) as miner_api:
            assert await miner_api.call("MarketGetRetrievalAsk") == FREE_ASK.to_json()
            with pytest.raises(RpcCallError, match="needs a payment interval of at least one byte"):
                await miner_api.call("MarketSetRetrievalAsk", {**ASK.to_json(), "PaymentInterval": 0})
            await miner_api.call("MarketSetRetrievalAsk", ASK.to_json())
            assert await miner_api.call("MarketGetRetrievalAsk") == ASK.to_json()
        assert RetrievalAsk.from_bytes(net.provider_meta.get(RETRIEVAL_ASK_KEY) or b"") == ASK  # kept
        async with HttpClient(net.client_rpc.url("/rpc/v1"), token=ADMIN) as v1:
            root = {"/": str(imported.root)}
            (offer,) = await v1.call("ClientFindData", root, None)
            assert offer["Err"] == "" and offer["PricePerByte"] == str(ASK.price_per_byte)
            assert int(offer["MinPrice"]) == ASK.unseal_price + ASK.price_per_byte * offer["Size"]
            order = {
                "Root": root,
                "Piece": None,
                "Size": offer["Size"],
                "Total": offer["MinPrice"],
                "UnsealPrice": offer["UnsealPrice"],
                "PaymentInterval": offer["PaymentInterval"],
                "PaymentIntervalIncrease": offer["PaymentIntervalIncrease"],
                "Client": str(CLIENT),
                "Miner": str(net.miner),
                "MinerPeer": offer["MinerPeer"],
            }
            # The gateway does not serve priced data free; an order under the ask is refused with the reason.
            async with httpx.AsyncClient() as http:
                response = await http.get(net.provider_rpc.url(f"/ipfs/{imported.root}?format=car"))
            assert response.status_code == 402 and "make a retrieval deal" in response.text
            with pytest.raises(RpcCallError, match="price per byte too low"):
                await v1.call("ClientRetrieve", {**order, "Total": str(ASK.unseal_price + offer["Size"])})
            got = await v1.call("ClientRetrieve", order)
            await v1.call(
                "ClientExport", {"Root": root, "DealID": got["DealID"]}, {"Path": str(tmp_path / "o")}
            )
        assert (tmp_path / "o").read_bytes() == (tmp_path / "file").read_bytes()
        done = net.cli.retrievals.get(got["DealID"])
        assert done.car.read_bytes() == imported.car_path.read_bytes()
        assert done.channel is not None and done.lane is not None
        channel, lane = done.channel, done.lane
        # What the client paid is the unseal price and every byte received, no more.
        assert done.paid == ASK.unseal_price + ASK.price_per_byte * done.bytes_received
        refused, deal = net.prov.retrieval_deals.deals  # type: ignore[union-attr]
        assert refused.status == DealStatus.Rejected and "price per byte too low" in refused.message
        assert deal.status == DealStatus.Completed and deal.sent == done.bytes_received
        assert deal.funds_received == done.paid
        # The provider holds the client's vouchers on the deal's lane, one per interval plus the unseal
        # payment and the last; the best of them is the price of the bytes sent.
        provider_paych = net.provider_node.paych
        held = [h.voucher for h in await provider_paych.list_vouchers(channel)]
        assert {v.lane for v in held} == {lane}
        amounts = [v.amount for v in held]
        # the intervals are 400, 700, 1000 bytes: the transfer paused at 400 and 1,100 bytes
        assert 1100 < done.bytes_received < 2100
        paused = [ASK.unseal_price + ASK.price_per_byte * b for b in (400, 1100)]
        assert amounts == [ASK.unseal_price, *paused, done.paid]
        info = net.provider_node.state.miner_info(net.miner, net.head)
        assert await provider_paych.pays_to(channel, info.worker)

        # The provider redeems the lane's voucher, settles the channel, and collects after the delay.
        best = await provider_paych.best_spendable_by_lane(channel)
        assert best[lane].amount == done.paid
        submitted = await net.landed(
            net.provider_node, await provider_paych.submit_voucher(channel, best[lane], b"", b"")
        )
        assert submitted.receipt.exit_code == 0
        settled = await net.landed(net.provider_node, await provider_paych.settle(channel))
        assert settled.receipt.exit_code == 0
        state = await provider_paych.channel_state(channel)
        assert state is not None and state.state.to_send == done.paid
        settling_at = state.state.settling_at
        await net.until(lambda: net.head.height >= settling_at)
        collected = await net.landed(net.provider_node, await provider_paych.collect(channel))
        assert collected.receipt.exit_code == 0
        assert await provider_paych.channel_state(channel) is None  # the channel actor is gone
        executed = collected.tipset
        included = net.provider_node.chain.load_tipset(executed.parents)
        before = net.provider_node.chain.load_tipset(included.parents)
        assert included.height == before.height + 1
        rise = balance(net, info.worker, included) - balance(net, info.worker, before)
        assert rise == done.paid - gas_paid_by(net, info.worker, executed)
        assert rise > 0


async def test_a_client_paying_short_is_cut_off(tmp_path: Path) -> None:
    net = deal_net(tmp_path)
    async with net.running():
        imported = await stored(net, tmp_path / "file")
        net.prov.retrieval_ask = ASK
        paych = net.client_node.paych
        info = net.provider_node.state.miner_info(net.miner, net.head)
        with trio.fail_after(WAIT):
            got = await paych.get_paych(CLIENT, info.worker, 10**18)
            assert got.wait_sentinel is not None
            channel = await paych.get_wait_ready(got.wait_sentinel)
        lane = await paych.allocate_lane(channel)
        params = RetrievalParams(
            price_per_byte=ASK.price_per_byte,
            payment_interval=ASK.payment_interval,
            payment_interval_increase=ASK.payment_interval_increase,
            unseal_price=ASK.unseal_price,
        )
        honest = voucher_source(paych, channel, lane, 1)

        async def short(owed: int, received: int) -> DealPayment:
            # pays what is owed for unsealing, then a byte's worth less than each interval's due
            return await honest(owed if received == 0 else owed - ASK.price_per_byte, received)

        payer = ClientPayments(params, short, max_total=10**18)
        out = tmp_path / "out.car"
        with pytest.raises(RetrievalRefused) as caught:
            await retrieve_paid(
                net.client_host, net.provider_host.peer_id, DealProposal(imported.root, 1, params), payer, out
            )
        owed = ASK.price_per_byte * 400
        short_by_one = owed - ASK.price_per_byte
        reason = f"deal 1: the voucher adds {short_by_one} attoFIL but {owed} are owed after 400 bytes"
        assert reason in str(caught.value)
        assert not out.exists() and not list(tmp_path.glob(".out.car*"))
        (deal,) = net.prov.retrieval_deals.deals  # type: ignore[union-attr]
        assert deal.status == DealStatus.Errored and reason in deal.message
        assert deal.sent == 400  # nothing past the first interval

        # A piece the provider can no longer read ends the deal with that reason, not a silent hang.
        (piece,) = net.prov.pieces.pieces()
        piece.car_path.write_bytes(piece.car_path.read_bytes()[:100])
        honest_payer = ClientPayments(params, voucher_source(paych, channel, lane, 2), max_total=10**18)
        with pytest.raises(RetrievalRefused, match="Errored the provider cannot read the data"):
            await retrieve_paid(
                net.client_host,
                net.provider_host.peer_id,
                DealProposal(imported.root, 2, params),
                honest_payer,
                out,
            )
        assert not out.exists()
