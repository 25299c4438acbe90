"""Pieces shared by the vanilla seal and PoSt proofs: Merkle openings and the byte layout they use.

A vanilla proof travels in chain messages and block headers as bytes, so every proof has an explicit
layout (docs/proofs.md) written by `to_bytes` and read back by `from_bytes`. Reading untrusted bytes
raises `ProofDecodeError` (a ValueError) naming what is wrong, and nothing else.
"""

import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from proofs import merkle

NODE_SIZE = 32
FORMAT_VERSION = 1

# The BLS12-381 scalar field modulus: labels, data nodes and replica nodes are elements of this field.
FIELD_MODULUS = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001


class ProofDecodeError(ValueError):
    """Proof bytes that do not follow the layout of the proof type they claim."""


def trunc254(digest: bytes) -> bytes:
    """A sha256 digest with its two top bits cleared (the last byte's), so that it is a field element."""
    return digest[:31] + bytes((digest[31] & 0x3F,))


def sha256_trunc254(data: bytes) -> bytes:
    return trunc254(hashlib.sha256(data).digest())


def check_bytes(value: object, size: int, what: str) -> bytes:
    """value as bytes of the given size, or ValueError naming it."""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ValueError(f"{what} must be bytes, got {type(value).__name__}")
    out = bytes(value)
    if len(out) != size:
        raise ValueError(f"{what} must be {size} bytes, got {len(out)}")
    return out


@dataclass(frozen=True, slots=True)
class NodeOpening:
    """One leaf of a binary sha256-trunc254 tree and its sibling path, bottom-up."""

    leaf: bytes
    path: tuple[bytes, ...]

    @classmethod
    def of(cls, levels: Sequence[bytes], index: int) -> "NodeOpening":
        return cls(merkle.node_at(levels[0], index), tuple(merkle.opening(levels, index)))

    def verify(self, root: bytes, index: int) -> bool:
        return merkle.verify_opening(root, self.leaf, index, self.path)

    def write(self, out: bytearray) -> None:
        out += self.leaf
        for node in self.path:
            out += node

    @classmethod
    def read(cls, reader: "Reader", depth: int) -> "NodeOpening":
        return cls(reader.node(), reader.nodes(depth))


@lru_cache(maxsize=64)
def _splitter(count: int) -> Callable[[bytes], tuple[bytes, ...]]:
    """Splits count * 32 bytes into count nodes in one call (a PoSt reads 66 paths)."""
    return struct.Struct(f"{NODE_SIZE}s" * count).unpack


class Reader:
    """Reads a proof's bytes front to back; every shortfall or leftover raises ProofDecodeError."""

    __slots__ = ("_data", "_offset", "_what")

    def __init__(self, data: object, what: str) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ProofDecodeError(f"{what} must be bytes, got {type(data).__name__}")
        self._data = bytes(data)
        self._offset = 0
        self._what = what

    def take(self, size: int, field: str) -> bytes:
        end = self._offset + size
        if end > len(self._data):
            raise ProofDecodeError(
                f"{self._what} ends at byte {len(self._data)} inside {field} "
                f"(needs {size} bytes at offset {self._offset})"
            )
        out = self._data[self._offset : end]
        self._offset = end
        return out

    def u8(self, field: str) -> int:
        return self.take(1, field)[0]

    def u32(self, field: str) -> int:
        return int.from_bytes(self.take(4, field), "big")

    def node(self) -> bytes:
        return self.take(NODE_SIZE, "a 32-byte node")

    def nodes(self, count: int) -> tuple[bytes, ...]:
        return _splitter(count)(self.take(count * NODE_SIZE, f"{count} 32-byte nodes"))

    def header(self) -> int:
        """Check the format version and return the registered proof number that follows it."""
        version = self.u8("the format version")
        if version != FORMAT_VERSION:
            raise ProofDecodeError(f"{self._what} has format version {version}, expected {FORMAT_VERSION}")
        return self.u8("the registered proof number")

    def expect_length(self, total: int) -> None:
        if len(self._data) != total:
            raise ProofDecodeError(
                f"{self._what} must be {total} bytes for its proof type, got {len(self._data)}"
            )

    def finish(self) -> None:
        if self._offset != len(self._data):
            raise ProofDecodeError(
                f"{self._what} has {len(self._data) - self._offset} trailing bytes "
                f"after offset {self._offset}"
            )
