"""What the AMT and the HAMT share: the clean pointer from a node to a child, and the lazily loaded,
copy-on-write tree over a blockstore that both are.

A Link holds the child's CID (and a `node` slot that both trees leave None: loaded children are kept
in the tree's own map from Link to node, so that clean nodes and their Links can be shared).
"""

from abc import ABC, abstractmethod
from typing import Generic, Protocol, Self, TypeVar

from chain.encoding.cid import CID
from chain.store.blockcache import BlockCache, cache_of
from chain.store.blockstore import Blockstore

N = TypeVar("N")


class Link(Generic[N]):
    __slots__ = ("cid", "node")

    def __init__(self, cid: CID, node: N | None = None) -> None:
        self.cid = cid
        self.node = node


class _Node(Protocol):
    def copy(self) -> Self: ...


T = TypeVar("T", bound=_Node)


class LinkedTree(ABC, Generic[T]):
    """The state an AMT or HAMT keeps besides its own shape (the store, the root node, the children
    loaded so far and whether the root is the flushed block) and how both write what changed."""

    __slots__ = ("_bitwidth", "_children", "_legacy", "_root", "_root_cid", "_store")

    def __init__(self, store: Blockstore, bitwidth: int, legacy: bool, root: T, root_cid: CID | None) -> None:
        self._store = store
        self._bitwidth = bitwidth
        self._legacy = legacy
        self._root = root
        # The children loaded or flushed, by the Link that points at them (identity: clean nodes and
        # their Links may be shared with other trees, so loaded children are not kept in the Links).
        # A change drops the links it replaces, so this holds the tree's live links only.
        self._children: dict[Link[T], T] = {}
        # Set while the root equals the flushed block; the root node is then shared-immutable.
        self._root_cid = root_cid

    @property
    def bitwidth(self) -> int:
        return self._bitwidth

    def _owned_root(self) -> T:
        return self._root.copy() if self._root_cid is not None else self._root

    def _written(self, child: T, data: bytes, blocks: list[tuple[CID, bytes]], written: list[T]) -> Link[T]:
        """The Link that replaces a changed child, encoded as data, at flush: the child is clean from now
        on; its block goes into blocks and the child into written, in the same order."""
        cid = CID.hash_of(data)
        blocks.append((cid, data))
        written.append(child)
        link: Link[T] = Link(cid)
        self._children[link] = child
        return link

    def flush(self) -> CID:
        """Write every node changed since the last flush and return the root CID."""
        if self._root_cid is not None:
            return self._root_cid
        blocks: list[tuple[CID, bytes]] = []
        written: list[T] = []
        data = self._encode_root(blocks, written)
        cid = CID.hash_of(data)
        blocks.append((cid, data))
        self._store.put_many(blocks)
        cache = cache_of(self._store)
        if cache is not None:
            # Encoded here, canonical: what strict decoding of these bytes would give (blockcache.py).
            # The nodes written are clean from now on, so never mutated: entered as they are.
            self._cache_written(cache, blocks, written)
        self._root_cid = cid
        return cid

    @abstractmethod
    def _encode_root(self, blocks: list[tuple[CID, bytes]], written: list[T]) -> bytes:
        """The root block's bytes, the changed nodes below it encoded into blocks and written first
        (with _written)."""

    @abstractmethod
    def _cache_written(self, cache: BlockCache, blocks: list[tuple[CID, bytes]], written: list[T]) -> None:
        """Enter the blocks flush wrote (the root's last) in the block cache, with what they decode to."""
