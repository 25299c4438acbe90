"""Tipsets and tipset keys: validity rules, canonical block order, keys, and the weight tie-break."""

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.crypto.signature import Signature, SigType
from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.types.address import Address
from chain.types.block import BlockHeader
from chain.types.election import Ticket
from chain.types.tipset import EMPTY_TSK, InvalidTipSet, TipSet, TipSetKey, new_tipset, wins_weight_tie
from tests.chain.hostile import canonical_or_refused
from tests.chain.type_strategies import block_headers, cids
from tests.vectors import cases

PARENT = CID.hash_of(b"parent")


def _block(ticket: bytes | None = b"\x01", miner: int = 1000, **changes: Any) -> BlockHeader:
    fields: dict[str, Any] = {
        "miner": Address.new_id(miner),
        "ticket": None if ticket is None else Ticket(ticket),
        "election_proof": None,
        "parents": (PARENT,),
        "parent_weight": 100,
        "height": 5,
        "parent_state_root": PARENT,
        "parent_message_receipts": PARENT,
        "messages": PARENT,
        "bls_aggregate": None,
        "timestamp": 20,
        "block_sig": Signature(SigType.BLS, bytes(96)),
        "parent_base_fee": 100,
    }
    fields.update(changes)
    return BlockHeader(**fields)


@given(st.lists(cids, max_size=6))
def test_key_round_trip(links: list[CID]) -> None:
    key = TipSetKey(tuple(links))
    assert TipSetKey.from_bytes(key.to_bytes()) == key
    assert TipSetKey.from_cbor(dagcbor.decode(dagcbor.encode(key.to_cbor()))) == key
    assert key.cid() == CID.hash_of(dagcbor.encode(key.to_bytes()))
    assert key.is_empty() == (not links)


@given(st.binary(max_size=120))
def test_random_key_bytes_never_crash(data: bytes) -> None:
    canonical_or_refused(TipSetKey.from_bytes, TipSetKey.to_bytes, data)


def test_key_errors_and_text() -> None:
    with pytest.raises(DecodeError, match="expected a byte string"):
        TipSetKey.from_cbor([PARENT])
    with pytest.raises(DecodeError, match="invalid CID at byte 38"):
        TipSetKey.from_bytes(PARENT.bytes + b"\x01\x71")
    assert EMPTY_TSK.is_empty() and EMPTY_TSK.to_bytes() == b""
    assert str(TipSetKey((PARENT,))) == "{" + str(PARENT) + "}"


@given(
    st.lists(block_headers(height=7, parents=(PARENT,)), min_size=1, max_size=5, unique_by=lambda b: b.cid())
)
@settings(max_examples=40)
def test_tipset_order_is_canonical(blocks: list[BlockHeader]) -> None:
    tipset = new_tipset(blocks)
    assert new_tipset(reversed(blocks)) == tipset
    ordered = tipset.blocks
    for a, b in itertools.pairwise(ordered):
        assert a.ticket is not None and b.ticket is not None
        assert (a.ticket.digest(), a.cid().bytes) < (b.ticket.digest(), b.cid().bytes)
    assert tipset.cids == tuple(block.cid() for block in ordered)
    assert tipset.key == TipSetKey(tipset.cids)
    assert tipset.min_ticket_block() == min(blocks, key=lambda b: (b.ticket.digest(), b.cid().bytes))  # type: ignore[union-attr]
    assert tipset.height == 7 and tipset.parents == TipSetKey((PARENT,))


def test_equal_tickets_order_by_cid() -> None:
    a, b = _block(miner=1), _block(miner=2)
    tipset = TipSet((a, b))
    assert [block.cid().bytes for block in tipset.blocks] == sorted([a.cid().bytes, b.cid().bytes])


def test_tipset_rules() -> None:
    with pytest.raises(InvalidTipSet, match="at least one block"):
        TipSet(())
    with pytest.raises(InvalidTipSet, match="no ticket"):
        TipSet((_block(ticket=None),))
    with pytest.raises(InvalidTipSet, match="different heights"):
        TipSet((_block(), _block(b"\x02", height=6)))
    with pytest.raises(InvalidTipSet, match="different parents"):
        TipSet((_block(), _block(b"\x02", parents=(CID.hash_of(b"other"),))))
    two = (PARENT, CID.hash_of(b"p2"))
    with pytest.raises(InvalidTipSet, match="different parents"):
        TipSet((_block(parents=two), _block(b"\x02", parents=two[::-1])))
    with pytest.raises(InvalidTipSet, match="twice"):
        TipSet((_block(), _block()))
    # Other header fields may differ between blocks of a tipset (lotus NewTipSet checks no more).
    TipSet((_block(), _block(b"\x02", miner=1001, timestamp=25)))


def test_tipset_accessors() -> None:
    low, high = _block(b"\x00", miner=1, timestamp=30), _block(b"\x02", miner=2, timestamp=25)
    tipset = TipSet((high, low))
    assert tipset.blocks == (low, high)  # blake2b(00) starts with 3, blake2b(02) with 187
    assert tipset.min_ticket() == Ticket(b"\x00")
    assert tipset.min_timestamp() == 25
    assert tipset.contains(low.cid()) and not tipset.contains(PARENT)
    assert tipset.parent_state_root == PARENT and tipset.parent_message_receipts == PARENT
    assert tipset.parent_weight == 100
    child = TipSet((_block(parents=tipset.cids[::-1], height=6),))
    assert child.is_child_of(tipset)
    assert not TipSet((_block(parents=tipset.cids, height=5),)).is_child_of(tipset)
    assert not TipSet((_block(parents=(low.cid(),), height=6),)).is_child_of(tipset)


@pytest.mark.parametrize("case", cases("ref/weight.json"))
def test_weight_tie_breaker(case: dict[str, Any]) -> None:
    first_bytes = {bytes.fromhex(f["vrf_proof_hex"]): f["blake2b256_first_byte"] for f in case["facts"]}
    for proof, first in first_bytes.items():
        assert Ticket(proof).digest()[0] == first
    ts1 = TipSet((_block(b"\x02", miner=1), _block(b"\x03", miner=2)))
    ts2 = TipSet((_block(b"\x00", miner=1), _block(b"\x01", miner=2)))
    assert "breakWeightTie(ts1, ts2) == false" in case["expected"]
    assert wins_weight_tie(ts1, ts2) is False
    assert wins_weight_tie(ts2, ts1) is True
    # With no difference in any position the second tipset is kept.
    assert wins_weight_tie(ts1, ts1) is False
