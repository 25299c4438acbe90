"""The stacked-DRG graph of Filecoin's SDR: which 14 labels each node's label hashes.

Node i of layer l has 6 base parents in layer l (a depth-robust graph built by bucket sampling, the
immediate predecessor i-1 first) and 8 expander parents in layer l-1 (a Feistel permutation of the
node x degree matrix). Both are deterministic from the PoRep ID and match rust-fil-proofs (the
`ApiVersion` 1.1/1.2 graph of the V1_1 seal proofs) bit for bit: the parent table hashes to the digest
Filecoin publishes for its parent cache, which tests/proofs/test_seal.py checks.

Building the whole table (sealing, unsealing) needs a ChaCha8 stream per node. Those streams are
computed for thousands of nodes at once, one 64-bit lane per node inside a Python integer, so that
every add, xor and rotation of the cipher is one big-integer operation instead of one per node.
"""

import hashlib
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

BASE_DEGREE = 6
EXPANSION_DEGREE = 8
DEGREE = BASE_DEGREE + EXPANSION_DEGREE

_DRSAMPLE_DST = b"Filecoin_DRSample"
_FEISTEL_DST = b"Filecoin_Feistel"
_FEISTEL_ROUNDS = 3
_M32 = 0xFFFFFFFF

# ChaCha's "expand 32-byte k" constants, then the 8 quarter-rounds of one double round (columns,
# then diagonals) as state indices.
_CHACHA_CONSTANTS = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)
_QUARTER_ROUNDS = (
    (0, 4, 8, 12),
    (1, 5, 9, 13),
    (2, 6, 10, 14),
    (3, 7, 11, 15),
    (0, 5, 10, 15),
    (1, 6, 11, 12),
    (2, 7, 8, 13),
    (3, 4, 9, 14),
)


def chacha8_lanes(key_prefix: Sequence[int], first_node: int, count: int, counter: int) -> list["array[int]"]:
    """Block `counter` of the ChaCha8 streams keyed (key_prefix, node) for count consecutive nodes.

    Word j of node first_node + i is element i of the j-th array. Each node is a 64-bit lane of one big
    integer per state word: a lane holds its 32-bit word and 32 guard bits, so a lane's carry or
    rotated-out bits land in its own guard bits, which the lane mask clears after every step.
    """
    ones = _lane_ones(count)
    mask = ones * _M32
    node_words: array[int] = array("Q", range(first_node, first_node + count))
    initial = [ones * c for c in _CHACHA_CONSTANTS]
    initial += [ones * k for k in key_prefix]
    initial += [int.from_bytes(node_words.tobytes(), sys.byteorder), ones * counter, 0, 0, 0]
    x = list(initial)
    for _ in range(4):
        for a, b, c, d in _QUARTER_ROUNDS:
            xa = (x[a] + x[b]) & mask
            xd = x[d] ^ xa
            xd = ((xd << 16) | (xd >> 16)) & mask
            xc = (x[c] + xd) & mask
            xb = x[b] ^ xc
            xb = ((xb << 12) | (xb >> 20)) & mask
            xa = (xa + xb) & mask
            xd ^= xa
            xd = ((xd << 8) | (xd >> 24)) & mask
            xc = (xc + xd) & mask
            xb ^= xc
            x[a], x[b], x[c], x[d] = xa, ((xb << 7) | (xb >> 25)) & mask, xc, xd
    out = []
    for word, start in zip(x, initial, strict=True):
        lanes: array[int] = array("Q")
        lanes.frombytes(((word + start) & mask).to_bytes(8 * count, sys.byteorder))
        out.append(lanes)
    return out


@lru_cache(maxsize=4)
def _lane_ones(count: int) -> int:
    return int.from_bytes((b"\x01" + bytes(7)) * count, "little")


def derive_domain_seed(tag: bytes, porep_id: bytes) -> bytes:
    return hashlib.sha256(tag + porep_id).digest()


@dataclass(frozen=True, slots=True)
class _Feistel:
    """Filecoin's 3-round Feistel permutation of [0, elements), with its round function tabulated.

    The round function hashes only the right half (at most half_bits bits) with a fixed key, so one
    table of 2^half_bits entries per round replaces every blake2b call of the permutation.
    """

    elements: int
    half_bits: int
    tables: tuple[tuple[int, ...], ...]

    @classmethod
    def create(cls, elements: int, keys: tuple[int, ...]) -> "_Feistel":
        half_bits = 1
        while 1 << (2 * half_bits) < elements:
            half_bits += 1
        mask = (1 << half_bits) - 1
        tables = tuple(
            tuple(_feistel_round(right, key) & mask for right in range(1 << half_bits))
            for key in keys[:_FEISTEL_ROUNDS]
        )
        return cls(elements, half_bits, tables)

    def permute_range(self, start: int, stop: int) -> list[int]:
        """The permuted value of every index in [start, stop)."""
        half_bits, elements = self.half_bits, self.elements
        mask = (1 << half_bits) - 1
        t0, t1, t2 = self.tables
        out = []
        for index in range(start, stop):
            # Cycle-walk: the cipher permutes [0, 4^half_bits), at most 4x elements, so re-encrypting
            # until the value falls back into [0, elements) ends within that value's cycle.
            while True:
                left, right = index >> half_bits, index & mask
                left, right = right, left ^ t0[right]
                left, right = right, left ^ t1[right]
                left, right = right, left ^ t2[right]
                index = (left << half_bits) | right
                if index < elements:
                    break
            out.append(index)
        return out


def _feistel_round(right: int, key: int) -> int:
    digest = hashlib.blake2b(right.to_bytes(8, "big") + key.to_bytes(8, "big")).digest()
    return int.from_bytes(digest[:8], "big")


def _bucket_parents(node: int, words: Sequence[int]) -> list[int]:
    """The 6 DRG parents of node >= 2 from the first 20 words of its ChaCha8 stream (bucket sampling).

    Each of the 5 random parents takes two u64 draws (low word first): a bucket of distances, then a
    distance in it, on the metagraph of node * 5 nodes; the immediate predecessor comes first.
    """
    m_prime = BASE_DEGREE - 1
    metagraph_node = node * m_prime
    buckets = (metagraph_node - 1).bit_length()  # ceil(log2(metagraph_node)), metagraph_node >= 10
    parents = [node - 1]
    for k in range(0, 4 * m_prime, 4):
        bucket = (words[k] | words[k + 1] << 32) % buckets + 1
        largest = min(metagraph_node, 1 << bucket)
        smallest = max(2, largest >> 1)
        distance = smallest + (words[k + 2] | words[k + 3] << 32) % (largest - smallest + 1)
        parent = (metagraph_node - distance) // m_prime
        parents.append(node - 1 if parent == node else parent)
    return parents


_DRAWN_WORDS = 4 * (BASE_DEGREE - 1)
_TABLE_CHUNK = 1 << 14


@dataclass(frozen=True, slots=True, eq=False)
class StackedGraph:
    """The SDR graph over `nodes` nodes for one PoRep ID; `parents(i)` lists base then expander parents."""

    nodes: int
    porep_id: bytes
    _key_prefix: tuple[int, ...] = field(repr=False)
    _feistel: _Feistel = field(repr=False)

    @classmethod
    def create(cls, nodes: int, porep_id: bytes) -> "StackedGraph":
        if nodes < 2 or nodes & (nodes - 1) or nodes > 1 << 31:
            raise ValueError(f"a sector graph needs a power-of-two node count in [2, 2^31], got {nodes}")
        if len(porep_id) != 32:
            raise ValueError(f"a PoRep ID is 32 bytes, got {len(porep_id)}")
        drg_seed = derive_domain_seed(_DRSAMPLE_DST, porep_id)[:28]
        raw = derive_domain_seed(_FEISTEL_DST, porep_id)
        keys = tuple(int.from_bytes(raw[i : i + 8], "little") for i in range(0, 32, 8))
        key_prefix = tuple(int.from_bytes(drg_seed[i : i + 4], "little") for i in range(0, 28, 4))
        return cls(nodes, porep_id, key_prefix, _Feistel.create(nodes * EXPANSION_DEGREE, keys))

    def base_parents(self, node: int) -> list[int]:
        """The 6 DRG parents of node in its own layer, immediate predecessor first."""
        if node < 2:
            return [0] * BASE_DEGREE
        words = chacha8_lanes(self._key_prefix, node, 1, 0) + chacha8_lanes(self._key_prefix, node, 1, 1)
        return _bucket_parents(node, [lane[0] for lane in words[:_DRAWN_WORDS]])

    def expander_parents(self, node: int) -> list[int]:
        """The 8 expander parents of node, all in the previous layer."""
        first = node * EXPANSION_DEGREE
        return [p // EXPANSION_DEGREE for p in self._feistel.permute_range(first, first + EXPANSION_DEGREE)]

    def parents(self, node: int) -> list[int]:
        if not 0 <= node < self.nodes:
            raise ValueError(f"node {node} outside a graph of {self.nodes} nodes")
        return self.base_parents(node) + self.expander_parents(node)

    def parent_table(self) -> "array[int]":
        """Every node's 14 parents, node after node, as uint32 (Filecoin's parent cache); built once."""
        return _parent_table(self)


@lru_cache(maxsize=2)
def _parent_table(graph: StackedGraph) -> "array[int]":
    table: array[int] = array("I")
    for start in range(0, graph.nodes, _TABLE_CHUNK):
        count = min(_TABLE_CHUNK, graph.nodes - start)
        words = chacha8_lanes(graph._key_prefix, start, count, 0)
        words += chacha8_lanes(graph._key_prefix, start, count, 1)[: _DRAWN_WORDS - 16]
        expanders = graph._feistel.permute_range(start * EXPANSION_DEGREE, (start + count) * EXPANSION_DEGREE)
        for i in range(count):
            node = start + i
            if node < 2:
                table.extend([0] * BASE_DEGREE)
            else:
                table.extend(_bucket_parents(node, [lanes[i] for lanes in words]))
            table.extend(
                [p // EXPANSION_DEGREE for p in expanders[i * EXPANSION_DEGREE : (i + 1) * EXPANSION_DEGREE]]
            )
    return table


@lru_cache(maxsize=8)
def stacked_graph(nodes: int, porep_id: bytes) -> StackedGraph:
    """The graph for a sector size and PoRep ID, built once per process."""
    return StackedGraph.create(nodes, porep_id)
