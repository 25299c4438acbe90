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
from chain.vm.exitcode import not_found


class Encodable(Protocol):
    def to_cbor(self) -> Any: ...


class Flushable(Protocol):
    def flush(self) -> CID: ...


K = TypeVar("K")
V = TypeVar("V", bound=Encodable)
B = TypeVar("B", bound=Flushable)


class _Collection(Generic[B, V]):
    """What an ArrayOf and a MapOf share: loading, creating and flushing the structure B that holds the
    encoded values, and decoding a value read from it."""

    backing: ClassVar[Any]  # the class of B (Amt or Hamt), whose load and new take a bitwidth
    bitwidth: ClassVar[int]
    value_type: ClassVar[Any]  # the class of V (ClassVar cannot say so)
    what: ClassVar[str]  # the collection's name in error messages

    __slots__ = ("_data",)

    def __init__(self, data: B) -> None:
        self._data = data

    @classmethod
    def load(cls, store: Blockstore, root: CID) -> Self:
        with reading(cls.what):
            return cls(cls.backing.load(store, root, cls.bitwidth))

    @classmethod
    def new(cls, store: Blockstore) -> Self:
        return cls(cls.backing.new(store, cls.bitwidth))

    def _decode(self, key: object, raw: Any) -> V:
        with reading(f"{self.what} entry {key}"):
            value: V = self.value_type.from_cbor(raw)
        return value

    def flush(self) -> CID:
        return self._data.flush()


class ArrayOf(_Collection[Amt, V]):
    """An AMT of one value type, indexed by uint64."""

    backing = Amt
    missing: ClassVar[str]  # the ErrNotFound message of must_get, formatted with the index
    __slots__ = ()

    def get(self, index: int) -> V | None:
        raw = self._data.get(index)
        return None if raw is None else self._decode(index, raw)

    def must_get(self, index: int) -> V:
        value = self.get(index)
        if value is None:
            raise not_found(self.missing.format(index))
        return value

    def set(self, index: int, value: V) -> None:
        self._data.set(index, value.to_cbor())

    def remove(self, index: int) -> bool:
        return self._data.delete(index)

    def items(self) -> list[tuple[int, V]]:
        """Every entry in index order (a list: the caller may change the array while going through it)."""
        return [(index, self._decode(index, raw)) for index, raw in self._data.items()]

    def count(self) -> int:
        return self._data.count()


class MapOf(ABC, _Collection[Hamt, V], Generic[K, V]):
    """A HAMT of one value type, keyed by K (a subclass's `key_bytes` gives a key's bytes)."""

    backing = Hamt
    __slots__ = ()

    @staticmethod
    @abstractmethod
    def key_bytes(key: K) -> bytes:
        """The HAMT key of key (the encoding builtin-actors uses for this map)."""

    def get(self, key: K) -> V | None:
        raw = self._data.get(self.key_bytes(key))
        return None if raw is None else self._decode(key, raw)

    def contains(self, key: K) -> bool:
        return self._data.contains(self.key_bytes(key))

    def set(self, key: K, value: V) -> None:
        self._data.set(self.key_bytes(key), value.to_cbor())

    def remove(self, key: K) -> bool:
        return self._data.delete(self.key_bytes(key))
