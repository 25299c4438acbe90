"""HAMT keys for integers, as the built-in actors write them.

Unsigned keys (deal IDs, epochs) are unsigned LEB128 varints of the full uint64 range (builtin-actors
`u64_key`, go-state-types `abi.UIntKey`); signed keys (multisig transaction IDs) are zigzag varints
(`abi.IntKey`, Rust's `i64::encode_var_vec`). The parsers insist on the minimal form, so that a key
maps to exactly one integer.
"""

from typing import Final

from chain.encoding.errors import DecodeError
from chain.encoding.schema import INT64_MAX, INT64_MIN, UINT64_MAX
from chain.encoding.varint import leb128

_MAX_VARINT_BYTES: Final = 10


def u64_key(value: int) -> bytes:
    if not 0 <= value <= UINT64_MAX:
        raise ValueError(f"key {value} is outside the uint64 range")
    return leb128(value)


def parse_u64_key(key: bytes) -> int:
    value = 0
    for i, byte in enumerate(key[:_MAX_VARINT_BYTES]):
        value |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            if i + 1 != len(key):
                raise DecodeError(f"integer key {key.hex()} has trailing bytes")
            if byte == 0 and i > 0:
                raise DecodeError(f"integer key {key.hex()} is not minimally encoded")
            if value > UINT64_MAX:
                raise DecodeError(f"integer key {key.hex()} exceeds uint64")
            return value
    raise DecodeError(f"integer key {key.hex()} is not a complete varint")


def i64_key(value: int) -> bytes:
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"key {value} is outside the int64 range")
    return u64_key((value << 1) ^ (value >> 63))


def parse_i64_key(key: bytes) -> int:
    zigzag = parse_u64_key(key)
    return (zigzag >> 1) ^ -(zigzag & 1)
