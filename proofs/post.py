"""Winning and Window PoSt over sealed sectors, with vanilla proofs (Filecoin's "fallback" PoSt).

For each proved sector the prover opens challenged leaves of its replica tree (tree R) against
CommRLast, and gives CommC so the verifier can check H(CommC || CommRLast) = CommR, the commitment on
chain. Challenges follow rust-fil-proofs storage-proofs-post:
- Winning PoSt picks the challenged sectors among the eligible ones with
  sha256(prover_id || randomness || u64-LE n)[:8] as u64-LE, mod the eligible count;
- leaf n of sector s is sha256(randomness || u64-LE s || u64-LE n)[:8] as u64-LE, mod the leaf count
  (the V1_1 Window PoSt rule, which Winning PoSt's single sector shares).
Randomness enters with its two top bits cleared (as Lotus clears them before calling the proofs), so
any 32 bytes of chain randomness can be passed as is. The prover ID enters only the choice of Winning
PoSt sectors: as in Filecoin, a sector's proof is bound to it by its sector number and CommR (whose
replica ID holds the prover ID) and to the miner by the chain randomness drawn for it.

A prover that cannot read a sector, or whose replica no longer hashes to CommRLast, gets FaultySectors
naming every such sector, so the node can declare them faulty and prove the rest.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from proofs import merkle
from proofs.registered import (
    MAX_SECTOR_NUMBER,
    PoStKind,
    PoStParams,
    RegisteredPoStProof,
    UnsupportedProof,
    post_params,
)
from proofs.vanilla import NodeOpening, ProofDecodeError, Reader, check_bytes


class FaultySectors(Exception):
    """Sectors the prover could not prove (missing, unreadable or corrupt replica), in ascending order."""

    def __init__(self, sector_numbers: Sequence[int]) -> None:
        self.sector_numbers = tuple(sorted(set(sector_numbers)))
        super().__init__(f"faulty sectors: {', '.join(map(str, self.sector_numbers))}")


@dataclass(frozen=True, slots=True)
class PublicSector:
    """A sector as the chain knows it: what the verifier checks a PoSt against."""

    sector_number: int
    comm_r: bytes


@dataclass(frozen=True, slots=True)
class ProvingSector:
    """A sector as its prover holds it: the commitments kept from sealing and the replica, if readable."""

    sector_number: int
    comm_r: bytes
    comm_c: bytes
    comm_r_last: bytes
    replica: bytes | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class SectorProof:
    """One sector's part of a PoSt: CommC, CommRLast and the openings of its challenged replica leaves."""

    comm_c: bytes
    comm_r_last: bytes
    openings: tuple[NodeOpening, ...]

    def write(self, out: bytearray) -> None:
        out += self.comm_c + self.comm_r_last
        for opening in self.openings:
            opening.write(out)

    @classmethod
    def read(cls, reader: Reader, params: PoStParams) -> "SectorProof":
        comm_c, comm_r_last = reader.node(), reader.node()
        depth = params.tree_depth
        openings = tuple(NodeOpening.read(reader, depth) for _ in range(params.challenges))
        return cls(comm_c, comm_r_last, openings)


def _read_header(data: bytes, kind: PoStKind) -> tuple[Reader, PoStParams]:
    """A reader of a `kind` PoSt proof past its header, and the parameters of the proof type it names."""
    reader = Reader(data, f"{kind.value.capitalize()} PoSt proof")
    try:
        params = post_params(reader.header())
    except UnsupportedProof as exc:
        raise ProofDecodeError(f"{kind.value} PoSt proof names {exc}") from None
    if params.kind is not kind:
        raise ProofDecodeError(
            f"{kind.value} PoSt proof names {params.proof.name}, a {params.kind.value} proof"
        )
    return reader, params


@dataclass(frozen=True, slots=True)
class WinningPoStProof:
    """Layout: u8 format version (1), u8 registered PoSt proof, u8 sector count, then per sector CommC,
    CommRLast and per challenge the leaf and its path (all nodes 32 bytes)."""

    proof: RegisteredPoStProof
    sectors: tuple[SectorProof, ...]

    def to_bytes(self) -> bytes:
        out = bytearray((1, int(self.proof), len(self.sectors)))
        for sector in self.sectors:
            sector.write(out)
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> "WinningPoStProof":
        reader, params = _read_header(data, PoStKind.WINNING)
        count = reader.u8("the sector count")
        if count != params.sectors:
            raise ProofDecodeError(
                f"Winning PoSt proof covers {count} sectors, its type proves {params.sectors}"
            )
        sectors = tuple(SectorProof.read(reader, params) for _ in range(count))
        reader.finish()
        return cls(params.proof, sectors)


@dataclass(frozen=True, slots=True)
class WindowPoStProof:
    """Layout: u8 format version (1), u8 registered PoSt proof, u32-BE partition count (> 0), then per
    partition a u8 sector count (1 to the partition size) and its sectors as in a Winning PoSt proof."""

    proof: RegisteredPoStProof
    partitions: tuple[tuple[SectorProof, ...], ...]

    def to_bytes(self) -> bytes:
        out = bytearray((1, int(self.proof)))
        out += len(self.partitions).to_bytes(4, "big")
        for partition in self.partitions:
            out.append(len(partition))
            for sector in partition:
                sector.write(out)
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> "WindowPoStProof":
        reader, params = _read_header(data, PoStKind.WINDOW)
        partitions = []
        count = reader.u32("the partition count")
        if count == 0:
            raise ProofDecodeError("Window PoSt proof has no partition")
        # Every partition takes at least one byte, so a forged count runs out of bytes, not of memory.
        for index in range(count):
            count = reader.u8(f"the sector count of partition {index}")
            if not 1 <= count <= params.sectors:
                raise ProofDecodeError(
                    f"Window PoSt partition {index} covers {count} sectors, not 1 to {params.sectors}"
                )
            partitions.append(tuple(SectorProof.read(reader, params) for _ in range(count)))
        reader.finish()
        return cls(params.proof, tuple(partitions))


def _safe_randomness(randomness: bytes) -> bytes:
    raw = check_bytes(randomness, 32, "PoSt randomness")
    return raw[:31] + bytes((raw[31] & 0x3F,))


def _check_sector_number(number: int) -> None:
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= MAX_SECTOR_NUMBER:
        raise ValueError(f"a sector number is an integer in [0, 2^63), got {number!r}")


def _params(proof: int, kind: PoStKind) -> PoStParams:
    params = post_params(proof)
    if params.kind is not kind:
        raise UnsupportedProof(f"{params.proof.name} is a {params.kind.value} PoSt proof, not {kind.value}")
    return params


def winning_post_sector_challenge(
    proof: int, randomness: bytes, prover_id: bytes, eligible_sectors: int
) -> list[int]:
    """Indices into the (sector-number ordered) eligible sectors that a Winning PoSt must prove."""
    params = _params(proof, PoStKind.WINNING)
    safe = _safe_randomness(randomness)
    check_bytes(prover_id, 32, "prover ID")
    if isinstance(eligible_sectors, bool) or not isinstance(eligible_sectors, int) or eligible_sectors < 1:
        raise ValueError(f"a Winning PoSt needs at least one eligible sector, got {eligible_sectors!r}")
    out = []
    for n in range(params.sectors):
        digest = hashlib.sha256(prover_id + safe + n.to_bytes(8, "little")).digest()
        out.append(int.from_bytes(digest[:8], "little") % eligible_sectors)
    return out


def leaf_challenges(params: PoStParams, randomness: bytes, sector_number: int) -> list[int]:
    """The replica leaves of one sector a PoSt opens."""
    _check_sector_number(sector_number)
    prefix = _safe_randomness(randomness) + sector_number.to_bytes(8, "little")
    sha256, nodes = hashlib.sha256, params.nodes
    digests = [sha256(prefix + n.to_bytes(8, "little")).digest() for n in range(params.challenges)]
    return [int.from_bytes(digest[:8], "little") % nodes for digest in digests]


def _prove_sector(params: PoStParams, randomness: bytes, sector: ProvingSector) -> SectorProof | None:
    """The sector's proof, or None when its replica is missing or no longer matches its commitments."""
    _check_sector_number(sector.sector_number)
    replica = sector.replica
    if replica is None or len(replica) != params.sector_size:
        return None
    if merkle.hash_node(sector.comm_c, sector.comm_r_last) != sector.comm_r:
        return None
    tree_r = merkle.tree_levels(replica)
    if tree_r[-1] != sector.comm_r_last:
        return None
    openings = tuple(
        NodeOpening.of(tree_r, leaf) for leaf in leaf_challenges(params, randomness, sector.sector_number)
    )
    return SectorProof(sector.comm_c, sector.comm_r_last, openings)


def _prove_all(params: PoStParams, randomness: bytes, sectors: Sequence[ProvingSector]) -> list[SectorProof]:
    proofs: list[SectorProof] = []
    faulty: list[int] = []
    for sector in sectors:
        proof = _prove_sector(params, randomness, sector)
        if proof is None:
            faulty.append(sector.sector_number)
        else:
            proofs.append(proof)
    if faulty:
        raise FaultySectors(faulty)
    return proofs


def _verify_sector(params: PoStParams, randomness: bytes, sector: PublicSector, proof: SectorProof) -> bool:
    check_bytes(sector.comm_r, 32, "CommR")
    if merkle.hash_node(proof.comm_c, proof.comm_r_last) != sector.comm_r:
        return False
    leaves = leaf_challenges(params, randomness, sector.sector_number)
    if len(proof.openings) != len(leaves):
        return False
    # A leaf challenged again with the same opening is not hashed again: 66 challenges over the 64
    # leaves of a 2 KiB sector hit ~25 leaves twice. A different opening of it is checked on its own.
    verified: dict[int, NodeOpening] = {}
    for opening, leaf in zip(proof.openings, leaves, strict=True):
        if verified.get(leaf) == opening:
            continue
        if not opening.verify(proof.comm_r_last, leaf):
            return False
        verified[leaf] = opening
    return True


def generate_winning_post(
    proof: int, randomness: bytes, sectors: Sequence[ProvingSector]
) -> WinningPoStProof:
    """Prove the challenged sectors (those `winning_post_sector_challenge` picked, in its order)."""
    params = _params(proof, PoStKind.WINNING)
    if len(sectors) != params.sectors:
        raise ValueError(f"a {params.proof.name} proof covers {params.sectors} sectors, got {len(sectors)}")
    return WinningPoStProof(params.proof, tuple(_prove_all(params, randomness, sectors)))


def verify_winning_post(
    proof: int, randomness: bytes, sectors: Sequence[PublicSector], proof_bytes: bytes
) -> bool:
    """True when proof_bytes prove the challenged sectors; ProofDecodeError if they cannot be read."""
    params = _params(proof, PoStKind.WINNING)
    if len(sectors) != params.sectors:
        raise ValueError(f"a {params.proof.name} proof covers {params.sectors} sectors, got {len(sectors)}")
    decoded = WinningPoStProof.from_bytes(proof_bytes)
    if decoded.proof != params.proof:
        return False
    return all(
        _verify_sector(params, randomness, sector, sector_proof)
        for sector, sector_proof in zip(sectors, decoded.sectors, strict=True)
    )


def partition_count(proof: int, sectors: int) -> int:
    """How many partitions a Window PoSt over that many sectors has."""
    return -(-sectors // _params(proof, PoStKind.WINDOW).sectors)


def generate_window_post(proof: int, randomness: bytes, sectors: Sequence[ProvingSector]) -> WindowPoStProof:
    """Prove every sector, in the given order, in partitions of the proof type's partition size.

    Raises FaultySectors naming every sector that could not be proved; nothing is returned then, so the
    caller declares those faulty and proves the rest.
    """
    params = _params(proof, PoStKind.WINDOW)
    if not sectors:
        raise ValueError("a Window PoSt needs at least one sector")
    proofs = _prove_all(params, randomness, sectors)
    size = params.sectors
    return WindowPoStProof(
        params.proof, tuple(tuple(proofs[i : i + size]) for i in range(0, len(proofs), size))
    )


def verify_window_post(
    proof: int, randomness: bytes, sectors: Sequence[PublicSector], proof_bytes: bytes
) -> bool:
    """True when proof_bytes prove every sector, partition by partition in the given order."""
    params = _params(proof, PoStKind.WINDOW)
    if not sectors:
        raise ValueError("a Window PoSt needs at least one sector")
    decoded = WindowPoStProof.from_bytes(proof_bytes)
    if decoded.proof != params.proof or len(decoded.partitions) != -(-len(sectors) // params.sectors):
        return False
    size = params.sectors
    for index, partition in enumerate(decoded.partitions):
        chunk = sectors[index * size : (index + 1) * size]
        if len(partition) != len(chunk):
            return False
        if not all(_verify_sector(params, randomness, s, p) for s, p in zip(chunk, partition, strict=True)):
            return False
    return True
