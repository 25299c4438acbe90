"""Typed views of an actor's AMTs and HAMTs, as builtin-actors' `Array<T>` and `Map<K, V>`.

A subclass names the collection's bitwidth and value type (a declared type, or one with the same
codec methods) and, for a map, how a key becomes bytes. Values are encoded on write and decoded on
read; a stored value that does not decode is corrupt state (ErrIllegalState, actors/util/stored.py).

    class Sectors(ArrayOf[SectorOnChainInfo]):
        bitwidth = SECTORS_AMT_BITWIDTH
        value_type = SectorOnChainInfo
        what = "sectors"
"""

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from actors.util.stored import reading
from chain.encoding.cid import CID
from chain.state.amt import Amt
from chain.state.hamt import Hamt
from chain.store.blockstore import Blockstore


class Encodable(Protocol):
    def to_cbor(self) -> Any: ...


K = TypeVar("K")
V = TypeVar("V", bound=Encodable)


class ArrayOf(Generic[V]):
    """An AMT of one value type, indexed by uint64."""

    bitwidth: ClassVar[int]
    value_type: ClassVar[Any]  # the class of V (ClassVar cannot say so)
    what: ClassVar[str]  # the collection's name in error messages

    __slots__ = ("_amt",)

    def __init__(self, amt: Amt) -> None:
        self._amt = amt

    @classmethod
    def load(cls, store: Blockstore, root: CID) -> Self:
        with reading(cls.what):
            return cls(Amt.load(store, root, cls.bitwidth))

    @classmethod
    def new(cls, store: Blockstore) -> Self:
        return cls(Amt.new(store, cls.bitwidth))

    def _decode(self, index: int, raw: Any) -> V:
        with reading(f"{self.what} entry {index}"):
            value: V = self.value_type.from_cbor(raw)
        return value

    def get(self, index: int) -> V | None:
        raw = self._amt.get(index)
        return None if raw is None else self._decode(index, raw)

    def set(self, index: int, value: V) -> None:
        self._amt.set(index, value.to_cbor())

    def remove(self, index: int) -> bool:
        return self._amt.delete(index)

    def items(self) -> list[tuple[int, V]]:
        """Every entry in index order (a list: the caller may change the array while going through it)."""
        return [(index, self._decode(index, raw)) for index, raw in self._amt.items()]

    def count(self) -> int:
        return self._amt.count()

    def flush(self) -> CID:
        return self._amt.flush()


class MapOf(ABC, Generic[K, V]):
    """A HAMT of one value type, keyed by K (a subclass's `key_bytes` gives a key's bytes)."""

    bitwidth: ClassVar[int]
    value_type: ClassVar[Any]
    what: ClassVar[str]

    __slots__ = ("_hamt",)

    def __init__(self, hamt: Hamt) -> None:
        self._hamt = hamt

    @staticmethod
    @abstractmethod
    def key_bytes(key: K) -> bytes:
        """The HAMT key of key (the encoding builtin-actors uses for this map)."""

    @classmethod
    def load(cls, store: Blockstore, root: CID) -> Self:
        with reading(cls.what):
            return cls(Hamt.load(store, root, cls.bitwidth))

    @classmethod
    def new(cls, store: Blockstore) -> Self:
        return cls(Hamt.new(store, cls.bitwidth))

    def get(self, key: K) -> V | None:
        raw = self._hamt.get(self.key_bytes(key))
        if raw is None:
            return None
        with reading(f"{self.what} entry {key}"):
            value: V = self.value_type.from_cbor(raw)
        return value

    def contains(self, key: K) -> bool:
        return self._hamt.contains(self.key_bytes(key))

    def set(self, key: K, value: V) -> None:
        self._hamt.set(self.key_bytes(key), value.to_cbor())

    def remove(self, key: K) -> bool:
        return self._hamt.delete(self.key_bytes(key))

    def flush(self) -> CID:
        return self._hamt.flush()
