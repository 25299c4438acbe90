"""Storage deals between two nodes over libp2p, driven through the Client* RPC methods as a Lotus script
would: import, ask, proposal, HTTP transfer, piece check, publication and the hand-over to the sealing
pipeline (a stand-in that records what it was given); an offline deal and its data import; the deal's
history as DealStages."""

from pathlib import Path
from typing import Any

import pytest
import trio

from chain.encoding.commcid import piece_cid_v1
from node.markets.chain_view import as_stored
from node.markets.deal_states import StorageDealStatus as S
from node.markets.storage_client import DealRequest
from proofs.commp import commp_of_bytes
from rpc.client import HttpClient, RpcCallError
from tests.markets.deal_net import ADMIN, CLIENT, WAIT, DealNet, FakeSealer, deal_file, deal_net

pytestmark = pytest.mark.slow


async def wait_state(v1: HttpClient, proposal: dict[str, str], *names: str) -> dict[str, Any]:
    """Poll ClientGetDealInfo until the deal's state is one of names (or it failed)."""
    with trio.fail_after(WAIT):
        while True:
            info: dict[str, Any] = await v1.call("ClientGetDealInfo", proposal)
            name = await v1.call("ClientGetDealStatus", info["State"])
            if name in names or name in ("StorageDealError", "StorageDealProposalRejected"):
                return info
            await trio.sleep(0.05)


async def test_a_deal_over_rpc_is_published_and_handed_to_the_pipeline(tmp_path: Path) -> None:
    net = deal_net(tmp_path)
    data = deal_file(tmp_path / "file")
    async with net.running():
        assert net.client_rpc is not None and net.provider_rpc is not None
        async with (
            HttpClient(net.client_rpc.url("/rpc/v1"), token=ADMIN) as v1,
            HttpClient(net.client_rpc.url("/rpc/v0"), token=ADMIN) as v0,
            HttpClient(net.provider_rpc.url("/rpc/v1"), token=ADMIN) as miner_api,
        ):
            imported = await v1.call("ClientImport", {"Path": str(data), "IsCAR": False})
            root = imported["Root"]
            piece = await v1.call("ClientDealPieceCID", root)
            assert piece["PieceSize"] == 2048
            peer = net.provider_host.peer_id.to_base58()
            ask = await v1.call("ClientQueryAsk", peer, str(net.miner))
            assert ask["Response"]["Price"] == "500000000"
            assert ask["Response"]["Miner"] == str(net.miner)
            assert "/fil/storage/mk/1.2.0" in ask["DealProtocols"]
            assert (await v0.call("ClientQueryAsk", peer, str(net.miner)))["SeqNo"] == 0
            assert (await miner_api.call("MarketGetAsk"))["Ask"] == ask["Response"]
            price = 500_000_000 * 2048 // (1 << 30)
            params = {
                "Data": {"TransferType": "graphsync", "Root": root, "PieceCid": None, "PieceSize": 0},
                "Wallet": str(CLIENT),
                "Miner": str(net.miner),
                "EpochPrice": str(price),
                "MinBlocksDuration": 50,
                "AddFunds": True,
            }
            proposal = await v1.call("ClientStartDeal", params)
            info = await wait_state(v1, proposal, "StorageDealStaged")
            assert await v1.call("ClientGetDealStatus", info["State"]) == "StorageDealStaged", info["Message"]
            listed = await v1.call("ClientListDeals")
            assert [d["ProposalCid"] for d in listed] == [proposal]
            provider_deals = await miner_api.call("Filpy.StorageDealsList")
            assert [d["ChainDealID"] for d in provider_deals] == [info["DealID"]]
            assert provider_deals[0]["BytesReceived"] == provider_deals[0]["TransferSize"]

    assert info["PieceCID"] == piece["PieceCID"]
    assert info["Size"] == 2032 and info["PricePerEpoch"] == str(price)
    assert info["DataRef"]["Root"] == root and info["DataRef"]["TransferType"] == "http"
    stages = [s["Name"] for s in info["DealStages"]["Stages"]]
    assert stages[:3] == [
        "StorageDealClientFunding",
        "StorageDealFundsReserved",
        "StorageDealProposalAccepted",
    ]
    assert stages[-2:] == ["StorageDealAwaitingPreCommit", "StorageDealStaged"]
    assert all(log["Log"].startswith("epoch ") for s in info["DealStages"]["Stages"] for log in s["Logs"])
    sealer = net.sealer
    assert isinstance(sealer, FakeSealer)
    ((deal, _car, car_bytes),) = sealer.added
    record = net.client.deals()[0]
    assert car_bytes == Path(record.car_path).read_bytes()
    assert deal.deal_id == info["DealID"]
    head = net.client_node.chain.head()
    on_chain = net.client_node.state.storage_deal(deal.deal_id, head)
    assert on_chain is not None
    assert on_chain.proposal == as_stored(net.client_node, record.client_deal_proposal.proposal, head)
    assert record.token == "" and not net.cli.data.offered(record.uuid)  # the token died with the transfer
    # the provider serves the piece for retrieval
    assert net.prov.pieces.get(deal.proposal.piece_cid) is not None


async def test_an_offline_deal_waits_for_its_data(tmp_path: Path) -> None:
    net = deal_net(tmp_path)
    imported = net.import_file(deal_file(tmp_path / "file"))
    async with net.running():
        proposal = await net.start_deal(imported, transfer_type="manual")
        record = await net.deal_reaches(proposal, S.StorageDealWaitingForData)
        assert net.provider_rpc is not None
        async with HttpClient(net.provider_rpc.url("/rpc/v1"), token=ADMIN) as miner_api:
            (deal,) = await miner_api.call("Filpy.StorageDealsList")
            assert deal["IsOffline"] and deal["State"] == "StorageDealWaitingForData"
            with pytest.raises(RpcCallError, match="is not a file"):
                await miner_api.call(
                    "Filpy.StorageDealImportData", deal["DealUuid"], str(tmp_path / "nothing")
                )
            imported_deal = await miner_api.call(
                "Filpy.StorageDealImportData", deal["DealUuid"], str(imported.car_path)
            )
            assert imported_deal["State"] == "StorageDealVerifyData"
        record = await net.deal_reaches(proposal, S.StorageDealStaged)
    assert record.transfer_type == "manual" and record.car_path == ""


async def started(net: DealNet, **changes: Any) -> tuple[Any, DealRequest]:
    imported = net.import_file(deal_file(net.root / f"file-{len(net.cli.imports.imports())}"))
    return imported, await net.deal_request(imported, **changes)


async def test_stored_data_is_found_and_retrieved_through_the_client_api(tmp_path: Path) -> None:
    net = deal_net(tmp_path)
    data = deal_file(tmp_path / "file")
    imported = net.import_file(data)
    async with net.running():
        _, request = await started(net, root=imported.root)
        proposal = await net.client.start_deal(request)
        await net.deal_reaches(proposal, S.StorageDealStaged)
        assert net.client_rpc is not None
        async with (
            HttpClient(net.client_rpc.url("/rpc/v1"), token=ADMIN) as v1,
            HttpClient(net.client_rpc.url("/rpc/v0"), token=ADMIN) as v0,
        ):
            root = {"/": str(imported.root)}
            (offer,) = await v1.call("ClientFindData", root, None)
            assert offer["Err"] == "" and offer["Miner"] == str(net.miner)
            assert offer["Size"] == 2032 and offer["MinPrice"] == "0"
            assert offer["MinerPeer"]["ID"] == net.provider_host.peer_id.to_base58()
            mine = await v1.call("ClientMinerQueryOffer", str(net.miner), root, None)
            assert mine["Err"] == "" and mine["Piece"] is None
            order = {
                "Root": root,
                "Piece": None,
                "Size": offer["Size"],
                "Total": "0",
                "UnsealPrice": "0",
                "PaymentInterval": 0,
                "PaymentIntervalIncrease": 0,
                "Client": str(CLIENT),
                "Miner": str(net.miner),
                "MinerPeer": offer["MinerPeer"],
            }
            out = tmp_path / "out"
            assert await v0.call("ClientRetrieve", order, {"Path": str(out), "IsCAR": False}) is None
            assert out.read_bytes() == data.read_bytes()
            got = await v1.call("ClientRetrieve", order)
            await v1.call("ClientRetrieveWait", got["DealID"])
            await v1.call(
                "ClientExport",
                {"Root": root, "DealID": got["DealID"]},
                {"Path": str(tmp_path / "o.car"), "IsCAR": True},
            )
            assert (tmp_path / "o.car").read_bytes() == imported.car_path.read_bytes()
            await v1.call(
                "ClientExport",
                {"Root": root, "DealID": got["DealID"]},
                {"Path": str(tmp_path / "o"), "IsCAR": False},
            )
            assert (tmp_path / "o").read_bytes() == data.read_bytes()
            with pytest.raises(RpcCallError, match="the order's Total 5 is below its UnsealPrice 10"):
                await v1.call("ClientRetrieve", {**order, "Total": "5", "UnsealPrice": "10"})
            unknown = {"/": str(piece_cid_v1(commp_of_bytes(b"another piece").commitment))}
            (missing,) = await v1.call("ClientFindData", root, unknown)
            assert "unavailable" in missing["Err"]
