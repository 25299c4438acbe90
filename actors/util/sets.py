"""Sets and set-multimaps over the HAMT, laid out as builtin-actors' `Set` and `SetMultimap`.

A set is a HAMT whose values are all CBOR null (Rust's `()`, Go's nil value). A set-multimap is a HAMT
from an integer key (u64 varint) to the root CID of an inner set of integer keys; the market actor
keeps its deal-operations-by-epoch index in one. Both use the default bitwidth of 5.
"""

from collections.abc import Iterable

from actors.util.keys import parse_u64_key, u64_key
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.state.hamt import DEFAULT_BITWIDTH, Hamt
from chain.store.blockstore import Blockstore


class HamtSet:
    """A set of byte-string keys."""

    __slots__ = ("_hamt",)

    def __init__(self, hamt: Hamt) -> None:
        self._hamt = hamt

    @classmethod
    def new(cls, store: Blockstore, bitwidth: int = DEFAULT_BITWIDTH) -> "HamtSet":
        return cls(Hamt.new(store, bitwidth))

    @classmethod
    def load(cls, store: Blockstore, root: CID, bitwidth: int = DEFAULT_BITWIDTH) -> "HamtSet":
        return cls(Hamt.load(store, root, bitwidth))

    def put(self, key: bytes) -> None:
        self._hamt.set(key, None)

    def has(self, key: bytes) -> bool:
        return self._hamt.contains(key)

    def delete(self, key: bytes) -> bool:
        """Remove key; False if it was absent."""
        return self._hamt.delete(key)

    def members(self) -> list[bytes]:
        return [key for key, _ in self._hamt.items()]

    def flush(self) -> CID:
        return self._hamt.flush()


class SetMultimap:
    """Integer key -> set of integers (uint64 both), e.g. epoch -> deal IDs to process then."""

    __slots__ = ("_bitwidth", "_outer", "_store")

    def __init__(self, store: Blockstore, outer: Hamt, bitwidth: int) -> None:
        self._store = store
        self._outer = outer
        self._bitwidth = bitwidth

    @classmethod
    def new(cls, store: Blockstore, bitwidth: int = DEFAULT_BITWIDTH) -> "SetMultimap":
        return cls(store, Hamt.new(store, bitwidth), bitwidth)

    @classmethod
    def load(cls, store: Blockstore, root: CID, bitwidth: int = DEFAULT_BITWIDTH) -> "SetMultimap":
        return cls(store, Hamt.load(store, root, bitwidth), bitwidth)

    def _inner(self, key: int) -> HamtSet | None:
        root = self._outer.get(u64_key(key))
        if root is None:
            return None
        if type(root) is not CID:
            raise DecodeError(f"set-multimap entry {key} is not a CID link")
        return HamtSet.load(self._store, root, self._bitwidth)

    def put(self, key: int, value: int) -> None:
        self.put_many(key, (value,))

    def put_many(self, key: int, values: Iterable[int]) -> None:
        inner = self._inner(key) or HamtSet.new(self._store, self._bitwidth)
        for value in values:
            inner.put(u64_key(value))
        self._outer.set(u64_key(key), inner.flush())

    def get(self, key: int) -> list[int]:
        """The values under key in ascending order (empty if none)."""
        inner = self._inner(key)
        if inner is None:
            return []
        return sorted(parse_u64_key(k) for k in inner.members())

    def remove(self, key: int, value: int) -> None:
        inner = self._inner(key)
        if inner is None:
            return
        inner.delete(u64_key(value))
        self._outer.set(u64_key(key), inner.flush())

    def remove_all(self, key: int) -> None:
        self._outer.delete(u64_key(key))

    def keys(self) -> list[int]:
        return sorted(parse_u64_key(k) for k, _ in self._outer.items())

    def flush(self) -> CID:
        return self._outer.flush()
