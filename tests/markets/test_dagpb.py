"""DAG-PB: canonical encoding, the spec's strictness rules on decode, and round trips."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.encoding import dagpb
from chain.encoding.cid import CID, DAG_PB, RAW
from chain.encoding.errors import DecodeError
from chain.encoding.multihash import SHA2_256, Multihash

LEAF = CID.hash_of(b"leaf", codec=RAW, mh_code=SHA2_256)
OTHER = CID.hash_of(b"other", codec=RAW, mh_code=SHA2_256)


def field(number: int, wire: int, payload: bytes) -> bytes:
    tag = bytes([(number << 3) | wire])
    if wire == 2:
        return tag + bytes([len(payload)]) + payload
    return tag + payload


def test_the_empty_block_is_the_spec_s_cid() -> None:
    assert dagpb.encode(dagpb.PBNode()) == b""
    assert dagpb.decode(b"") == dagpb.PBNode((), None)
    cid = CID.v1(DAG_PB, Multihash.digest_of(SHA2_256, b""))
    assert str(cid) == "bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def test_links_come_before_data_and_link_fields_in_order() -> None:
    node = dagpb.PBNode((dagpb.PBLink(LEAF, "", 4), dagpb.PBLink(OTHER, "b", None)), b"\x08\x02")
    raw = dagpb.encode(node)
    link0 = field(1, 2, LEAF.bytes) + field(2, 2, b"") + field(3, 0, b"\x04")
    link1 = field(1, 2, OTHER.bytes) + field(2, 2, b"b")
    assert raw == field(2, 2, link0) + field(2, 2, link1) + field(1, 2, b"\x08\x02")
    assert dagpb.decode(raw) == node
    assert dagpb.links_of(raw) == [LEAF, OTHER]


def test_a_missing_name_and_an_empty_name_differ() -> None:
    with_name = dagpb.encode(dagpb.PBNode((dagpb.PBLink(LEAF, ""),)))
    without = dagpb.encode(dagpb.PBNode((dagpb.PBLink(LEAF),)))
    assert with_name != without
    assert dagpb.decode(with_name).links[0].name == ""
    assert dagpb.decode(without).links[0].name is None


def test_data_before_links_is_read_but_not_written() -> None:
    link = field(1, 2, LEAF.bytes)
    data_first = field(1, 2, b"xy") + field(2, 2, link)
    node = dagpb.decode(data_first)
    assert node == dagpb.PBNode((dagpb.PBLink(LEAF),), b"xy")
    assert dagpb.encode(node) == field(2, 2, link) + field(1, 2, b"xy")


def test_unsorted_links_are_not_encoded() -> None:
    node = dagpb.PBNode((dagpb.PBLink(LEAF, "b"), dagpb.PBLink(OTHER, "a")))
    with pytest.raises(ValueError, match="sorted by name"):
        dagpb.encode(node)
    ordered = dagpb.PBNode(dagpb.sort_links(node.links))
    assert [link.name for link in dagpb.decode(dagpb.encode(ordered)).links] == ["a", "b"]


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (field(2, 2, field(2, 2, b"n") + field(1, 2, LEAF.bytes)), "out of order field Hash"),
        (field(2, 2, field(1, 2, LEAF.bytes) + field(1, 2, LEAF.bytes)), "duplicate field Hash"),
        (field(2, 2, field(2, 2, b"n")), "no Hash"),
        (field(2, 2, field(1, 2, b"\x01\x55")), "Hash is not a CID"),
        (field(2, 2, field(1, 2, LEAF.bytes) + field(4, 0, b"\x01")), "unknown field 4"),
        (field(2, 2, field(1, 2, LEAF.bytes) + field(3, 2, b"\x01")), "wire type 2, expected varint"),
        (field(2, 2, field(1, 2, LEAF.bytes) + field(2, 2, b"\xff")), "Name is not UTF-8"),
        (field(1, 2, b"a") + field(1, 2, b"b"), "duplicate Data"),
        (
            field(2, 2, field(1, 2, LEAF.bytes)) + field(1, 2, b"a") + field(2, 2, field(1, 2, LEAF.bytes)),
            "interleaved",
        ),
        (field(3, 2, b"x"), "unknown field 3"),
        (field(1, 0, b"\x01"), "expected bytes"),
        (b"\x0a\x05ab", "needs 5 bytes"),
        (b"\x0a", "truncated"),
        (field(2, 2, field(1, 2, LEAF.bytes) + b"\x18" + b"\xff" * 9 + b"\x02"), "exceeds 64 bits"),
    ],
)
def test_decoding_refuses_what_the_spec_forbids(raw: bytes, words: str) -> None:
    with pytest.raises(DecodeError, match=words):
        dagpb.decode(raw)


cids = st.sampled_from([LEAF, OTHER, CID.hash_of(b"x", codec=DAG_PB, mh_code=SHA2_256)])
links = st.builds(
    dagpb.PBLink,
    cids,
    st.one_of(st.none(), st.text(max_size=8)),
    st.one_of(st.none(), st.integers(0, (1 << 64) - 1)),
)


@given(st.lists(links, max_size=6), st.one_of(st.none(), st.binary(max_size=64)))
def test_round_trip(items: list[dagpb.PBLink], data: bytes | None) -> None:
    node = dagpb.PBNode(dagpb.sort_links(items), data)
    raw = dagpb.encode(node)
    assert dagpb.decode(raw) == node
    assert dagpb.encode(dagpb.decode(raw)) == raw


@given(st.binary(max_size=80))
def test_arbitrary_bytes_decode_or_raise_decode_error(raw: bytes) -> None:
    try:
        node = dagpb.decode(raw)
    except DecodeError:
        return
    assert isinstance(node, dagpb.PBNode)
