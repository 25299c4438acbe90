"""Stacked-DRG sealing (SDR PoRep) with vanilla proofs the verifier checks in full.

seal: CommD over the fr32-padded sector, replica ID, labels layer by layer (proofs.labels), key = last
layer, replica node = data node + key node in the BLS12-381 scalar field; CommC = root of the tree over
column hashes (one per node, over its labels across layers), CommRLast = root of the tree over the
replica, CommR = H(CommC || CommRLast). prove_commit answers the challenges an interactive seed draws
with the openings and labels Filecoin's SNARK would prove; verify_seal recomputes every label, opening
and encoding. Trees are binary sha256-trunc254 (proofs.merkle) where Filecoin uses Poseidon oct-trees:
see docs/proofs.md for this and the other deviations.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from proofs import merkle, post
from proofs.drg import BASE_DEGREE, DEGREE, StackedGraph, stacked_graph
from proofs.labels import label, label_layers
from proofs.registered import (
    MAX_SECTOR_NUMBER,
    RegisteredSealProof,
    SealParams,
    UnsupportedProof,
    porep_id,
    seal_params,
)
from proofs.vanilla import (
    FIELD_MODULUS,
    NODE_SIZE,
    NodeOpening,
    ProofDecodeError,
    Reader,
    check_bytes,
    sha256_trunc254,
    trunc254,
)


class SealError(ValueError):
    """Sector data or a replica that cannot be sealed, unsealed or proved as given."""


def replica_id(proof: int, prover_id: bytes, sector_number: int, ticket: bytes, comm_d: bytes) -> bytes:
    """sha256(prover_id || u64-BE sector number || ticket || CommD || PoRep ID), top two bits cleared."""
    _check_sector(prover_id, sector_number, ticket)
    check_bytes(comm_d, 32, "CommD")
    digest = hashlib.sha256(
        prover_id + sector_number.to_bytes(8, "big") + ticket + comm_d + porep_id(proof)
    ).digest()
    return trunc254(digest)


def seal_challenges(params: SealParams, replica_id: bytes, seed: bytes) -> list[int]:
    """The nodes an interactive seed challenges: sha256(replica ID || seed || u32-LE j) mod (n-1) + 1.

    Node 0 is never challenged (it has no parents). We prove one partition, so j runs 0..challenges-1.
    """
    check_bytes(seed, 32, "interactive seed")
    out = []
    for j in range(params.challenges):
        digest = hashlib.sha256(replica_id + seed + j.to_bytes(4, "little")).digest()
        out.append(int.from_bytes(digest, "little") % (params.nodes - 1) + 1)
    return out


def column_hash(labels: Sequence[bytes]) -> bytes:
    """The tree C leaf of a node: sha256-trunc254 over its labels, layer 1 first."""
    return sha256_trunc254(b"".join(labels))


def comm_r_of(comm_c: bytes, comm_r_last: bytes) -> bytes:
    return merkle.hash_node(comm_c, comm_r_last)


@dataclass(frozen=True, slots=True)
class SealedSector:
    """A sealed sector and what its prover keeps: the commitments, the replica and the layer labels.

    The labels (layers x sector size) let prove_commit answer without relabelling; a prover that
    dropped them rebuilds this object from the replica with `restore_sealed`.
    """

    proof: RegisteredSealProof
    prover_id: bytes
    sector_number: int
    ticket: bytes
    comm_d: bytes
    comm_r: bytes
    comm_c: bytes
    comm_r_last: bytes
    replica: bytes = field(repr=False)
    labels: tuple[bytes, ...] = field(repr=False)

    @property
    def replica_id(self) -> bytes:
        return replica_id(self.proof, self.prover_id, self.sector_number, self.ticket, self.comm_d)

    def proving_sector(self) -> post.ProvingSector:
        """What PoSt needs of this sector (its commitments and replica; the labels are not kept)."""
        return post.ProvingSector(
            self.sector_number, self.comm_r, self.comm_c, self.comm_r_last, self.replica
        )


def _check_sector(prover_id: bytes, sector_number: int, ticket: bytes) -> None:
    check_bytes(prover_id, 32, "prover ID")
    check_bytes(ticket, 32, "seal ticket")
    if isinstance(sector_number, bool) or not isinstance(sector_number, int):
        raise ValueError(f"a sector number is an integer, got {type(sector_number).__name__}")
    if not 0 <= sector_number <= MAX_SECTOR_NUMBER:
        raise ValueError(f"sector number {sector_number} outside [0, 2^63)")


def _nodes_as_field(data: bytes, what: str) -> list[int]:
    values = [int.from_bytes(data[o : o + NODE_SIZE], "little") for o in range(0, len(data), NODE_SIZE)]
    for index, value in enumerate(values):
        if value >= FIELD_MODULUS:
            raise SealError(f"{what} node {index} is not a BLS12-381 scalar (is the data fr32-padded?)")
    return values


def _encode(data: bytes, key: bytes) -> bytes:
    """replica = data + key per node, in the scalar field, as 32-byte little-endian elements."""
    values = _nodes_as_field(data, "sector data")
    out = bytearray(len(data))
    for index, value in enumerate(values):
        o = index * NODE_SIZE
        total = value + int.from_bytes(key[o : o + NODE_SIZE], "little")
        if total >= FIELD_MODULUS:
            total -= FIELD_MODULUS
        out[o : o + NODE_SIZE] = total.to_bytes(NODE_SIZE, "little")
    return bytes(out)


def _decode(replica: bytes, key: bytes) -> bytes:
    values = _nodes_as_field(replica, "replica")
    out = bytearray(len(replica))
    for index, value in enumerate(values):
        o = index * NODE_SIZE
        diff = value - int.from_bytes(key[o : o + NODE_SIZE], "little")
        if diff < 0:
            diff += FIELD_MODULUS
        out[o : o + NODE_SIZE] = diff.to_bytes(NODE_SIZE, "little")
    return bytes(out)


def _column_leaves(labels: Sequence[bytes], nodes: int) -> bytes:
    out = bytearray(nodes * NODE_SIZE)
    sha256 = hashlib.sha256
    for node in range(nodes):
        o = node * NODE_SIZE
        digest = sha256(b"".join([layer[o : o + NODE_SIZE] for layer in labels])).digest()
        out[o : o + NODE_SIZE] = digest
        out[o + NODE_SIZE - 1] &= 0x3F
    return bytes(out)


def _graph(params: SealParams) -> StackedGraph:
    return stacked_graph(params.nodes, params.porep_id)


def _check_size(params: SealParams, data: bytes, what: str) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"{what} must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) != params.sector_size:
        raise SealError(
            f"{what} of a {params.proof.name} sector must be {params.sector_size} bytes, got {len(data)}"
        )
    return data


def seal(proof: int, sector_data: bytes, prover_id: bytes, sector_number: int, ticket: bytes) -> SealedSector:
    """Seal fr32-padded sector data (exactly the sector size) for a prover, sector number and ticket."""
    params = seal_params(proof)
    _check_sector(prover_id, sector_number, ticket)
    data = _check_size(params, sector_data, "sector data")
    comm_d = merkle.root_of(data)
    rid = replica_id(params.proof, prover_id, sector_number, ticket, comm_d)
    labels = label_layers(_graph(params), rid, params.layers)
    replica = _encode(data, labels[-1])
    return _sealed_sector(params, prover_id, sector_number, ticket, comm_d, replica, labels)


def restore_sealed(
    proof: int, replica: bytes, prover_id: bytes, sector_number: int, ticket: bytes, comm_d: bytes
) -> SealedSector:
    """Rebuild a SealedSector (labels, CommC, CommR) from its replica; SealError if it is not CommD's."""
    params, replica, labels, _ = _unseal(proof, replica, prover_id, sector_number, ticket, comm_d)
    return _sealed_sector(params, prover_id, sector_number, ticket, bytes(comm_d), replica, labels)


def unseal(
    proof: int, replica: bytes, prover_id: bytes, sector_number: int, ticket: bytes, comm_d: bytes
) -> bytes:
    """The sector data a replica holds, checked against CommD; SealError if the replica is corrupt."""
    return _unseal(proof, replica, prover_id, sector_number, ticket, comm_d)[3]


def _unseal(
    proof: int, replica: bytes, prover_id: bytes, sector_number: int, ticket: bytes, comm_d: bytes
) -> tuple[SealParams, bytes, list[bytes], bytes]:
    """The proof's parameters, the replica (its size checked), its labels and the data it encodes,
    checked against CommD."""
    params = seal_params(proof)
    replica = _check_size(params, replica, "replica")
    rid = replica_id(params.proof, prover_id, sector_number, ticket, comm_d)
    labels = label_layers(_graph(params), rid, params.layers)
    data = _decode(replica, labels[-1])
    if merkle.root_of(data) != comm_d:
        raise SealError(f"replica of sector {sector_number} does not unseal to its CommD: it is corrupt")
    return params, replica, labels, data


def _sealed_sector(
    params: SealParams,
    prover_id: bytes,
    sector_number: int,
    ticket: bytes,
    comm_d: bytes,
    replica: bytes,
    labels: Sequence[bytes],
) -> SealedSector:
    """The sealed sector of a replica and its labels: CommC over the label columns, CommRLast over the
    replica, and CommR of the two."""
    comm_c = merkle.root_of(_column_leaves(labels, params.nodes))
    comm_r_last = merkle.root_of(replica)
    return SealedSector(
        params.proof,
        bytes(prover_id),
        sector_number,
        bytes(ticket),
        comm_d,
        comm_r_of(comm_c, comm_r_last),
        comm_c,
        comm_r_last,
        replica,
        tuple(labels),
    )


@dataclass(frozen=True, slots=True)
class ColumnOpening:
    """A node's labels across all layers and the path of their column hash in tree C."""

    labels: tuple[bytes, ...]
    path: tuple[bytes, ...]

    def verify(self, comm_c: bytes, index: int) -> bool:
        return merkle.verify_opening(comm_c, column_hash(self.labels), index, self.path)


@dataclass(frozen=True, slots=True)
class ChallengeProof:
    """Everything one challenged node needs: data and replica openings, its column and its 14 parents'."""

    data: NodeOpening
    replica: NodeOpening
    column: ColumnOpening
    parents: tuple[ColumnOpening, ...]


@dataclass(frozen=True, slots=True)
class SealProof:
    """The vanilla PoRep of one sector: CommC, CommRLast and one ChallengeProof per challenge.

    Layout (all nodes 32 bytes): u8 format version (1), u8 registered seal proof, CommC, CommRLast, then
    per challenge: data leaf + path, replica leaf + path, the challenged column (labels of layers 1..L,
    then path), and the 14 parent columns in parent order (6 base, 8 expander), paths bottom-up. The
    proof type fixes L, the path depth and the challenge count, so the length is exact.
    """

    proof: RegisteredSealProof
    comm_c: bytes
    comm_r_last: bytes
    challenges: tuple[ChallengeProof, ...]

    def to_bytes(self) -> bytes:
        out = bytearray((1, int(self.proof)))
        out += self.comm_c + self.comm_r_last
        for challenge in self.challenges:
            challenge.data.write(out)
            challenge.replica.write(out)
            for column in (challenge.column, *challenge.parents):
                for node in (*column.labels, *column.path):
                    out += node
        return bytes(out)

    @staticmethod
    def encoded_size(params: SealParams) -> int:
        depth, layers = params.tree_depth, params.layers
        per_challenge = 2 * (depth + 1) + (1 + DEGREE) * (layers + depth)
        return 2 + 2 * NODE_SIZE + params.challenges * per_challenge * NODE_SIZE

    @classmethod
    def from_bytes(cls, data: bytes) -> "SealProof":
        reader = Reader(data, "seal proof")
        number = reader.header()
        try:
            params = seal_params(number)
        except UnsupportedProof as exc:
            raise ProofDecodeError(f"seal proof names {exc}") from None
        reader.expect_length(cls.encoded_size(params))
        comm_c, comm_r_last = reader.node(), reader.node()
        depth, layers = params.tree_depth, params.layers
        challenges = []
        for _ in range(params.challenges):
            data_opening = NodeOpening.read(reader, depth)
            replica_opening = NodeOpening.read(reader, depth)
            columns = [ColumnOpening(reader.nodes(layers), reader.nodes(depth)) for _ in range(1 + DEGREE)]
            challenges.append(ChallengeProof(data_opening, replica_opening, columns[0], tuple(columns[1:])))
        reader.finish()
        return cls(params.proof, comm_c, comm_r_last, tuple(challenges))


def prove_commit(sealed: SealedSector, seed: bytes) -> SealProof:
    """Answer the challenges the interactive seed draws for a sealed sector."""
    params = seal_params(sealed.proof)
    if len(sealed.labels) != params.layers:
        raise SealError(
            f"a {params.proof.name} sector has {params.layers} label layers, got {len(sealed.labels)}"
        )
    rid = sealed.replica_id
    graph = _graph(params)
    key = sealed.labels[-1]
    tree_d = merkle.tree_levels(_decode(sealed.replica, key))
    tree_r = merkle.tree_levels(sealed.replica)
    tree_c = merkle.tree_levels(_column_leaves(sealed.labels, params.nodes))
    if tree_d[-1] != sealed.comm_d or comm_r_of(tree_c[-1], tree_r[-1]) != sealed.comm_r:
        raise SealError(f"sector {sealed.sector_number} does not match its commitments: it is corrupt")

    def column(node: int) -> ColumnOpening:
        o = node * NODE_SIZE
        labels = tuple(layer[o : o + NODE_SIZE] for layer in sealed.labels)
        return ColumnOpening(labels, tuple(merkle.opening(tree_c, node)))

    challenges = []
    for node in seal_challenges(params, rid, seed):
        challenges.append(
            ChallengeProof(
                NodeOpening.of(tree_d, node),
                NodeOpening.of(tree_r, node),
                column(node),
                tuple(column(parent) for parent in graph.parents(node)),
            )
        )
    return SealProof(params.proof, tree_c[-1], tree_r[-1], tuple(challenges))


def _verify_challenge(
    challenge: ChallengeProof,
    node: int,
    graph: StackedGraph,
    params: SealParams,
    rid: bytes,
    comm_d: bytes,
    proof: SealProof,
) -> bool:
    parents = graph.parents(node)
    if len(challenge.parents) != DEGREE:
        return False
    if not (
        challenge.data.verify(comm_d, node)
        and challenge.replica.verify(proof.comm_r_last, node)
        and challenge.column.verify(proof.comm_c, node)
        and all(col.verify(proof.comm_c, p) for col, p in zip(challenge.parents, parents, strict=True))
    ):
        return False
    columns = [col.labels for col in challenge.parents]
    for layer in range(1, params.layers + 1):
        parent_labels = [labels[layer - 1] for labels in columns[:BASE_DEGREE]]
        if layer > 1:
            parent_labels += [labels[layer - 2] for labels in columns[BASE_DEGREE:]]
        if label(rid, layer, node, parent_labels) != challenge.column.labels[layer - 1]:
            return False
    data_value = int.from_bytes(challenge.data.leaf, "little")
    replica_value = int.from_bytes(challenge.replica.leaf, "little")
    key_value = int.from_bytes(challenge.column.labels[-1], "little")
    if data_value >= FIELD_MODULUS or replica_value >= FIELD_MODULUS:
        return False
    return replica_value == (data_value + key_value) % FIELD_MODULUS


def verify_seal(
    proof: int,
    prover_id: bytes,
    sector_number: int,
    ticket: bytes,
    seed: bytes,
    comm_d: bytes,
    comm_r: bytes,
    proof_bytes: bytes,
) -> bool:
    """True when proof_bytes prove that CommR seals CommD for this prover, sector, ticket and seed.

    Malformed public inputs raise ValueError; undecodable proof bytes raise ProofDecodeError; a proof
    that decodes but does not prove the claim gives False.
    """
    params = seal_params(proof)
    _check_sector(prover_id, sector_number, ticket)
    check_bytes(seed, 32, "interactive seed")
    check_bytes(comm_d, 32, "CommD")
    check_bytes(comm_r, 32, "CommR")
    decoded = SealProof.from_bytes(proof_bytes)
    if decoded.proof != params.proof:
        return False
    if comm_r_of(decoded.comm_c, decoded.comm_r_last) != comm_r:
        return False
    rid = replica_id(params.proof, prover_id, sector_number, ticket, comm_d)
    nodes = seal_challenges(params, rid, seed)
    if len(nodes) != len(decoded.challenges):
        return False
    graph = _graph(params)
    return all(
        _verify_challenge(challenge, node, graph, params, rid, comm_d, decoded)
        for challenge, node in zip(decoded.challenges, nodes, strict=True)
    )
