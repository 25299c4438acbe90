"""SDR labels: each node of each layer is sha256 over the replica ID, its position and its parents' labels.

label(l, i) = sha256(replica_id || u32-BE l || u64-BE i || 20 zero bytes || 37 parent labels), its two
top bits cleared. The 37 parent labels are the node's parents cycled: its 6 base parents (layer l) on
layer 1, its 6 base parents (layer l) then 8 expander parents (layer l-1) above. Node 0 hashes the
64-byte prefix alone. This is rust-fil-proofs' `create_label` / `create_label_exp` and its
`LabelingProof`, so our labels and keys equal Filecoin's for the same replica ID.
"""

import hashlib
import struct
from collections.abc import Sequence

from proofs.drg import BASE_DEGREE, DEGREE, StackedGraph

NODE_SIZE = 32
LABEL_PARENTS = 37


def label_prefix(replica_id: bytes, layer: int, node: int) -> bytes:
    return replica_id + struct.pack(">IQ20x", layer, node)


def _finish(digest: bytes) -> bytes:
    return digest[:31] + bytes((digest[31] & 0x3F,))


def cycled_parents(parent_labels: Sequence[bytes]) -> bytes:
    """The 37 parent labels a label hashes: the given 6 or 14 labels repeated and cut at 37."""
    joined = b"".join(parent_labels)
    count = len(parent_labels)
    return joined * (LABEL_PARENTS // count) + joined[: (LABEL_PARENTS % count) * NODE_SIZE]


def label(replica_id: bytes, layer: int, node: int, parent_labels: Sequence[bytes]) -> bytes:
    """One label from its parents' labels (6 base on layer 1, 6 base + 8 expander above; none for node 0)."""
    hasher = hashlib.sha256(label_prefix(replica_id, layer, node))
    if node > 0:
        hasher.update(cycled_parents(parent_labels))
    return _finish(hasher.digest())


def label_layer(
    graph: StackedGraph, replica_id: bytes, layer: int, previous: bytes | None, table: Sequence[int]
) -> bytes:
    """Every label of one layer; previous is the layer below (None for layer 1)."""
    nodes = graph.nodes
    out = bytearray(nodes * NODE_SIZE)
    sha256 = hashlib.sha256
    pack = struct.Struct(">IQ20x").pack
    base = sha256(replica_id)
    first = base.copy()
    first.update(pack(layer, 0))
    out[0:NODE_SIZE] = _finish(first.digest())
    for node in range(1, nodes):
        o = node * DEGREE
        parents = table[o : o + DEGREE]
        if previous is None:
            joined = b"".join([out[p * NODE_SIZE : p * NODE_SIZE + NODE_SIZE] for p in parents[:BASE_DEGREE]])
            data = joined * 6 + joined[:NODE_SIZE]
        else:
            joined = b"".join(
                [out[p * NODE_SIZE : p * NODE_SIZE + NODE_SIZE] for p in parents[:BASE_DEGREE]]
                + [previous[p * NODE_SIZE : p * NODE_SIZE + NODE_SIZE] for p in parents[BASE_DEGREE:]]
            )
            data = joined + joined + joined[: 9 * NODE_SIZE]
        hasher = base.copy()
        hasher.update(pack(layer, node))
        hasher.update(data)
        digest = hasher.digest()
        end = node * NODE_SIZE + NODE_SIZE
        out[node * NODE_SIZE : end] = digest
        out[end - 1] &= 0x3F
    return bytes(out)


def label_layers(graph: StackedGraph, replica_id: bytes, layers: int) -> list[bytes]:
    """All layers of labels of a replica ID, layer 1 first; the last layer is the encoding key."""
    if len(replica_id) != 32:
        raise ValueError(f"a replica ID is 32 bytes, got {len(replica_id)}")
    table = graph.parent_table()
    out: list[bytes] = []
    previous: bytes | None = None
    for layer in range(1, layers + 1):
        current = label_layer(graph, replica_id, layer, previous, table)
        out.append(current)
        previous = current
    return out
