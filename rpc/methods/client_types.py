"""The shapes of the Client* methods as Lotus v1.26 wrote them (api/api_full.go, go-fil-markets
storagemarket types), and of filpy's provider-side deal methods.

Lotus removed the Client* API in 1.27.1; scripts written for it send and read these shapes, so the field
names, kinds and defaults are theirs: DataRef.PieceSize is an *unpadded* size, StartDealParams'
FastRetrieval defaults to true when absent, DealInfo.Size is the unpadded piece size, DealInfo.State is
the go-fil-markets status number (ClientGetDealStatus names it), and the data-transfer fields Lotus
filled from go-data-transfer are null (filpy's providers pull over HTTP). `AddFunds` is filpy's: Lotus
topped the escrow up on its own; filpy does it only when asked.
"""

from datetime import UTC, datetime
from typing import Annotated

from chain.encoding.cid import CID
from chain.encoding.schema import BigInt, ChainEpoch, Int64, LotusJson, Name, Uint64
from chain.types.address import Address
from node.markets.storage_types import StorageAsk
from rpc.jsontypes import GoTime, JsonValue, array_kind


class FileRef(LotusJson):
    path: str
    is_car: Annotated[bool, Name("IsCAR")] = False


class ImportRes(LotusJson):
    root: CID
    import_id: Annotated[Uint64, Name("ImportID")]


class DataRef(LotusJson, kw_only=True):
    """go-fil-markets storagemarket.DataRef: PieceSize is unpadded (0: from the import)."""

    transfer_type: str = "graphsync"
    root: CID
    piece_cid: Annotated[CID | None, Name("PieceCid")] = None
    piece_size: Uint64 = 0
    raw_block_size: Uint64 = 0


class StartDealParams(LotusJson, kw_only=True):
    data: DataRef
    wallet: Address
    miner: Address
    epoch_price: BigInt
    min_blocks_duration: Uint64
    provider_collateral: BigInt = 0
    deal_start_epoch: ChainEpoch = 0
    fast_retrieval: bool = True
    verified_deal: bool = False
    add_funds: bool = False  # filpy: add what the market escrow lacks (MarketAddBalance) instead of refusing


class DealLog(LotusJson):
    log: str
    updated_time: GoTime


class DealStage(LotusJson, kw_only=True):
    name: str
    description: str
    expected_duration: str
    created_time: GoTime
    updated_time: GoTime
    logs: tuple[DealLog, ...] = ()


class DealStages(LotusJson):
    stages: tuple[DealStage, ...] = ()


class DealInfo(LotusJson, kw_only=True):
    """lotus api.DealInfo."""

    proposal_cid: CID
    state: Uint64
    message: str
    deal_stages: DealStages | None
    provider: Address
    data_ref: Annotated[DataRef | None, Name("DataRef")]
    piece_cid: Annotated[CID, Name("PieceCID")]
    size: Uint64
    price_per_epoch: BigInt
    duration: Uint64
    deal_id: Annotated[Uint64, Name("DealID")]
    creation_time: GoTime
    verified: bool
    transfer_channel_id: Annotated[JsonValue, Name("TransferChannelID")] = None
    data_transfer: JsonValue = None


class DealInclusionProof(LotusJson, kw_only=True):
    """filpy's `Filpy.ClientDealInclusionProof`: what a client needs to check a deal's piece inclusion
    proof (proofs/pip.py) itself: the provider's proof, where the piece sits, and the sector's CommD as
    the chain has it (null while the sector is not on chain with the deal)."""

    proposal_cid: CID
    miner: Address
    deal_id: Annotated[Uint64 | None, Name("DealID")]
    sector_number: Uint64 | None
    sector_size: Uint64
    piece_cid: Annotated[CID, Name("PieceCID")]
    piece_size: Uint64  # padded
    offset: Uint64 | None  # the piece's padded offset in the sector
    proof: bytes  # the provider's inclusion proof (proofs.pip bytes), empty until the sector is packed
    comm_d: Annotated[CID | None, Name("CommD")]
    verified: bool  # the client node's own check of proof against CommD
    message: str  # why it is not verified (yet); empty when it is


class StorageAskResponse(LotusJson):
    """lotus api.StorageAsk (ClientQueryAsk on /rpc/v1): the ask and the deal protocols the peer speaks."""

    response: StorageAsk | None
    deal_protocols: Annotated[tuple[str, ...], array_kind(str)] = ()


class ImportInfo(LotusJson, kw_only=True):
    """lotus api.Import (ClientListImports)."""

    key: Uint64
    err: str = ""
    root: CID | None
    source: str
    file_path: str
    car_path: Annotated[str, Name("CARPath")]


class DataSize(LotusJson):
    payload_size: Int64
    piece_size: Uint64


class CommPRet(LotusJson):
    root: CID
    size: Uint64


class RetrievalRes(LotusJson):
    """lotus api.RestrievalRes (sic)."""

    deal_id: Annotated[Uint64, Name("DealID")]


class ExportRef(LotusJson, kw_only=True):
    root: CID
    dags: JsonValue = None  # DAG selections: filpy exports whole DAGs
    from_local_car: Annotated[str, Name("FromLocalCAR")] = ""
    deal_id: Annotated[Uint64, Name("DealID")] = 0


class ProviderDealInfo(LotusJson, kw_only=True):
    """A deal as the provider sees it (filpy's `Filpy.StorageDeals*`; Boost's deal view)."""

    deal_uuid: Annotated[str, Name("DealUuid")]
    created_at: GoTime
    state: str
    message: str
    client: Address
    client_peer_id: Annotated[str, Name("ClientPeerID")]
    signed_proposal_cid: CID
    piece_cid: Annotated[CID, Name("PieceCid")]
    piece_size: Uint64
    start_epoch: ChainEpoch
    end_epoch: ChainEpoch
    price_per_epoch: BigInt
    provider_collateral: BigInt
    is_offline: bool
    transfer_type: str
    transfer_size: Uint64
    bytes_received: Uint64
    publish_cid: CID | None
    chain_deal_id: Annotated[Int64, Name("ChainDealID")]  # -1 until published
    sector_number: Int64  # -1 until the piece is in a sector
    sealing_status: str


def creation_time(ms: int) -> datetime:
    """A record's Unix milliseconds as the API's time."""
    return datetime.fromtimestamp(ms / 1000, UTC)
