"""A node that provides for several miners (node/markets/services.py, node_service.py): a retrieval of a
piece is quoted and paid to the worker of the miner whose deal the piece is served from, not the first
miner's; a miner created while the node runs becomes the one MarketGetAsk is about, as a restart makes
it; and Filpy.ClientDealInclusionProof reads the miner's sector size once, with the proof's check.

In-memory nodes over a devnet genesis of two pre-sealed miners (each with a worker of its own); the
providers run (they read their miner's info from the chain) but no chain moves."""

import shutil
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Final, cast

import pytest
import trio

from actors.market.types import ClientDealProposal, DealProposal
from chain.crypto.signature import Signature, SigType
from chain.encoding.cid import CID
from chain.params import DEVNET
from chain.types.address import Address
from node.config import Libp2pConfig
from node.fullnode import FullNode, in_memory_full_node
from node.keystore import Keystore
from node.markets import storage_client
from node.markets.deal_states import StorageDealStatus as S
from node.markets.deal_store import ClientDealRecord, ProviderDealRecord
from node.markets.imports import ImportStore
from node.markets.node_service import MarketsService, provider_miner
from node.markets.retrieval_query import Query
from node.markets.services import Markets, add_provider, open_markets
from node.markets.storage_ask import set_ask
from node.markets.storage_types import Transfer, signed_proposal_cid
from node.p2p.host import Libp2pHost
from node.wallet import Wallet
from proofs.pip import PieceInclusionProof
from rpc.methods.client import client_deal_inclusion_proof, market_get_ask
from tests.consensus.devchain import genesis_of
from tests.markets.deal_net import deal_file
from tests.mining.local_miners import served_record

WALL: Final = 60.0  # seconds a test may take
CLIENT: Final = Address.new_id(1001)


class Host:
    """The part of a libp2p host the protocols' handlers are set on."""

    def set_stream_handler(self, protocol: object, handler: Any) -> None:
        pass


class Server:
    """An RPC server's mount point, mounting nothing."""

    def mount(self, prefix: str, app: Any) -> None:
        pass


class Sealer:
    """A sealer no deal reaches (no deal here is published)."""

    async def add_deal(self, deal: Any, car: Path) -> Any:
        raise AssertionError("no deal is sealed here")

    async def placement(self, deal_id: int) -> None:
        return None


def node_of(tmp_path: Path) -> FullNode:
    genesis = genesis_of(miners=2)
    wallet = Wallet(Keystore.create(tmp_path / "keystore"))
    for miner in genesis.miners:
        wallet.ensure_key(miner.worker_key)
    return in_memory_full_node(genesis, wallet, policy=replace(DEVNET, block_delay_secs=0))


def miners_of() -> tuple[Address, Address]:
    first, second = (m.id_address for m in genesis_of(miners=2).miners)
    return first, second


def worker_of(node: FullNode, miner: Address) -> Address:
    return node.state.miner_info(miner, node.chain.head()).worker


def provider_deal(miner: Address, piece: CID, car: Path, created: int) -> ProviderDealRecord:
    proposal = DealProposal(piece, 2048, False, CLIENT, miner, "bafkqaaa", 100, 200, 1, 1, 0)
    signed = ClientDealProposal(proposal, Signature(SigType.SECP256K1, bytes(65)))
    return ProviderDealRecord(
        deal_uuid=uuid.uuid4().bytes,
        state=S.StorageDealStaged,
        client_deal_proposal=signed,
        signed_proposal_cid=signed_proposal_cid(signed),
        deal_data_root=CID.parse("bafkqaaa"),
        client_peer="12D3KooW",
        is_offline=True,
        transfer=Transfer(),
        car_path=str(car),
        created=created,
    )


async def test_a_retrieval_is_quoted_and_paid_to_the_worker_of_the_miner_holding_the_piece(
    tmp_path: Path,
) -> None:
    node = node_of(tmp_path)
    first, second = miners_of()
    assert worker_of(node, first) != worker_of(node, second)
    host = cast(Libp2pHost, Host())
    markets = open_markets(node, tmp_path / "repo", host, miner=first, sealer=Sealer())
    add_provider(markets, node, tmp_path / "repo", second, Sealer())
    imported = ImportStore.open(tmp_path / "imports").import_file(deal_file(tmp_path / "file"))
    cars = [tmp_path / "first.car", tmp_path / "second.car"]
    for car in cars:
        shutil.copy(imported.car_path, car)
    with trio.fail_after(WALL):
        async with trio.open_nursery() as nursery:
            for provider in markets.providers.values():
                await nursery.start(provider.run)
            assert markets.provider is not None and markets.provider.miner == first
            query, deals = markets.retrieval_query, markets.retrieval_deals
            assert query is not None and deals is not None
            # data held by the second miner only: its worker is quoted, and the deal's vouchers must pay it
            markets.provider.store.add(provider_deal(second, imported.piece_cid, cars[1], 1), 0)
            piece = markets.pieces.add_car(cars[1], piece_cid=imported.piece_cid)
            answer = query.answer(Query(imported.root))
            assert answer.payment_address == worker_of(node, second)
            assert deals.payment_address(piece) == worker_of(node, second)
            # both miners hold it: the one whose deal's CAR is served, whichever the store now reads
            markets.provider.store.add(provider_deal(first, imported.piece_cid, cars[0], 2), 0)
            assert query.answer(Query(imported.root)).payment_address == worker_of(node, second)
            markets.pieces.add_car(cars[0], piece_cid=imported.piece_cid)
            assert query.answer(Query(imported.root)).payment_address == worker_of(node, first)
            # data not here: the answer names the first miner's worker
            missing = query.answer(Query(CID.parse("bafkqaaa")))
            assert missing.message and missing.payment_address == worker_of(node, first)
            nursery.cancel_scope.cancel()


async def test_a_miner_created_on_a_running_node_becomes_the_one_market_get_ask_is_about(
    tmp_path: Path,
) -> None:
    node = node_of(tmp_path)
    genesis_miner, created = miners_of()
    node.sealing[genesis_miner] = cast(Any, object())
    service = MarketsService(
        node,
        tmp_path / "repo",
        cast(Libp2pHost, Host()),
        Keystore.create(tmp_path / "node-keystore"),
        Libp2pConfig(listen=("/ip4/127.0.0.1/tcp/0",), bootstrap=()),
        server=Server(),
        base_url=lambda: "http://127.0.0.1:1",
    )
    with trio.fail_after(WALL):
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            markets = service.markets
            assert markets is not None and markets.provider is not None
            assert markets.provider.miner == genesis_miner
            # what `filpy miner create` leaves, then hands on (node/mining/services.py ServeCreated)
            worker = worker_of(node, created)
            node.miners.add(served_record(created, worker))
            node.sealing[created] = cast(Any, object())
            await service.take_miner(created)
            assert list(markets.providers) == [genesis_miner, created]
            assert markets.provider.miner == created == provider_miner(node)  # as a restart has it
            terms: dict[str, Any] = {"price": 5, "verified_price": 1, "min_piece_size": 256}
            await set_ask(node, markets.providers[created].asks, created, max_piece_size=2048, **terms)
            ask = await market_get_ask(node)
            assert ask is not None and ask.ask is not None and ask.ask.miner == created
            nursery.cancel_scope.cancel()


async def test_the_inclusion_proof_method_reads_the_sector_size_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = node_of(tmp_path)
    miner, _ = miners_of()
    markets: Markets = open_markets(node, tmp_path / "repo", cast(Libp2pHost, Host()))
    piece = CID.parse("baga6ea4seaqhfjcq47ay6vbbxujwzsyza3rdly2nlicr5m5yjnhd77zx4efhwja")
    proposal = DealProposal(piece, 2048, False, CLIENT, miner, "bafkqaaa", 100, 200, 1, 1, 0)
    signed = ClientDealProposal(proposal, Signature(SigType.SECP256K1, bytes(65)))
    record = ClientDealRecord(
        proposal_cid=signed_proposal_cid(signed),
        deal_uuid=uuid.uuid4().bytes,
        state=S.StorageDealSealing,
        client_deal_proposal=signed,
        wallet=CLIENT,
        root=CID.parse("bafkqaaa"),
        transfer_type="manual",
        provider_peer="12D3KooW",
        deal_id=7,
        sector_number=3,
        piece_offset=0,
        # the piece is the whole sector: CommD is CommP, with an empty path
        inclusion_proof=PieceInclusionProof(0, 2048, ()).to_bytes(),
        created=1,
    )
    markets.client.store.add(record, 0)
    monkeypatch.setattr(storage_client, "sector_with_deal", lambda *args: SimpleNamespace(unsealed_cid=piece))
    reads: list[Address] = []
    miner_info: Callable[..., Any] = node.state.miner_info

    def counted(address: Address, ts: Any) -> Any:
        reads.append(address)
        return miner_info(address, ts)

    monkeypatch.setattr(node.state, "miner_info", counted)
    answer = await client_deal_inclusion_proof(node, record.proposal_cid)
    assert answer.verified and answer.comm_d == piece, answer.message
    assert answer.sector_size == 2048
    assert reads == [miner]
