"""Content-addressed block storage: CID -> bytes.

`Blockstore` is the interface everything above the store uses (state trees, HAMT/AMT, chain store);
`MemoryBlockstore` is the in-memory one for tests and scratch state. The LevelDB-backed store lives
beside it in this module.
"""

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError


class BlockNotFound(KeyError):
    """A block the caller needed is not in the store."""

    def __init__(self, cid: CID) -> None:
        super().__init__(f"block {cid} not found")
        self.cid = cid

    def __str__(self) -> str:
        return str(self.args[0])


class Blockstore(Protocol):
    def get(self, cid: CID) -> bytes | None: ...

    def put(self, cid: CID, data: bytes) -> None: ...

    def has(self, cid: CID) -> bool: ...

    def delete(self, cid: CID) -> None: ...

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        """Write all blocks or none of them."""
        ...


def put_cbor(store: Blockstore, obj: Any) -> CID:
    """Encode obj as DAG-CBOR, store it under its blake2b-256 CID and return the CID."""
    data = dagcbor.encode(obj)
    cid = CID.hash_of(data)
    store.put(cid, data)
    return cid


def get_cbor(store: Blockstore, cid: CID) -> Any:
    """Load and decode the DAG-CBOR block cid; BlockNotFound or DecodeError if that fails."""
    data = store.get(cid)
    if data is None:
        raise BlockNotFound(cid)
    try:
        return dagcbor.decode(data)
    except DecodeError as exc:
        raise DecodeError(f"block {cid}: {exc}") from None


class MemoryBlockstore:
    """A dict-backed blockstore with the same interface as the LevelDB one."""

    def __init__(self) -> None:
        self._blocks: dict[CID, bytes] = {}

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

    def keys(self) -> Iterator[CID]:
        return iter(list(self._blocks))

    def __len__(self) -> int:
        return len(self._blocks)
