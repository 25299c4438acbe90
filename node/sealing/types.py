"""What the sealing pipeline keeps per sector, and the shapes it answers with.

`SectorRecord` is the durable state of one sector (Lotus storage/pipeline SectorInfo, stored as CBOR
in LevelDB by node/sealing/store.py); `SectorStatus`, `SealingJob` and `PieceLocation` are the JSON
shapes of Lotus's SectorsStatus, WorkerJobs and SectorAddPieceToAny answers (api/api_storage.go,
storiface.WorkerJob), declared once here for the RPC methods to use.
"""

from typing import Annotated, Final

from actors.abi import RegisteredSealProof
from actors.market.types import DealProposal
from chain.encoding.cid import CID
from chain.encoding.schema import (
    BytesMax,
    CborMap,
    ChainEpoch,
    Int64,
    LotusJson,
    MaxLen,
    Name,
    TokenAmount,
    Uint64,
)
from chain.types.sector import MAX_DEALS_PER_SECTOR, PieceInfo

# The sector log keeps the most recent events only (Lotus trims its log the same way).
LOG_LIMIT: Final = 64
# A vanilla seal proof is at most 60 KiB (docs/proofs.md); leave room.
MAX_PROOF_BYTES: Final = 1 << 20
RANDOMNESS_BYTES: Final = 32


class DealSchedule(CborMap):
    """When a deal's data must be proven on chain (StartEpoch) and when the deal ends."""

    start_epoch: ChainEpoch
    end_epoch: ChainEpoch


class PieceDealInfo(CborMap):
    """The deal a piece belongs to (Lotus piece.PieceDealInfo, builtin-market deals only): the deals code
    hands it over with the piece once the deal is published."""

    publish_cid: Annotated[CID | None, Name("PublishCid")]
    deal_id: Annotated[Uint64, Name("DealID")]
    deal_proposal: DealProposal | None
    deal_schedule: DealSchedule
    keep_unsealed: bool = True


class SectorPiece(CborMap):
    """A deal piece of a sector (Lotus api.SectorPiece) and, once the sector is packed, the proof that it
    sits in the sector's CommD (proofs.pip bytes: the deal's PIP)."""

    piece: PieceInfo
    deal_info: PieceDealInfo | None
    inclusion_proof: Annotated[bytes, BytesMax(4096)] = b""


class SealTicket(CborMap):
    value: Annotated[bytes, BytesMax(RANDOMNESS_BYTES)] = b""
    epoch: ChainEpoch = 0


class SealSeed(CborMap):
    value: Annotated[bytes, BytesMax(RANDOMNESS_BYTES)] = b""
    epoch: ChainEpoch = 0


class SectorLog(CborMap):
    """One event of a sector's life (Lotus api.SectorLog): Kind is `event;<State>` for a transition and
    `error;<State>` for a failure; Timestamp is Unix seconds."""

    kind: str
    timestamp: Uint64
    trace: str
    message: str


class SectorRecord(CborMap, kw_only=True):
    """The durable state of one sector. Every transition writes the whole record in one LevelDB batch."""

    sector_number: Uint64
    state: str
    seal_proof: RegisteredSealProof
    created: Int64  # Unix seconds: when the sector was opened
    pieces: Annotated[tuple[SectorPiece, ...], MaxLen(MAX_DEALS_PER_SECTOR)] = ()
    ticket: SealTicket = SealTicket()
    seed: SealSeed = SealSeed()
    comm_d: Annotated[CID | None, Name("CommD")] = None
    comm_r: Annotated[CID | None, Name("CommR")] = None
    pre_commit_message: CID | None = None
    pre_commit_deposit: TokenAmount = 0
    pre_commit_epoch: ChainEpoch = -1  # the epoch the chain recorded the pre-commit at (-1: not yet)
    expiration: ChainEpoch = 0
    commit_message: CID | None = None
    message_epoch: ChainEpoch = -1  # the head's height when the current message was sent (or adopted)
    proof: Annotated[bytes, BytesMax(MAX_PROOF_BYTES)] = b""
    retries: Uint64 = 0  # failures in a row
    failed_in: str = ""  # the state the last failure happened in
    last_error: str = ""
    retry_at: Int64 = 0  # Unix milliseconds before which a failure state waits (0: now)
    log: Annotated[tuple[SectorLog, ...], MaxLen(LOG_LIMIT)] = ()

    @property
    def deal_ids(self) -> tuple[int, ...]:
        return tuple(p.deal_info.deal_id for p in self.pieces if p.deal_info is not None)

    @property
    def has_data(self) -> bool:
        return bool(self.pieces)


class WatchedSector(CborMap):
    """A sector of the miner found faulty on chain, remembered (in the sealing store) until it recovers,
    expires or is terminated, with what a replacement needs once the chain no longer has its info."""

    sector_number: Uint64
    expiration: ChainEpoch  # on chain: gone before it, the sector was terminated early
    deal_ids: Annotated[tuple[Uint64, ...], Name("DealIDs")] = ()
    faulty_since: ChainEpoch = -1  # the head's height when it was first seen faulty


class ReplacedSector(CborMap):
    """A sector terminated for faults (faulty past the fault max age) and the CC sector sealed in its
    place."""

    sector_number: Uint64
    replacement: Uint64
    terminated_by: ChainEpoch  # the head's height when it was found terminated
    deal_ids: Annotated[tuple[Uint64, ...], Name("DealIDs")] = ()  # slashed by the market with it


# -- answers --------------------------------------------------------------------------------------------


class PieceLocation(LotusJson):
    """Where add_piece put a piece (Lotus api.SectorOffset): sector number and padded byte offset."""

    sector: Uint64
    offset: Uint64
    size: Uint64  # padded piece size


class SectorStatus(LotusJson, kw_only=True):
    """Lotus api.SectorInfo: `filpy miner sectors status N` (SectorsStatus). The on-chain part
    (Activation..Early) is filled when asked for and the chain has the sector, zero otherwise."""

    sector_id: Annotated[Uint64, Name("SectorID")]
    state: str
    comm_d: Annotated[CID | None, Name("CommD")]
    comm_r: Annotated[CID | None, Name("CommR")]
    proof: bytes
    deals: tuple[Uint64, ...]
    pieces: tuple[SectorPiece, ...]
    ticket: SealTicket
    seed: SealSeed
    pre_commit_msg: CID | None
    commit_msg: CID | None
    retries: Uint64
    to_upgrade: bool = False
    last_err: str
    log: tuple[SectorLog, ...]
    seal_proof: RegisteredSealProof
    activation: ChainEpoch = 0
    expiration: ChainEpoch = 0
    deal_weight: TokenAmount = 0
    verified_deal_weight: TokenAmount = 0
    initial_pledge: TokenAmount = 0
    on_time: ChainEpoch = 0
    early: ChainEpoch = 0


class JobSector(LotusJson):
    """abi.SectorID."""

    miner: Uint64
    number: Uint64


class SealingJob(LotusJson, kw_only=True):
    """A job running (RunWait 0) or waiting for a slot (RunWait 1) now (Lotus storiface.WorkerJob, with
    filpy's progress): Done of Total units of Phase are finished (bytes for AddPiece, steps otherwise)."""

    id: Annotated[str, Name("ID")]
    sector: JobSector
    task: str  # Lotus's task type, e.g. "seal/v0/precommit/1"
    run_wait: Int64
    start: str  # RFC 3339, UTC
    hostname: str = ""
    phase: str = ""
    done: Uint64 = 0
    total: Uint64 = 0
