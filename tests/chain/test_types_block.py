"""Block headers and their parts, message receipts: round trips, signing bytes, strict decoding."""

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.signature import Signature, SignatureError, SigType, verify
from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.schema import MAX_ARRAY_LENGTH
from chain.types.address import Address
from chain.types.beacon import BeaconEntry
from chain.types.block import BlockHeader, BlockMsg, MsgMeta, PoStProof
from chain.types.election import ElectionProof, Ticket
from chain.types.receipt import MessageReceipt
from tests.chain.hostile import decodes_or_refuses, names_the_bad_field, refuses_cut_or_extended
from tests.chain.type_strategies import (
    beacon_entries,
    block_headers,
    cids,
    dag_cbor_values,
    election_proofs,
    post_proofs,
    receipts,
    tickets,
)

LINK = CID.hash_of(b"link")


def _header(**changes: Any) -> BlockHeader:
    fields: dict[str, Any] = {
        "miner": Address.new_id(1000),
        "ticket": Ticket(b"\x01" * 96),
        "election_proof": ElectionProof(1, b"\x02" * 96),
        "beacon_entries": (BeaconEntry(7, b"\x03" * 96),),
        "win_post_proof": (PoStProof(0, b"\x04" * 192),),
        "parents": (LINK,),
        "parent_weight": 12345,
        "height": 10,
        "parent_state_root": LINK,
        "parent_message_receipts": LINK,
        "messages": LINK,
        "bls_aggregate": Signature(SigType.BLS, b"\xc0" + bytes(95)),
        "timestamp": 1_700_000_000,
        "block_sig": None,
        "parent_base_fee": 100,
    }
    fields.update(changes)
    return BlockHeader(**fields)


@given(block_headers())
@settings(max_examples=60)
def test_header_round_trip(header: BlockHeader) -> None:
    data = header.to_bytes()
    decoded = BlockHeader.from_bytes(data)
    assert decoded == header
    assert decoded.cid() == header.cid() == CID.hash_of(data)
    signing = dagcbor.decode(header.signing_bytes())
    assert signing[13] is None
    assert signing[:13] == dagcbor.decode(data)[:13] and signing[14:] == dagcbor.decode(data)[14:]


@given(block_headers())
@settings(max_examples=20)
def test_truncated_headers_are_rejected(header: BlockHeader) -> None:
    refuses_cut_or_extended(BlockHeader.from_bytes, header.to_bytes(), cuts=30, extra=b"\xf6")


_DECODERS: list[Callable[[Any], object]] = [
    BlockHeader.from_cbor,
    BlockMsg.from_cbor,
    MsgMeta.from_cbor,
    PoStProof.from_cbor,
    Ticket.from_cbor,
    ElectionProof.from_cbor,
    BeaconEntry.from_cbor,
    MessageReceipt.from_cbor,
]


@given(dag_cbor_values)
def test_random_cbor_never_crashes(value: object) -> None:
    decodes_or_refuses(_DECODERS, value)


@given(st.binary(max_size=300))
def test_random_bytes_never_crash(data: bytes) -> None:
    decodes_or_refuses(
        (
            BlockHeader.from_bytes,
            BlockMsg.from_bytes,
            MsgMeta.from_bytes,
            MessageReceipt.from_bytes,
        ),
        data,
    )


@given(st.one_of(tickets, election_proofs, beacon_entries, post_proofs, receipts))
def test_parts_round_trip(part: Any) -> None:
    decoded = type(part).from_cbor(dagcbor.decode(dagcbor.encode(part.to_cbor())))
    assert decoded == part


@given(cids, cids)
def test_msg_meta_round_trip(bls: CID, secpk: CID) -> None:
    meta = MsgMeta(bls, secpk)
    assert MsgMeta.from_bytes(meta.to_bytes()) == meta
    assert meta.cid() == CID.hash_of(meta.to_bytes())
    assert meta.to_bytes()[0] == 0x82


def test_header_decoding_names_the_bad_field() -> None:
    fields = _header().to_cbor()
    bad = {
        0: (b"\x07\x00", "BlockHeader.Miner: unknown address protocol 7"),
        1: ([b"\x01", b"\x02"], "BlockHeader.Ticket: expected an array of 1 fields, got 2"),
        2: ([1], "BlockHeader.ElectionProof: expected an array of 2 fields"),
        3: ([[1]], r"BlockHeader.BeaconEntries\[0\]"),
        4: ([[0, 5]], r"BlockHeader.WinPoStProof\[0\].ProofBytes"),
        5: ([LINK, b"x"], r"BlockHeader.Parents\[1\]: expected a CID"),
        6: (5, "BlockHeader.ParentWeight"),
        7: (1 << 63, "BlockHeader.Height"),
        8: (None, "BlockHeader.ParentStateRoot"),
        9: (b"", "BlockHeader.ParentMessageReceipts"),
        10: ("bafy", "BlockHeader.Messages"),
        11: (b"", "BlockHeader.BLSAggregate: empty signature"),
        12: (-1, "BlockHeader.Timestamp"),
        13: (b"\x09", "BlockHeader.BlockSig: invalid signature type 9"),
        14: (True, "BlockHeader.ForkSignaling"),
        15: (b"\x00", "BlockHeader.ParentBaseFee: sign byte without magnitude"),
    }
    names_the_bad_field(BlockHeader.from_bytes, fields, bad)
    with pytest.raises(DecodeError, match="expected an array of 16 fields, got 15"):
        BlockHeader.from_cbor(fields[:15])
    too_many = list(fields)
    too_many[5] = [LINK] * (MAX_ARRAY_LENGTH + 1)
    with pytest.raises(DecodeError, match="exceeds the limit of 8192"):
        BlockHeader.from_cbor(too_many)


def test_nullable_fields() -> None:
    header = _header(ticket=None, election_proof=None, bls_aggregate=None, block_sig=None)
    raw = dagcbor.decode(header.to_bytes())
    assert raw[1] is None and raw[2] is None and raw[11] is None and raw[13] is None
    assert BlockHeader.from_bytes(header.to_bytes()) == header


def test_block_signature_over_signing_bytes() -> None:
    worker = PrivateKey.derive(KeyType.BLS, b"worker")
    unsigned = _header()
    signature = worker.sign(unsigned.signing_bytes())
    signed = _header(block_sig=signature)
    assert signed.signing_bytes() == unsigned.signing_bytes()
    assert signed.cid() != unsigned.cid()
    verify(signed.block_sig, Address.of_key(worker), signed.signing_bytes())  # type: ignore[arg-type]
    with pytest.raises(SignatureError):
        verify(signature, Address.of_key(worker), _header(height=11).signing_bytes())


def test_header_lists_become_tuples_and_ranges_are_checked() -> None:
    header = _header(parents=[LINK], beacon_entries=[], win_post_proof=[])
    assert header.parents == (LINK,) and header.beacon_entries == ()
    assert hash(header) == hash(_header(beacon_entries=(), win_post_proof=()))
    for changes in ({"height": 1 << 63}, {"timestamp": -1}, {"fork_signaling": 1 << 64}):
        with pytest.raises(ValueError):
            _header(**changes)


def test_block_msg() -> None:
    header = _header()
    msg = BlockMsg(header, (LINK,), (CID.hash_of(b"s1"), CID.hash_of(b"s2")))
    assert BlockMsg.from_bytes(msg.to_bytes()) == msg
    assert msg.cid() == header.cid()
    with pytest.raises(ValueError, match="no header"):
        BlockMsg(None, (), ()).cid()
    with pytest.raises(DecodeError, match=r"BlockMsg.SecpkMessages\[0\]"):
        BlockMsg.from_cbor([None, [], [b"x"]])


def test_receipt_versions() -> None:
    v0 = MessageReceipt(exit_code=0, return_data=b"\x01", gas_used=10, version=0)
    v1 = MessageReceipt(exit_code=-1, gas_used=10, events_root=LINK)
    assert dagcbor.decode(v0.to_bytes()) == [0, b"\x01", 10]
    assert dagcbor.decode(v1.to_bytes()) == [-1, b"", 10, LINK]
    assert MessageReceipt.from_bytes(v0.to_bytes()) == v0
    assert MessageReceipt.from_bytes(v1.to_bytes()) == v1
    assert MessageReceipt.from_bytes(dagcbor.encode([0, b"", 5, None])).events_root is None
    with pytest.raises(ValueError):
        MessageReceipt(exit_code=0, gas_used=0, events_root=LINK, version=0)
    with pytest.raises(DecodeError, match="3 or 4 fields, got an array of 5"):
        MessageReceipt.from_cbor([0, b"", 0, None, None])
    with pytest.raises(DecodeError, match="EventsRoot"):
        MessageReceipt.from_cbor([0, b"", 0, b"x"])


def test_ticket_order_is_by_digest() -> None:
    # ref/weight.json facts: blake2b-256 of 00 starts with 3, of 02 with 187 (see test_types_tipset).
    assert Ticket(b"\x00").less(Ticket(b"\x02"))
    assert not Ticket(b"\x02").less(Ticket(b"\x00"))
    assert Ticket(b"\x00").digest()[0] == 3
