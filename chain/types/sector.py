"""Sector and proof descriptions passed between actors and the VM's proof syscalls.

Shapes follow go-state-types (abi.SectorID, abi.PieceInfo, proof.SealVerifyInfo,
proof.WindowPoStVerifyInfo, runtime.ConsensusFault); proofs are filpy's vanilla proofs as bytes.
"""

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from chain.encoding.cid import CID
from chain.encoding.expect import (
    expect_bytes,
    expect_cid,
    expect_int,
    expect_list,
    expect_tuple,
    expect_uint,
)
from chain.types.address import Address
from chain.types.block import PoStProof

# Vanilla proofs are far larger than SNARKs; bound them so a message cannot carry an unbounded blob.
MAX_PROOF_BYTES = 16 << 20
MAX_DEALS_PER_SECTOR = 256


def expect_deal_ids(raw: Any, what: str, max_len: int = MAX_DEALS_PER_SECTOR) -> tuple[int, ...]:
    """A list of deal IDs (uint64), at most max_len of them."""
    return tuple(expect_uint(d, what) for d in expect_list(raw, what, max_len))


@dataclass(frozen=True, slots=True)
class SectorID:
    miner: int  # actor ID of the miner
    number: int

    def to_cbor(self) -> list[Any]:
        return [self.miner, self.number]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "SectorID") -> "SectorID":
        miner, number = expect_tuple(raw, 2, what)
        return cls(expect_uint(miner, f"{what}.Miner"), expect_uint(number, f"{what}.Number"))


@dataclass(frozen=True, slots=True)
class PieceInfo:
    size: int  # padded piece size
    piece_cid: CID

    def to_cbor(self) -> list[Any]:
        return [self.size, self.piece_cid]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "PieceInfo") -> "PieceInfo":
        size, cid = expect_tuple(raw, 2, what)
        return cls(expect_uint(size, f"{what}.Size"), expect_cid(cid, f"{what}.PieceCID"))


@dataclass(frozen=True, slots=True)
class SectorInfo:
    """A sector as PoSt sees it: its proof type, number and sealed commitment (CommR)."""

    seal_proof: int
    sector_number: int
    sealed_cid: CID

    def to_cbor(self) -> list[Any]:
        return [self.seal_proof, self.sector_number, self.sealed_cid]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "SectorInfo") -> "SectorInfo":
        proof, number, sealed = expect_tuple(raw, 3, what)
        return cls(
            expect_int(proof, f"{what}.SealProof"),
            expect_uint(number, f"{what}.SectorNumber"),
            expect_cid(sealed, f"{what}.SealedCID"),
        )


@dataclass(frozen=True, slots=True)
class SealVerifyInfo:
    seal_proof: int
    sector_id: SectorID
    deal_ids: tuple[int, ...]
    randomness: bytes  # the sealing ticket
    interactive_randomness: bytes  # the seed drawn after the pre-commit
    proof: bytes
    sealed_cid: CID
    unsealed_cid: CID

    def to_cbor(self) -> list[Any]:
        return [
            self.seal_proof,
            self.sector_id.to_cbor(),
            list(self.deal_ids),
            self.randomness,
            self.interactive_randomness,
            self.proof,
            self.sealed_cid,
            self.unsealed_cid,
        ]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "SealVerifyInfo") -> "SealVerifyInfo":
        proof_type, sector, deals, rand, irand, proof, sealed, unsealed = expect_tuple(raw, 8, what)
        return cls(
            expect_int(proof_type, f"{what}.SealProof"),
            SectorID.from_cbor(sector, f"{what}.SectorID"),
            expect_deal_ids(deals, f"{what}.DealIDs"),
            expect_bytes(rand, f"{what}.Randomness", length=32),
            expect_bytes(irand, f"{what}.InteractiveRandomness", length=32),
            expect_bytes(proof, f"{what}.Proof", max_len=MAX_PROOF_BYTES),
            expect_cid(sealed, f"{what}.SealedCID"),
            expect_cid(unsealed, f"{what}.UnsealedCID"),
        )


@dataclass(frozen=True, slots=True)
class WindowPoStVerifyInfo:
    randomness: bytes
    proofs: tuple[PoStProof, ...]
    challenged_sectors: tuple[SectorInfo, ...]
    prover: int  # actor ID of the miner

    def to_cbor(self) -> list[Any]:
        return [
            self.randomness,
            [p.to_cbor() for p in self.proofs],
            [s.to_cbor() for s in self.challenged_sectors],
            self.prover,
        ]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "WindowPoStVerifyInfo") -> "WindowPoStVerifyInfo":
        rand, proofs, sectors, prover = expect_tuple(raw, 4, what)
        return cls(
            expect_bytes(rand, f"{what}.Randomness", length=32),
            tuple(PoStProof.from_cbor(p, f"{what}.Proofs") for p in expect_list(proofs, f"{what}.Proofs")),
            tuple(
                SectorInfo.from_cbor(s, f"{what}.ChallengedSectors")
                for s in expect_list(sectors, f"{what}.ChallengedSectors")
            ),
            expect_uint(prover, f"{what}.Prover"),
        )


@dataclass(frozen=True, slots=True)
class WinningPoStVerifyInfo:
    randomness: bytes
    proofs: tuple[PoStProof, ...]
    challenged_sectors: tuple[SectorInfo, ...]
    prover: int

    def to_cbor(self) -> list[Any]:
        return [
            self.randomness,
            [p.to_cbor() for p in self.proofs],
            [s.to_cbor() for s in self.challenged_sectors],
            self.prover,
        ]


@dataclass(frozen=True, slots=True)
class PieceInclusionVerifyInfo:
    """A piece inclusion proof to check: `proof` (proofs.pip bytes) shows `piece` in `unsealed_cid`."""

    seal_proof: int
    unsealed_cid: CID  # the sector's CommD as a piece CID
    piece: PieceInfo
    proof: bytes

    def to_cbor(self) -> list[Any]:
        return [self.seal_proof, self.unsealed_cid, self.piece.to_cbor(), self.proof]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "PieceInclusionVerifyInfo") -> "PieceInclusionVerifyInfo":
        proof_type, unsealed, piece, proof = expect_tuple(raw, 4, what)
        return cls(
            expect_int(proof_type, f"{what}.SealProof"),
            expect_cid(unsealed, f"{what}.UnsealedCID"),
            PieceInfo.from_cbor(piece, f"{what}.Piece"),
            expect_bytes(proof, f"{what}.Proof", max_len=MAX_PROOF_BYTES),
        )


class ConsensusFaultType(IntEnum):
    """go-state-types runtime.ConsensusFaultType."""

    DoubleForkMining = 1
    ParentGrinding = 2
    TimeOffsetMining = 3


@dataclass(frozen=True, slots=True)
class ConsensusFault:
    target: Address  # the miner at fault
    epoch: int  # the epoch of the later of the offending blocks
    fault_type: ConsensusFaultType
