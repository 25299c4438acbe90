"""The deal code's rules one by one, without a network: the provider's proposal checks, the ask store
(sequence numbers, signatures, what verify_ask refuses), the state tables, the deal store's history and
durability, the publish answer's deal IDs, Lotus's deal end alignment, the wire types' encodings."""

import uuid
from dataclasses import replace
from pathlib import Path
from typing import Final

import plyvel
import pytest

from actors.market.types import (
    ClientDealProposal,
    DealProposal,
    PublishStorageDealsParams,
    PublishStorageDealsReturn,
)
from chain.chainstore.metadata import LevelDBMetadata, MemoryMetadata
from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.signature import Signature, SigType, is_valid
from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.commcid import piece_cid_v1
from chain.params import DEVNET
from chain.types.address import Address
from chain.types.bitfield import BitField
from node.markets.chain_view import CollateralBounds
from node.markets.deal_checks import ChainFacts, ProviderTerms, check_proposal
from node.markets.deal_publisher import published_ids
from node.markets.deal_states import (
    CLIENT_TRANSITIONS,
    PROVIDER_TRANSITIONS,
    IllegalDealTransition,
    StorageDealStatus,
    boost_checkpoint,
    check_transition,
    state_name,
)
from node.markets.deal_store import ClientDealRecord, DealStore, ProviderDealRecord
from node.markets.retrieval_transports import (
    TransportProtocol,
    TransportsResponse,
    http_urls,
    url_to_multiaddr,
)
from node.markets.storage_ask import AskError, AskStore
from node.markets.storage_client import deal_end
from node.markets.storage_types import (
    DealParams,
    DealResponse,
    HttpRequest,
    StorageAsk,
    Transfer,
    signed_proposal_cid,
)
from proofs.commp import commp_of_bytes

S = StorageDealStatus
CLIENT_KEY: Final = PrivateKey.derive(KeyType.SECP256K1, b"deal-rules/client")
WORKER_KEY: Final = PrivateKey.derive(KeyType.BLS, b"deal-rules/worker")
CLIENT: Final = Address.of_key(CLIENT_KEY)
MINER: Final = Address.new_id(1000)
PIECE: Final = commp_of_bytes(bytes(1500))
EPOCH: Final = 1000
TERMS: Final = ProviderTerms(sealing_lead=80)


def ask(**changes: object) -> StorageAsk:
    base = StorageAsk(
        price=1 << 30,  # 1 attoFIL per byte per epoch
        verified_price=0,
        min_piece_size=256,
        max_piece_size=2048,
        miner=MINER,
        timestamp=EPOCH - 10,
        expiry=EPOCH + 10_000,
        seq_no=0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def facts(**changes: object) -> ChainFacts:
    base = ChainFacts(
        epoch=EPOCH,
        policy=DEVNET,
        sector_size=2048,
        client_key=CLIENT,
        client_available=10**18,
        collateral=CollateralBounds(1000, 10**30),
        provider_available=10**18,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def proposal(**changes: object) -> DealProposal:
    base = DealProposal(
        piece_cid=piece_cid_v1(PIECE.commitment),
        piece_size=PIECE.padded_size,
        verified_deal=False,
        client=CLIENT,
        provider=MINER,
        label="bafkqaaa",
        start_epoch=EPOCH + 100,
        end_epoch=EPOCH + 200,
        storage_price_per_epoch=2048,
        provider_collateral=1200,
        client_collateral=0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def params(
    p: DealProposal, *, signer: PrivateKey = CLIENT_KEY, offline: bool = False, **transfer: object
) -> DealParams:
    fields: dict[str, object] = {
        "type": "http",
        "params": HttpRequest("http://127.0.0.1:1/deal-data/x").to_bytes(),
        "size": 1600,
    }
    fields.update(transfer)
    return DealParams(
        deal_uuid=uuid.uuid4().bytes,
        is_offline=offline,
        client_deal_proposal=ClientDealProposal(p, signer.sign(p.signing_bytes())),
        deal_data_root=CID.parse("bafkqaaa"),
        transfer=Transfer() if offline else Transfer(**fields),  # type: ignore[arg-type]
    )


def check(p: DealParams, **kw: object) -> str | None:
    return check_proposal(
        p,
        miner=MINER,
        ask=kw.get("ask", ask()),  # type: ignore[arg-type]
        facts=kw.get("facts", facts()),  # type: ignore[arg-type]
        terms=kw.get("terms", TERMS),  # type: ignore[arg-type]
    )


def test_a_good_proposal_passes_online_and_offline() -> None:
    assert check(params(proposal())) is None
    assert check(params(proposal(), offline=True)) is None


@pytest.mark.parametrize(
    ("deal", "reason"),
    [
        (params(proposal(provider=Address.new_id(7))), "incorrect provider for deal"),
        (params(proposal(), type="graphsync"), "transfer type 'graphsync' is not supported"),
        (params(proposal(), params=b"{}"), "bad transfer parameters: Transfer.Params.URL"),
        (params(proposal(), size=0), "the transfer's size is zero"),
        (params(proposal(), size=3000), "does not fit in a piece of 2048 bytes (2032 bytes of data)"),
        (params(proposal(), signer=PrivateKey.derive(KeyType.SECP256K1, b"other")), "invalid signature"),
        (params(proposal(label="x" * 257)), "deal label can be at most 256 bytes, is 257"),
        (params(proposal(piece_size=1000)), "padded piece size must be a power of two"),
        (params(proposal(piece_size=4096)), "does not fit in a 2048-byte sector"),
        (params(proposal(piece_cid=CID.parse("bafkqaaa"))), "proposal PieceCID had wrong prefix"),
        (params(proposal(end_epoch=EPOCH + 100)), "before proposal start"),
        (params(proposal(start_epoch=EPOCH - 1)), "has already elapsed"),
        (params(proposal(start_epoch=EPOCH + 79, end_epoch=EPOCH + 179)), "the earliest start is 1080"),
        (params(proposal(end_epoch=EPOCH + 105)), "deal duration out of bounds (min, max, provided): 20,"),
        (params(proposal(start_epoch=EPOCH + 100, end_epoch=EPOCH + 100_101)), "invalid deal end epoch"),
        (params(proposal(provider_collateral=999)), "below minimum 1000"),
        (params(proposal(provider_collateral=2001)), "above maximum 2000"),
        (params(proposal(verified_deal=True)), "no verified registry"),
        (params(proposal(storage_price_per_epoch=2047)), "less than asking price: 2047 < 2048"),
    ],
)
def test_each_rule_refuses_with_its_reason(deal: DealParams, reason: str) -> None:
    refusal = check(deal)
    assert refusal is not None and reason in refusal


def test_the_ask_the_escrow_and_the_client_key() -> None:
    deal = params(proposal())
    assert "has not set a storage ask" in (check(deal, ask=None) or "")
    assert "ask expired at epoch" in (check(deal, ask=ask(expiry=EPOCH)) or "")
    assert "less than minimum required size: 2048 < 4096" in (
        check(deal, ask=ask(min_piece_size=4096, max_piece_size=8192)) or ""
    )
    assert "more than maximum allowed size: 2048 > 1024" in (check(deal, ask=ask(max_piece_size=1024)) or "")
    need = proposal().client_balance_requirement
    assert f"not enough to meet storage cost for deal {need}" in (
        check(deal, facts=facts(client_available=need - 1)) or ""
    )
    assert check(deal, facts=facts(client_available=need)) is None
    assert "has no key on chain" in (check(deal, facts=facts(client_key=None)) or "")
    short = facts(provider_available=0)
    assert check(deal, facts=short) is None  # the provider adds collateral
    assert "insufficient funds" in (
        check(deal, facts=short, terms=replace(TERMS, add_collateral=False)) or ""
    )
    unsigned = replace(
        deal, client_deal_proposal=ClientDealProposal(proposal(), Signature(SigType.SECP256K1, b""))
    )
    assert check(unsigned) == "invalid signature: the proposal is not signed by its client"


def test_asks_count_up_are_signed_by_the_worker_and_persist(tmp_path: Path) -> None:
    db = plyvel.DB(str(tmp_path / "db"), create_if_missing=True)
    try:
        store = AskStore(LevelDBMetadata(db, namespace=b"/markets/"))
        worker = Address.of_key(WORKER_KEY)
        assert store.get(MINER) is None
        first = store.set_ask(
            MINER, price=5, verified_price=1, epoch=100, worker=worker, sign=lambda a, d: WORKER_KEY.sign(d)
        )
        second = store.set_ask(
            MINER,
            price=6,
            verified_price=2,
            duration=50,
            max_piece_size=1 << 16,
            epoch=120,
            worker=worker,
            sign=lambda a, d: WORKER_KEY.sign(d),
        )
        assert first.ask is not None and second.ask is not None and second.signature is not None
        assert (first.ask.seq_no, second.ask.seq_no) == (0, 1)
        assert (second.ask.timestamp, second.ask.expiry) == (120, 170)
        assert (second.ask.min_piece_size, second.ask.max_piece_size) == (256, 1 << 16)  # min kept
        assert is_valid(second.signature, worker, second.ask.to_bytes())
        for bad, reason in (
            ({"min_piece_size": 100}, "minimum piece size: minimum piece size is 128"),
            ({"min_piece_size": 4096, "max_piece_size": 2048}, "is above the maximum"),
            ({"price": -1}, "cannot be negative"),
            ({"duration": 0}, "at least one epoch"),
        ):
            with pytest.raises(AskError, match=reason):
                store.set_ask(
                    MINER,
                    **{
                        "price": 1,
                        "verified_price": 1,
                        "epoch": 1,
                        "worker": worker,
                        "sign": lambda a, d: WORKER_KEY.sign(d),
                        **bad,
                    },
                )  # type: ignore[arg-type]
        assert store.get(MINER) == second  # refusals kept nothing
    finally:
        db.close()
    db = plyvel.DB(str(tmp_path / "db"))
    try:
        assert AskStore(LevelDBMetadata(db, namespace=b"/markets/")).get(MINER) == second
    finally:
        db.close()


def test_state_tables() -> None:
    assert state_name(7) == "StorageDealActive" and state_name(29) == "StorageDealAwaitingPreCommit"
    with pytest.raises(ValueError, match="no storage deal status 31"):
        state_name(31)
    check_transition(CLIENT_TRANSITIONS, S.StorageDealFundsReserved, S.StorageDealProposalRejected)
    check_transition(PROVIDER_TRANSITIONS, S.StorageDealSealing, S.StorageDealSlashed)
    check_transition(PROVIDER_TRANSITIONS, S.StorageDealTransferring, S.StorageDealError)
    for table, old, new in (
        (CLIENT_TRANSITIONS, S.StorageDealActive, S.StorageDealStaged),
        (PROVIDER_TRANSITIONS, S.StorageDealTransferring, S.StorageDealPublish),
        (PROVIDER_TRANSITIONS, S.StorageDealError, S.StorageDealActive),
        (CLIENT_TRANSITIONS, S.StorageDealProposalAccepted, S.StorageDealProposalRejected),
    ):
        with pytest.raises(IllegalDealTransition):
            check_transition(table, old, new)
    assert [
        boost_checkpoint(s)
        for s in (
            S.StorageDealTransferring,
            S.StorageDealPublish,
            S.StorageDealPublishing,
            S.StorageDealSealing,
            S.StorageDealActive,
        )
    ] == [
        "Accepted",
        "Transferred",
        "Published",
        "AddedPiece",
        "Complete",
    ]


def record(state: StorageDealStatus = S.StorageDealProposalAccepted) -> ProviderDealRecord:
    deal = params(proposal())
    return ProviderDealRecord(
        deal_uuid=deal.deal_uuid,
        state=state,
        client_deal_proposal=deal.client_deal_proposal,
        signed_proposal_cid=signed_proposal_cid(deal.client_deal_proposal),
        deal_data_root=deal.deal_data_root,
        client_peer="12D3KooW",
        is_offline=False,
        transfer=deal.transfer,
        created=1,
    )


def test_the_deal_store_keeps_history_refuses_bad_moves_and_survives_a_reopen(tmp_path: Path) -> None:
    db = plyvel.DB(str(tmp_path / "db"), create_if_missing=True)
    try:
        meta = LevelDBMetadata(db, namespace=b"/markets/")
        store: DealStore[ProviderDealRecord] = DealStore(
            meta, ProviderDealRecord, b"provider/", PROVIDER_TRANSITIONS
        )
        kept = store.add(record(), 5, "proposal accepted")
        with pytest.raises(ValueError, match="already recorded"):
            store.add(kept, 5)
        moved = store.move(kept, S.StorageDealTransferring, 6, "pulling")
        moved = store.update(moved, bytes_received=10)
        with pytest.raises(IllegalDealTransition):
            store.move(moved, S.StorageDealStaged, 7)
        assert store.get(kept.key) == moved  # the refused move changed nothing
        store.move(moved, S.StorageDealError, 8, "data transfer failed: gone")
    finally:
        db.close()
    db = plyvel.DB(str(tmp_path / "db"))
    try:
        reopened: DealStore[ProviderDealRecord] = DealStore(
            LevelDBMetadata(db, namespace=b"/markets/"),
            ProviderDealRecord,
            b"provider/",
            PROVIDER_TRANSITIONS,
        )
        (again,) = reopened.all()
        assert again.state == S.StorageDealError and again.bytes_received == 10
        assert [(e.state, e.epoch, e.message) for e in again.events] == [
            (S.StorageDealProposalAccepted, 5, "proposal accepted"),
            (S.StorageDealTransferring, 6, "pulling"),
            (S.StorageDealError, 8, "data transfer failed: gone"),
        ]
        assert again.message == "data transfer failed: gone"
    finally:
        db.close()


def test_an_unreadable_record_is_left_alone() -> None:
    meta = MemoryMetadata()
    meta.put(b"client/broken", b"\xa0")
    meta.put(b"client/garbage", b"\xff\xff")
    store: DealStore[ClientDealRecord] = DealStore(meta, ClientDealRecord, b"client/", CLIENT_TRANSITIONS)
    assert store.all() == []
    assert meta.get(b"client/broken") == b"\xa0"


def test_published_ids_follow_the_valid_deals() -> None:
    deal = ClientDealProposal(proposal(), CLIENT_KEY.sign(proposal().signing_bytes()))
    message = PublishStorageDealsParams((deal, deal, deal))
    answer = PublishStorageDealsReturn((40, 41), BitField.from_bits([0, 2]))
    assert published_ids(message, answer) == [40, None, 41]
    with pytest.raises(ValueError, match="does not fit the message"):
        published_ids(message, PublishStorageDealsReturn((40,), BitField.from_bits([0, 2])))
    with pytest.raises(ValueError, match="does not fit the message"):
        published_ids(message, PublishStorageDealsReturn((40,), BitField.from_bits([5])))


def test_deal_ends_on_a_proving_period_boundary() -> None:
    # Lotus calcDealExpiration: the period ends at period_start + k * period - 1
    assert deal_end(102, 50, 120, 7) == 246  # 152 -> the next end of a period starting at 7 (mod 120)
    assert deal_end(102, 50, 120, 7) >= 152
    assert (deal_end(500, 20, 120, 35) + 1 - 35) % 120 == 0
    for start in range(0, 400, 37):
        end = deal_end(start, 25, 60, 11)
        # aligned, long enough, and (Lotus's arithmetic) within two periods of the minimum
        assert end >= start + 25 and (end + 1 - 11) % 60 == 0 and end < start + 25 + 2 * 60


def test_wire_types_are_map_encoded_with_go_names() -> None:
    response = DealResponse(False, "no")
    assert dagcbor.decode(response.to_bytes()) == {"Accepted": False, "Message": "no"}
    deal = params(proposal())
    raw = dagcbor.decode(deal.to_bytes())
    assert sorted(raw) == ["ClientDealProposal", "DealDataRoot", "DealUUID", "IsOffline", "Transfer"]
    assert sorted(raw["Transfer"]) == ["ClientID", "Params", "Size", "Type"]
    assert DealParams.from_bytes(deal.to_bytes()) == deal
    request = HttpRequest.from_bytes(deal.transfer.params)
    assert request.url == "http://127.0.0.1:1/deal-data/x" and request.headers == {}
    assert signed_proposal_cid(deal.client_deal_proposal).multihash.code == 0x12  # sha2-256, as go-cbor-util


def test_retrieval_transports_urls() -> None:
    response = TransportsResponse(
        (
            TransportProtocol("libp2p", (url_to_multiaddr("http://1.2.3.4:5").to_bytes(),)),
            TransportProtocol("http", (url_to_multiaddr("http://127.0.0.1:1234").to_bytes(), b"\x00bad")),
            TransportProtocol("https", (url_to_multiaddr("https://example.com:443").to_bytes(),)),
        )
    )
    assert http_urls(TransportsResponse.from_bytes(response.to_bytes())) == [
        "http://127.0.0.1:1234",
        "https://example.com:443",
    ]
    assert dagcbor.decode(response.to_bytes())["Protocols"][1]["Name"] == "http"
    with pytest.raises(ValueError, match="is not an http"):
        url_to_multiaddr("ftp://x:1")
