"""A storage deal between two nodes over libp2p: ask, proposal, HTTP transfer, piece check, publication
and the hand-over to the sealing pipeline (a stand-in that records what it was given)."""

from pathlib import Path

import pytest

from node.markets.chain_view import as_stored
from node.markets.deal_states import StorageDealStatus as S
from node.markets.storage_client import DealRequest
from tests.markets.deal_net import CLIENT, FakeSealer, deal_file, deal_net

pytestmark = pytest.mark.slow


async def test_a_deal_is_published_and_handed_to_the_pipeline(tmp_path: Path) -> None:
    net = deal_net(tmp_path)
    imported = net.import_file(deal_file(tmp_path / "file"))
    assert imported.piece_size == 2048
    async with net.running():
        ask = await net.client.query_ask(None, net.miner)
        price = ask.min_price(imported.piece_size)
        proposal = await net.client.start_deal(
            DealRequest(
                root=imported.root,
                wallet=CLIENT,
                miner=net.miner,
                epoch_price=price,
                min_blocks_duration=50,
                add_funds=True,
            )
        )
        record = await net.client.wait_for(proposal, S.StorageDealStaged)
        assert record.state == S.StorageDealStaged, record.message
    sealer = net.prov.sealer
    assert isinstance(sealer, FakeSealer)
    ((deal, car, data),) = sealer.added
    assert data == imported.car_path.read_bytes()
    assert deal.deal_id == record.deal_id
    head = net.cli.node.chain.head()
    on_chain = net.cli.node.state.storage_deal(deal.deal_id, head)
    assert on_chain is not None
    assert on_chain.proposal == as_stored(net.cli.node, record.client_deal_proposal.proposal, head)
    states = [e.state for e in record.events]
    assert states == [
        S.StorageDealClientFunding,
        S.StorageDealFundsReserved,
        S.StorageDealProposalAccepted,
        *[s for s in states[3:-2]],
        S.StorageDealAwaitingPreCommit,
        S.StorageDealStaged,
    ]
