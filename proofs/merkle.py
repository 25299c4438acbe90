"""Binary Merkle trees over 32-byte nodes with Filecoin's sha256-trunc254 node hash.

A parent is sha256(left || right) with the two most significant bits of its last byte cleared, so that
every node is a valid BLS12-381 scalar (as Filecoin's CommP/CommD trees and our sealing trees need).
A tree is kept as its levels: levels[0] holds the leaves concatenated, levels[-1] the 32-byte root.

`hash_level` is the hot loop (every byte of a piece passes through it); it uses the native extension
where it was built and this module's pure-Python loop otherwise. Both give identical bytes.
"""

import hashlib
from collections.abc import Callable, Sequence

from proofs.native import native_function

NODE_SIZE = 32


def hash_node(left: bytes, right: bytes) -> bytes:
    digest = bytearray(hashlib.sha256(left + right).digest())
    digest[31] &= 0x3F
    return bytes(digest)


def hash_level_python(level: bytes) -> bytes:
    """Hash each adjacent pair of 32-byte nodes of level; the pure-Python reference."""
    if len(level) % (2 * NODE_SIZE):
        raise ValueError(f"a level must hold an even number of 32-byte nodes, got {len(level)} bytes")
    sha256 = hashlib.sha256
    out = bytearray(len(level) // 2)
    view = memoryview(level)
    for i, j in enumerate(range(0, len(level), 2 * NODE_SIZE)):
        digest = sha256(view[j : j + 2 * NODE_SIZE]).digest()
        o = i * NODE_SIZE
        out[o : o + NODE_SIZE] = digest
        out[o + NODE_SIZE - 1] &= 0x3F
    return bytes(out)


_native_hash_level: Callable[[bytes], bytes] | None = native_function("hash_level")
hash_level: Callable[[bytes], bytes] = _native_hash_level or hash_level_python


def native_available() -> bool:
    return _native_hash_level is not None


def _check_leaves(leaves: bytes) -> int:
    if len(leaves) % NODE_SIZE:
        raise ValueError(f"leaves must be whole 32-byte nodes, got {len(leaves)} bytes")
    count = len(leaves) // NODE_SIZE
    if count == 0 or count & (count - 1):
        raise ValueError(f"a tree needs a power-of-two number of leaves, got {count}")
    return count


def tree_levels(leaves: bytes) -> list[bytes]:
    """Every level of the tree over leaves (a power-of-two count of 32-byte nodes), leaves first."""
    _check_leaves(leaves)
    levels = [bytes(leaves)]
    while len(levels[-1]) > NODE_SIZE:
        levels.append(hash_level(levels[-1]))
    return levels


def root_of(leaves: bytes) -> bytes:
    _check_leaves(leaves)
    level = bytes(leaves)
    while len(level) > NODE_SIZE:
        level = hash_level(level)
    return level


def node_at(level: bytes, index: int) -> bytes:
    return level[index * NODE_SIZE : (index + 1) * NODE_SIZE]


def opening(levels: Sequence[bytes], index: int) -> list[bytes]:
    """The sibling path of leaf index, bottom-up (one node per level below the root)."""
    leaf_count = len(levels[0]) // NODE_SIZE
    if not 0 <= index < leaf_count:
        raise ValueError(f"leaf index {index} outside a tree of {leaf_count} leaves")
    path = []
    for level in levels[:-1]:
        path.append(node_at(level, index ^ 1))
        index >>= 1
    return path


def root_from_path_python(leaf: bytes, index: int, path: Sequence[bytes]) -> bytes:
    """Recompute the root a leaf and its sibling path commit to; the pure-Python reference."""
    node = leaf
    for sibling in path:
        node = hash_node(sibling, node) if index & 1 else hash_node(node, sibling)
        index >>= 1
    return node


_native_root_from_path: Callable[[bytes, int, bytes], bytes] | None = native_function("root_from_path")


_NODE_LENGTH = frozenset((NODE_SIZE,))


def _nodes(path: Sequence[bytes]) -> bool:
    """Whether every item of path is a 32-byte node (a PoSt opens 66 paths: checked in C, by map)."""
    return set(map(len, path)) <= _NODE_LENGTH


def root_from_path(leaf: bytes, index: int, path: Sequence[bytes]) -> bytes:
    """Recompute the root a leaf and its sibling path commit to (each PoSt challenge opens one: the
    native loop hashes a path without a Python call per level). Nodes must be 32 bytes."""
    if len(leaf) == NODE_SIZE and _nodes(path):
        return _root_of_nodes(leaf, index, path)
    return root_from_path_python(leaf, index, path)


def _root_of_nodes(leaf: bytes, index: int, path: Sequence[bytes]) -> bytes:
    """root_from_path for a leaf and path already known to be 32-byte nodes."""
    native = _native_root_from_path
    if native is not None and len(path) <= 64 and 0 <= index < 1 << 64:
        return native(leaf, index, b"".join(path))
    return root_from_path_python(leaf, index, path)


def verify_opening(root: bytes, leaf: bytes, index: int, path: Sequence[bytes]) -> bool:
    """True when leaf sits at index under root; the index must fit the path's depth."""
    if len(leaf) != NODE_SIZE or not _nodes(path) or not 0 <= index < (1 << len(path)):
        return False
    return _root_of_nodes(leaf, index, path) == root
