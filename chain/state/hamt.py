"""Filecoin's HAMT: a hash array mapped trie over a blockstore, byte-for-byte as go-hamt-ipld v3 and
fvm_ipld_hamt write it, so the same content gives the same root CID.

Node block: ``[bitfield, pointers]``. The bitfield is the 2^bitwidth-bit occupancy map as a minimal
big-endian byte string (empty when zero); bit i set means slot i is present, and slot i's pointer is at
position popcount(bits below i). A pointer is either a CID link to a child node or a bucket: an array
of 1..3 ``[key, value]`` pairs sorted by key bytes. The slot of a key at depth d is the next bitwidth
bits of its hash (most significant bit first); when fewer bits remain, the remaining bits are used.

Canonical form (CHAMP): a bucket that would hold a fourth entry becomes a child node; after a delete,
a child node left with no links and at most 3 entries folds back into a single sorted bucket in its
parent. Insert/delete order therefore never changes the root CID.

Legacy layout (go-hamt-ipld v0.1, the actors-v0 state tree): the same nodes, except that a pointer is a
one-entry map, ``{"0": link}`` or ``{"1": bucket}``, rather than a kinded union. `legacy=True` reads
and writes it; nothing on today's chain uses it, but old state roots (and their golden CIDs) do.

Loading is lazy: nodes are read and validated as lookups reach them, and kept decoded in memory.
Clean nodes are never mutated; a change copies the path from the root (copy-on-write), and
`flush` writes only the nodes changed since the last flush.

Decoded nodes are also shared between HAMTs through the store's block cache
(chain/store/blockcache.py): a node read or written by one tree is not decoded again by the next tree
that reads the same bytes. Shared nodes are used as they are, without a copy: a clean node, its
pointer list and its Links are never changed (a Link's `node` stays None), and the children a HAMT
loads are kept in its own map from Link to node. So an entry never keeps a subtree alive, every HAMT
reads its children from its own store, and a node becomes mutable only when a change copies it.
"""

import hashlib
from array import array
from collections.abc import Callable, Iterator
from typing import Any, Final

from chain.encoding import dagcbor
from chain.encoding.cid import CID, DAG_CBOR
from chain.encoding.errors import DecodeError
from chain.state.link import Link, LinkedTree
from chain.store.blockcache import BlockCache, cache_of
from chain.store.blockstore import BlockNotFound, Blockstore, get_bytes

BUCKET_SIZE: Final = 3
DEFAULT_BITWIDTH: Final = 5
MAX_BITFIELD_BYTES: Final = 32  # a bitfield holds at most 2^8 bits

HashFunction = Callable[[bytes], bytes]

_MISSING: Final = object()


def sha256_hash(key: bytes) -> bytes:
    """Filecoin's key hash: sha2-256 of the raw key bytes."""
    return hashlib.sha256(key).digest()


# The (hash as an integer, its bits) of recent keys under sha256_hash: executing a tipset looks up the
# same few keys (the system actors' and the miners' addresses, in the state tree and the power
# actor's claims) in a new HAMT each epoch. Cleared whole when full; entries are pure functions of
# their keys, so a hit equals the computation.
_SHA256_KEYS: dict[bytes, tuple[int, int]] = {}
_SHA256_KEYS_MAX: Final = 4096


def _sha256_hashed(key: bytes) -> tuple[int, int]:
    found = _SHA256_KEYS.get(key)
    if found is None:
        found = int.from_bytes(hashlib.sha256(key).digest(), "big"), 256
        if len(_SHA256_KEYS) >= _SHA256_KEYS_MAX:
            _SHA256_KEYS.clear()
        _SHA256_KEYS[key] = found
    return found


def identity_hash(key: bytes) -> bytes:
    """The reference test suites' identity 'hash': the key zero-padded to 32 bytes. Tests only."""
    if len(key) > 32:
        raise ValueError("identity hash takes keys of at most 32 bytes")
    return key + bytes(32 - len(key))


class MaxDepthError(ValueError):
    """A key's hash has no bits left to pick a slot: too many keys share a hash prefix."""


class HashBits:
    """Reads successive groups of bits from a hash digest, most significant first (the refs' HashBits).

    `next(n)` takes n bits (1..8); when fewer remain it returns the remaining ones, and when none
    remain it raises MaxDepthError. The HAMT itself uses the same rule on an integer form of the hash.
    """

    __slots__ = ("_left", "_total", "_value")

    def __init__(self, digest: bytes, consumed: int = 0) -> None:
        self._value = int.from_bytes(digest, "big")
        self._total = len(digest) * 8
        self._left = self._total - consumed

    @property
    def consumed(self) -> int:
        return self._total - self._left

    def next(self, n: int) -> int:
        if not 1 <= n <= 8:
            raise ValueError(f"hash bit length must be 1..8, got {n}")
        if self._left <= 0:
            raise MaxDepthError("no hash bits left: maximum HAMT depth reached")
        n = min(n, self._left)
        self._left -= n
        return (self._value >> self._left) & ((1 << n) - 1)


class _Node:
    """A decoded node. Pointers are buckets (lists of [key, value]), Link (clean child; the HAMT
    maps it to the child once loaded) or _Node (a child changed since the last flush, owned by this
    node). A clean node may be shared (block cache): never mutated, neither its buckets.

    A node a flush wrote keeps its block (`written`: the bytes, and where each pointer's encoding
    starts in them, then where the last ends), and a copy of it keeps it as `origin` until its own
    flush: a pointer still the very object the origin held encodes as it did, so that flush copies
    its bytes from the origin's block instead of walking the bucket again (a state-tree node's
    entries, decoded long ago and spread over the heap, cost several times a warm encode to walk)."""

    __slots__ = ("bitmap", "origin", "pointers", "written")

    def __init__(self, bitmap: int, pointers: list[Any], origin: "_Node | None" = None) -> None:
        self.bitmap = bitmap
        self.pointers = pointers
        self.origin = origin
        self.written: tuple[bytes, array[int]] | None = None  # 4 bytes an offset, not an int object

    def copy(self) -> "_Node":
        return _Node(self.bitmap, self.pointers.copy(), self if self.written is not None else None)


def _same_value(a: Any, b: Any) -> bool:
    """Whether two values have the same DAG-CBOR encoding (1 == True in Python, but not on the wire)."""
    if a is b:
        return True
    t = type(a)
    if t is not type(b) or a != b:
        return False
    if t is list or t is dict or t is float or t is tuple:
        return dagcbor.encode(a) == dagcbor.encode(b)
    return True


def _unwrap_legacy_pointer(ptr: Any, i: int, where: object) -> Any:
    if type(ptr) is not dict or len(ptr) != 1:
        raise DecodeError(f"HAMT node {where}: legacy pointer {i} is not a one-entry map")
    ((key, value),) = ptr.items()
    if key == "0" and type(value) is CID:
        return value
    if key == "1" and type(value) is list:
        return value
    raise DecodeError(f'HAMT node {where}: legacy pointer {i} must be {{"0": link}} or {{"1": bucket}}')


def _decode_node(data: bytes, bitwidth: int, is_root: bool, where: object, legacy: bool = False) -> _Node:
    """Decode and validate one node block (the checks of go-hamt-ipld loadNode / fvm Node::load); where
    (the block's CID) names it in errors."""
    try:
        raw = dagcbor.decode(data)
    except DecodeError as exc:
        raise DecodeError(f"HAMT node {where}: {exc}") from None
    if type(raw) is not list or len(raw) != 2:
        raise DecodeError(f"HAMT node {where}: expected an array of 2 (bitfield, pointers)")
    bitfield, pointers = raw
    if type(bitfield) is not bytes:
        raise DecodeError(f"HAMT node {where}: bitfield is not a byte string")
    if len(bitfield) > MAX_BITFIELD_BYTES:
        raise DecodeError(f"HAMT node {where}: bitfield of {len(bitfield)} bytes exceeds 32")
    if type(pointers) is not list:
        raise DecodeError(f"HAMT node {where}: pointers is not an array")
    if len(pointers) > 1 << bitwidth:
        raise DecodeError(
            f"HAMT node {where}: {len(pointers)} pointers exceed the {1 << bitwidth} slots "
            f"of bitwidth {bitwidth}"
        )
    bitmap = int.from_bytes(bitfield, "big")
    if bitmap.bit_count() != len(pointers):
        raise DecodeError(
            f"HAMT node {where}: bitfield has {bitmap.bit_count()} bits set "
            f"but there are {len(pointers)} pointers"
        )
    if not pointers and not is_root:
        raise DecodeError(f"HAMT node {where}: a non-root node may not be empty")
    links = 0
    entries = 0
    for i, ptr in enumerate(pointers):
        if legacy:
            ptr = pointers[i] = _unwrap_legacy_pointer(ptr, i, where)
        t = type(ptr)
        if t is CID:
            if ptr.codec != DAG_CBOR:
                raise DecodeError(
                    f"HAMT node {where}: pointer {i} links to codec {ptr.codec:#x}, not dag-cbor"
                )
            pointers[i] = Link(ptr)
            links += 1
        elif t is list:
            if not ptr or len(ptr) > BUCKET_SIZE:
                raise DecodeError(
                    f"HAMT node {where}: bucket {i} holds {len(ptr)} entries (must be 1..{BUCKET_SIZE})"
                )
            previous: bytes | None = None
            for kv in ptr:
                if type(kv) is not list or len(kv) != 2 or type(kv[0]) is not bytes:
                    raise DecodeError(f"HAMT node {where}: bucket {i} entry is not a [key bytes, value] pair")
                if previous is not None and kv[0] <= previous:
                    raise DecodeError(f"HAMT node {where}: bucket {i} keys are unsorted or duplicated")
                previous = kv[0]
            entries += len(ptr)
        else:
            raise DecodeError(f"HAMT node {where}: pointer {i} is neither a link nor a bucket")
    if not is_root and links == 0 and entries <= BUCKET_SIZE:
        raise DecodeError(
            f"HAMT node {where}: a non-root node with {entries} entries and no links should be a bucket"
        )
    return _Node(bitmap, pointers)


def _read_node(store: Blockstore, cid: CID, bitwidth: int, is_root: bool, legacy: bool) -> _Node:
    """The node block cid, from the store's block cache when these bytes were decoded before."""
    data = get_bytes(store, cid)
    cache = cache_of(store)
    if cache is None:
        return _decode_node(data, bitwidth, is_root, cid, legacy)
    kind = ("hamt", bitwidth, is_root, legacy)
    cached: _Node | None = cache.get(kind, cid, data)
    if cached is not None:
        return cached  # shared: clean nodes are never mutated
    node = _decode_node(data, bitwidth, is_root, cid, legacy)
    cache.put(kind, cid, data, node)
    return node


def encode_bitfield(bitmap: int) -> bytes:
    """A node's occupancy bitmap as stored: minimal big-endian bytes (go big.Int.Bytes())."""
    return bitmap.to_bytes((bitmap.bit_length() + 7) // 8, "big")


def _collapsible(node: _Node) -> list[list[Any]] | None:
    """If a child node must fold into its parent, the sorted bucket that replaces it."""
    total = 0
    for ptr in node.pointers:
        if type(ptr) is not list:
            return None
        total += len(ptr)
        if total > BUCKET_SIZE:
            return None
    if len(node.pointers) == 1:
        return node.pointers[0]  # type: ignore[no-any-return]
    return sorted((kv for ptr in node.pointers for kv in ptr), key=lambda kv: kv[0])


class Hamt(LinkedTree[_Node]):
    """A Filecoin HAMT: bytes keys to DAG-CBOR values over a blockstore (see the module doc).

    Values are kept by reference and encoded at flush: do not mutate a value after setting it or
    after getting it, and store only DAG-CBOR-encodable values (flush raises ValueError otherwise).
    Not safe for concurrent use; do not modify it while iterating.
    """

    __slots__ = ("_hash", "_mask")

    def __init__(
        self,
        store: Blockstore,
        root: _Node,
        root_cid: CID | None,
        bitwidth: int,
        hash_fn: HashFunction,
        legacy: bool = False,
    ):
        """Use Hamt.new or Hamt.load."""
        if not 1 <= bitwidth <= 8:
            raise ValueError(f"HAMT bitwidth must be 1..8, got {bitwidth}")
        super().__init__(store, bitwidth, legacy, root, root_cid)
        self._mask = (1 << bitwidth) - 1
        self._hash = hash_fn

    @classmethod
    def new(
        cls,
        store: Blockstore,
        bitwidth: int = DEFAULT_BITWIDTH,
        hash_fn: HashFunction = sha256_hash,
        legacy: bool = False,
    ) -> "Hamt":
        return cls(store, _Node(0, []), None, bitwidth, hash_fn, legacy)

    @classmethod
    def load(
        cls,
        store: Blockstore,
        root: CID,
        bitwidth: int = DEFAULT_BITWIDTH,
        hash_fn: HashFunction = sha256_hash,
        legacy: bool = False,
    ) -> "Hamt":
        """Open the HAMT whose root node is root; the root is read and validated now, the rest lazily.

        Raises BlockNotFound if the root block is missing and DecodeError if it is malformed.
        """
        if not 1 <= bitwidth <= 8:
            if not store.has(root):
                raise BlockNotFound(root)
            raise ValueError(f"HAMT bitwidth must be 1..8, got {bitwidth}")
        node = _read_node(store, root, bitwidth, True, legacy)
        return cls(store, node, root, bitwidth, hash_fn, legacy)

    # reading ------------------------------------------------------------------------------------------
    def _load(self, link: Link[_Node]) -> _Node:
        node = _read_node(self._store, link.cid, self._bitwidth, False, self._legacy)
        self._children[link] = node
        return node

    def _hashed(self, key: bytes) -> tuple[int, int]:
        if self._hash is sha256_hash and type(key) is bytes:  # a bytearray key is not hashable
            return _sha256_hashed(key)
        digest = self._hash(key)
        return int.from_bytes(digest, "big"), len(digest) * 8

    def get(self, key: bytes, default: Any = None) -> Any:
        """The value stored under key, or default."""
        h, left = self._hashed(key)
        bw = self._bitwidth
        node = self._root
        children = self._children
        while True:
            if left >= bw:
                left -= bw
                bit = 1 << ((h >> left) & self._mask)
            elif left > 0:
                bit = 1 << (h & ((1 << left) - 1))
                left = 0
            else:
                raise MaxDepthError("no hash bits left: maximum HAMT depth reached")
            bitmap = node.bitmap
            if not bitmap & bit:
                return default
            ptr = node.pointers[(bitmap & (bit - 1)).bit_count()]
            t = type(ptr)
            if t is list:
                for kv in ptr:
                    if kv[0] == key:
                        return kv[1]
                return default
            node = (children.get(ptr) or self._load(ptr)) if t is Link else ptr

    def contains(self, key: bytes) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    def __contains__(self, key: object) -> bool:
        return type(key) is bytes and self.contains(key)

    def items(self) -> Iterator[tuple[bytes, Any]]:
        """Every (key, value) in HAMT order: depth-first by slot, i.e. by hash bits, then by key within a
        bucket. Use sorted_items() for key order."""
        stack = [iter(self._root.pointers)]
        while stack:
            ptr = next(stack[-1], None)
            if ptr is None:
                stack.pop()
                continue
            t = type(ptr)
            if t is list:
                for kv in ptr:
                    yield kv[0], kv[1]
            elif t is Link:
                stack.append(iter((self._children.get(ptr) or self._load(ptr)).pointers))
            else:
                stack.append(iter(ptr.pointers))

    def keys(self) -> Iterator[bytes]:
        return (k for k, _ in self.items())

    def values(self) -> Iterator[Any]:
        return (v for _, v in self.items())

    def sorted_items(self) -> list[tuple[bytes, Any]]:
        """All entries sorted by key bytes (reads the whole HAMT; O(n log n))."""
        return sorted(self.items(), key=lambda kv: kv[0])

    def for_each(self, fn: Callable[[bytes, Any], object]) -> None:
        for key, value in self.items():
            fn(key, value)

    def count(self) -> int:
        """Number of entries (walks the whole HAMT)."""
        return sum(1 for _ in self.items())

    def is_empty(self) -> bool:
        return not self._root.pointers

    # writing --------------------------------------------------------------------------------------------
    def _commit_root(self, root: _Node) -> None:
        self._root = root
        self._root_cid = None

    def set(self, key: bytes, value: Any) -> None:
        """Store value under key (replacing any value there)."""
        self._put(key, value, True)

    def set_if_absent(self, key: bytes, value: Any) -> bool:
        """Store value under key unless key is present; True if it was stored."""
        return self._put(key, value, False)

    def _put(self, key: bytes, value: Any, overwrite: bool) -> bool:
        if type(key) is not bytes:
            raise TypeError(f"HAMT keys are bytes, got {type(key).__name__}")
        h, left = self._hashed(key)
        root = self._owned_root()
        if self._insert(root, h, left, key, value, overwrite):
            self._commit_root(root)
            return True
        return False

    def _next_bit(self, h: int, left: int) -> tuple[int, int]:
        bw = self._bitwidth
        if left >= bw:
            left -= bw
            return 1 << ((h >> left) & self._mask), left
        if left > 0:
            return 1 << (h & ((1 << left) - 1)), 0
        raise MaxDepthError("no hash bits left: maximum HAMT depth reached")

    def _insert(self, node: _Node, h: int, left: int, key: bytes, value: Any, overwrite: bool) -> bool:
        """Insert into node (owned by the caller); True if anything changed."""
        bit, left = self._next_bit(h, left)
        bitmap = node.bitmap
        i = (bitmap & (bit - 1)).bit_count()
        if not bitmap & bit:
            node.pointers.insert(i, [[key, value]])
            node.bitmap = bitmap | bit
            return True
        ptr = node.pointers[i]
        t = type(ptr)
        if t is list:
            for j, kv in enumerate(ptr):
                if kv[0] == key:
                    if not overwrite or _same_value(kv[1], value):
                        return False
                    bucket = ptr.copy()
                    bucket[j] = [key, value]
                    node.pointers[i] = bucket
                    return True
            if len(ptr) < BUCKET_SIZE:
                node.pointers[i] = sorted([*ptr, [key, value]], key=lambda kv: kv[0])
                return True
            # A full bucket becomes a child node holding its entries and the new one.
            child = _Node(0, [])
            self._insert(child, h, left, key, value, True)
            for k, v in ptr:
                kh, _ = self._hashed(k)
                self._insert(child, kh, left, k, v, True)
            node.pointers[i] = child
            return True
        if t is Link:
            children = self._children
            child = (children.get(ptr) or self._load(ptr)).copy()
            if not self._insert(child, h, left, key, value, overwrite):
                return False
            del children[ptr]  # the link leaves the tree: keep only live links' children
            node.pointers[i] = child
            return True
        return self._insert(ptr, h, left, key, value, overwrite)

    def delete(self, key: bytes) -> bool:
        """Remove key; True if it was present."""
        if type(key) is not bytes:
            return False
        h, left = self._hashed(key)
        root = self._owned_root()
        if self._remove(root, h, left, key):
            self._commit_root(root)
            return True
        return False

    def _remove(self, node: _Node, h: int, left: int, key: bytes) -> bool:
        bit, left = self._next_bit(h, left)
        bitmap = node.bitmap
        if not bitmap & bit:
            return False
        i = (bitmap & (bit - 1)).bit_count()
        ptr = node.pointers[i]
        t = type(ptr)
        if t is list:
            for j, kv in enumerate(ptr):
                if kv[0] == key:
                    if len(ptr) == 1:
                        del node.pointers[i]
                        node.bitmap = bitmap & ~bit
                    else:
                        node.pointers[i] = ptr[:j] + ptr[j + 1 :]
                    return True
            return False
        if t is Link:
            children = self._children
            child = (children.get(ptr) or self._load(ptr)).copy()
            if not self._remove(child, h, left, key):
                return False
            del children[ptr]  # the link leaves the tree: keep only live links' children
        else:
            child = ptr
            if not self._remove(child, h, left, key):
                return False
        if not child.pointers:  # unreachable for valid trees; keeps the parent well formed anyway
            del node.pointers[i]
            node.bitmap = bitmap & ~bit
            return True
        bucket = _collapsible(child)
        node.pointers[i] = child if bucket is None else bucket
        return True

    # persisting ---------------------------------------------------------------------------------------
    def _encode_root(self, blocks: list[tuple[CID, bytes]], written: list[_Node]) -> bytes:
        data = self._encode(self._root, blocks, written)
        written.append(self._root)
        return data

    def _cache_written(
        self, cache: BlockCache, blocks: list[tuple[CID, bytes]], written: list[_Node]
    ) -> None:
        bw, legacy = self._bitwidth, self._legacy
        last = len(blocks) - 1
        for i, ((node_cid, node_data), node) in enumerate(zip(blocks, written, strict=True)):
            cache.put(("hamt", bw, i == last, legacy), node_cid, node_data, node)

    def _encode(self, node: _Node, blocks: list[tuple[CID, bytes]], written: list[_Node]) -> bytes:
        pointers = node.pointers
        out: list[Any] = []
        for i, ptr in enumerate(pointers):
            t = type(ptr)
            if t is list:
                out.append(ptr)
            elif t is Link:
                out.append(ptr.cid)
            else:
                link = self._written(ptr, self._encode(ptr, blocks, written), blocks, written)
                pointers[i] = link
                out.append(link.cid)
        if self._legacy:
            out = [{"0": p} if type(p) is CID else {"1": p} for p in out]
            return dagcbor.encode([encode_bitfield(node.bitmap), out])
        origin = node.origin
        node.origin = None
        if origin is not None and origin.bitmap == node.bitmap:
            data, starts = _spliced(origin, pointers, out)
        else:
            data, starts = _encoded(node.bitmap, out)
        node.written = (data, starts)
        return data


def _encoded(bitmap: int, out: list[Any]) -> tuple[bytes, "array[int]"]:
    """A node's block from its pointers' encodable forms, and where each pointer starts in it (then
    its end): a canonical array is its head and its items' encodings one after another."""
    head = dagcbor.encode([encode_bitfield(bitmap), []])[:-1] + dagcbor.array_head(len(out))
    pieces = [dagcbor.encode(p) for p in out]
    starts = array("I", [len(head)])
    end = len(head)
    for piece in pieces:
        end += len(piece)
        starts.append(end)
    return head + b"".join(pieces), starts


def _spliced(origin: _Node, pointers: list[Any], out: list[Any]) -> tuple[bytes, "array[int]"]:
    """_encoded for a copy of origin with the same bitmap (so pointer i sits where the origin's did):
    the pointers that are the origin's own objects copied from its block, the others encoded."""
    assert origin.written is not None  # a copy has an origin only when that was written
    src, src_starts = origin.written
    parts: list[bytes] = []
    starts = array("I", src_starts)
    taken = 0  # src is copied up to here
    shift = 0  # how much longer the new block is than src so far
    for i, (ptr, was) in enumerate(zip(pointers, origin.pointers, strict=True)):
        if ptr is was:
            continue
        begin, end = src_starts[i], src_starts[i + 1]
        piece = dagcbor.encode(out[i])
        parts.append(src[taken:begin])
        parts.append(piece)
        taken = end
        delta = len(piece) - (end - begin)
        if delta:
            shift += delta
            for j in range(i + 1, len(starts)):
                starts[j] = src_starts[j] + shift
    if not parts:
        return src, starts
    parts.append(src[taken:])
    return b"".join(parts), starts
