"""Typed field readers for decoded DAG-CBOR: each raises DecodeError naming the field that is wrong.

Structs in Filecoin are CBOR arrays (tuple encoding); `from_cbor` methods use these to check shape and
types of untrusted input before building a dataclass.
"""

from typing import Any

from chain.encoding.bigint import decode_bigint
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError

UINT64_MAX = (1 << 64) - 1
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def expect_tuple(raw: Any, n: int, what: str) -> list[Any]:
    if type(raw) is not list:
        raise DecodeError(f"{what}: expected an array of {n}, got {_kind(raw)}")
    if len(raw) != n:
        raise DecodeError(f"{what}: expected an array of {n} fields, got {len(raw)}")
    return raw


def expect_list(raw: Any, what: str, max_len: int | None = None) -> list[Any]:
    if type(raw) is not list:
        raise DecodeError(f"{what}: expected an array, got {_kind(raw)}")
    if max_len is not None and len(raw) > max_len:
        raise DecodeError(f"{what}: {len(raw)} items exceeds the limit of {max_len}")
    return raw


def expect_uint(raw: Any, what: str) -> int:
    if type(raw) is not int or raw < 0 or raw > UINT64_MAX:
        raise DecodeError(f"{what}: expected an unsigned 64-bit integer, got {_kind(raw)} {raw!r}"[:200])
    return raw


def expect_int(raw: Any, what: str) -> int:
    if type(raw) is not int or raw < INT64_MIN or raw > INT64_MAX:
        raise DecodeError(f"{what}: expected a signed 64-bit integer, got {_kind(raw)} {raw!r}"[:200])
    return raw


def expect_bytes(raw: Any, what: str, length: int | None = None, max_len: int | None = None) -> bytes:
    if type(raw) is not bytes:
        raise DecodeError(f"{what}: expected a byte string, got {_kind(raw)}")
    if length is not None and len(raw) != length:
        raise DecodeError(f"{what}: expected {length} bytes, got {len(raw)}")
    if max_len is not None and len(raw) > max_len:
        raise DecodeError(f"{what}: {len(raw)} bytes exceeds the limit of {max_len}")
    return raw


def expect_str(raw: Any, what: str) -> str:
    if type(raw) is not str:
        raise DecodeError(f"{what}: expected a text string, got {_kind(raw)}")
    return raw


def expect_bool(raw: Any, what: str) -> bool:
    if type(raw) is not bool:
        raise DecodeError(f"{what}: expected a boolean, got {_kind(raw)}")
    return raw


def expect_cid(raw: Any, what: str) -> CID:
    if type(raw) is not CID:
        raise DecodeError(f"{what}: expected a CID link, got {_kind(raw)}")
    return raw


def expect_optional_cid(raw: Any, what: str) -> CID | None:
    return None if raw is None else expect_cid(raw, what)


def expect_bigint(raw: Any, what: str) -> int:
    if type(raw) is not bytes:
        raise DecodeError(f"{what}: expected a big integer as bytes, got {_kind(raw)}")
    return decode_bigint(raw, what)


def expect_nonneg_bigint(raw: Any, what: str) -> int:
    value = expect_bigint(raw, what)
    if value < 0:
        raise DecodeError(f"{what}: must not be negative, got {value}")
    return value
