"""`/fil/retrieval/qry/1.0.0` between two libp2p hosts on 127.0.0.1, and ClientFindData's offers."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.types.address import Address
from node.config import Libp2pConfig
from node.markets import retrieval_query
from node.markets.piecestore import PieceStore, RetrievalAsk
from node.markets.retrieval_client import Candidate, find_data
from node.markets.unixfs import import_to_car
from node.p2p.host import Libp2pHost
from node.p2p.identity import MemoryIdentity, load_or_create_identity
from node.p2p.streamio import read_cbor, write_cbor

WORKER = Address.new_id(1001)
MINER = Address.new_id(1000)


def new_host() -> Libp2pHost:
    return Libp2pHost(Libp2pConfig(), load_or_create_identity(MemoryIdentity()))


@pytest.fixture
async def hosts(
    nursery: trio.Nursery, tmp_path: Path
) -> AsyncIterator[tuple[Libp2pHost, Libp2pHost, PieceStore]]:
    (tmp_path / "file").write_bytes(b"retrieve me" * 50_000)
    made = import_to_car(tmp_path / "file", tmp_path / "file.car")
    store = PieceStore.open(tmp_path / "pieces")
    store.add_car(tmp_path / "file.car", piece_cid=made.piece_cid)
    client, provider = new_host(), new_host()
    retrieval_query.RetrievalQueryProvider(
        store,
        payment_address=WORKER,
        ask=RetrievalAsk(price_per_byte=2, unseal_price=7, payment_interval=1000),
    ).register(provider)
    with trio.fail_after(10):
        await nursery.start(client.run)
        await nursery.start(provider.run)
        await client.connect(provider.addrs_listen())
    yield client, provider, store


async def test_available_with_the_ask_s_terms(hosts: tuple[Libp2pHost, Libp2pHost, PieceStore]) -> None:
    client, provider, store = hosts
    piece = store.pieces()[0]
    for asked in (None, piece.piece_cid):
        answer = await retrieval_query.query(client, provider.peer_id, piece.roots[0], asked)
        assert answer == retrieval_query.QueryResponse(
            status=retrieval_query.QueryResponseStatus.Available,
            piece_cid_found=retrieval_query.QueryItemStatus.Available,
            size=piece.unpadded_size,
            payment_address=WORKER,
            min_price_per_byte=2,
            max_payment_interval=1000,
            max_payment_interval_increase=1 << 20,
            unseal_price=7,
        )
        assert answer.piece_retrieval_price() == piece.unpadded_size * 2 + 7


async def test_unavailable_says_why(hosts: tuple[Libp2pHost, Libp2pHost, PieceStore]) -> None:
    client, provider, store = hosts
    root = store.pieces()[0].roots[0]
    unknown = CID.hash_of(dagcbor.encode("nothing"))
    answer = await retrieval_query.query(client, provider.peer_id, unknown)
    assert (
        answer.status == retrieval_query.QueryResponseStatus.Unavailable
        and "not in any piece" in answer.message
    )
    other_piece = CID.parse("baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq")
    answer = await retrieval_query.query(client, provider.peer_id, root, other_piece)
    assert (
        answer.piece_cid_found == retrieval_query.QueryItemStatus.Unavailable
        and str(other_piece) in answer.message
    )


async def test_the_wire_form_is_go_fil_markets_map_encoding(
    hosts: tuple[Libp2pHost, Libp2pHost, PieceStore],
) -> None:
    client, provider, store = hosts
    root = store.pieces()[0].roots[0]
    assert dagcbor.decode(retrieval_query.Query(root).to_bytes()) == {
        "PayloadCID": root,
        "QueryParams": {"PieceCID": None},
    }
    stream = await client.open_stream(provider.peer_id, retrieval_query.QUERY_PROTOCOL, timeout=10)
    await write_cbor(
        stream, dagcbor.encode({"PayloadCID": root, "QueryParams": {"PieceCID": None}}), timeout=10
    )
    raw = await read_cbor(stream, max_bytes=1 << 16, timeout=10)
    assert sorted(raw) == sorted(
        [
            "Status",
            "PieceCIDFound",
            "Size",
            "PaymentAddress",
            "MinPricePerByte",
            "MaxPaymentInterval",
            "MaxPaymentIntervalIncrease",
            "Message",
            "UnsealPrice",
        ]
    )
    assert raw["Status"] == 0 and raw["PaymentAddress"] == WORKER.to_bytes()
    await stream.close()


async def test_a_malformed_query_gets_no_answer(hosts: tuple[Libp2pHost, Libp2pHost, PieceStore]) -> None:
    client, provider, _ = hosts
    stream = await client.open_stream(provider.peer_id, retrieval_query.QUERY_PROTOCOL, timeout=10)
    await write_cbor(stream, dagcbor.encode({"PayloadCID": "not a cid", "QueryParams": {}}), timeout=10)
    with pytest.raises(Exception):  # noqa: B017 - a reset or an empty read, whichever comes first
        await read_cbor(stream, max_bytes=1 << 16, timeout=5)


async def test_find_data_makes_lotus_offers(hosts: tuple[Libp2pHost, Libp2pHost, PieceStore]) -> None:
    client, provider, store = hosts
    piece = store.pieces()[0]
    stranger = new_host()
    offers = await find_data(
        client,
        piece.roots[0],
        None,
        [Candidate(MINER, provider.peer_id), Candidate(Address.new_id(2000), stranger.peer_id)],
    )
    good, bad = offers
    assert (
        good.err == "" and good.size == piece.unpadded_size and good.min_price == piece.unpadded_size * 2 + 7
    )
    assert good.to_json()["MinerPeer"] == {"Address": "t01000", "ID": provider.id(), "PieceCID": None}
    assert good.to_json()["PricePerByte"] == "2"
    assert bad.err and bad.miner == Address.new_id(2000)
    with pytest.raises(retrieval_query.QueryError):
        await retrieval_query.query(client, stranger.peer_id, piece.roots[0], timeout=2)
    assert retrieval_query.QueryParams().piece_cid is None
