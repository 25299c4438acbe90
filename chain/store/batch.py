"""What the blockstore's and the metadata store's write batches share: a batch refuses use once its
with-block has ended, and a LevelDB batch lands whole or not at all."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar


class OneShotBatch:
    """A batch usable only inside its with-block (`finished` is set when the block ends)."""

    __slots__ = ("finished",)

    def __init__(self) -> None:
        self.finished = False

    def _check(self) -> None:
        if self.finished:
            raise RuntimeError("batch used after its with-block ended")


B = TypeVar("B", bound=OneShotBatch)


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
