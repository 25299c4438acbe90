"""Declared types: one field list gives a type's DAG-CBOR form and its Lotus JSON form.

A chain or actor type is a class deriving from `CborTuple` (CBOR array in field order, as cbor-gen's
tuple encoding), `CborMap` (CBOR map keyed by the Go field names, as cbor-gen's map encoding) or
`LotusJson` (a JSON-only API shape). The class body lists the fields with their kinds; the class
becomes a frozen dataclass and gets:

- `to_cbor()` / `from_cbor(raw, what)`: the DAG-CBOR value (as `dagcbor.encode` takes it) and back;
  decoding checks shape and every field and raises DecodeError naming the path (`BlockHeader.Ticket.
  VRFProof: ...`), with Go field names;
- `to_bytes()` / `from_bytes(data)` / `cid()`;
- `to_json(network)` / `from_json(raw, what)`: Lotus JSON (Go field names, CIDs as {"/": ...}, big
  integers as decimal strings, bytes as padded base64, absent values and empty lists/bytes as null).

    class BeaconEntry(CborTuple):
        round: Uint64
        data: Bytes

Field kinds come from the annotations: `Uint64`, `Int64`, `BigInt` (Filecoin big integer), `bytes`
(`Bytes`, `BytesN(32)`, `BytesMax(n)`), `bool`, `str`, `CID`, `X | None`, `tuple[X, ...]` (at most 8,192
items unless `MaxLen(n)` says otherwise), an `IntEnum`, or another declared class. A class outside this
module may take part as a field by offering the four codec methods itself (Address, Signature,
TipSetKey, BitField do, because their encodings are not structs). The Go name of a field is its Python
name in CamelCase unless `Name("BLSAggregate")` says otherwise.

Constructing an instance checks what the kinds promise (64-bit ranges, tuples for lists) so that a
value built in code always encodes; decoding builds instances without running those checks again.
`replace(obj, **changes)` is dataclasses.replace with the same checks, without its per-field walk.
The codec of a class is compiled on first use, so forward references between classes are fine.
"""

import base64
import binascii
import dataclasses
import re
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from enum import IntEnum
from typing import Any, ClassVar, Final, Self, dataclass_transform

from chain.encoding import dagcbor
from chain.encoding.bigint import MAX_BIGINT_BYTES, decode_bigint, encode_bigint
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError

UINT64_MAX: Final = (1 << 64) - 1
INT64_MIN: Final = -(1 << 63)
INT64_MAX: Final = (1 << 63) - 1
# cbor-gen's limits: the longest array decoded into a slice, the longest byte string into []byte.
MAX_ARRAY_LENGTH: Final = 8192
MAX_BYTES_LENGTH: Final = 2 << 20
# Address strings are written with this network prefix unless a caller says otherwise ('t': filpy
# runs devnets and testnets).
DEFAULT_NETWORK: Final = "t"

Encoder = Callable[[Any], Any]
Decoder = Callable[[Any, str], Any]
D = typing.TypeVar("D")
JsonEncoder = Callable[[Any, str], Any]


def kind_name(raw: Any) -> str:
    return "null" if raw is None else type(raw).__name__


# ------------------------------------------------------------------------------------------------
# Kinds: how one value is written and read. Each is immutable and shared.


class Kind(ABC):
    """The codec of one field's values; subclasses override what differs from the identity."""

    encode: Encoder | None = None  # None: the value is its own CBOR form

    @abstractmethod
    def decode(self, raw: Any, what: str) -> Any:
        """Check a decoded CBOR value and turn it into the field's value; DecodeError names `what`."""

    def to_json(self, value: Any, network: str) -> Any:
        return value

    def from_json(self, raw: Any, what: str) -> Any:
        return self.decode(raw, what)

    def check(self, value: Any, what: str) -> Any:
        """Validate (and normalise) a value given to a constructor; raise ValueError/TypeError."""
        return value

    # Code generation: a declared class's to_cbor, from_cbor and constructor checks are compiled
    # from these (see _compile), so that a declaration runs as fast as a hand-written codec.
    def guard(self, v: str, ns: "_Namespace") -> str | None:
        """An expression true when the value in variable v is not acceptable as it is (decoded or
        given to a constructor); None when the kind has no such cheap test."""
        return None

    def cbor_expr(self, v: str, ns: "_Namespace") -> str:
        """An expression for the CBOR form of the value in variable v."""
        return v if self.encode is None else f"{ns.ref(self.encode)}({v})"

    def decode_lines(self, v: str, path: str, ns: "_Namespace") -> list[str]:
        """Statements that check the decoded CBOR value in v and rebind v to the field's value;
        `path` is an expression for the field's path, evaluated only where it is needed."""
        guard = self.guard(v, ns)
        if guard is not None and self.encode is None:
            return [f"if {guard}: {ns.ref(self.decode)}({v}, {path})"]
        return [f"{v} = {ns.ref(self.decode)}({v}, {path})"]

    def check_lines(self, v: str, path: str, ns: "_Namespace") -> list[str]:
        """Statements that check (and normalise) a constructor's value in v; path is a constant."""
        guard = self.guard(v, ns)
        if guard is not None:
            return [f"if {guard}: {v} = {ns.ref(self.check)}({v}, {path!r})"]
        return [f"{v} = {ns.ref(self.check)}({v}, {path!r})"]


class _Namespace:
    """Names that generated code refers to."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {"DecodeError": DecodeError}

    def ref(self, value: Any) -> str:
        name = f"_r{len(self.values)}"
        self.values[name] = value
        return name


class IntKind(Kind):
    def __init__(self, lo: int, hi: int, label: str) -> None:
        self.lo, self.hi, self.label = lo, hi, label

    def decode(self, raw: Any, what: str) -> int:
        if type(raw) is not int or raw < self.lo or raw > self.hi:
            raise DecodeError(f"{what}: expected {self.label}, got {kind_name(raw)} {raw!r}"[:200])
        return raw

    def check(self, value: Any, what: str) -> Any:
        if not isinstance(value, int) or isinstance(value, bool) or not self.lo <= value <= self.hi:
            raise ValueError(f"{what}: {value!r} is not {self.label}")
        return int(value)  # an IntEnum member becomes its number

    def guard(self, v: str, ns: "_Namespace") -> str:
        return f"type({v}) is not int or {v} < {self.lo} or {v} > {self.hi}"


UINT64_KIND: Final = IntKind(0, UINT64_MAX, "an unsigned 64-bit integer")
INT64_KIND: Final = IntKind(INT64_MIN, INT64_MAX, "a signed 64-bit integer")
_DIGITS: Final = re.compile(r"-?[0-9]+")
# Decimal digits of the largest magnitude a Filecoin big integer holds (127 bytes).
_MAX_BIGINT_DIGITS: Final = len(str(1 << (8 * (MAX_BIGINT_BYTES - 1))))


class BigIntKind(Kind):
    """A Filecoin big integer: sign byte + big-endian magnitude in CBOR, a decimal string in JSON."""

    encode = staticmethod(encode_bigint)

    def decode(self, raw: Any, what: str) -> int:
        if type(raw) is not bytes:
            raise DecodeError(f"{what}: expected a big integer as bytes, got {kind_name(raw)}")
        return decode_bigint(raw, what)

    def to_json(self, value: Any, network: str) -> str:
        return str(value)

    def from_json(self, raw: Any, what: str) -> int:
        return bigint_from_json(raw, what)

    def guard(self, v: str, ns: "_Namespace") -> str:
        return f"type({v}) is not int or {v}.bit_length() > {8 * (MAX_BIGINT_BYTES - 1)}"

    def decode_lines(self, v: str, path: str, ns: "_Namespace") -> list[str]:
        return [f"{v} = {ns.ref(self.decode)}({v}, {path})"]

    def check(self, value: Any, what: str) -> Any:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{what}: expected an integer, got {kind_name(value)}")
        if (abs(value).bit_length() + 7) // 8 + 1 > MAX_BIGINT_BYTES:
            raise ValueError(f"{what}: big integer exceeds the {MAX_BIGINT_BYTES}-byte limit")
        return value


BIGINT_KIND: Final = BigIntKind()


def bigint_from_json(raw: Any, what: str) -> int:
    """A decimal string, optionally negative (Go big.Int SetString base 10)."""
    if type(raw) is not str:
        raise DecodeError(f"{what}: expected a decimal string, got {kind_name(raw)}")
    if not _DIGITS.fullmatch(raw):
        raise DecodeError(f"{what}: {raw[:80]!r} is not a decimal integer")
    if len(raw.lstrip("-")) > _MAX_BIGINT_DIGITS:
        raise DecodeError(f"{what}: integer of {len(raw)} digits is too large")
    value = int(raw)
    if (abs(value).bit_length() + 7) // 8 + 1 > MAX_BIGINT_BYTES:
        raise DecodeError(f"{what}: integer exceeds the {MAX_BIGINT_BYTES}-byte big integer limit")
    return value


class BytesKind(Kind):
    """A byte string, of exactly `length` bytes or at most `max_len`; base64 (or null) in JSON."""

    def __init__(self, length: int | None = None, max_len: int = MAX_BYTES_LENGTH) -> None:
        self.length, self.max_len = length, max_len

    def decode(self, raw: Any, what: str) -> bytes:
        if type(raw) is not bytes:
            raise DecodeError(f"{what}: expected a byte string, got {kind_name(raw)}")
        self._check_length(raw, what, DecodeError)
        return raw

    def _check_length(self, raw: bytes, what: str, error: type[Exception]) -> None:
        if self.length is not None and len(raw) != self.length:
            raise error(f"{what}: expected {self.length} bytes, got {len(raw)}")
        if len(raw) > self.max_len:
            raise error(f"{what}: {len(raw)} bytes exceeds the limit of {self.max_len}")

    def to_json(self, value: Any, network: str) -> str | None:
        return bytes_to_json(value)

    def from_json(self, raw: Any, what: str) -> bytes:
        data = bytes_from_json(raw, what)
        self._check_length(data, what, DecodeError)
        return data

    def check(self, value: Any, what: str) -> Any:
        if type(value) is not bytes:
            raise TypeError(f"{what}: expected bytes, got {kind_name(value)}")
        self._check_length(value, what, ValueError)
        return value

    def guard(self, v: str, ns: "_Namespace") -> str:
        size = f"len({v}) != {self.length}" if self.length is not None else f"len({v}) > {self.max_len}"
        return f"type({v}) is not bytes or {size}"


def bytes_to_json(data: bytes) -> str | None:
    """Go's []byte: padded base64; an empty (nil) slice is null."""
    return base64.b64encode(data).decode("ascii") if data else None


def bytes_from_json(raw: Any, what: str) -> bytes:
    if raw is None:
        return b""
    if type(raw) is not str:
        raise DecodeError(f"{what}: expected base64 text or null, got {kind_name(raw)}")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"{what}: invalid base64: {exc}") from None


class ScalarKind(Kind):
    def __init__(self, python_type: type, label: str) -> None:
        self.python_type, self.label = python_type, label

    def decode(self, raw: Any, what: str) -> Any:
        if type(raw) is not self.python_type:
            raise DecodeError(f"{what}: expected {self.label}, got {kind_name(raw)}")
        return raw

    def check(self, value: Any, what: str) -> Any:
        if type(value) is not self.python_type:
            raise TypeError(f"{what}: expected {self.label}, got {kind_name(value)}")
        return value

    def guard(self, v: str, ns: "_Namespace") -> str:
        return f"type({v}) is not {ns.ref(self.python_type)}"


BOOL_KIND: Final = ScalarKind(bool, "a boolean")
STR_KIND: Final = ScalarKind(str, "a text string")


class CidKind(Kind):
    def decode(self, raw: Any, what: str) -> CID:
        if type(raw) is not CID:
            raise DecodeError(f"{what}: expected a CID link, got {kind_name(raw)}")
        return raw

    def to_json(self, value: Any, network: str) -> dict[str, str]:
        return cid_to_json(value)

    def from_json(self, raw: Any, what: str) -> CID:
        return cid_from_json(raw, what)

    def check(self, value: Any, what: str) -> Any:
        if type(value) is not CID:
            raise TypeError(f"{what}: expected a CID, got {kind_name(value)}")
        return value

    def guard(self, v: str, ns: "_Namespace") -> str:
        return f"type({v}) is not {ns.ref(CID)}"


CID_KIND: Final = CidKind()


def cid_to_json(cid: CID) -> dict[str, str]:
    return {"/": str(cid)}


def cid_from_json(raw: Any, what: str) -> CID:
    if not isinstance(raw, dict) or set(raw) != {"/"} or type(raw["/"]) is not str:
        raise DecodeError(f'{what}: expected a CID as {{"/": "<cid>"}}, got {kind_name(raw)}')
    try:
        return CID.parse(raw["/"])
    except DecodeError as exc:
        raise DecodeError(f"{what}: {exc}") from None


class EnumKind(Kind):
    """An IntEnum written as its number; unknown numbers are refused."""

    encode = int  # the member's number, a plain int as decoded CBOR gives it back

    def __init__(self, enum: type[IntEnum]) -> None:
        self.enum = enum
        self.by_value = {int(m): m for m in enum}

    def decode(self, raw: Any, what: str) -> IntEnum:
        member = self.by_value.get(raw) if type(raw) is int else None
        if member is None:
            raise DecodeError(f"{what}: {raw!r} is not a valid {self.enum.__name__}"[:200])
        return member

    def to_json(self, value: Any, network: str) -> int:
        return int(value)

    def check(self, value: Any, what: str) -> Any:
        try:
            return self.enum(value)
        except ValueError:
            raise ValueError(f"{what}: {value!r} is not a valid {self.enum.__name__}") from None

    def guard(self, v: str, ns: "_Namespace") -> str:
        return f"type({v}) is not {ns.ref(self.enum)}"

    def decode_lines(self, v: str, path: str, ns: "_Namespace") -> list[str]:
        by_value = ns.ref(self.by_value)
        return [
            f"{v}_m = {by_value}.get({v}) if type({v}) is int else None",
            f"if {v}_m is None: {ns.ref(self.decode)}({v}, {path})",
            f"{v} = {v}_m",
        ]


class OptionalKind(Kind):
    """X | None: null when absent."""

    def __init__(self, inner: Kind) -> None:
        self.inner = inner
        enc = inner.encode
        if enc is not None:
            self.encode = lambda v: None if v is None else enc(v)

    def decode(self, raw: Any, what: str) -> Any:
        return None if raw is None else self.inner.decode(raw, what)

    def to_json(self, value: Any, network: str) -> Any:
        return None if value is None else self.inner.to_json(value, network)

    def from_json(self, raw: Any, what: str) -> Any:
        return None if raw is None else self.inner.from_json(raw, what)

    def check(self, value: Any, what: str) -> Any:
        return None if value is None else self.inner.check(value, what)

    def cbor_expr(self, v: str, ns: "_Namespace") -> str:
        inner = self.inner.cbor_expr(v, ns)
        return v if inner == v else f"(None if {v} is None else {inner})"

    def decode_lines(self, v: str, path: str, ns: "_Namespace") -> list[str]:
        return [f"if {v} is not None:", *("    " + line for line in self.inner.decode_lines(v, path, ns))]

    def check_lines(self, v: str, path: str, ns: "_Namespace") -> list[str]:
        return [f"if {v} is not None:", *("    " + line for line in self.inner.check_lines(v, path, ns))]


class ListKind(Kind):
    """tuple[X, ...]: a CBOR array; in JSON an array, with null for an empty (Go nil) list."""

    def __init__(self, inner: Kind, max_len: int) -> None:
        self.inner, self.max_len = inner, max_len
        enc = inner.encode
        self.encode = list if enc is None else (lambda values: [enc(v) for v in values])

    def _items(self, raw: Any, what: str) -> list[Any]:
        if type(raw) is not list:
            raise DecodeError(f"{what}: expected an array, got {kind_name(raw)}")
        if len(raw) > self.max_len:
            raise DecodeError(f"{what}: {len(raw)} items exceeds the limit of {self.max_len}")
        return raw

    def decode(self, raw: Any, what: str) -> tuple[Any, ...]:
        dec = self.inner.decode
        items = self._items(raw, what)
        # Each item's path is only read when the item is refused: decode them all under the list's
        # path (no string made per item: a chain exchange answer's headers, messages and indexes),
        # and only when one is refused decode them again, each under its own path, which raises the
        # same error the item gave, now naming it (decoding is deterministic and has no effects).
        try:
            return tuple([dec(item, what) for item in items])
        except Exception:  # raised again, as it was, by the decoding below
            pass
        return tuple(dec(item, f"{what}[{i}]") for i, item in enumerate(items))

    def to_json(self, value: Any, network: str) -> list[Any] | None:
        write = self.inner.to_json
        return [write(v, network) for v in value] if value else None

    def from_json(self, raw: Any, what: str) -> tuple[Any, ...]:
        if raw is None:
            return ()
        read = self.inner.from_json
        return tuple(read(item, f"{what}[{i}]") for i, item in enumerate(self._items(raw, what)))

    def check(self, value: Any, what: str) -> Any:
        if isinstance(value, str | bytes) or not isinstance(value, typing.Iterable):
            raise TypeError(f"{what}: expected a sequence, got {kind_name(value)}")
        items = tuple(value)
        if len(items) > self.max_len:
            raise ValueError(f"{what}: {len(items)} items exceeds the limit of {self.max_len}")
        check = self.inner.check
        return tuple(check(v, f"{what}[{i}]") for i, v in enumerate(items))

    def check_lines(self, v: str, path: str, ns: "_Namespace") -> list[str]:
        item = f"{v}_i"
        guard = self.inner.guard(item, ns)
        if guard is None:
            return super().check_lines(v, path, ns)
        # A tuple whose items all pass their kind's guard is what check() would return: keep it and
        # skip check(), which names every item it looks at (a vesting table rebuilt per block reward).
        check = f"{v} = {ns.ref(self.check)}({v}, {path!r})"
        return [
            f"if type({v}) is not tuple or len({v}) > {self.max_len}: {check}",
            "else:",
            f"    for {item} in {v}:",
            f"        if {guard}:",
            f"            {check}",
            "            break",
        ]

    def cbor_expr(self, v: str, ns: "_Namespace") -> str:
        item = f"{v}_i"
        inner = self.inner.cbor_expr(item, ns)
        return f"list({v})" if inner == item else f"[{inner} for {item} in {v}]"

    def decode_lines(self, v: str, path: str, ns: "_Namespace") -> list[str]:
        item = f"{v}_i"
        guard = self.inner.guard(item, ns)
        if guard is None or self.inner.encode is not None or isinstance(self.inner, EnumKind):
            return [f"{v} = {ns.ref(self.decode)}({v}, {path})"]
        # Items that decode to themselves: check them in place (the generic decoder names the item).
        return [
            f"if type({v}) is not list or len({v}) > {self.max_len}: {ns.ref(self.decode)}({v}, {path})",
            f"for {item} in {v}:",
            f"    if {guard}: {ns.ref(self.decode)}({v}, {path})",
            f"{v} = tuple({v})",
        ]


class ArrayKind(ListKind):
    """A list written as `[]` when empty: a Go slice made with make() is never nil, so Lotus writes its
    empty value as an array, not null (ChainGetBlockMessages' lists, for instance)."""

    def to_json(self, value: Any, network: str) -> list[Any]:
        write = self.inner.to_json
        return [write(v, network) for v in value]


def array_kind(item: Any) -> ArrayKind:
    """The kind of `Annotated[tuple[item, ...], array_kind(item)]`: a list whose JSON is `[]` when empty."""
    kind = kind_of(tuple[item, ...], f"array of {getattr(item, '__name__', item)}")
    assert isinstance(kind, ListKind)
    return ArrayKind(kind.inner, kind.max_len)


class NestedKind(Kind):
    """A value of a class that carries its own codec (a declared class, or a hand-written one)."""

    def __init__(self, cls: Any) -> None:
        self.cls = cls
        self.encode = cls.to_cbor
        self._from_cbor = cls.from_cbor
        self._from_json = cls.from_json
        self._to_json = cls.to_json

    def decode(self, raw: Any, what: str) -> Any:
        return self._from_cbor(raw, what)

    def from_json(self, raw: Any, what: str) -> Any:
        return self._from_json(raw, what)

    def to_json(self, value: Any, network: str) -> Any:
        return self._to_json(value, network)

    def check(self, value: Any, what: str) -> Any:
        if not isinstance(value, self.cls):
            raise TypeError(f"{what}: expected {self.cls.__name__}, got {kind_name(value)}")
        return value

    def guard(self, v: str, ns: "_Namespace") -> str:
        return f"type({v}) is not {ns.ref(self.cls)}"

    def cbor_expr(self, v: str, ns: "_Namespace") -> str:
        return f"{v}.to_cbor()"

    def decode_lines(self, v: str, path: str, ns: "_Namespace") -> list[str]:
        # Looked up at call time: the class's compiled from_cbor replaces its first-use trampoline.
        return [f"{v} = {ns.ref(self.cls)}.from_cbor({v}, {path})"]


class JsonOnlyKind(NestedKind):
    """A value of a class with a JSON form only (a LotusJson declaration, TipSet): an RPC param or
    result, or a field of another JSON-only class; never a CBOR field."""

    def __init__(self, cls: Any) -> None:
        self.cls = cls
        self.encode = self._no_cbor
        self._from_json = cls.from_json
        self._to_json = cls.to_json

    def _no_cbor(self, value: Any) -> Any:
        raise TypeError(f"{self.cls.__name__} is a JSON-only type: it has no CBOR form")

    def decode(self, raw: Any, what: str) -> Any:
        raise DecodeError(f"{what}: {self.cls.__name__} is a JSON-only type: it has no CBOR form")

    def cbor_expr(self, v: str, ns: "_Namespace") -> str:
        return f"{ns.ref(self._no_cbor)}({v})"

    def decode_lines(self, v: str, path: str, ns: "_Namespace") -> list[str]:
        return [f"{ns.ref(self.decode)}({v}, {path})"]


class Raw(Kind):
    """Any DAG-CBOR value, kept as decoded (for a field whose shape depends on another field)."""

    def decode(self, raw: Any, what: str) -> Any:
        return raw


# ------------------------------------------------------------------------------------------------
# Markers for typing.Annotated and the field aliases built from them.


@dataclasses.dataclass(frozen=True)
class Name:
    """The field's Go name, where it is not the Python name in CamelCase."""

    go: str


@dataclasses.dataclass(frozen=True)
class MaxLen:
    """The most items a list field (or bytes a bytes field) may hold when decoded."""

    n: int


Uint64 = typing.Annotated[int, UINT64_KIND]
Int64 = typing.Annotated[int, INT64_KIND]
BigInt = typing.Annotated[int, BIGINT_KIND]
# go-state-types aliases, so that declarations read as the Go ones do.
TokenAmount = BigInt
StoragePower = BigInt
ChainEpoch = Int64
Bytes = typing.Annotated[bytes, BytesKind()]
Bytes32 = typing.Annotated[bytes, BytesKind(length=32)]
AnyCbor = typing.Annotated[Any, Raw()]


def BytesN(length: int) -> Any:  # noqa: N802 - reads as a type in declarations
    return typing.Annotated[bytes, BytesKind(length=length)]


def BytesMax(max_len: int) -> Any:  # noqa: N802
    return typing.Annotated[bytes, BytesKind(max_len=max_len)]


# ------------------------------------------------------------------------------------------------
# Compiling a class's fields.


@dataclasses.dataclass(frozen=True, slots=True)
class Field:
    name: str  # Python attribute
    go: str  # Go field name (CBOR map key, JSON key, error paths)
    kind: Kind
    has_default: bool
    default: Any


def go_name(python_name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in python_name.rstrip("_").split("_"))


def _kind_of(hint: Any, where: str) -> tuple[Kind, str | None]:
    """The kind of a type hint, and the Go name an Annotated marker gives (if any)."""
    go: str | None = None
    max_len: int | None = None
    if typing.get_origin(hint) is typing.Annotated:
        base, *markers = typing.get_args(hint)
        kind: Kind | None = None
        for marker in markers:
            if isinstance(marker, Kind):
                kind = marker
            elif isinstance(marker, Name):
                go = marker.go
            elif isinstance(marker, MaxLen):
                max_len = marker.n
        if kind is None:
            kind, _ = _kind_of(base, where)
        if max_len is not None:
            if isinstance(kind, ListKind):
                kind = ListKind(kind.inner, max_len)
            elif isinstance(kind, BytesKind):
                kind = BytesKind(kind.length, max_len)
            else:
                raise TypeError(f"{where}: MaxLen applies to lists and bytes only")
        return kind, go
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(members) != 1 or len(typing.get_args(hint)) != 2:
            raise TypeError(f"{where}: only 'X | None' unions can be declared")
        inner, go = _kind_of(members[0], where)
        return OptionalKind(inner), go
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"{where}: lists are declared as tuple[X, ...]")
        inner, _ = _kind_of(args[0], where)
        return ListKind(inner, MAX_ARRAY_LENGTH), None
    if hint is int:
        raise TypeError(f"{where}: say Uint64, Int64 or BigInt, not int")
    if hint is bytes:
        return BytesKind(), None
    if hint is bool:
        return BOOL_KIND, None
    if hint is str:
        return STR_KIND, None
    if hint is CID:
        return CID_KIND, None
    if isinstance(hint, type) and issubclass(hint, IntEnum):
        return EnumKind(hint), None
    if isinstance(hint, type) and all(
        hasattr(hint, m) for m in ("to_cbor", "from_cbor", "to_json", "from_json")
    ):
        return NestedKind(hint), None
    if isinstance(hint, type) and all(hasattr(hint, m) for m in ("to_json", "from_json")):
        return JsonOnlyKind(hint), None  # a JSON-only shape (TipSet, LotusJson): RPC params and results
    raise TypeError(f"{where}: no codec for {hint!r}")


def kind_of(hint: Any, where: str = "value") -> Kind:
    """The kind of a type hint as declarations write them (for RPC params and actor method params)."""
    kind, _ = _kind_of(hint, where)
    return kind


def list_kind(item: type) -> Kind:
    """The kind of tuple[item, ...], for hand-written codecs that read such lists."""
    kind, _ = _kind_of(tuple[item, ...], f"list of {item.__name__}")  # type: ignore[valid-type]
    return kind


def _fields_of(cls: type) -> tuple[Field, ...]:
    hints = typing.get_type_hints(cls, include_extras=True, localns={cls.__name__: cls})
    out = []
    for f in dataclasses.fields(cls):
        if f.name.startswith("_"):
            continue
        kind, go = _kind_of(hints[f.name], f"{cls.__name__}.{f.name}")
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        out.append(Field(f.name, go or go_name(f.name), kind, has_default, default))
    return tuple(out)


class _Codec:
    """The compiled codec of one class."""

    def __init__(self, cls: type, fields: tuple[Field, ...]) -> None:
        self.cls, self.fields = cls, fields
        self.names = tuple(f.name for f in fields)
        self.n = len(fields)
        # Each field's declared check alone (name -> the checked, normalised value), for `replace`;
        # and the class's own __post_init__, which runs after the declared checks.
        self.checks: dict[str, Callable[[Any], Any]] = {}
        self.own: Callable[[Any], None] | None = None


def _codec(cls: type) -> _Codec:
    codec: _Codec | None = cls.__dict__.get("_codec_")
    if codec is None:
        codec = _compile(cls)
    return codec


def fields(cls: type) -> tuple[Field, ...]:
    """The declared fields of a class, in order (for tests and tools that walk declarations)."""
    return _codec(cls).fields


def _shape_error(raw: Any, what: str, n: int) -> None:
    if type(raw) is not list:
        raise DecodeError(f"{what}: expected an array of {n}, got {kind_name(raw)}")
    raise DecodeError(f"{what}: expected an array of {n} fields, got {len(raw)}")


def _map_error(raw: Any, what: str, keys: tuple[str, ...]) -> None:
    if type(raw) is not dict:
        raise DecodeError(f"{what}: expected a map, got {kind_name(raw)}")
    unknown = sorted(set(raw) - set(keys), key=str)
    if unknown:
        raise DecodeError(f"{what}: unknown field {unknown[0]!r}"[:200])
    missing = [k for k in keys if k not in raw]
    raise DecodeError(f"{what}: missing field {missing[0]!r}")


def _compile(cls: type) -> _Codec:
    """Generate the class's constructor checks and CBOR codec from its fields, and install them."""
    codec = _Codec(cls, _fields_of(cls))
    ns = _Namespace()
    ns.values.update(_new=object.__new__, _cls=cls, _own=cls.__dict__.get("_own_post_init_"))
    src: list[str] = []
    values = [f"v{i}" for i in range(codec.n)]

    src.append("def __post_init__(self):")
    src.append("    d = self.__dict__")
    for v, f in zip(values, codec.fields, strict=True):
        src.append(f"    {v} = d[{f.name!r}]")
        src.extend("    " + line for line in f.kind.check_lines(v, f"{cls.__name__}.{f.go}", ns))
        src.append(f"    d[{f.name!r}] = {v}")
    src.append("    if _own is not None: _own(self)")
    for i, (v, f) in enumerate(zip(values, codec.fields, strict=True)):
        src.append(f"def _check_{i}({v}):")
        src.extend("    " + line for line in f.kind.check_lines(v, f"{cls.__name__}.{f.go}", ns))
        src.append(f"    return {v}")

    own = cls.__dict__
    shape = getattr(cls, "_shape_", None)
    if shape is not None and "to_cbor" in own and getattr(own["to_cbor"], "_trampoline_", False):
        src.append("def to_cbor(self):")
        src.append("    d = self.__dict__")
        src.extend(f"    {v} = d[{f.name!r}]" for v, f in zip(values, codec.fields, strict=True))
        exprs = [f.kind.cbor_expr(v, ns) for v, f in zip(values, codec.fields, strict=True)]
        if shape == "tuple":
            src.append(f"    return [{', '.join(exprs)}]")
        else:
            items = ", ".join(f"{f.go!r}: {e}" for f, e in zip(codec.fields, exprs, strict=True))
            src.append(f"    return {{{items}}}")
    if shape is not None and "from_cbor" in own and getattr(own["from_cbor"].__func__, "_trampoline_", False):
        src.append("def from_cbor(cls, raw, what=None):")
        src.append(f"    if what is None: what = {cls.__name__!r}")
        gos = tuple(f.go for f in codec.fields)
        if shape == "tuple":
            n = codec.n
            src.append(f"    if type(raw) is not list or len(raw) != {n}: _shape_error(raw, what, {n})")
            if codec.n:
                src.append(f"    ({', '.join(values)},) = raw")
        else:
            keys = ns.ref(frozenset(gos))
            src.append(f"    if type(raw) is not dict or raw.keys() != {keys}:")
            src.append(f"        _map_error(raw, what, {gos!r})")
            src.extend(f"    {v} = raw[{go!r}]" for v, go in zip(values, gos, strict=True))
        for v, f in zip(values, codec.fields, strict=True):
            src.extend("    " + line for line in f.kind.decode_lines(v, f"what + {'.' + f.go!r}", ns))
        src.append("    obj = _new(cls)")
        pairs = ", ".join(f"{f.name!r}: {v}" for v, f in zip(values, codec.fields, strict=True))
        src.append(f"    obj.__dict__.update({{{pairs}}})")
        src.append("    return obj")

    ns.values.update(_shape_error=_shape_error, _map_error=_map_error)
    scope: dict[str, Any] = {}
    exec("\n".join(src), ns.values, scope)  # the source is generated above from the declaration
    type.__setattr__(cls, "__post_init__", scope["__post_init__"])
    codec.checks = {f.name: scope[f"_check_{i}"] for i, f in enumerate(codec.fields)}
    codec.own = ns.values["_own"]
    if "to_cbor" in scope:
        type.__setattr__(cls, "to_cbor", scope["to_cbor"])
    if "from_cbor" in scope:
        type.__setattr__(cls, "from_cbor", classmethod(scope["from_cbor"]))
    type.__setattr__(cls, "_codec_", codec)
    return codec


def _trampolines(cls: type, names: tuple[str, ...]) -> None:
    """Methods that compile the class on first use and then call what was compiled."""

    def post_init(self: Any) -> None:
        _codec(cls)
        cls.__post_init__(self)  # type: ignore[attr-defined]

    def to_cbor(self: Any) -> Any:
        _codec(cls)
        return cls.to_cbor(self)  # type: ignore[attr-defined]

    def from_cbor(c: Any, raw: Any, what: str | None = None) -> Any:
        _codec(cls)
        return cls.from_cbor(raw, what)  # type: ignore[attr-defined]

    made = {"__post_init__": post_init, "to_cbor": to_cbor, "from_cbor": from_cbor}
    for name in names:
        fn: Any = made[name]
        fn._trampoline_ = True
        type.__setattr__(cls, name, classmethod(fn) if name == "from_cbor" else fn)


def _install_init(cls: type) -> None:
    """Replace the frozen dataclass's __init__ with one of the same signature that fills the instance's
    __dict__ directly (as from_cbor does) instead of calling object.__setattr__ per field, then runs
    __post_init__ (the declared checks) as dataclasses' does: an actor state rebuilt by
    dataclasses.replace on every block reward and cron tick pays that per field. A class with fields
    outside __init__ keeps the dataclass's."""
    declared = dataclasses.fields(cls)
    if any(not f.init for f in declared):
        type.__setattr__(cls, "_init_names_", None)
        return
    ns: dict[str, Any] = {"_factory_": _DEFAULT_FACTORY}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = ["    d = self.__dict__"]
    for i, f in enumerate(declared):
        param = f.name
        if f.default is not dataclasses.MISSING:
            ns[f"_d{i}"] = f.default
            param += f"=_d{i}"
        elif f.default_factory is not dataclasses.MISSING:
            ns[f"_f{i}"] = f.default_factory
            param += "=_factory_"
            body.append(f"    if {f.name} is _factory_: {f.name} = _f{i}()")
        (keyword if f.kw_only else positional).append(param)
        body.append(f"    d[{f.name!r}] = {f.name}")
    body.append("    self.__post_init__()")
    params = ["self", *positional, *(["*", *keyword] if keyword else [])]
    src = f"def __init__({', '.join(params)}):\n" + "\n".join(body)
    exec(src, ns)  # generated above from the dataclass's own fields
    init = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    type.__setattr__(cls, "__init__", init)
    type.__setattr__(cls, "_init_names_", tuple(f.name for f in declared))


def replace(obj: D, /, **changes: Any) -> D:
    """dataclasses.replace(obj, **changes), the same instance built without its walk through every
    field's metadata when obj is of a declared type: obj's fields with `changes`, the changed fields'
    declared checks, then the class's own __post_init__. Actor states are replaced several times per
    message (a block reward replaces the miner's state three times), a field or two at a time: the
    fields kept passed their checks when obj was built (a check gives back a value that passed it
    as it is), so they are not checked again."""
    cls = type(obj)
    names: tuple[str, ...] | None = getattr(cls, "_init_names_", None)
    if names is None:
        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    codec = _codec(cls)
    checks = codec.checks
    new = object.__new__(cls)
    fields_ = new.__dict__
    old = obj.__dict__
    for name in names:
        fields_[name] = old[name]
    for name in changes:
        if name not in checks:
            if name not in fields_:
                raise TypeError(f"{cls.__name__} has no field {name!r}")
            fields_.update(changes)  # a field outside the codec: every check, as the constructor
            new.__post_init__()  # type: ignore[attr-defined]
            return new
    # In field order, as the constructor checks: the first bad field is the one its error names.
    for name in changes if len(changes) == 1 else [n for n in checks if n in changes]:
        fields_[name] = checks[name](changes[name])
    if codec.own is not None:
        codec.own(new)
    return new


class _DefaultFactory:
    """The default of a parameter whose field has a default_factory (dataclasses' own sentinel)."""

    def __repr__(self) -> str:
        return "<factory>"


_DEFAULT_FACTORY: Final = _DefaultFactory()


# ------------------------------------------------------------------------------------------------
# The base classes.


@dataclass_transform(frozen_default=True)
class LotusJson:
    """A declared type with a Lotus JSON form (the base of the CBOR shapes too).

    Subclassing makes the class a frozen dataclass; the class keyword `kw_only=True` passes through to
    dataclasses.
    """

    _base_: ClassVar[bool] = True  # set in the bases' own bodies: they are not declarations

    def __init_subclass__(cls, *, kw_only: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_base_", False):
            return
        # The class's own __post_init__ runs after the declared checks (see _compile).
        type.__setattr__(cls, "_own_post_init_", cls.__dict__.get("__post_init__"))
        names = ["__post_init__"]
        if getattr(cls, "_shape_", None) is not None:
            names += [n for n in ("to_cbor", "from_cbor") if n not in cls.__dict__]
        _trampolines(cls, tuple(names))
        own_init = "__init__" in cls.__dict__
        dataclasses.dataclass(frozen=True, kw_only=kw_only)(cls)
        if not own_init:
            _install_init(cls)

    # Lotus JSON -----------------------------------------------------------------------------------
    def to_json(self, network: str = DEFAULT_NETWORK) -> Any:
        codec = _codec(type(self))
        d = self.__dict__
        out = {f.go: f.kind.to_json(d[f.name], network) for f in codec.fields}
        extra = getattr(self, "json_extra", None)
        if extra is not None:
            out.update(extra(network))
        return out

    @classmethod
    def from_json(cls, raw: Any, what: str | None = None) -> Self:
        """Read the JSON form; keys not declared are ignored (as Go's encoding/json does), a key left
        out takes the field's default where it has one."""
        what = what or cls.__name__
        if not isinstance(raw, dict):
            raise DecodeError(f"{what}: expected a JSON object, got {kind_name(raw)}")
        codec = _codec(cls)
        values = []
        for f in codec.fields:
            if f.go in raw:
                values.append(f.kind.from_json(raw[f.go], f"{what}.{f.go}"))
            elif f.has_default:
                values.append(f.default)
            else:
                raise DecodeError(f"{what}: missing field {f.go!r}")
        try:
            return cls(**dict(zip(codec.names, values, strict=True)))
        except (ValueError, TypeError) as exc:
            raise DecodeError(f"{what}: {exc}") from None


class CborTuple(LotusJson):
    """A declared type encoded as a CBOR array of its fields in order (cbor-gen tuple encoding)."""

    _base_ = True
    _shape_: ClassVar[str] = "tuple"

    # Each declared class gets its own, compiled from its fields on first use (_compile); these are
    # the signatures callers see.
    def to_cbor(self) -> Any:
        raise TypeError(f"{type(self).__name__} declares no fields")

    @classmethod
    def from_cbor(cls, raw: Any, what: str | None = None) -> Self:
        raise TypeError(f"{cls.__name__} declares no fields")

    def to_bytes(self) -> bytes:
        return dagcbor.encode(self.to_cbor())

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        return cls.from_cbor(dagcbor.decode(data))

    def cid(self) -> CID:
        return CID.hash_of(self.to_bytes())


class CborMap(CborTuple):
    """A declared type encoded as a CBOR map from Go field names to values (cbor-gen map encoding).

    Decoding requires every declared key and refuses unknown ones.
    """

    _base_ = True
    _shape_ = "map"


class CachedCbor(CborTuple):
    """A CborTuple that keeps its bytes and CID once computed: for types whose CID is asked for many
    times (messages, headers). Instances are frozen, so the cache cannot go stale; bytes given to
    from_bytes are kept as they are, since strict decoding accepts canonical bytes only."""

    _base_ = True

    def to_bytes(self) -> bytes:
        data: bytes | None = self.__dict__.get("_bytes_")
        if data is None:
            data = dagcbor.encode(self.to_cbor())
            self.__dict__["_bytes_"] = data
        return data

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        obj = cls.from_cbor(dagcbor.decode(data))
        obj.keep_bytes(bytes(data))
        return obj

    def keep_bytes(self, data: bytes) -> None:
        """Take data as this value's bytes (and its CID as their hash). Only for the bytes strict
        decoding turned into this very value: canonical, so the bytes to_bytes would give (a value
        decoded as part of a larger one, with dagcbor.decode_parts)."""
        self.__dict__["_bytes_"] = data

    def cid(self) -> CID:
        cid: CID | None = self.__dict__.get("_cid_")
        if cid is None:
            cid = CID.hash_of(self.to_bytes())
            self.__dict__["_cid_"] = cid
        return cid


def declared_types(base: type = LotusJson) -> list[type]:
    """Every class declared on the bases here (imported so far), for tests that walk them all."""
    out: list[type] = []
    stack: list[type] = list(base.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls not in (CborTuple, CborMap, CachedCbor) and cls not in out:
            out.append(cls)
    return out


def json_object(raw: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(raw, dict):
        raise DecodeError(f"{what}: expected a JSON object, got {kind_name(raw)}")
    return raw
