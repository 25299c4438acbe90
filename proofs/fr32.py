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
_NODE = 32  # bytes of one padded field element


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


def _move_elements(data: bytes, src_block: int, dst_block: int) -> bytes:
    """data in blocks of src_block bytes, each block's four field elements moved from src_block * 2 bits
    apart to dst_block * 2 bits apart in a block of dst_block bytes: 127 to 128 pads, 128 to 127
    unpads. The last element keeps whatever bits lie above it."""
    src, dst = src_block * 2, dst_block * 2
    mask = _ELEMENT_MASK
    out = bytearray()
    for start in range(0, len(data), src_block):
        block = int.from_bytes(data[start : start + src_block], "little")
        moved = (
            (block & mask)
            | ((block >> src) & mask) << dst
            | ((block >> 2 * src) & mask) << 2 * dst
            | (block >> 3 * src) << 3 * dst
        )
        out += moved.to_bytes(dst_block, "little")
    return bytes(out)


def pad_python(data: bytes) -> bytes:
    """fr32-pad data (a multiple of 127 bytes); the pure-Python reference."""
    if len(data) % UNPADDED_BLOCK:
        raise Fr32Error(f"fr32 padding needs a multiple of 127 bytes, got {len(data)}")
    return _move_elements(data, UNPADDED_BLOCK, PADDED_BLOCK)


def unpad_python(data: bytes) -> bytes:
    """Undo fr32 padding (a multiple of 128 bytes); reject field elements with a top bit set."""
    if len(data) % PADDED_BLOCK:
        raise Fr32Error(f"fr32 unpadding needs a multiple of 128 bytes, got {len(data)}")
    # The two top bits of each 32-byte little-endian element are those of its last byte.
    for last in range(_NODE - 1, len(data), _NODE):
        if data[last] & 0xC0:
            raise Fr32Error(
                f"not fr32-padded: a field element of the 128-byte block at {last - last % PADDED_BLOCK} "
                "has a top bit set"
            )
    return _move_elements(data, PADDED_BLOCK, UNPADDED_BLOCK)


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
