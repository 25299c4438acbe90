"""CAR v1: the exact header/section layout, deterministic export, verified streaming import, bad input."""

import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.encoding import dagcbor
from chain.encoding.cid import CID, FIL_COMMITMENT_UNSEALED, RAW
from chain.encoding.errors import DecodeError
from chain.encoding.multihash import IDENTITY, SHA2_256, SHA2_256_TRUNC254_PADDED, Multihash
from chain.encoding.varint import encode_uvarint
from chain.store.blockstore import (
    BatchingBlockstore,
    BlockNotFound,
    MemoryBlockstore,
    put_cbor,
)
from chain.store.car import (
    CarReader,
    encode_header,
    encode_section,
    export_car,
    import_car,
    links_of,
    read_car,
    walk_dag,
    write_car,
)


def _raw(data: bytes) -> tuple[CID, bytes]:
    return CID.hash_of(data, codec=RAW), data


def _cbor(value: Any) -> tuple[CID, bytes]:
    data = dagcbor.encode(value)
    return CID.hash_of(data), data


def _car(roots: list[CID], sections: Iterable[tuple[CID, bytes]]) -> bytes:
    out = io.BytesIO()
    write_car(out, roots, sections)
    return out.getvalue()


class _Trickle:
    """A stream that hands out at most one byte per read, as a slow pipe might."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def read(self, size: int, /) -> bytes:
        return self._buf.read(min(size, 1))


class _PlainStore:
    """A blockstore without batches: import writes to it block by block."""

    def __init__(self) -> None:
        self.blocks: dict[CID, bytes] = {}

    def get(self, cid: CID) -> bytes | None:
        return self.blocks.get(cid)

    def put(self, cid: CID, data: bytes) -> None:
        self.blocks[cid] = data

    def has(self, cid: CID) -> bool:
        return cid in self.blocks

    def delete(self, cid: CID) -> None:
        self.blocks.pop(cid, None)

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        self.blocks.update(blocks)


# layout -----------------------------------------------------------------------------------------------


def test_header_bytes_follow_the_spec() -> None:
    root = CID.hash_of(b"root")
    # {"roots": [tag 42 bytes(0x00 || cid)], "version": 1}, keys in DAG-CBOR order, written out by hand.
    body = (
        b"\xa2"
        + b"\x65roots"
        + b"\x81\xd8\x2a\x58"
        + bytes([len(root.bytes) + 1])
        + b"\x00"
        + root.bytes
        + b"\x67version\x01"
    )
    assert encode_header([root]) == bytes([len(body)]) + body


def test_section_bytes_follow_the_spec() -> None:
    cid, data = _raw(b"x" * 200)
    section = encode_section(cid, data)
    assert section == encode_uvarint(len(cid.bytes) + 200) + cid.bytes + data
    length = 38 + 200  # version, codec, 3-byte blake2b-256 code, digest length, 32-byte digest
    assert section[:2] == bytes([(length & 0x7F) | 0x80, length >> 7])


def test_reader_reads_what_write_car_wrote() -> None:
    blocks = [_raw(b"a"), _cbor({"x": 1}), _raw(b"")]
    data = _car([blocks[1][0]], blocks)
    roots, sections = read_car(io.BytesIO(data))
    assert roots == (blocks[1][0],)
    assert sections == blocks


def test_empty_roots_and_no_sections_are_accepted() -> None:
    roots, sections = read_car(io.BytesIO(_car([], [])))
    assert roots == ()
    assert sections == []


def test_duplicate_sections_are_accepted(store: BatchingBlockstore) -> None:
    block = _raw(b"dup")
    result = import_car(store, io.BytesIO(_car([block[0]], [block, block])))
    assert result.blocks == 2
    assert store.get(block[0]) == block[1]


def test_cidv0_and_sha256_and_identity_sections_verify() -> None:
    pb = b"\x0a\x02\x08\x01"
    v0 = CID.v0(Multihash.digest_of(SHA2_256, pb).digest)
    sha = CID.hash_of(b"sha", codec=RAW, mh_code=SHA2_256)
    ident = CID.v1(RAW, Multihash.digest_of(IDENTITY, b"inline"))
    blocks = [(v0, pb), (sha, b"sha"), (ident, b"inline")]
    assert read_car(io.BytesIO(_car([v0], blocks)))[1] == blocks


def test_reader_streams_one_section_at_a_time() -> None:
    big = _raw(b"\x01" * 1_000_000)
    small = _raw(b"small")
    stream = io.BytesIO(_car([big[0]], [small, big]))
    reader = CarReader(stream)
    sections = iter(reader)
    assert next(sections) == small
    assert stream.tell() < 1000
    assert next(sections) == big
    with pytest.raises(StopIteration):
        next(sections)
    with pytest.raises(RuntimeError, match="once"):
        iter(reader)


def test_reader_copes_with_short_reads() -> None:
    blocks = [_raw(b"a" * 300), _cbor([1, 2, 3])]
    reader = CarReader(_Trickle(_car([blocks[0][0]], blocks)))
    assert reader.roots == (blocks[0][0],)
    assert list(reader) == blocks


def test_verify_false_skips_the_hash_check() -> None:
    cid, _ = _raw(b"one")
    car = _car([cid], [(cid, b"two")])
    assert list(CarReader(io.BytesIO(car), verify=False)) == [(cid, b"two")]


# export -------------------------------------------------------------------------------------------------


def test_export_is_depth_first_in_link_order_with_each_block_once() -> None:
    store = MemoryBlockstore()
    d_cid = store_raw(store, b"d")
    c_cid = put_cbor(store, {"leaf": "c"})
    b_cid = put_cbor(store, [c_cid, d_cid])
    a_cid = put_cbor(store, {"only": c_cid})
    # Map values follow the canonical key order ("z" before "aa"), not insertion order.
    root = put_cbor(store, {"aa": b_cid, "z": a_cid, "n": [1, {"deep": d_cid}]})
    out = io.BytesIO()
    assert export_car(store, [root], out) == 5
    roots, sections = read_car(io.BytesIO(out.getvalue()))
    assert roots == (root,)
    assert [cid for cid, _ in sections] == [root, d_cid, a_cid, c_cid, b_cid]
    assert [cid for cid, _ in walk_dag(store, [root])] == [root, d_cid, a_cid, c_cid, b_cid]


def store_raw(store: MemoryBlockstore, data: bytes) -> CID:
    cid, data = _raw(data)
    store.put(cid, data)
    return cid


def test_links_of_keeps_encoding_order() -> None:
    x, y, z = (CID.hash_of(bytes([i])) for i in range(3))
    cid, data = _cbor({"bb": [x, {"q": y}], "a": z, "ccc": None})
    assert links_of(cid, data) == [z, x, y]
    assert links_of(*_raw(dagcbor.encode([x]))) == []


def test_export_with_several_roots_shares_blocks() -> None:
    store = MemoryBlockstore()
    shared = store_raw(store, b"shared")
    one = put_cbor(store, [shared, store_raw(store, b"one")])
    two = put_cbor(store, [store_raw(store, b"two"), shared])
    out = io.BytesIO()
    assert export_car(store, [one, two], out) == 5
    roots, sections = read_car(io.BytesIO(out.getvalue()))
    assert roots == (one, two)
    assert [cid for cid, _ in sections] == [one, shared, _raw(b"one")[0], two, _raw(b"two")[0]]


def test_export_skips_commitments_and_inlines_identity_links() -> None:
    store = MemoryBlockstore()
    piece = CID.v1(FIL_COMMITMENT_UNSEALED, Multihash(SHA2_256_TRUNC254_PADDED, b"\x07" * 32))
    inline = CID.v1(RAW, Multihash.digest_of(IDENTITY, b"tiny"))
    root = put_cbor(store, {"piece": piece, "inline": inline})
    out = io.BytesIO()
    assert export_car(store, [root], out) == 2
    _, sections = read_car(io.BytesIO(out.getvalue()))
    assert sections[1] == (inline, b"tiny")


def test_export_follow_prunes_subdags() -> None:
    store = MemoryBlockstore()
    kept = store_raw(store, b"kept")
    below = store_raw(store, b"below")
    pruned = put_cbor(store, [below])
    root = put_cbor(store, [kept, pruned])
    out = io.BytesIO()
    assert export_car(store, [root], out, follow=lambda cid: cid != pruned) == 2
    assert [cid for cid, _ in read_car(io.BytesIO(out.getvalue()))[1]] == [root, kept]


def test_export_of_a_missing_block_fails() -> None:
    store = MemoryBlockstore()
    absent = CID.hash_of(b"absent")
    root = put_cbor(store, [absent])
    with pytest.raises(BlockNotFound, match=str(absent)):
        export_car(store, [root], io.BytesIO())
    with pytest.raises(ValueError, match="at least one root"):
        export_car(store, [], io.BytesIO())


def test_export_of_a_non_canonical_block_names_it() -> None:
    store = MemoryBlockstore()
    bad = b"\x82\x18\x01\x02"  # 1 written in two bytes
    cid = CID.hash_of(bad)
    store.put(cid, bad)
    with pytest.raises(DecodeError, match=rf"block {cid}: non-minimal integer"):
        export_car(store, [cid], io.BytesIO())


def test_round_trip_through_files_and_both_stores(tmp_path: Path, store: BatchingBlockstore) -> None:
    source = MemoryBlockstore()
    leaves = [store_raw(source, bytes([i]) * (i + 1)) for i in range(30)]
    mids = [put_cbor(source, {"i": i, "leaves": leaves[i : i + 5]}) for i in range(0, 30, 3)]
    root = put_cbor(source, {"mids": mids, "max": (1 << 64) - 1, "min": -(1 << 64), "f": 1.5})
    path = tmp_path / "dag.car"
    with path.open("wb") as out:
        written = export_car(source, [root], out)
    assert written == 1 + len(mids) + len(leaves)
    with path.open("rb") as stream:
        result = import_car(store, stream)
    assert result.roots == (root,)
    assert result.blocks == written
    assert sorted(store.keys()) == sorted(source.keys())
    again = io.BytesIO()
    export_car(store, [root], again)
    assert again.getvalue() == path.read_bytes()


# import atomicity -----------------------------------------------------------------------------------------


def test_import_is_all_or_nothing_on_batching_stores(store: BatchingBlockstore) -> None:
    good = [_raw(b"1"), _raw(b"2")]
    bad = (_raw(b"3")[0], b"not 3")
    car = _car([good[0][0]], [*good, bad, _raw(b"4")])
    with pytest.raises(DecodeError, match=r"section 2 .*do not hash to its CID"):
        import_car(store, io.BytesIO(car))
    assert list(store.keys()) == []


def test_import_into_a_plain_store_keeps_blocks_before_the_bad_one() -> None:
    store = _PlainStore()
    good = [_raw(b"1"), _raw(b"2")]
    car = _car([good[0][0]], [*good, (_raw(b"3")[0], b"not 3")])
    with pytest.raises(DecodeError, match="do not hash"):
        import_car(store, io.BytesIO(car))
    assert store.blocks == dict(good)
    fine = import_car(store, io.BytesIO(_car([good[0][0]], good)))
    assert fine.blocks == 2


# malformed input --------------------------------------------------------------------------------------------

_ROOT = CID.hash_of(b"root")
_HEADER = encode_header([_ROOT])
_BLOCK = _raw(b"block")


def _with_header(body: bytes) -> bytes:
    return encode_uvarint(len(body)) + body


_BAD_CARS = {
    "empty stream": (b"", "CAR is empty: no header"),
    "zero header length": (b"\x00", "CAR header has zero length"),
    "header varint cut short": (b"\x80", r"CAR header length at offset 0 is truncated"),
    "header varint not minimal": (b"\x81\x00", "not minimally encoded"),
    "header varint too long": (b"\x80" * 9 + b"\x01", "longer than 9 bytes"),
    "header over the limit": (encode_uvarint(64 << 20), "exceeds the limit of 33554432"),
    "header truncated": (_HEADER[:-3], r"CAR header at offset 1 is truncated: needs \d+ bytes, got \d+"),
    "header not canonical": (
        _with_header(b"\xa2\x67version\x01\x65roots\x80"),
        "CAR header is not valid DAG-CBOR: map keys not in length-first order",
    ),
    "header not a map": (_with_header(dagcbor.encode([1, []])), "CAR header must be a map, got list"),
    "header unknown key": (
        _with_header(dagcbor.encode({"roots": [], "version": 1, "extra": 0})),
        "unknown key 'extra'",
    ),
    "header without version": (_with_header(dagcbor.encode({"roots": []})), "CAR header has no version"),
    "header version 2": (_with_header(dagcbor.encode({"version": 2})), "CAR version 2 is not supported"),
    "header version 3": (
        _with_header(dagcbor.encode({"roots": [], "version": 3})),
        "version must be 1, got 3",
    ),
    "header version text": (
        _with_header(dagcbor.encode({"roots": [], "version": "1"})),
        "version must be an integer, got str",
    ),
    "header version true": (
        _with_header(dagcbor.encode({"roots": [], "version": True})),
        "version must be an integer, got bool",
    ),
    "header without roots": (_with_header(dagcbor.encode({"version": 1})), "CAR header has no roots"),
    "header roots not a list": (
        _with_header(dagcbor.encode({"roots": _ROOT, "version": 1})),
        "CAR header roots: expected an array, got CID",
    ),
    "header root not a CID": (
        _with_header(dagcbor.encode({"roots": [_ROOT, b"x"], "version": 1})),
        r"CAR header roots\[1\]: expected a CID link, got bytes",
    ),
    "header trailing bytes": (
        _with_header(dagcbor.encode({"roots": [], "version": 1}) + b"\x00"),
        "1 trailing bytes",
    ),
    "section zero length": (_HEADER + b"\x00", r"CAR section 0 at offset \d+ has zero length"),
    "section varint cut short": (_HEADER + b"\xff", r"CAR section 0 at offset \d+: length .* truncated"),
    "section varint not minimal": (_HEADER + b"\x85\x00", "length at offset .*not minimally encoded"),
    "section over the limit": (_HEADER + encode_uvarint(9 << 20), "length 9437184 exceeds the limit"),
    "section truncated": (
        _HEADER + encode_section(*_BLOCK)[:-2],
        r"CAR section 0 at offset \d+ is truncated: needs 43 bytes, got 41",
    ),
    "section CID version 2": (
        _HEADER + encode_uvarint(5) + b"\x02\x55\x00\x00x",
        "section 0 .*invalid CID: unsupported CID version 2",
    ),
    "section CID truncated": (
        _HEADER + encode_uvarint(10) + _BLOCK[0].bytes[:10],
        "invalid CID: multihash digest is truncated",
    ),
    "section CID bad digest size": (
        _HEADER + encode_uvarint(6) + b"\x01\x55\x12\x01\x00x",
        "invalid CID: multihash sha2-256 digest must be 32 bytes",
    ),
    "section hash mismatch": (
        _HEADER + encode_section(_BLOCK[0], b"other"),
        r"CAR section 0 at offset \d+: block bytes do not hash to its CID " + str(_BLOCK[0]),
    ),
    "section identity mismatch": (
        _HEADER + encode_section(CID.v1(RAW, Multihash(IDENTITY, b"abc")), b"abd"),
        "do not hash to its CID",
    ),
    "section unverifiable hash": (
        _HEADER + encode_section(CID.v1(RAW, Multihash(0x22, b"\x00" * 4)), b"x"),
        "cannot verify block .*: unsupported multihash 0x22",
    ),
    "second section bad": (
        _HEADER + encode_section(*_BLOCK) + b"\x01\x01",
        r"CAR section 1 at offset \d+: invalid CID: varint is truncated",
    ),
}


@pytest.mark.parametrize("name", sorted(_BAD_CARS))
def test_malformed_cars_are_rejected_with_a_reason(name: str, store: BatchingBlockstore) -> None:
    data, message = _BAD_CARS[name]
    with pytest.raises(DecodeError, match=message):
        read_car(io.BytesIO(data))
    with pytest.raises(DecodeError, match=message):
        import_car(store, _Trickle(data))
    assert list(store.keys()) == []


def test_limits_are_configurable() -> None:
    car = _car([_ROOT], [_raw(b"x" * 100)])
    with pytest.raises(DecodeError, match=r"header length .* exceeds the limit of 10 bytes"):
        CarReader(io.BytesIO(car), max_header_size=10)
    with pytest.raises(DecodeError, match="exceeds the limit of 50 bytes"):
        read_car(io.BytesIO(car), max_section_size=50)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_give_decode_error_or_a_valid_car(data: bytes) -> None:
    try:
        _, sections = read_car(io.BytesIO(data))
    except DecodeError as exc:
        assert str(exc)
        return
    for cid, block in sections:
        assert CID.hash_of(block, codec=cid.codec, mh_code=cid.multihash.code) == cid


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 255))
def test_mutated_cars_give_decode_error_or_verified_blocks(position: int, byte: int) -> None:
    car = bytearray(_car([_ROOT], [_raw(b"a" * 40), _cbor({"k": [_ROOT, 1]}), _raw(b"z")]))
    car[position % len(car)] = byte
    try:
        _, sections = read_car(io.BytesIO(bytes(car)))
    except DecodeError:
        return
    for cid, data in sections:
        assert CID.hash_of(data, codec=cid.codec, mh_code=cid.multihash.code) == cid


# random DAGs against a recursive reference walk ----------------------------------------------------------


def _reference_order(store: MemoryBlockstore, roots: list[CID]) -> list[CID]:
    seen: set[CID] = set()
    order: list[CID] = []

    def visit(cid: CID) -> None:
        if cid in seen:
            return
        seen.add(cid)
        data = store.get(cid)
        assert data is not None
        order.append(cid)
        for link in links_of(cid, data):
            visit(link)

    for root in roots:
        visit(root)
    return order


@st.composite
def _dags(draw: st.DrawFn) -> tuple[MemoryBlockstore, list[CID]]:
    store = MemoryBlockstore()
    made: list[CID] = []
    for i in range(draw(st.integers(1, 25))):
        linking = draw(st.booleans())
        if made and linking:
            picks = draw(st.lists(st.sampled_from(made), max_size=4))
            made.append(put_cbor(store, {"i": i, "links": picks, "more": {"x": picks[:1]}}))
        else:
            made.append(store_raw(store, draw(st.binary(max_size=16)) + bytes([i])))
    roots = draw(st.lists(st.sampled_from(made), min_size=1, max_size=3))
    return store, roots


@settings(max_examples=60, deadline=None)
@given(_dags())
def test_random_dags_round_trip_in_reference_order(dag: tuple[MemoryBlockstore, list[CID]]) -> None:
    source, roots = dag
    out = io.BytesIO()
    export_car(source, roots, out)
    got_roots, sections = read_car(io.BytesIO(out.getvalue()))
    assert list(got_roots) == roots
    assert [cid for cid, _ in sections] == _reference_order(source, roots)
    target = MemoryBlockstore()
    import_car(target, io.BytesIO(out.getvalue()))
    again = io.BytesIO()
    export_car(target, roots, again)
    assert again.getvalue() == out.getvalue()
