"""Filecoin's AMT: a sparse array mapped trie over a blockstore, byte-for-byte as go-amt-ipld v4 and
fvm_ipld_amt write it (and the legacy root layout that block message lists and receipts still use).

Node block: ``[bmap, links, values]``. bmap has one bit per slot (2^bitwidth slots), least significant
bit first within each byte, and is ceil(2^bitwidth / 8) bytes long (1 byte for bitwidths up to 3).
A leaf (height 0) lists its present values in slot order; an inner node lists CID links to its
children. Exactly one of links/values is non-empty, except in the empty root.

Root block: ``[bitwidth, height, count, node]`` (v3, used by actor state since actors v3), or the
legacy ``[height, count, node]`` with bitwidth fixed at 3 (go-amt-ipld v2 via specs-actors v0
`adt`, which Lotus still uses for TxMeta message lists and receipts).

A node at height h covers width^(h+1) indexes; index i sits in slot (i >> (bitwidth*h)) % width.
The tree grows by pushing the root down into slot 0 of a new root, and after a delete shrinks while
the root has only slot 0, so the same content always gives the same root CID.

Loading is lazy and validating (go-amt-ipld LoadAMT/newNode rules); clean nodes are never mutated,
changes copy the path from the root, and `flush` writes only what changed. Decoded roots and nodes are
shared between AMTs through the store's block cache (chain/store/blockcache.py), as the HAMT's are:
without a copy, a clean node (its items, its Links) never changed, and the children an AMT loads kept
in its own map from Link to node.
"""

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from chain.encoding import dagcbor
from chain.encoding.cid import CID, DAG_CBOR
from chain.encoding.errors import DecodeError
from chain.state.link import Link, LinkedTree
from chain.store.blockcache import BlockCache, cache_of
from chain.store.blockstore import Blockstore, get_bytes

DEFAULT_BITWIDTH: Final = 3
MAX_INDEX: Final = (1 << 64) - 2
"""Largest index in a v3 AMT (u64::MAX - 1, so that the count never overflows)."""
LEGACY_BITWIDTH: Final = 3
LEGACY_MAX_INDEX: Final = (1 << 63) - 1
"""Largest index in go-amt-ipld v2, the legacy layout's implementation."""
MAX_HEIGHT: Final = 64
LEGACY_MAX_HEIGHT: Final = 20
_UINT64_MAX: Final = (1 << 64) - 1

_MISSING: Final = object()


def nodes_for_height(bitwidth: int, height: int) -> int:
    """width^height, saturating at 2^64 - 1 as go-amt-ipld's uint64 arithmetic does."""
    bits = bitwidth * height
    return _UINT64_MAX if bits >= 64 else 1 << bits


def bmap_bytes(bitwidth: int) -> int:
    """Length of a node's bitmap: one bit per slot, at least one byte."""
    return 1 if bitwidth <= 3 else 1 << (bitwidth - 3)


class _Node:
    """A decoded node: slot -> value (leaf) or slot -> Link / owned dirty _Node (inner). A clean node
    may be shared (block cache): never mutated."""

    __slots__ = ("items", "leaf")

    def __init__(self, leaf: bool, items: dict[int, Any]) -> None:
        self.leaf = leaf
        self.items = items

    def copy(self) -> "_Node":
        return _Node(self.leaf, self.items.copy())


def _read_node(store: Blockstore, cid: CID, bitwidth: int, leaf: bool) -> _Node:
    """The non-root node block cid (a leaf or not), from the block cache when these bytes were
    decoded before."""
    data = get_bytes(store, cid)
    cache = cache_of(store)
    kind = ("amt", bitwidth, leaf)
    if cache is not None:
        cached: _Node | None = cache.get(kind, cid, data)
        if cached is not None:
            return cached  # shared: clean nodes are never mutated
    try:
        raw = dagcbor.decode(data)
    except DecodeError as exc:
        raise DecodeError(f"AMT node {cid}: {exc}") from None
    node = _expand(raw, bitwidth, False, leaf, cid)
    if cache is not None:
        cache.put(kind, cid, data, node)
    return node


def _decode_root(data: bytes, bitwidth: int, legacy: bool, where: object) -> tuple[int, int, _Node]:
    """Decode and validate a root block: (height, count, root node)."""
    try:
        raw = dagcbor.decode(data)
    except DecodeError as exc:
        raise DecodeError(f"AMT root {where}: {exc}") from None
    if legacy:
        if type(raw) is not list or len(raw) != 3:
            raise DecodeError(f"AMT root {where}: expected an array of 3 (height, count, node)")
        height, count, node = raw
        stored_bitwidth = LEGACY_BITWIDTH
    else:
        if type(raw) is not list or len(raw) != 4:
            raise DecodeError(f"AMT root {where}: expected an array of 4 (bitwidth, height, count, node)")
        stored_bitwidth, height, count, node = raw
    for name, value in (("bitwidth", stored_bitwidth), ("height", height), ("count", count)):
        if type(value) is not int or not 0 <= value <= _UINT64_MAX:
            raise DecodeError(f"AMT root {where}: {name} is not an unsigned 64-bit integer")
    if stored_bitwidth != bitwidth:
        raise DecodeError(f"AMT root {where}: expected bitwidth {bitwidth}, found {stored_bitwidth}")
    max_height = LEGACY_MAX_HEIGHT if legacy else MAX_HEIGHT
    if height > max_height:
        raise DecodeError(f"AMT root {where}: height {height} exceeds {max_height}")
    capacity = nodes_for_height(bitwidth, height + 1)
    if capacity == _UINT64_MAX and nodes_for_height(bitwidth, height) == _UINT64_MAX:
        raise DecodeError(f"AMT root {where}: height {height} is out of bounds for bitwidth {bitwidth}")
    if capacity < count:
        raise DecodeError(f"AMT root {where}: height {height} is too small for count {count}")
    return height, count, _expand(node, bitwidth, height == 0, height == 0, where)


def _expand(raw: Any, bitwidth: int, allow_empty: bool, expect_leaf: bool, where: object) -> _Node:
    """Validate a collapsed node ([bmap, links, values]) and expand it (go-amt-ipld newNode)."""
    if type(raw) is not list or len(raw) != 3:
        raise DecodeError(f"AMT node {where}: expected an array of 3 (bmap, links, values)")
    bmap, links, values = raw
    if type(bmap) is not bytes:
        raise DecodeError(f"AMT node {where}: bmap is not a byte string")
    if type(links) is not list or type(values) is not list:
        raise DecodeError(f"AMT node {where}: links and values must be arrays")
    if links and values:
        raise DecodeError(f"AMT node {where}: has both links and values")
    if len(bmap) != bmap_bytes(bitwidth):
        raise DecodeError(
            f"AMT node {where}: bmap is {len(bmap)} bytes, bitwidth {bitwidth} needs {bmap_bytes(bitwidth)}"
        )
    width = 1 << bitwidth
    # Bits past the width (possible in the single byte of bitwidths 1 and 2) are ignored, as the refs do.
    bits = int.from_bytes(bmap, "little") & ((1 << width) - 1)
    slots = []
    while bits:
        low = bits & -bits
        slots.append(low.bit_length() - 1)
        bits ^= low
    entries = values or links
    if len(slots) != len(entries):
        kind = "values" if values else "links"
        raise DecodeError(
            f"AMT node {where}: bmap has {len(slots)} bits set but there are {len(entries)} {kind}"
        )
    if values:
        if not expect_leaf:
            raise DecodeError(f"AMT node {where}: values found in an inner node")
        return _Node(True, dict(zip(slots, values, strict=True)))
    if links:
        if expect_leaf:
            raise DecodeError(f"AMT node {where}: links found in a leaf node")
        items: dict[int, Any] = {}
        for slot, link in zip(slots, links, strict=True):
            if type(link) is not CID:
                raise DecodeError(f"AMT node {where}: link in slot {slot} is not a CID")
            if link.codec != DAG_CBOR:
                raise DecodeError(
                    f"AMT node {where}: link in slot {slot} has codec {link.codec:#x}, not dag-cbor"
                )
            items[slot] = Link(link)
        return _Node(False, items)
    if not allow_empty:
        raise DecodeError(f"AMT node {where}: empty node below the root")
    return _Node(expect_leaf, {})


class Amt(LinkedTree[_Node]):
    """A Filecoin AMT: uint64 indexes to DAG-CBOR values over a blockstore (see the module doc).

    Values are kept by reference and encoded at flush: do not mutate a value after setting it or
    after getting it, and store only DAG-CBOR-encodable values (flush raises ValueError otherwise).
    Not safe for concurrent use; do not modify it while iterating.
    """

    __slots__ = ("_count", "_height", "_max_index")

    def __init__(
        self,
        store: Blockstore,
        bitwidth: int,
        legacy: bool,
        root: _Node,
        height: int,
        count: int,
        root_cid: CID | None,
    ) -> None:
        """Use Amt.new or Amt.load."""
        super().__init__(store, bitwidth, legacy, root, root_cid)
        self._max_index = LEGACY_MAX_INDEX if legacy else MAX_INDEX
        self._height = height
        self._count = count

    @staticmethod
    def _check_bitwidth(bitwidth: int, legacy: bool) -> None:
        if legacy and bitwidth != LEGACY_BITWIDTH:
            raise ValueError(f"the legacy AMT layout has bitwidth {LEGACY_BITWIDTH}, not {bitwidth}")
        if type(bitwidth) is not int or not 1 <= bitwidth <= 18:
            raise ValueError(f"AMT bitwidth must be 1..18, got {bitwidth}")

    @classmethod
    def new(cls, store: Blockstore, bitwidth: int = DEFAULT_BITWIDTH, *, legacy: bool = False) -> "Amt":
        """An empty AMT; legacy=True selects the [height, count, node] root of TxMeta and receipts."""
        cls._check_bitwidth(bitwidth, legacy)
        return cls(store, bitwidth, legacy, _Node(True, {}), 0, 0, None)

    @classmethod
    def load(
        cls, store: Blockstore, root: CID, bitwidth: int = DEFAULT_BITWIDTH, *, legacy: bool = False
    ) -> "Amt":
        """Open the AMT at root; the root block is read and validated now, other nodes lazily.

        Raises BlockNotFound if the root block is missing and DecodeError if it is malformed.
        """
        cls._check_bitwidth(bitwidth, legacy)
        data = get_bytes(store, root)
        cache = cache_of(store)
        kind = ("amt-root", bitwidth, legacy)
        cached = None if cache is None else cache.get(kind, root, data)
        if cached is not None:
            height, count, template = cached
            return cls(store, bitwidth, legacy, template, height, count, root)
        height, count, expanded = _decode_root(data, bitwidth, legacy, root)
        if cache is not None:
            cache.put(kind, root, data, (height, count, expanded))
        return cls(store, bitwidth, legacy, expanded, height, count, root)

    @classmethod
    def from_list(
        cls,
        store: Blockstore,
        values: Iterable[Any],
        bitwidth: int = DEFAULT_BITWIDTH,
        *,
        legacy: bool = False,
    ) -> CID:
        """Store values at indexes 0..n-1 in a new AMT and return its root CID (go-amt-ipld FromArray)."""
        amt = cls.new(store, bitwidth, legacy=legacy)
        amt.batch_set(values)
        return amt.flush()

    # properties -----------------------------------------------------------------------------------------
    @property
    def height(self) -> int:
        return self._height

    @property
    def legacy(self) -> bool:
        return self._legacy

    def count(self) -> int:
        """Number of entries, as recorded in the root."""
        return self._count

    def __len__(self) -> int:
        return self._count

    # reading ------------------------------------------------------------------------------------------
    def _load(self, link: Link[_Node], height: int) -> _Node:
        node = _read_node(self._store, link.cid, self._bitwidth, height == 0)
        self._children[link] = node
        return node

    def _check_index(self, index: int) -> None:
        if type(index) is not int or not 0 <= index <= self._max_index:
            raise IndexError(f"AMT index {index!r} is out of range 0..{self._max_index}")

    def get(self, index: int, default: Any = None) -> Any:
        """The value at index, or default."""
        self._check_index(index)
        bw = self._bitwidth
        height = self._height
        if index >> (bw * (height + 1)):
            return default
        node = self._root
        children = self._children
        while height:
            shift = bw * height
            ptr = node.items.get(index >> shift)
            if ptr is None:
                return default
            index &= (1 << shift) - 1
            height -= 1
            node = (children.get(ptr) or self._load(ptr, height)) if type(ptr) is Link else ptr
        return node.items.get(index, default)

    def contains(self, index: int) -> bool:
        return self.get(index, _MISSING) is not _MISSING

    def __contains__(self, index: object) -> bool:
        return type(index) is int and 0 <= index <= self._max_index and self.contains(index)

    def items(self, start: int = 0) -> Iterator[tuple[int, Any]]:
        """(index, value) pairs in increasing index order, from start (go-amt-ipld ForEachAt)."""
        if start < 0:
            raise IndexError("start index must be non-negative")
        yield from self._walk(self._root, self._height, 0, start)

    def _walk(self, node: _Node, height: int, offset: int, start: int) -> Iterator[tuple[int, Any]]:
        items = node.items
        if height == 0:
            for slot in sorted(items):
                if offset + slot >= start:
                    yield offset + slot, items[slot]
            return
        span = 1 << (self._bitwidth * height)
        for slot in sorted(items):
            base = offset + slot * span
            if base + span <= start:
                continue
            ptr = items[slot]
            child = (self._children.get(ptr) or self._load(ptr, height - 1)) if type(ptr) is Link else ptr
            yield from self._walk(child, height - 1, base, start)

    def keys(self) -> Iterator[int]:
        return (i for i, _ in self.items())

    def values(self) -> Iterator[Any]:
        return (v for _, v in self.items())

    def for_each(self, fn: Callable[[int, Any], object]) -> None:
        for index, value in self.items():
            fn(index, value)

    def for_each_while(self, fn: Callable[[int, Any], bool]) -> None:
        """Call fn on entries in index order until it returns False."""
        for index, value in self.items():
            if not fn(index, value):
                return

    def first_index(self) -> int | None:
        """The lowest set index, or None when empty."""
        return next(self.keys(), None)

    # writing ------------------------------------------------------------------------------------------
    def set(self, index: int, value: Any) -> None:
        """Store value at index, growing the tree as needed."""
        self._check_index(index)
        bw = self._bitwidth
        root = self._owned_root()
        height = self._height
        while index >> (bw * (height + 1)):
            # Everything present fits below slot 0 of a taller root.
            root = _Node(False, {0: root} if root.items else {})
            height += 1
        node = root
        h = height
        while h:
            shift = bw * h
            slot = index >> shift
            index &= (1 << shift) - 1
            h -= 1
            ptr = node.items.get(slot)
            if ptr is None:
                child = _Node(h == 0, {})
            elif type(ptr) is Link:
                child = (self._children.get(ptr) or self._load(ptr, h)).copy()
                del self._children[ptr]  # the link leaves the tree: keep only live links' children
            else:
                child = ptr
            node.items[slot] = child
            node = child
        if index not in node.items:
            self._count += 1
        node.items[index] = value
        self._root = root
        self._height = height
        self._root_cid = None

    def batch_set(self, values: Iterable[Any]) -> None:
        """Set values at indexes 0, 1, 2, ... (go-amt-ipld BatchSet)."""
        for index, value in enumerate(values):
            self.set(index, value)

    def delete(self, index: int) -> bool:
        """Remove the entry at index; True if there was one. Shrinks the tree to canonical form."""
        self._check_index(index)
        if index >> (self._bitwidth * (self._height + 1)):
            return False
        root = self._owned_root()
        if not self._remove(root, self._height, index):
            return False
        height = self._height
        if not root.items:
            root = _Node(True, {})
            height = 0
        else:
            while height and len(root.items) == 1 and 0 in root.items:
                ptr = root.items[0]
                height -= 1
                if type(ptr) is Link:
                    root = (self._children.get(ptr) or self._load(ptr, height)).copy()
                    del self._children[ptr]
                else:
                    root = ptr
        self._root = root
        self._height = height
        self._count -= 1
        self._root_cid = None
        return True

    def _remove(self, node: _Node, height: int, index: int) -> bool:
        if height == 0:
            if index not in node.items:
                return False
            del node.items[index]
            return True
        shift = self._bitwidth * height
        slot = index >> shift
        ptr = node.items.get(slot)
        if ptr is None:
            return False
        if type(ptr) is Link:
            child = (self._children.get(ptr) or self._load(ptr, height - 1)).copy()
            if not self._remove(child, height - 1, index & ((1 << shift) - 1)):
                return False
            del self._children[ptr]  # the link leaves the tree: keep only live links' children
        else:
            child = ptr
            if not self._remove(child, height - 1, index & ((1 << shift) - 1)):
                return False
        if child.items:
            node.items[slot] = child
        else:
            del node.items[slot]
        return True

    def batch_delete(self, indexes: Iterable[int], strict: bool = False) -> bool:
        """Delete each index (in sorted order); True if any was present. strict=True raises KeyError
        on an absent index (go-amt-ipld BatchDelete)."""
        modified = False
        for index in sorted(indexes):
            found = self.delete(index)
            if strict and not found:
                raise KeyError(f"no such index {index} in the AMT")
            modified |= found
        return modified

    # persisting ---------------------------------------------------------------------------------------
    def _collapse(self, node: _Node, blocks: list[tuple[CID, bytes]], written: list[_Node]) -> list[Any]:
        """The [bmap, links, values] form of an owned node, writing its dirty children into blocks."""
        items = node.items
        slots = sorted(items)
        bits = 0
        for slot in slots:
            bits |= 1 << slot
        bmap = bits.to_bytes(bmap_bytes(self._bitwidth), "little")
        if node.leaf:
            return [bmap, [], [items[slot] for slot in slots]]
        links = []
        for slot in slots:
            ptr = items[slot]
            if type(ptr) is _Node:
                data = dagcbor.encode(self._collapse(ptr, blocks, written))
                items[slot] = ptr = self._written(ptr, data, blocks, written)
            links.append(ptr.cid)
        return [bmap, links, []]

    def _encode_root(self, blocks: list[tuple[CID, bytes]], written: list[_Node]) -> bytes:
        node = self._collapse(self._root, blocks, written)
        if self._legacy:
            return dagcbor.encode([self._height, self._count, node])
        return dagcbor.encode([self._bitwidth, self._height, self._count, node])

    def _cache_written(
        self, cache: BlockCache, blocks: list[tuple[CID, bytes]], written: list[_Node]
    ) -> None:
        # The root block is not a node: it is entered as load() reads it, with the height and count.
        bw = self._bitwidth
        for (node_cid, node_data), child in zip(blocks, written, strict=False):
            cache.put(("amt", bw, child.leaf), node_cid, node_data, child)
        root_cid, root_data = blocks[-1]
        cache.put(
            ("amt-root", bw, self._legacy), root_cid, root_data, (self._height, self._count, self._root)
        )


def amt_v0_from_list(store: Blockstore, values: Iterable[Any]) -> CID:
    """Root CID of a legacy AMT holding values at 0..n-1: how a block's TxMeta message lists and the
    receipts of a tipset's messages are stored."""
    return Amt.from_list(store, values, LEGACY_BITWIDTH, legacy=True)


def amt_v0_to_list(store: Blockstore, root: CID) -> list[Any]:
    """Values of a legacy AMT that must be dense (indexes 0..count-1), as Lotus reads message lists
    and receipts; DecodeError if an index is missing or the count is wrong."""
    amt = Amt.load(store, root, LEGACY_BITWIDTH, legacy=True)
    out: list[Any] = []
    for index, value in amt.items():
        if index != len(out):
            raise DecodeError(f"AMT {root}: index {len(out)} is missing")
        out.append(value)
    if len(out) != amt.count():
        raise DecodeError(f"AMT {root}: holds {len(out)} entries but its root says {amt.count()}")
    return out
