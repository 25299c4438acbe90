"""Unsigned LEB128 varints as used by multiformats (at most 9 bytes, minimal encoding)."""

from chain.encoding.errors import DecodeError

MAX_VARINT_BYTES = 9  # multiformats caps varints at 63 bits


def encode_uvarint(value: int) -> bytes:
    if value < 0:
        raise ValueError(f"varint must be non-negative, got {value}")
    if value >= 1 << 63:
        raise ValueError(f"varint {value} exceeds 63 bits")
    return leb128(value)


def leb128(value: int) -> bytes:
    """The unsigned LEB128 bytes of a non-negative value of any size (callers bound the range)."""
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


def read_protobuf_varint(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """A protobuf varint (up to 64 bits, in at most 10 bytes; protobuf does not insist on the minimal
    form) at pos: (value, the offset after it). The DecodeError names `what` and where it starts."""
    value = 0
    shift = 0
    start = pos
    end = len(data)
    while True:
        if pos >= end:
            raise DecodeError(f"{what} at offset {start}: varint is truncated")
        byte = data[pos]
        pos += 1
        if shift == 63 and byte > 1:
            raise DecodeError(f"{what} at offset {start}: varint exceeds 64 bits")
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
