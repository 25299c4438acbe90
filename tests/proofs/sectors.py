"""Sector data for the proof tests: 2 KiB of fr32-valid bytes (every 32-byte node's top two bits clear)
that differ by label."""

import hashlib


def fr32_sector(label: bytes) -> bytes:
    out = bytearray(b"".join(hashlib.sha256(label + bytes([i])).digest() for i in range(64)))
    for last in range(31, 2048, 32):
        out[last] &= 0x3F
    return bytes(out)
