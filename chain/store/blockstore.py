"""Content-addressed block storage: CID -> bytes.

`Blockstore` is the interface everything above the store uses (state trees, HAMT/AMT, chain store).
`BatchingBlockstore` adds what the node's own stores offer on top: atomic batches, iteration in CID-byte
order under a prefix, and close. `LevelDBBlockstore` is the durable one (a repo's `datastore/`);
`MemoryBlockstore` is the in-memory one for tests and scratch state, interchangeable with it.

LevelDB calls block the calling thread; callers on the trio loop wrap long ones (iteration, large
batches) in `trio.to_thread.run_sync`.
"""

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar, runtime_checkable

import plyvel

from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.schema import CborTuple
from chain.store.batch import LevelBatch, StagedOps, leveldb_transaction, until_exit
from chain.store.blockcache import BlockCache, cache_of

T = TypeVar("T")

# Blocks live under their own key namespace so that the chain store's metadata (head, tipset index)
# can share the same LevelDB and be written in the same atomic batch.
BLOCKS_NAMESPACE: Final = b"/blocks/"


class BlockNotFound(KeyError):
    """A block the caller needed is not in the store."""

    def __init__(self, cid: CID) -> None:
        super().__init__(f"block {cid} not found")
        self.cid = cid

    def __str__(self) -> str:
        return str(self.args[0])


class StoreOpenError(OSError):
    """A LevelDB directory that cannot be opened; the message says why and what to do."""


class Blockstore(Protocol):
    def get(self, cid: CID) -> bytes | None: ...

    def put(self, cid: CID, data: bytes) -> None: ...

    def has(self, cid: CID) -> bool: ...

    def delete(self, cid: CID) -> None: ...

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        """Write all blocks or none of them."""
        ...


class BlockBatch(Protocol):
    """Writes staged inside `BatchingBlockstore.batch()`; reads on the store do not see them."""

    def put(self, cid: CID, data: bytes) -> None: ...

    def delete(self, cid: CID) -> None: ...

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None: ...


@runtime_checkable
class BatchingBlockstore(Blockstore, Protocol):
    def batch(self) -> AbstractContextManager[BlockBatch]:
        """Stage writes; they land together when the with-block ends normally, not at all if it raises."""
        ...

    def keys(self, prefix: bytes = b"") -> Iterator[CID]:
        """CIDs whose bytes start with prefix, in byte order, as of the start of the iteration."""
        ...

    def items(self, prefix: bytes = b"") -> Iterator[tuple[CID, bytes]]: ...

    def close(self) -> None: ...


def put_cbor(store: Blockstore, obj: Any) -> CID:
    """Encode obj as DAG-CBOR, store it under its blake2b-256 CID and return the CID."""
    data = dagcbor.encode(obj)
    cid = CID.hash_of(data)
    store.put(cid, data)
    return cid


def put_declared(store: Blockstore, obj: CborTuple) -> CID:
    """put_cbor(store, obj.to_cbor()), with obj entered in the store's block cache as what
    `get_decoded(store, cid, type(obj).from_cbor)` gives: a declared type is frozen and its constructor
    normalises every field as decoding does, so obj is what strict decoding of these canonical bytes
    would give. State written each epoch (an actor's state, a miner's vesting table) is then not
    decoded again when the next epoch reads it."""
    data = dagcbor.encode(obj.to_cbor())
    cid = CID.hash_of(data)
    store.put(cid, data)
    cache = cache_of(store)
    if cache is not None:
        cache.put(type(obj).from_cbor, cid, data, obj)
    return cid


def get_bytes(store: Blockstore, cid: CID) -> bytes:
    """The bytes of block cid; BlockNotFound if the store does not hold it."""
    data = store.get(cid)
    if data is None:
        raise BlockNotFound(cid)
    return data


def get_cbor(store: Blockstore, cid: CID) -> Any:
    """Load and decode the DAG-CBOR block cid; BlockNotFound or DecodeError if that fails."""
    data = get_bytes(store, cid)
    try:
        return dagcbor.decode(data)
    except DecodeError as exc:
        raise DecodeError(f"block {cid}: {exc}") from None


def get_decoded(store: Blockstore, cid: CID, decode: Callable[[Any], T]) -> T:
    """decode(get_cbor(store, cid)), with the same errors; from the store's block cache when these
    bytes were decoded with `decode` before (chain/store/blockcache.py). What decode returns is shared
    by every caller: it must be immutable (a declared type's from_cbor: frozen)."""
    data = get_bytes(store, cid)
    cache = cache_of(store)
    if cache is not None:
        found = cache.get(decode, cid, data)
        if found is not None:
            return found  # type: ignore[no-any-return]
    try:
        raw = dagcbor.decode(data)
    except DecodeError as exc:
        raise DecodeError(f"block {cid}: {exc}") from None
    value = decode(raw)
    if cache is not None:
        cache.put(decode, cid, data, value)
    return value


def _cid_bytes(cid: CID) -> bytes:
    return cid.bytes


class _StagedBatch(StagedOps[CID]):
    __slots__ = ()

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        self._check()
        self.ops.extend((cid, bytes(data)) for cid, data in blocks)


class MemoryBlockstore:
    """A dict-backed blockstore with the same interface as the LevelDB one."""

    def __init__(self) -> None:
        self._blocks: dict[CID, bytes] = {}
        # Decoded blocks (chain/store/blockcache.py); None decodes every read (benchmarks compare).
        self.block_cache: BlockCache | None = BlockCache()

    def get(self, cid: CID) -> bytes | None:
        return self._blocks.get(cid)

    def put(self, cid: CID, data: bytes) -> None:
        self._blocks[cid] = bytes(data)

    def has(self, cid: CID) -> bool:
        return cid in self._blocks

    def delete(self, cid: CID) -> None:
        self._blocks.pop(cid, None)

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        staged = [(cid, bytes(data)) for cid, data in blocks]
        self._blocks.update(staged)

    @contextmanager
    def batch(self) -> Iterator[BlockBatch]:
        with until_exit(_StagedBatch()) as staged:
            yield staged
        # into the dict itself: a subclass's put (the tests' counting stores) does not see a batch's writes
        staged.apply_to(self._blocks.__setitem__, lambda cid: self._blocks.pop(cid, None))

    def keys(self, prefix: bytes = b"") -> Iterator[CID]:
        # Sorted by bytes, as LevelDB iterates, over a snapshot so that writes during iteration are safe.
        return iter(sorted(cid for cid in self._blocks if cid.bytes.startswith(prefix)))

    def items(self, prefix: bytes = b"") -> Iterator[tuple[CID, bytes]]:
        snapshot = dict(self._blocks)
        return ((cid, snapshot[cid]) for cid in sorted(c for c in snapshot if c.bytes.startswith(prefix)))

    def close(self) -> None:
        """Nothing to release; present so the two stores are interchangeable."""

    def __enter__(self) -> "MemoryBlockstore":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self._blocks)


def _open_failure(path: Path, exc: Exception) -> StoreOpenError:
    raw = exc.args[0] if exc.args else ""
    detail = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    if isinstance(exc, plyvel.CorruptionError):
        reason = f"the database is corrupt ({detail}); restore the repo from a snapshot or remove it"
    elif "lock" in detail and ("already held" in detail or "temporarily unavailable" in detail):
        reason = "it is locked by another process (is another filpy node using this repo?)"
    elif "does not exist" in detail:
        reason = "no database there and create=False"
    else:
        reason = detail or type(exc).__name__
    return StoreOpenError(f"cannot open blockstore at {path}: {reason}")


class _LevelBatch(LevelBatch[CID]):
    """A plyvel write batch that only takes blocks, keyed by CID bytes into the blocks namespace."""

    __slots__ = ()

    def __init__(self, wb: Any, namespace: bytes) -> None:
        super().__init__(wb, namespace, _cid_bytes)

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        self._check()
        for cid, data in blocks:
            self._wb.put(self._ns + cid.bytes, bytes(data))


class LevelDBBlockstore:
    """Blocks in a LevelDB directory, keyed by namespace || CID bytes.

    sync=True makes every write wait for the disk; without it a process crash loses nothing but an OS
    crash may lose the last writes (LevelDB's own trade-off).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        create: bool = True,
        sync: bool = False,
        namespace: bytes = BLOCKS_NAMESPACE,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self._ns = namespace
        self._sync = sync
        # Decoded blocks (chain/store/blockcache.py); None decodes every read (benchmarks compare).
        self.block_cache: BlockCache | None = BlockCache()
        try:
            # options: plyvel.DB's tuning keywords (config.toml's [datastore]: cache, write buffer...)
            self._db: Any = plyvel.DB(str(self.path), create_if_missing=create, **(options or {}))
        except plyvel.Error as exc:
            raise _open_failure(self.path, exc) from None

    @property
    def db(self) -> Any:
        """The underlying plyvel.DB, for stores that share the directory under other namespaces."""
        return self._db

    def get(self, cid: CID) -> bytes | None:
        data: bytes | None = self._db.get(self._ns + cid.bytes)
        return data

    def put(self, cid: CID, data: bytes) -> None:
        self._db.put(self._ns + cid.bytes, bytes(data), sync=self._sync)

    def has(self, cid: CID) -> bool:
        return self._db.get(self._ns + cid.bytes) is not None

    def delete(self, cid: CID) -> None:
        self._db.delete(self._ns + cid.bytes, sync=self._sync)

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        with self.batch() as batch:
            batch.put_many(blocks)

    @contextmanager
    def batch(self) -> Iterator[BlockBatch]:
        with leveldb_transaction(self._db, sync=self._sync, wrap=lambda wb: _LevelBatch(wb, self._ns)) as b:
            yield b

    def keys(self, prefix: bytes = b"") -> Iterator[CID]:
        skip = len(self._ns)
        with self._db.iterator(prefix=self._ns + prefix, include_value=False) as it:
            for key in it:
                yield CID(key[skip:])

    def items(self, prefix: bytes = b"") -> Iterator[tuple[CID, bytes]]:
        skip = len(self._ns)
        with self._db.iterator(prefix=self._ns + prefix) as it:
            for key, value in it:
                yield CID(key[skip:]), value

    @property
    def closed(self) -> bool:
        return bool(self._db.closed)

    def close(self) -> None:
        """Release the directory lock; further calls on the store raise RuntimeError."""
        if not self._db.closed:
            self._db.close()

    def __enter__(self) -> "LevelDBBlockstore":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
