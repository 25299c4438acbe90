"""Blockstores: LevelDB and memory behave the same, batches are atomic, open errors say why."""

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.encoding.cid import CID, DAG_CBOR, RAW
from chain.encoding.errors import DecodeError
from chain.encoding.multihash import SHA2_256
from chain.store.blockstore import (
    BLOCKS_NAMESPACE,
    BatchingBlockstore,
    BlockNotFound,
    LevelDBBlockstore,
    MemoryBlockstore,
    StoreOpenError,
    get_cbor,
    put_cbor,
)


def _block(n: int, codec: int = RAW) -> tuple[CID, bytes]:
    data = f"block {n}".encode()
    return CID.hash_of(data, codec=codec), data


def test_both_stores_satisfy_the_batching_interface(tmp_path: Path) -> None:
    assert isinstance(MemoryBlockstore(), BatchingBlockstore)
    with LevelDBBlockstore(tmp_path / "db") as db:
        assert isinstance(db, BatchingBlockstore)


def test_put_get_has_delete(store: BatchingBlockstore) -> None:
    cid, data = _block(1)
    assert store.get(cid) is None
    assert not store.has(cid)
    store.put(cid, data)
    assert store.get(cid) == data
    assert store.has(cid)
    store.put(cid, data)  # idempotent
    assert store.get(cid) == data
    store.delete(cid)
    assert store.get(cid) is None
    assert not store.has(cid)
    store.delete(cid)  # deleting what is absent is not an error


def test_empty_block_is_stored_and_distinct_from_absent(store: BatchingBlockstore) -> None:
    cid = CID.hash_of(b"", codec=RAW)
    store.put(cid, b"")
    assert store.has(cid)
    assert store.get(cid) == b""


def test_put_cbor_and_get_cbor(store: BatchingBlockstore) -> None:
    value = {"a": [1, b"\x00", None], "link": CID.hash_of(b"x")}
    cid = put_cbor(store, value)
    assert cid.codec == DAG_CBOR
    assert get_cbor(store, cid) == value
    missing = CID.hash_of(b"missing")
    with pytest.raises(BlockNotFound, match=str(missing)):
        get_cbor(store, missing)
    bad = CID.hash_of(b"\x19\x00\x01")
    store.put(bad, b"\x19\x00\x01")
    with pytest.raises(DecodeError, match=rf"block {bad}: non-minimal integer"):
        get_cbor(store, bad)


def test_put_many_writes_all(store: BatchingBlockstore) -> None:
    blocks = [_block(i) for i in range(50)]
    store.put_many(blocks)
    assert all(store.get(cid) == data for cid, data in blocks)


def test_put_many_writes_nothing_when_the_source_fails(store: BatchingBlockstore) -> None:
    def source() -> Iterator[tuple[CID, bytes]]:
        yield _block(1)
        yield _block(2)
        raise OSError("source broke")

    with pytest.raises(OSError, match="source broke"):
        store.put_many(source())
    assert not store.has(_block(1)[0])
    assert not store.has(_block(2)[0])


def test_batch_lands_at_the_end_of_the_block(store: BatchingBlockstore) -> None:
    old_cid, old_data = _block(0)
    store.put(old_cid, old_data)
    with store.batch() as batch:
        for i in range(1, 6):
            batch.put(*_block(i))
        batch.put_many([_block(6), _block(7)])
        batch.delete(old_cid)
        # Staged writes are invisible until the batch is written.
        assert not store.has(_block(1)[0])
        assert store.has(old_cid)
    assert all(store.has(_block(i)[0]) for i in range(1, 8))
    assert not store.has(old_cid)


def test_batch_applies_operations_in_order(store: BatchingBlockstore) -> None:
    cid, data = _block(1)
    with store.batch() as batch:
        batch.put(cid, data)
        batch.delete(cid)
    assert not store.has(cid)
    with store.batch() as batch:
        batch.delete(cid)
        batch.put(cid, data)
    assert store.get(cid) == data


def test_batch_is_dropped_when_the_block_raises(store: BatchingBlockstore) -> None:
    kept_cid, kept_data = _block(0)
    store.put(kept_cid, kept_data)
    with pytest.raises(ZeroDivisionError), store.batch() as batch:
        batch.put(*_block(1))
        batch.delete(kept_cid)
        raise ZeroDivisionError
    assert not store.has(_block(1)[0])
    assert store.get(kept_cid) == kept_data


def test_batch_refuses_use_after_the_block(store: BatchingBlockstore) -> None:
    with store.batch() as batch:
        batch.put(*_block(1))
    with pytest.raises(RuntimeError, match="after its with-block"):
        batch.put(*_block(2))
    with pytest.raises(RuntimeError, match="after its with-block"):
        batch.delete(_block(1)[0])
    assert not store.has(_block(2)[0])


def test_keys_and_items_in_byte_order_under_a_prefix(store: BatchingBlockstore) -> None:
    raw_blocks = [_block(i, RAW) for i in range(10)]
    cbor_blocks = [_block(i, DAG_CBOR) for i in range(10, 15)]
    sha_data = b"sha block"
    sha_cid = CID.hash_of(sha_data, codec=RAW, mh_code=SHA2_256)
    store.put_many([*raw_blocks, *cbor_blocks, (sha_cid, sha_data)])

    every = list(store.keys())
    assert every == sorted(every)
    assert set(every) == {c for c, _ in raw_blocks} | {c for c, _ in cbor_blocks} | {sha_cid}

    raw_prefix = CID.hash_of(b"", codec=RAW).bytes[:2]  # version 1, codec raw
    assert list(store.keys(raw_prefix)) == sorted([c for c, _ in raw_blocks] + [sha_cid])
    cbor_prefix = CID.hash_of(b"").bytes[:6]  # version 1, dag-cbor, blake2b-256, 32 bytes
    assert list(store.items(cbor_prefix)) == sorted(cbor_blocks)
    assert list(store.keys(b"\x02")) == []


def test_iteration_survives_writes_during_it(store: BatchingBlockstore) -> None:
    store.put_many([_block(i) for i in range(20)])
    seen = []
    for cid, data in store.items():
        seen.append(cid)
        store.delete(cid)
        store.put(*_block(1000 + len(seen)))
        assert data.startswith(b"block ")
    assert len(seen) == 20
    assert len(list(store.keys())) == 20


def test_memory_store_context_manager_and_len() -> None:
    with MemoryBlockstore() as store:
        store.put(*_block(1))
        assert len(store) == 1
    store.close()


# LevelDB specifics ----------------------------------------------------------------------------------


def test_leveldb_persists_across_reopen(tmp_path: Path) -> None:
    blocks = [_block(i) for i in range(5)]
    with LevelDBBlockstore(tmp_path / "db", sync=True) as store:
        store.put_many(blocks)
        store.put(*_block(99))
    with LevelDBBlockstore(tmp_path / "db", create=False) as store:
        assert all(store.get(cid) == data for cid, data in blocks)
        assert store.has(_block(99)[0])


def test_leveldb_close_is_idempotent_and_later_calls_fail(tmp_path: Path) -> None:
    store = LevelDBBlockstore(tmp_path / "db")
    closed_before = store.closed
    store.close()
    store.close()
    assert (closed_before, store.closed) == (False, True)
    with pytest.raises(RuntimeError, match="closed"):
        store.get(_block(1)[0])
    with pytest.raises(RuntimeError, match="closed"):
        store.put(*_block(1))


def test_leveldb_blocks_live_in_their_namespace(tmp_path: Path) -> None:
    with LevelDBBlockstore(tmp_path / "db") as store:
        cid, data = _block(1)
        store.put(cid, data)
        store.db.put(b"/meta/head", b"tipset key")
        assert store.db.get(BLOCKS_NAMESPACE + cid.bytes) == data
        assert list(store.keys()) == [cid]


def test_open_error_when_locked_in_this_process(tmp_path: Path) -> None:
    with (
        LevelDBBlockstore(tmp_path / "db"),
        pytest.raises(StoreOpenError, match=r"cannot open blockstore at .*: it is locked"),
    ):
        LevelDBBlockstore(tmp_path / "db")


def test_open_error_when_locked_by_another_process(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, plyvel; db = plyvel.DB(sys.argv[1], create_if_missing=True); "
            "print('open', flush=True); sys.stdin.read()",
            str(tmp_path / "db"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreOpenError, match="locked by another process"):
            LevelDBBlockstore(tmp_path / "db")
    finally:
        holder.communicate(timeout=30)
    with LevelDBBlockstore(tmp_path / "db") as store:
        assert list(store.keys()) == []


def test_open_error_when_corrupt(tmp_path: Path) -> None:
    with LevelDBBlockstore(tmp_path / "db") as store:
        store.put(*_block(1))
    (tmp_path / "db" / "CURRENT").write_bytes(b"garbage")
    with pytest.raises(StoreOpenError, match=r"the database is corrupt \(Corruption: .*\); restore"):
        LevelDBBlockstore(tmp_path / "db")


def test_open_error_when_missing_and_not_created(tmp_path: Path) -> None:
    with pytest.raises(StoreOpenError, match="no database there and create=False"):
        LevelDBBlockstore(tmp_path / "absent", create=False)


def test_open_error_when_path_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"x")
    with pytest.raises(StoreOpenError, match=r"cannot open blockstore at .*file: IO error"):
        LevelDBBlockstore(path)


# model test: the same operations give the same contents in both stores --------------------------------

_ops = st.lists(
    st.tuples(
        st.sampled_from(["put", "delete", "batch", "failed_batch"]),
        st.lists(st.integers(0, 15), min_size=1, max_size=4),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(_ops)
def test_leveldb_matches_memory(ops: list[tuple[str, list[int]]]) -> None:
    memory = MemoryBlockstore()
    with tempfile.TemporaryDirectory() as tmp, LevelDBBlockstore(Path(tmp) / "db") as level:
        for op, numbers in ops:
            for store in (memory, level):
                blocks = [_block(n) for n in numbers]
                if op == "put":
                    for cid, data in blocks:
                        store.put(cid, data)
                elif op == "delete":
                    for cid, _ in blocks:
                        store.delete(cid)
                else:
                    try:
                        with store.batch() as batch:
                            batch.put_many(blocks[1:])
                            batch.delete(blocks[0][0])
                            if op == "failed_batch":
                                raise LookupError
                    except LookupError:
                        pass
        assert list(level.items()) == list(memory.items())
        assert all(level.has(cid) == memory.has(cid) for cid in (_block(n)[0] for n in range(16)))
