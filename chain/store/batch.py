"""What the blockstore's and the metadata store's write batches share: a batch refuses use once its
with-block has ended, and a LevelDB batch lands whole or not at all."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar


class OneShotBatch:
    """A batch usable only inside its with-block (`finished` is set when the block ends)."""

    __slots__ = ("finished",)

    def __init__(self) -> None:
        self.finished = False

    def _check(self) -> None:
        if self.finished:
            raise RuntimeError("batch used after its with-block ended")


B = TypeVar("B", bound=OneShotBatch)
K = TypeVar("K")


class StagedOps(OneShotBatch, Generic[K]):
    """A memory store's batch: puts and deletes recorded in order, applied (apply_to) by the store once
    the with-block ends normally, so that a block that raises changes nothing."""

    __slots__ = ("ops",)

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[tuple[K, bytes | None]] = []  # None: delete

    def put(self, key: K, value: bytes) -> None:
        self._check()
        self.ops.append((key, bytes(value)))

    def delete(self, key: K) -> None:
        self._check()
        self.ops.append((key, None))

    def apply_to(self, put: Callable[[K, bytes], object], delete: Callable[[K], object]) -> None:
        for key, value in self.ops:
            if value is None:
                delete(key)
            else:
                put(key, value)


class LevelBatch(OneShotBatch, Generic[K]):
    """A LevelDB store's batch: a plyvel write batch, each key written under the store's namespace as
    key_bytes(key)."""

    __slots__ = ("_key", "_ns", "_wb")

    def __init__(self, wb: Any, namespace: bytes, key_bytes: Callable[[K], bytes]) -> None:
        super().__init__()
        self._wb = wb
        self._ns = namespace
        self._key = key_bytes

    def put(self, key: K, value: bytes) -> None:
        self._check()
        self._wb.put(self._ns + self._key(key), bytes(value))

    def delete(self, key: K) -> None:
        self._check()
        self._wb.delete(self._ns + self._key(key))


@contextmanager
def until_exit(batch: B) -> Iterator[B]:
    """Yield batch, finished once the with-block ends, however it ends."""
    try:
        yield batch
    finally:
        batch.finished = True


@contextmanager
def leveldb_transaction(db: Any, *, sync: bool, wrap: Callable[[Any], B]) -> Iterator[B]:
    """A plyvel write batch, wrapped, written when the with-block ends normally."""
    # transaction=True: plyvel drops the batch instead of writing it when the with-block raises.
    with db.write_batch(transaction=True, sync=sync) as wb, until_exit(wrap(wb)) as staged:
        yield staged
