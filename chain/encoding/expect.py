"""Typed field readers for decoded DAG-CBOR: each raises DecodeError naming the field that is wrong.

Structs in Filecoin are CBOR arrays (tuple encoding); `from_cbor` methods use these to check shape and
types of untrusted input before building a dataclass.
"""

from typing import Any, TypeVar

from chain.encoding.bigint import decode_bigint
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError

UINT64_MAX = (1 << 64) - 1
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

T = TypeVar("T")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _of_type(raw: Any, kind: type[T], noun: str, what: str) -> T:
    """raw itself if its type is exactly kind (no subclasses: a bool is no int here), else DecodeError."""
    if type(raw) is not kind:
        raise DecodeError(f"{what}: expected {noun}, got {_kind(raw)}")
    return raw


def expect_tuple(raw: Any, n: int, what: str) -> list[Any]:
    items = _of_type(raw, list, f"an array of {n}", what)
    if len(items) != n:
        raise DecodeError(f"{what}: expected an array of {n} fields, got {len(items)}")
    return items


def expect_list(raw: Any, what: str, max_len: int | None = None) -> list[Any]:
    items = _of_type(raw, list, "an array", what)
    if max_len is not None and len(items) > max_len:
        raise DecodeError(f"{what}: {len(items)} items exceeds the limit of {max_len}")
    return items


def expect_uint(raw: Any, what: str) -> int:
    if type(raw) is not int or raw < 0 or raw > UINT64_MAX:
        raise DecodeError(f"{what}: expected an unsigned 64-bit integer, got {_kind(raw)} {raw!r}"[:200])
    return raw


def expect_int(raw: Any, what: str) -> int:
    if type(raw) is not int or raw < INT64_MIN or raw > INT64_MAX:
        raise DecodeError(f"{what}: expected a signed 64-bit integer, got {_kind(raw)} {raw!r}"[:200])
    return raw


def expect_bytes(raw: Any, what: str, length: int | None = None, max_len: int | None = None) -> bytes:
    data = _of_type(raw, bytes, "a byte string", what)
    if length is not None and len(data) != length:
        raise DecodeError(f"{what}: expected {length} bytes, got {len(data)}")
    if max_len is not None and len(data) > max_len:
        raise DecodeError(f"{what}: {len(data)} bytes exceeds the limit of {max_len}")
    return data


def expect_str(raw: Any, what: str) -> str:
    return _of_type(raw, str, "a text string", what)


def expect_bool(raw: Any, what: str) -> bool:
    return _of_type(raw, bool, "a boolean", what)


def expect_cid(raw: Any, what: str) -> CID:
    return _of_type(raw, CID, "a CID link", what)


def expect_optional_cid(raw: Any, what: str) -> CID | None:
    return None if raw is None else expect_cid(raw, what)


def expect_bigint(raw: Any, what: str) -> int:
    return decode_bigint(_of_type(raw, bytes, "a big integer as bytes", what), what)


def expect_nonneg_bigint(raw: Any, what: str) -> int:
    value = expect_bigint(raw, what)
    if value < 0:
        raise DecodeError(f"{what}: must not be negative, got {value}")
    return value
