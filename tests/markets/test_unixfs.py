"""The UnixFS importer: layout, the CAR it writes and its piece, refusing a file that changes."""

import io
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.encoding import dagpb
from chain.encoding.cid import DAG_PB, RAW
from chain.encoding.commcid import piece_cid_v1
from chain.encoding.errors import DecodeError
from chain.store.blockstore import MemoryBlockstore
from chain.store.car import read_car
from node.markets.traversal import DagScope, dfs_blocks, export_file
from node.markets.unixfs import (
    CHUNK_SIZE,
    BalancedBuilder,
    DataType,
    FileImportError,
    UnixFSData,
    build_dag,
    import_bytes,
    import_to_car,
    write_car,
)
from proofs.commp import commp_of_bytes


def test_unixfs_data_round_trip_and_packed_blocksizes() -> None:
    data = UnixFSData(DataType.File, filesize=300, blocksizes=(100, 200))
    raw = data.encode()
    assert raw == bytes([0x08, 0x02, 0x18, 0xAC, 0x02, 0x20, 0x64, 0x20, 0xC8, 0x01])
    assert UnixFSData.decode(raw) == data
    packed = bytes([0x08, 0x02, 0x18, 0xAC, 0x02, 0x22, 0x03, 0x64, 0xC8, 0x01])
    assert UnixFSData.decode(packed) == data
    assert data.file_bytes() == 300
    full = UnixFSData(DataType.File, b"abc", 3, (), 1, 2, 0o644, b"\x08\x01")
    assert UnixFSData.decode(full.encode()) == full


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"", "no Type"),
        (b"\x08\x09", "unknown Type 9"),
        (b"\x10\x01", "wire type 0"),
        (b"\x48\x01", "unknown field 9"),
    ],
)
def test_unixfs_data_refuses_malformed_messages(raw: bytes, words: str) -> None:
    with pytest.raises(DecodeError, match=words):
        UnixFSData.decode(raw)


def _tree(chunk: int, links: int, data: bytes) -> tuple[MemoryBlockstore, object]:
    builder = build_dag(io.BytesIO(data), chunk_size=chunk, max_links=links)
    root = builder.finish()
    store = MemoryBlockstore()
    out = io.BytesIO()
    write_car(io.BytesIO(data), builder, root, out, chunk_size=chunk, commp_threads=1)
    _, sections = read_car(io.BytesIO(out.getvalue()))
    for cid, block in sections:
        store.put(cid, block)
    return store, root


def test_balanced_layout_groups_bottom_up() -> None:
    # 10 chunks, 3 links a node: 4 parents (3, 3, 3, 1), then 2 (3, 1), then the root (2).
    data = bytes(range(10))
    store, root = _tree(1, 3, data)
    node = dagpb.decode(store.get(root.cid) or b"")
    assert root.cid.codec == DAG_PB and len(node.links) == 2
    meta = UnixFSData.decode(node.data or b"")
    assert meta.type is DataType.File and meta.filesize == 10 and meta.blocksizes == (9, 1)
    second = dagpb.decode(store.get(node.links[1].hash) or b"")
    assert len(second.links) == 1  # a group of one still gets a parent
    lone_parent = dagpb.decode(store.get(second.links[0].hash) or b"")
    assert len(lone_parent.links) == 1 and lone_parent.links[0].hash.codec == RAW
    # Tsize of a link is the child's block plus its children's Tsizes.
    block = store.get(node.links[1].hash) or b""
    assert node.links[1].tsize == len(block) + sum(link.tsize or 0 for link in second.links)


def test_single_chunk_and_empty_files_are_their_raw_leaf() -> None:
    assert str(import_bytes(b"")) == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    one = import_bytes(b"x" * CHUNK_SIZE)
    assert one.codec == RAW
    assert import_bytes(b"x" * (CHUNK_SIZE + 1)).codec == DAG_PB


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200), st.integers(1, 9), st.integers(2, 5))
def test_the_car_holds_the_file_in_dfs_order(data: bytes, chunk: int, links: int) -> None:
    builder = build_dag(io.BytesIO(data), chunk_size=chunk, max_links=links)
    root = builder.finish()
    out = io.BytesIO()
    size, sections, piece = write_car(io.BytesIO(data), builder, root, out, chunk_size=chunk, commp_threads=1)
    car = out.getvalue()
    assert size == len(car)
    assert piece == commp_of_bytes(car)
    roots, blocks = read_car(io.BytesIO(car))
    assert roots == (root.cid,) and len(blocks) == sections
    assert len({cid for cid, _ in blocks}) == len(blocks)  # each block once
    store = MemoryBlockstore()
    for cid, block in blocks:
        store.put(cid, block)
    # The CAR's order is the gateway's walk (dfs, dups=n) of the same DAG.
    assert list(dfs_blocks(store.get, root.cid, DagScope.ALL)) == blocks
    target = io.BytesIO()
    result = export_file(store.get, root.cid, target)
    assert target.getvalue() == data and result.file_size == len(data)


def test_import_to_car_writes_the_car_and_its_piece(tmp_path: Path) -> None:
    path = tmp_path / "file"
    data = os.urandom(3 * CHUNK_SIZE) + bytes(2 * CHUNK_SIZE) + b"end"  # two equal zero chunks
    path.write_bytes(data)
    made = import_to_car(path, tmp_path / "file.car")
    car = (tmp_path / "file.car").read_bytes()
    assert made.car_size == len(car) and made.payload_size == len(data)
    assert made.piece_cid == piece_cid_v1(commp_of_bytes(car).commitment)
    assert made.piece_size == commp_of_bytes(car).padded_size
    assert made.blocks == 6  # the root, three random chunks, the zero chunk once, the tail
    assert not list(tmp_path.glob(".*partial"))


def test_a_file_that_changes_between_the_passes_is_refused(tmp_path: Path) -> None:
    data = os.urandom(2 * CHUNK_SIZE)
    builder = build_dag(io.BytesIO(data), chunk_size=CHUNK_SIZE)
    root = builder.finish()
    changed = bytearray(data)
    changed[CHUNK_SIZE + 7] ^= 1
    with pytest.raises(FileImportError, match="changed"):
        write_car(io.BytesIO(bytes(changed)), builder, root, io.BytesIO())
    with pytest.raises(FileImportError, match="grew"):
        write_car(io.BytesIO(data + b"more"), builder, root, io.BytesIO())


def test_import_of_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileImportError, match="cannot read"):
        import_to_car(tmp_path / "nope", tmp_path / "x.car")
    assert not (tmp_path / "x.car").exists()


def test_builder_needs_two_links() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        BalancedBuilder(1)
