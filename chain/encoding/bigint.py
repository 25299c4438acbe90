"""Filecoin big integers: a sign byte (0x00 positive, 0x01 negative) then the big-endian magnitude.

Zero is the empty byte string. Lotus and builtin-actors reject a leading zero in the magnitude and a
negative zero, so the decoder does too.
"""

from chain.encoding.errors import DecodeError

# Lotus caps big integers at 128 bytes of magnitude (BigIntMaxSerializedLen = 128 incl. sign byte).
MAX_BIGINT_BYTES = 128


def encode_bigint(value: int) -> bytes:
    if value == 0:
        return b""
    size = (value.bit_length() + 7) // 8  # of the magnitude: bit_length ignores the sign
    if size + 1 > MAX_BIGINT_BYTES:
        raise ValueError(f"big integer of {size} bytes exceeds the {MAX_BIGINT_BYTES}-byte limit")
    if value > 0:
        # One byte more than the magnitude needs: its leading zero is the positive sign byte.
        return value.to_bytes(size + 1, "big")
    return b"\x01" + (-value).to_bytes(size, "big")


def decode_bigint(data: bytes, what: str = "big integer") -> int:
    if not isinstance(data, bytes | bytearray):
        raise DecodeError(f"{what}: expected bytes, got {type(data).__name__}")
    if len(data) == 0:
        return 0
    if len(data) > MAX_BIGINT_BYTES:
        raise DecodeError(f"{what}: {len(data)} bytes exceeds the {MAX_BIGINT_BYTES}-byte limit")
    sign = data[0]
    if sign not in (0, 1):
        raise DecodeError(f"{what}: invalid sign byte 0x{sign:02x}")
    if len(data) == 1:
        raise DecodeError(f"{what}: sign byte without magnitude")
    if data[1] == 0:
        raise DecodeError(f"{what}: magnitude has a leading zero byte")
    magnitude = int.from_bytes(data[1:], "big")
    return -magnitude if sign == 1 else magnitude
