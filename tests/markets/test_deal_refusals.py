"""Bad deals, each refused with its reason and nothing lost: proposals the provider refuses (unsigned,
mis-signed, under the ask, too little client escrow, a start epoch too soon, collateral under the
market's floor, a reused UUID), requests the client refuses before spending anything, and data that is
not what the proposal says (the piece CID recomputed after the transfer)."""

import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import pytest

from actors import builtin
from actors.market.types import ClientDealProposal, DealProposal, MarketMethod
from chain.crypto.signature import Signature, SigType
from chain.mpool.push import message_to_push
from chain.types.address import Address
from node.markets.chain_view import available_escrow, collateral_bounds
from node.markets.deal_states import StorageDealStatus as S
from node.markets.deal_transfer import new_token
from node.markets.imports import Import
from node.markets.storage_client import ClientError, DealRequest, send_proposal
from node.markets.storage_types import TRANSFER_HTTP, DealParams, DealResponse, HttpRequest, Transfer
from tests.consensus.devchain import CAROL
from tests.markets.deal_net import ASK_PRICE, CLIENT, FIL, DealNet, deal_file, deal_net

pytestmark = pytest.mark.slow

PRICE: Final = ASK_PRICE * 2048 // (1 << 30)


async def fund_client(net: DealNet, amount: int = FIL) -> None:
    message = message_to_push(
        builtin.STORAGE_MARKET_ACTOR_ADDR, CLIENT, value=amount, method=MarketMethod.AddBalance, params=CLIENT
    )
    signed = await net.client_node.run_sync(net.client_node.pusher.push_message, message, None)
    landed = await net.landed(net.client_node, signed.cid())
    assert landed.receipt.exit_code == 0


def proposal_for(net: DealNet, imported: Import, **changes: Any) -> DealProposal:
    head = net.client_node.chain.head()
    start = head.height + 150
    collateral = collateral_bounds(net.client_node, imported.piece_size, head).min * 12 // 10
    proposal = DealProposal(
        piece_cid=imported.piece_cid,
        piece_size=imported.piece_size,
        verified_deal=False,
        client=CLIENT,
        provider=net.miner,
        label=str(imported.root),
        start_epoch=start,
        end_epoch=start + 100,
        storage_price_per_epoch=PRICE,
        provider_collateral=collateral,
        client_collateral=0,
    )
    return replace(proposal, **changes)


def signed(net: DealNet, proposal: DealProposal) -> ClientDealProposal:
    return ClientDealProposal(proposal, net.client_node.wallet.sign(CLIENT, proposal.signing_bytes()))


def params_for(
    net: DealNet, deal: ClientDealProposal, imported: Import, *, car: Path | None = None
) -> DealParams:
    """An HTTP deal whose data (car, default the import's CAR) the client's node offers."""
    deal_uuid = uuid.uuid4()
    token = new_token()
    source = car or imported.car_path
    size = source.stat().st_size
    net.cli.data.offer(deal_uuid, source, size, token)
    assert net.client_rpc is not None
    request = HttpRequest(
        f"{net.client_rpc.url('')}/deal-data/{deal_uuid}", {"Authorization": f"Bearer {token}"}
    )
    return DealParams(
        deal_uuid=deal_uuid.bytes,
        is_offline=False,
        client_deal_proposal=deal,
        deal_data_root=imported.root,
        transfer=Transfer(type=TRANSFER_HTTP, params=request.to_bytes(), size=size),
    )


async def propose(net: DealNet, params: DealParams) -> DealResponse:
    return await send_proposal(net.client_host, net.provider_host.peer_id, params)


async def test_the_provider_refuses_bad_proposals_and_keeps_nothing(tmp_path: Path) -> None:
    net = deal_net(tmp_path)
    imported = net.import_file(deal_file(tmp_path / "file"))
    async with net.running():
        head = net.client_node.chain.head()
        # no client escrow yet
        poor = await propose(net, params_for(net, signed(net, proposal_for(net, imported)), imported))
        assert not poor.accepted
        assert "client available funds in escrow 0 not enough to meet storage cost" in poor.message
        await fund_client(net)
        escrow = available_escrow(net.client_node, CLIENT, net.client_node.chain.head())
        good = proposal_for(net, imported)
        cases: list[tuple[ClientDealProposal, str]] = [
            (ClientDealProposal(good, Signature(SigType.SECP256K1, b"")), "invalid signature"),
            (ClientDealProposal(good, CAROL.sign(good.signing_bytes())), "invalid signature"),
            (signed(net, replace(good, storage_price_per_epoch=PRICE - 1)), "less than asking price"),
            (
                signed(net, replace(good, start_epoch=head.height + 10, end_epoch=head.height + 110)),
                "is too soon: sealing needs 80 epochs",
            ),
            (signed(net, replace(good, provider_collateral=1)), "below minimum"),
            (signed(net, replace(good, end_epoch=good.start_epoch + 5)), "deal duration out of bounds"),
            (signed(net, replace(good, provider=CLIENT)), "incorrect provider for deal"),
            (signed(net, replace(good, piece_size=4096)), "does not fit in a 2048-byte sector"),
        ]
        for deal, reason in cases:
            response = await propose(net, params_for(net, deal, imported))
            assert not response.accepted
            assert reason in response.message, (reason, response.message)
        assert net.provider.deals() == []
        assert available_escrow(net.client_node, CLIENT, net.client_node.chain.head()) == escrow

        # a good one is accepted; its UUID cannot be taken by another proposal, asking again is answered alike
        params = params_for(net, signed(net, good), imported)
        assert (await propose(net, params)).accepted
        assert (await propose(net, params)).accepted
        other = replace(params, client_deal_proposal=signed(net, replace(good, label="other")))
        reused = await propose(net, other)
        assert not reused.accepted and "is already used by another deal" in reused.message
        assert len(net.provider.deals()) == 1


async def test_the_client_refuses_deals_it_cannot_make(tmp_path: Path) -> None:
    net = deal_net(tmp_path)
    imported = net.import_file(deal_file(tmp_path / "file"))
    base = DealRequest(
        root=imported.root, wallet=CLIENT, miner=net.miner, epoch_price=PRICE, min_blocks_duration=50
    )
    async with net.running():
        pending_before = len(net.client_node.mpool.pending()[0])
        refusals = [
            (replace(base, epoch_price=PRICE - 1), "is under the provider's ask"),
            (base, "the deal needs"),  # no escrow and no consent to add funds
            (replace(base, root=imported.piece_cid), "no import has root"),
            (replace(base, verified=True, add_funds=True), "no verified registry"),
            (replace(base, wallet=Address.of_key(CAROL), add_funds=True), "doesn't exist in wallet"),
            (replace(base, start_epoch=1, add_funds=True), "has already passed"),
        ]
        for request, reason in refusals:
            with pytest.raises(ClientError, match=reason):
                await net.client.start_deal(request)
        assert net.client.deals() == []
        assert len(net.client_node.mpool.pending()[0]) == pending_before  # no AddBalance was sent


async def test_data_that_is_not_the_proposed_piece_fails_the_deal(tmp_path: Path) -> None:
    net = deal_net(tmp_path)
    imported = net.import_file(deal_file(tmp_path / "file"))
    other = net.import_file(deal_file(tmp_path / "other"))
    assert other.car_size == imported.car_size and other.piece_cid != imported.piece_cid
    async with net.running():
        await fund_client(net)
        escrow = available_escrow(net.client_node, CLIENT, net.client_node.chain.head())
        params = params_for(net, signed(net, proposal_for(net, imported)), imported, car=other.car_path)
        assert (await propose(net, params)).accepted
        record = await net.provider.wait_for(params.uuid, S.StorageDealStaged)
    assert record.state == S.StorageDealError
    assert record.message.startswith("piece CID mismatch after transfer:")
    assert str(imported.piece_cid) in record.message
    staging = tmp_path / "provider" / "deal-staging"
    assert list(staging.iterdir()) == []  # the transferred data is gone
    assert net.prov.pieces.pieces() == []  # and nothing is served
    assert net.sealer.added == []  # type: ignore[attr-defined]
    head = net.client_node.chain.head()
    assert available_escrow(net.client_node, CLIENT, head) == escrow


async def test_a_deal_whose_provider_goes_silent_fails_at_its_start_epoch(tmp_path: Path) -> None:
    net = deal_net(tmp_path, start_in=60)  # the same failure over fewer epochs than the default 150
    imported = net.import_file(deal_file(tmp_path / "file"))
    async with net.running():
        proposal = await net.start_deal(imported)
        await net.deal_reaches(proposal, S.StorageDealProposalAccepted)
        net.stop_provider()  # accepted, then never heard of again
        failed = await net.client.wait_for(proposal, S.StorageDealError)
    start = failed.client_deal_proposal.proposal.start_epoch
    assert failed.message == f"the deal's start epoch {start} passed before the provider published it"
    assert failed.reserved == 0 and failed.token == "" and not net.cli.data.offered(failed.uuid)
