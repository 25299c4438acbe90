"""The gateway's walk and the client's verifier: order, scopes, duplicates, tampering, truncation."""

import io
import os
from pathlib import Path

import pytest

from chain.encoding import dagcbor, dagpb
from chain.encoding.cid import CID, RAW
from chain.encoding.multihash import IDENTITY, SHA2_256, Multihash
from chain.store.blockstore import BlockNotFound, MemoryBlockstore, put_cbor
from chain.store.car import encode_header, encode_section, read_car
from node.markets.carstream import CarStreamParser
from node.markets.traversal import (
    DagScope,
    DagVerifier,
    FileOutput,
    IncompleteDag,
    TamperedBlock,
    UnexpectedBlock,
    dfs_blocks,
    export_file,
)
from node.markets.unixfs import DataType, UnixFSData, build_dag, write_car


def file_dag(
    data: bytes, chunk: int = 4, links: int = 3
) -> tuple[MemoryBlockstore, CID, list[tuple[CID, bytes]]]:
    builder = build_dag(io.BytesIO(data), chunk_size=chunk, max_links=links)
    root = builder.finish()
    out = io.BytesIO()
    write_car(io.BytesIO(data), builder, root, out, chunk_size=chunk, commp_threads=1)
    _, sections = read_car(io.BytesIO(out.getvalue()))
    store = MemoryBlockstore()
    for cid, block in sections:
        store.put(cid, block)
    return store, root.cid, sections


def verify(root: CID, blocks: list[tuple[CID, bytes]], tmp_path: Path) -> bytes:
    with (tmp_path / "out").open("w+b") as out:
        verifier = DagVerifier(root, output=FileOutput(out))
        for cid, data in blocks:
            verifier.feed(cid, data)
        verifier.finish()
    return (tmp_path / "out").read_bytes()


DATA = b"abcdABCDabcdABCDabcd0123abcd"  # repeated chunks: duplicates in the DAG


def test_dups_n_and_dups_y_both_rebuild_the_file(tmp_path: Path) -> None:
    store, root, _ = file_dag(DATA)
    once = list(dfs_blocks(store.get, root, dups=False))
    every = list(dfs_blocks(store.get, root, dups=True))
    assert len(once) < len(every)
    assert len({cid for cid, _ in once}) == len(once)
    assert verify(root, once, tmp_path) == DATA
    assert verify(root, every, tmp_path) == DATA


def test_a_tampered_block_is_refused(tmp_path: Path) -> None:
    _store, root, blocks = file_dag(DATA)
    cid, data = blocks[2]
    blocks[2] = (cid, data[:-1] + b"!")
    with pytest.raises(TamperedBlock, match="do not hash"):
        verify(root, blocks, tmp_path)


def test_a_block_out_of_order_or_foreign_is_refused(tmp_path: Path) -> None:
    _store, root, blocks = file_dag(DATA)
    swapped = [blocks[0], blocks[2], blocks[1], *blocks[3:]]
    with pytest.raises(UnexpectedBlock, match="out of order or not part of the DAG"):
        verify(root, swapped, tmp_path)
    foreign = CID.hash_of(b"zzzz", codec=RAW, mh_code=SHA2_256)
    with pytest.raises(UnexpectedBlock):
        verify(root, [blocks[0], (foreign, b"zzzz")], tmp_path)
    with pytest.raises(UnexpectedBlock, match="after the DAG"):
        verify(root, [*blocks, (foreign, b"zzzz")], tmp_path)


def test_a_transfer_that_stops_early_is_incomplete(tmp_path: Path) -> None:
    _, root, blocks = file_dag(DATA)
    with pytest.raises(IncompleteDag, match="ended before block"):
        verify(root, blocks[:-1], tmp_path)


def test_sizes_that_lie_are_refused(tmp_path: Path) -> None:
    leaf = b"abcd"
    leaf_cid = CID.hash_of(leaf, codec=RAW, mh_code=SHA2_256)
    lying = UnixFSData(DataType.File, filesize=5, blocksizes=(5,)).encode()
    block = dagpb.encode(dagpb.PBNode((dagpb.PBLink(leaf_cid, "", 4),), lying))
    root = CID.hash_of(block, codec=dagpb.CODEC, mh_code=SHA2_256)
    with pytest.raises(UnexpectedBlock, match="promised 5 bytes"):
        verify(root, [(root, block), (leaf_cid, leaf)], tmp_path)


def test_scopes() -> None:
    store, root, blocks = file_dag(DATA)
    assert list(dfs_blocks(store.get, root, DagScope.BLOCK)) == [blocks[0]]
    assert list(dfs_blocks(store.get, root, DagScope.ENTITY)) == blocks  # a file's entity is all of it
    directory = dagpb.encode(
        dagpb.PBNode((dagpb.PBLink(root, "file", 1),), UnixFSData(DataType.Directory).encode())
    )
    dir_cid = CID.hash_of(directory, codec=dagpb.CODEC, mh_code=SHA2_256)
    store.put(dir_cid, directory)
    assert list(dfs_blocks(store.get, dir_cid, DagScope.ENTITY)) == [(dir_cid, directory)]
    assert list(dfs_blocks(store.get, dir_cid, DagScope.ALL)) == [(dir_cid, directory), *blocks]


def test_dag_cbor_walks_and_identity_cids_are_not_sent() -> None:
    store = MemoryBlockstore()
    leaf = CID.hash_of(b"leaf", codec=RAW, mh_code=SHA2_256)
    store.put(leaf, b"leaf")
    inline = CID.v1(RAW, Multihash.digest_of(IDENTITY, b"inline"))
    root = put_cbor(store, {"a": leaf, "b": inline, "c": [leaf]})
    walked = list(dfs_blocks(store.get, root, DagScope.ALL))
    assert [cid for cid, _ in walked] == [root, leaf]
    verifier = DagVerifier(root)
    for cid, data in walked:
        verifier.feed(cid, data)
    assert verifier.finish().blocks == 2
    assert [cid for cid, _ in dfs_blocks(store.get, root, DagScope.ENTITY)] == [root]
    missing = put_cbor(store, {"gone": CID.hash_of(dagcbor.encode(1))})
    with pytest.raises(BlockNotFound):
        list(dfs_blocks(store.get, missing))


def test_export_file_from_any_store_order(tmp_path: Path) -> None:
    data = os.urandom(100)
    store, root, _ = file_dag(data, chunk=7, links=2)
    with (tmp_path / "out").open("w+b") as out:
        result = export_file(store.get, root, out)
    assert (tmp_path / "out").read_bytes() == data and result.file_size == 100


def test_the_car_stream_parser_takes_any_split() -> None:
    _, root, blocks = file_dag(DATA)
    car = encode_header([root]) + b"".join(encode_section(cid, data) for cid, data in blocks)
    for step in (1, 3, 17, len(car)):
        parser = CarStreamParser()
        got = []
        for at in range(0, len(car), step):
            got.extend(parser.feed(car[at : at + step]))
        parser.close()
        assert parser.roots == (root,) and got == blocks
    parser = CarStreamParser()
    parser.feed(car[:-3])
    with pytest.raises(Exception, match="ended inside section"):
        parser.close()
    with pytest.raises(Exception, match="exceeds"):
        CarStreamParser(max_section_size=10).feed(car)
