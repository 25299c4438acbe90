"""Sector and proof descriptions passed between actors and the VM's proof syscalls.

Shapes follow go-state-types (abi.SectorID, abi.PieceInfo, proof.SealVerifyInfo,
proof.WindowPoStVerifyInfo, runtime.ConsensusFault); proofs are filpy's vanilla proofs as bytes.
"""

from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated, Any, Final

from chain.encoding.cid import CID
from chain.encoding.expect import expect_list, expect_uint
from chain.encoding.schema import Bytes32, BytesKind, CborTuple, Int64, MaxLen, Name, Uint64
from chain.types.address import Address
from chain.types.block import PoStProof

# Vanilla proofs are far larger than SNARKs; bound them so a message cannot carry an unbounded blob.
MAX_PROOF_BYTES: Final = 16 << 20
MAX_DEALS_PER_SECTOR: Final = 256
Proof = Annotated[bytes, BytesKind(max_len=MAX_PROOF_BYTES)]
DealIDs = Annotated[tuple[Uint64, ...], MaxLen(MAX_DEALS_PER_SECTOR), Name("DealIDs")]


def expect_deal_ids(raw: Any, what: str, max_len: int = MAX_DEALS_PER_SECTOR) -> tuple[int, ...]:
    """A list of deal IDs (uint64), at most max_len of them."""
    return tuple(expect_uint(d, what) for d in expect_list(raw, what, max_len))


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
