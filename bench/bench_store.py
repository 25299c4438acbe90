"""Blockstore throughput (memory and LevelDB: put, get, batch put) and CAR export/import rates."""

import io
import itertools
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.common import per_second, report, seconds, section
from chain.encoding.cid import CID, RAW
from chain.store.blockstore import BatchingBlockstore, LevelDBBlockstore, MemoryBlockstore, put_cbor
from chain.store.car import export_car, import_car

_OPS = 1000  # operations per timed call
_BLOCK_BYTES = 250  # about a block header or a HAMT node


def _blocks(count: int) -> list[tuple[CID, bytes]]:
    out = []
    for i in range(count):
        data = i.to_bytes(8, "big") * (_BLOCK_BYTES // 8)
        out.append((CID.hash_of(data, codec=RAW), data))
    return out


def _chunks(blocks: list[tuple[CID, bytes]]) -> Iterator[list[tuple[CID, bytes]]]:
    """Endless successive slices of _OPS blocks, so each timed call writes keys not written just before."""
    starts = itertools.cycle(range(0, len(blocks) - _OPS + 1, _OPS))
    for start in starts:
        yield blocks[start : start + _OPS]


def _store_figures(name: str, store: BatchingBlockstore, blocks: list[tuple[CID, bytes]]) -> None:
    chunks = _chunks(blocks)

    def put() -> None:
        for cid, data in next(chunks):
            store.put(cid, data)

    def batch_put() -> None:
        with store.batch() as batch:
            for cid, data in next(chunks):
                batch.put(cid, data)

    store.put_many(blocks)
    present = [cid for cid, _ in blocks[:_OPS]]
    absent = [CID.hash_of(b"absent %d" % i, codec=RAW) for i in range(_OPS)]

    def get_hit() -> None:
        for cid in present:
            store.get(cid)

    def get_miss() -> None:
        for cid in absent:
            store.get(cid)

    timed: list[tuple[str, Callable[[], None]]] = [
        ("put", put),
        (f"batch put ({_OPS} per batch)", batch_put),
        ("get (present)", get_hit),
        ("get (absent)", get_miss),
    ]
    for label, fn in timed:
        report(f"{name}: {label}", per_second(fn, batch=_OPS), "ops/s", f"{_BLOCK_BYTES}-byte blocks")


def _dag(store: MemoryBlockstore, leaves: int) -> CID:
    """A two-level DAG: dag-cbor nodes of 32 links over raw leaves, under one root."""
    leaf_cids = []
    for cid, data in _blocks(leaves):
        store.put(cid, data)
        leaf_cids.append(cid)
    nodes = [put_cbor(store, {"links": leaf_cids[i : i + 32]}) for i in range(0, leaves, 32)]
    return put_cbor(store, {"nodes": nodes})


def _car_figures() -> None:
    source = MemoryBlockstore()
    root = _dag(source, 20_000)
    count = len(source)
    out = io.BytesIO()
    export_car(source, [root], out)
    car = out.getvalue()
    mb = len(car) / 1e6

    export_time = seconds(lambda: export_car(source, [root], io.BytesIO()))
    report("CAR export (memory store)", count / export_time, "blocks/s", f"{mb / export_time:.1f} MB/s")
    import_time = seconds(lambda: import_car(MemoryBlockstore(), io.BytesIO(car)))
    report("CAR import (memory store)", count / import_time, "blocks/s", f"{mb / import_time:.1f} MB/s")
    with tempfile.TemporaryDirectory() as tmp:
        with LevelDBBlockstore(Path(tmp) / "db") as store:
            level_time = seconds(lambda: import_car(store, io.BytesIO(car)), repeat=2)
        report("CAR import (LevelDB, one batch)", count / level_time, "blocks/s", f"{count} blocks")


def run() -> None:
    blocks = _blocks(20 * _OPS)
    section("Blockstore (memory)")
    _store_figures("memory", MemoryBlockstore(), blocks)
    section("Blockstore (LevelDB, plyvel)")
    with tempfile.TemporaryDirectory() as tmp:
        with LevelDBBlockstore(Path(tmp) / "db") as store:
            _store_figures("leveldb", store, blocks)
        with LevelDBBlockstore(Path(tmp) / "synced", sync=True) as synced:
            synced_blocks = _chunks(blocks)

            def put_synced() -> None:
                for cid, data in next(synced_blocks)[:50]:
                    synced.put(cid, data)

            report("leveldb: put with sync=True", per_second(put_synced, batch=50), "ops/s", "fsync per put")
    section("CAR v1")
    _car_figures()
