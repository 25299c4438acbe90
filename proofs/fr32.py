"""fr32 padding: 127 data bytes become four 254-bit field elements in 128 bytes, and back.

The 127 bytes are read as one little-endian string of 1016 bits, cut into four runs of 254 bits, and each
run is stored in 32 little-endian bytes whose two top bits are zero, so that every 32-byte node of a piece
is a valid BLS12-381 scalar. Sizes follow the same ratio: a padded size P (a multiple of 128) holds
P - P/128 data bytes.

The native extension does whole buffers at once; the pure-Python functions here are the reference and the
fallback, and tests check that both agree.
"""

from collections.abc import Callable

from proofs.native import native_function

UNPADDED_BLOCK = 127
PADDED_BLOCK = 128
_ELEMENT_BITS = 254
_ELEMENT_MASK = (1 << _ELEMENT_BITS) - 1
_TOP_BITS = (0b11 << 254) | (0b11 << 510) | (0b11 << 766) | (0b11 << 1022)


class Fr32Error(ValueError):
    """Bytes that are not (or cannot be) fr32-padded; the message says why."""


def padded_size(unpadded: int) -> int:
    """Padded bytes holding `unpadded` data bytes; unpadded must be a multiple of 127."""
    if unpadded < 0 or unpadded % UNPADDED_BLOCK:
        raise Fr32Error(f"an unpadded size must be a non-negative multiple of 127, got {unpadded}")
    return unpadded // UNPADDED_BLOCK * PADDED_BLOCK


def unpadded_size(padded: int) -> int:
    """Data bytes held by `padded` fr32 bytes; padded must be a multiple of 128."""
    if padded < 0 or padded % PADDED_BLOCK:
        raise Fr32Error(f"a padded size must be a non-negative multiple of 128, got {padded}")
    return padded - padded // PADDED_BLOCK


def pad_python(data: bytes) -> bytes:
    """fr32-pad data (a multiple of 127 bytes); the pure-Python reference."""
    if len(data) % UNPADDED_BLOCK:
        raise Fr32Error(f"fr32 padding needs a multiple of 127 bytes, got {len(data)}")
    out = bytearray()
    mask = _ELEMENT_MASK
    for start in range(0, len(data), UNPADDED_BLOCK):
        bits = int.from_bytes(data[start : start + UNPADDED_BLOCK], "little")
        spread = (
            (bits & mask)
            | ((bits >> 254) & mask) << 256
            | ((bits >> 508) & mask) << 512
            | (bits >> 762) << 768
        )
        out += spread.to_bytes(PADDED_BLOCK, "little")
    return bytes(out)


def unpad_python(data: bytes) -> bytes:
    """Undo fr32 padding (a multiple of 128 bytes); reject field elements with a top bit set."""
    if len(data) % PADDED_BLOCK:
        raise Fr32Error(f"fr32 unpadding needs a multiple of 128 bytes, got {len(data)}")
    out = bytearray()
    mask = _ELEMENT_MASK
    for start in range(0, len(data), PADDED_BLOCK):
        spread = int.from_bytes(data[start : start + PADDED_BLOCK], "little")
        if spread & _TOP_BITS:
            raise Fr32Error(
                f"not fr32-padded: a field element of the 128-byte block at {start} has a top bit set"
            )
        bits = (
            (spread & mask)
            | ((spread >> 256) & mask) << 254
            | ((spread >> 512) & mask) << 508
            | (spread >> 768) << 762
        )
        out += bits.to_bytes(UNPADDED_BLOCK, "little")
    return bytes(out)


_native_pad: Callable[[bytes], bytes] | None = native_function("fr32_pad")
_native_unpad: Callable[[bytes], bytes] | None = native_function("fr32_unpad")


def pad(data: bytes) -> bytes:
    """fr32-pad data (a multiple of 127 bytes) into a multiple of 128 bytes."""
    if _native_pad is None:
        return pad_python(data)
    if len(data) % UNPADDED_BLOCK:
        raise Fr32Error(f"fr32 padding needs a multiple of 127 bytes, got {len(data)}")
    return _native_pad(data)


def unpad(data: bytes) -> bytes:
    """Undo fr32 padding (a multiple of 128 bytes); Fr32Error if data is not fr32-padded."""
    if _native_unpad is None:
        return unpad_python(data)
    try:
        return _native_unpad(data)
    except ValueError as exc:
        raise Fr32Error(str(exc)) from None
