"""Filecoin's registered proof numbers and the one table of parameters we seal and prove with.

The numbers are those of go-state-types `abi/sector.go` (and builtin-actors' fvm_shared), so a proof
type read off the chain means the same thing here. Only the V1_1 stacked-DRG seal proofs of the sizes
we support have parameters; every other registered number is known by name but rejected with
`UnsupportedProof`. Where our parameters leave Filecoin's (challenge counts of vanilla proofs), the
reason is in docs/proofs.md.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import TypeVar

NODE_SIZE = 32
# Sector numbers are below 2^63 (go-state-types abi.MaxSectorNumber); the actors share this bound.
MAX_SECTOR_NUMBER = (1 << 63) - 1


class RegisteredSealProof(IntEnum):
    STACKED_DRG_2KIB_V1 = 0
    STACKED_DRG_8MIB_V1 = 1
    STACKED_DRG_512MIB_V1 = 2
    STACKED_DRG_32GIB_V1 = 3
    STACKED_DRG_64GIB_V1 = 4
    STACKED_DRG_2KIB_V1_1 = 5
    STACKED_DRG_8MIB_V1_1 = 6
    STACKED_DRG_512MIB_V1_1 = 7
    STACKED_DRG_32GIB_V1_1 = 8
    STACKED_DRG_64GIB_V1_1 = 9
    STACKED_DRG_2KIB_V1_1_FEAT_SYNTHETIC_POREP = 10
    STACKED_DRG_8MIB_V1_1_FEAT_SYNTHETIC_POREP = 11
    STACKED_DRG_512MIB_V1_1_FEAT_SYNTHETIC_POREP = 12
    STACKED_DRG_32GIB_V1_1_FEAT_SYNTHETIC_POREP = 13
    STACKED_DRG_64GIB_V1_1_FEAT_SYNTHETIC_POREP = 14
    STACKED_DRG_2KIB_V1_2_FEAT_NI_POREP = 15
    STACKED_DRG_8MIB_V1_2_FEAT_NI_POREP = 16
    STACKED_DRG_512MIB_V1_2_FEAT_NI_POREP = 17
    STACKED_DRG_32GIB_V1_2_FEAT_NI_POREP = 18
    STACKED_DRG_64GIB_V1_2_FEAT_NI_POREP = 19


class RegisteredPoStProof(IntEnum):
    STACKED_DRG_WINNING_2KIB_V1 = 0
    STACKED_DRG_WINNING_8MIB_V1 = 1
    STACKED_DRG_WINNING_512MIB_V1 = 2
    STACKED_DRG_WINNING_32GIB_V1 = 3
    STACKED_DRG_WINNING_64GIB_V1 = 4
    STACKED_DRG_WINDOW_2KIB_V1 = 5
    STACKED_DRG_WINDOW_8MIB_V1 = 6
    STACKED_DRG_WINDOW_512MIB_V1 = 7
    STACKED_DRG_WINDOW_32GIB_V1 = 8
    STACKED_DRG_WINDOW_64GIB_V1 = 9
    STACKED_DRG_WINDOW_2KIB_V1_1 = 10
    STACKED_DRG_WINDOW_8MIB_V1_1 = 11
    STACKED_DRG_WINDOW_512MIB_V1_1 = 12
    STACKED_DRG_WINDOW_32GIB_V1_1 = 13
    STACKED_DRG_WINDOW_64GIB_V1_1 = 14


class PoStKind(Enum):
    WINNING = "winning"
    WINDOW = "window"


class UnsupportedProof(ValueError):
    """A registered proof number we have no parameters for (unknown, or a size/version not sealed here)."""


class _SectorTree:
    """The nodes of a sector of `sector_size` bytes and the depth of a binary tree over them."""

    __slots__ = ()
    sector_size: int

    @property
    def nodes(self) -> int:
        return self.sector_size // NODE_SIZE

    @property
    def tree_depth(self) -> int:
        """Sibling-path length of a binary tree over the sector's nodes."""
        return self.nodes.bit_length() - 1


@dataclass(frozen=True, slots=True)
class SealParams(_SectorTree):
    """How a sector of one registered seal proof is replicated and how its PoRep is challenged."""

    proof: RegisteredSealProof
    sector_size: int
    layers: int
    challenges: int
    winning_post: RegisteredPoStProof
    window_post: RegisteredPoStProof

    @property
    def porep_id(self) -> bytes:
        return porep_id(self.proof)


@dataclass(frozen=True, slots=True)
class PoStParams(_SectorTree):
    """How many sectors one proof (Winning) or one partition (Window) covers and how many leaves of each."""

    proof: RegisteredPoStProof
    kind: PoStKind
    sector_size: int
    challenges: int
    sectors: int


_KIB, _MIB = 1 << 10, 1 << 20

# Layers and PoSt counts are Filecoin's (rust-fil-proofs filecoin-proofs/src/constants.rs: 2 layers below
# 32 GiB, Winning PoSt 66 leaves of 1 sector, Window PoSt 10 leaves per sector and 2 sectors per
# partition). Seal challenges are ours (Filecoin's SNARK needs only 2 here, its soundness coming from the
# circuit): each challenge catches a wrongly labelled node with the probability that it lands on one,
# so a prover whose labels are wrong at a fraction f of the nodes passes c challenges with probability
# (1-f)^c (proofs/soundness.py, docs/proofs.md "Soundness"). The count is the fewest that takes a prover
# missing SEAL_TARGET_MISSING of its replica below SEAL_TARGET_PASS: 66, as (0.9)^66 = 9.6e-4.
SEAL_TARGET_MISSING = 0.10
SEAL_TARGET_PASS = 1e-3
SEAL_CHALLENGES = math.ceil(math.log(SEAL_TARGET_PASS) / math.log(1 - SEAL_TARGET_MISSING))


def _stacked_drg_v1_1(size: str, sector_size: int) -> SealParams:
    """The V1_1 stacked-DRG seal proof of a size below 32 GiB (2 layers, SEAL_CHALLENGES) and the
    Winning and Window PoSt proofs named for the same size."""
    return SealParams(
        RegisteredSealProof[f"STACKED_DRG_{size}_V1_1"],
        sector_size,
        layers=2,
        challenges=SEAL_CHALLENGES,
        winning_post=RegisteredPoStProof[f"STACKED_DRG_WINNING_{size}_V1"],
        window_post=RegisteredPoStProof[f"STACKED_DRG_WINDOW_{size}_V1_1"],
    )


_SEAL = (
    _stacked_drg_v1_1("2KIB", 2 * _KIB),
    _stacked_drg_v1_1("8MIB", 8 * _MIB),
    _stacked_drg_v1_1("512MIB", 512 * _MIB),
)

WINNING_POST_CHALLENGES = 66
WINNING_POST_SECTORS = 1
WINDOW_POST_CHALLENGES = 10
WINDOW_POST_PARTITION_SECTORS = 2

SEAL_PARAMS: dict[int, SealParams] = {p.proof: p for p in _SEAL}
POST_PARAMS: dict[int, PoStParams] = {}
for _p in _SEAL:
    POST_PARAMS[_p.winning_post] = PoStParams(
        _p.winning_post, PoStKind.WINNING, _p.sector_size, WINNING_POST_CHALLENGES, WINNING_POST_SECTORS
    )
    POST_PARAMS[_p.window_post] = PoStParams(
        _p.window_post,
        PoStKind.WINDOW,
        _p.sector_size,
        WINDOW_POST_CHALLENGES,
        WINDOW_POST_PARTITION_SECTORS,
    )
del _p


P = TypeVar("P")


def _describe(kind: type[IntEnum], number: int) -> str:
    member = kind._value2member_map_.get(number)
    return f"{number} ({member.name})" if isinstance(member, IntEnum) else str(number)


def seal_params(proof: int) -> SealParams:
    """The parameters of a registered seal proof number; UnsupportedProof when we do not seal it."""
    return _params_of(SEAL_PARAMS, RegisteredSealProof, "seal", proof)


def post_params(proof: int) -> PoStParams:
    """The parameters of a registered PoSt proof number; UnsupportedProof when we do not prove it."""
    return _params_of(POST_PARAMS, RegisteredPoStProof, "PoSt", proof)


def _params_of(table: Mapping[int, P], kind: type[IntEnum], what: str, proof: int) -> P:
    if isinstance(proof, bool) or not isinstance(proof, int):
        raise UnsupportedProof(f"a registered {what} proof is an integer, got {type(proof).__name__}")
    params = table.get(proof)
    if params is None:
        raise UnsupportedProof(f"registered {what} proof {_describe(kind, proof)} is not supported")
    return params


def porep_id(proof: int) -> bytes:
    """Filecoin's 32-byte PoRep ID: the proof number and a zero nonce as u64 little-endian, zero-padded.

    Any registered seal proof number has one (go-state-types `PoRepID`), supported or not; it seeds the
    graph and enters every replica ID.
    """
    if proof not in RegisteredSealProof._value2member_map_ or proof >= 15:
        raise UnsupportedProof(f"registered seal proof {proof} has no PoRep ID")
    return int(proof).to_bytes(8, "little") + bytes(8) + bytes(16)


def make_prover_id(actor_id: int) -> bytes:
    """The 32-byte prover ID of a miner: its ID address payload (uvarint of the actor ID), zero-padded."""
    if isinstance(actor_id, bool) or not isinstance(actor_id, int) or not 0 <= actor_id < 1 << 63:
        raise ValueError(f"a miner actor ID is an integer in [0, 2^63), got {actor_id!r}")
    out = bytearray()
    value = actor_id
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            break
    return bytes(out) + bytes(32 - len(out))
