"""A write buffer over a blockstore: what the VM writes while computing a state stays in memory until
the result is committed, and then only the blocks the result reaches are written.

Executing a tipset writes many blocks that no state keeps (an actor's state before its last change in
the tipset, the state of a reverted send). Lotus runs the VM over a buffered store and copies what the
new state root reaches into the chain's store at the end (chain/vm/vm.go Flush, Copy); so does this.
A buffer that is never committed (a StateCall) leaves the store untouched.

One thread writes through a buffer; other threads may read the base store meanwhile.
"""

from collections.abc import Iterable, Sequence

from chain.encoding.cid import CID
from chain.store.blockstore import Blockstore
from chain.store.car import walk_dag


class BufferedBlockstore:
    """Reads fall through to the base store; writes stay in memory until commit()."""

    __slots__ = ("_base", "_buffer")

    def __init__(self, base: Blockstore) -> None:
        self._base = base
        self._buffer: dict[CID, bytes] = {}

    @property
    def base(self) -> Blockstore:
        return self._base

    def get(self, cid: CID) -> bytes | None:
        data = self._buffer.get(cid)
        return data if data is not None else self._base.get(cid)

    def has(self, cid: CID) -> bool:
        return cid in self._buffer or self._base.has(cid)

    def put(self, cid: CID, data: bytes) -> None:
        self._buffer[cid] = bytes(data)

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        self._buffer.update((cid, bytes(data)) for cid, data in blocks)

    def delete(self, cid: CID) -> None:
        self._buffer.pop(cid, None)

    def __len__(self) -> int:
        return len(self._buffer)

    def commit(self, roots: Sequence[CID]) -> int:
        """Write every buffered block reachable from roots to the base store (in one batch), drop the
        rest; return how many blocks were written."""
        buffer = self._buffer
        blocks = list(walk_dag(self, roots, follow=lambda cid: cid in buffer))
        self._base.put_many(blocks)
        buffer.clear()
        return len(blocks)

    def discard(self) -> None:
        """Forget everything written since the last commit."""
        self._buffer.clear()
