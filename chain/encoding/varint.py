"""Unsigned LEB128 varints as used by multiformats (at most 9 bytes, minimal encoding)."""

from chain.encoding.errors import DecodeError

MAX_VARINT_BYTES = 9  # multiformats caps varints at 63 bits


def encode_uvarint(value: int) -> bytes:
    if value < 0:
        raise ValueError(f"varint must be non-negative, got {value}")
    if value >= 1 << 63:
        raise ValueError(f"varint {value} exceeds 63 bits")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_uvarint(data: bytes, offset: int = 0) -> tuple[int, int]:
    """Return (value, offset after the varint); reject truncated, overlong and non-minimal forms."""
    value = 0
    shift = 0
    for i in range(MAX_VARINT_BYTES):
        pos = offset + i
        if pos >= len(data):
            raise DecodeError("varint is truncated")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if byte == 0 and i > 0:
                raise DecodeError("varint is not minimally encoded")
            return value, pos + 1
        shift += 7
    raise DecodeError(f"varint is longer than {MAX_VARINT_BYTES} bytes")
