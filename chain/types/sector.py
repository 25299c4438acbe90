"""Sector and proof descriptions passed between actors and the VM's proof syscalls.

Shapes follow go-state-types (abi.SectorID, abi.PieceInfo, proof.SealVerifyInfo,
proof.WindowPoStVerifyInfo, runtime.ConsensusFault); proofs are filpy's vanilla proofs as bytes.
"""

from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated, Final

from chain.encoding.cid import CID, FIL_COMMITMENT_SEALED, FIL_COMMITMENT_UNSEALED
from chain.encoding.multihash import SHA2_256_TRUNC254_PADDED
from chain.encoding.schema import Bytes32, BytesKind, CborTuple, Int64, MaxLen, Name, Uint64
from chain.types.address import Address
from chain.types.block import PoStProof

# Vanilla proofs are far larger than SNARKs; bound them so a message cannot carry an unbounded blob.
MAX_PROOF_BYTES: Final = 16 << 20
MAX_DEALS_PER_SECTOR: Final = 256
Proof = Annotated[bytes, BytesKind(max_len=MAX_PROOF_BYTES)]
DealIDs = Annotated[tuple[Uint64, ...], MaxLen(MAX_DEALS_PER_SECTOR), Name("DealIDs")]
# The multihash Filecoin names sealed commitments (CommR) with.
POSEIDON_BLS12_381_A1_FC1: Final = 0xB401


def _is_commitment(cid: CID, codec: int, hash_code: int) -> bool:
    mh = cid.multihash
    return cid.version == 1 and cid.codec == codec and mh.code == hash_code and len(mh.digest) == 32


def is_sealed_cid(cid: CID) -> bool:
    """A sealed sector commitment (CommR): v1, fil-commitment-sealed, poseidon-bls12_381-a1-fc1."""
    return _is_commitment(cid, FIL_COMMITMENT_SEALED, POSEIDON_BLS12_381_A1_FC1)


def is_piece_cid(cid: CID) -> bool:
    """An unsealed commitment (CommP, CommD): v1, fil-commitment-unsealed, sha2-256-trunc254-padded."""
    return _is_commitment(cid, FIL_COMMITMENT_UNSEALED, SHA2_256_TRUNC254_PADDED)


class SectorID(CborTuple):
    miner: Uint64  # actor ID of the miner
    number: Uint64


class PieceInfo(CborTuple):
    size: Uint64  # padded piece size
    piece_cid: Annotated[CID, Name("PieceCID")]


class SectorInfo(CborTuple):
    """A sector as PoSt sees it: its proof type, number and sealed commitment (CommR)."""

    seal_proof: Int64
    sector_number: Uint64
    sealed_cid: Annotated[CID, Name("SealedCID")]


class SealVerifyInfo(CborTuple):
    seal_proof: Int64
    sector_id: Annotated[SectorID, Name("SectorID")]
    deal_ids: DealIDs
    randomness: Bytes32  # the sealing ticket
    interactive_randomness: Bytes32  # the seed drawn after the pre-commit
    proof: Proof
    sealed_cid: Annotated[CID, Name("SealedCID")]
    unsealed_cid: Annotated[CID, Name("UnsealedCID")]


class WindowPoStVerifyInfo(CborTuple):
    randomness: Bytes32
    proofs: tuple[PoStProof, ...]
    challenged_sectors: tuple[SectorInfo, ...]
    prover: Uint64  # actor ID of the miner


class WinningPoStVerifyInfo(CborTuple):
    randomness: Bytes32
    proofs: tuple[PoStProof, ...]
    challenged_sectors: tuple[SectorInfo, ...]
    prover: Uint64


class PieceInclusionVerifyInfo(CborTuple):
    """A piece inclusion proof to check: `proof` (proofs.pip bytes) shows `piece` in `unsealed_cid`."""

    seal_proof: Int64
    unsealed_cid: Annotated[CID, Name("UnsealedCID")]  # the sector's CommD as a piece CID
    piece: PieceInfo
    proof: Proof


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
