"""The storage deal protocols' wire types, map-encoded as cbor-gen writes them.

- `/fil/storage/ask/1.1.0` (go-fil-markets, served by Boost too): `AskRequest{Miner}` ->
  `AskResponse{Ask: SignedStorageAsk{Ask: StorageAsk{Price, VerifiedPrice, MinPieceSize, MaxPieceSize,
  Miner, Timestamp, Expiry, SeqNo}, Signature}}`; the signature is the miner's worker key over the
  StorageAsk's CBOR.
- `/fil/storage/mk/1.2.0` (Boost): `DealParams{DealUUID, IsOffline, ClientDealProposal, DealDataRoot,
  Transfer{Type, ClientID, Params, Size}}` -> `DealResponse{Accepted, Message}`. For an HTTP transfer
  `Params` is the JSON `{"URL": ..., "Headers": {...}}` (Boost's transport HttpRequest).
- `/fil/storage/status/1.2.0` (Boost): `DealStatusRequest{DealUUID, Signature}` (the client's signature
  over the UUID's 16 bytes) -> `DealStatusResponse{DealUUID, Error, DealStatus{...}, IsOffline,
  TransferSize, NBytesReceived}`.

Boost's `DealStatus` carries the checkpoint, the sealing status, the proposal, the signed proposal's CID,
the publish message and the chain deal ID. filpy adds four fields so that the client can check the
deal itself: `State` (the go-fil-markets status number), `SectorNumber` (null until the piece is in a
sector), `PieceOffset` and `InclusionProof` (proofs.pip bytes, empty until the sector is packed).
cbor-gen's decoders skip keys they do not know, so Boost clients read these responses; filpy's strict
decoder would refuse a Boost provider's (it lacks them).

A deal UUID is Go's uuid.UUID: 16 bytes in CBOR.
"""

import json
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Final

from libp2p.custom_types import TProtocol

from actors.market.types import ClientDealProposal, DealProposal
from chain.crypto.signature import Signature
from chain.encoding.cid import CID, DAG_CBOR
from chain.encoding.errors import DecodeError
from chain.encoding.multihash import SHA2_256
from chain.encoding.schema import (
    Bytes,
    BytesKind,
    BytesMax,
    CborMap,
    ChainEpoch,
    Name,
    TokenAmount,
    Uint64,
)
from chain.types.address import Address
from node.markets.exchange import CborExchange

ASK_PROTOCOL: Final = TProtocol("/fil/storage/ask/1.1.0")
DEAL_PROTOCOL: Final = TProtocol("/fil/storage/mk/1.2.0")
STATUS_PROTOCOL: Final = TProtocol("/fil/storage/status/1.2.0")

TRANSFER_HTTP: Final = "http"
# Lotus's DataRef.TransferType for offline deals (storagemarket.TTManual).
TRANSFER_MANUAL: Final = "manual"
GIB: Final = 1 << 30
# Largest proof filpy sends: a piece's path up to a 64 GiB sector (32 bytes a level, 16 bytes of header).
MAX_INCLUSION_PROOF: Final = 16 + 32 * 40

DealUUID = Annotated[bytes, BytesKind(length=16), Name("DealUUID")]


class StorageAsk(CborMap, kw_only=True):
    """go-fil-markets storagemarket.StorageAsk: Price and VerifiedPrice are attoFIL per GiB per epoch."""

    price: TokenAmount
    verified_price: TokenAmount
    min_piece_size: Uint64
    max_piece_size: Uint64
    miner: Address
    timestamp: ChainEpoch
    expiry: ChainEpoch
    seq_no: Uint64

    def min_price(self, piece_size: int, verified: bool = False) -> int:
        """The least price per epoch the ask takes for a piece (Boost: ask price x size / GiB)."""
        return (self.verified_price if verified else self.price) * piece_size // GIB


class SignedStorageAsk(CborMap):
    ask: StorageAsk | None
    signature: Signature | None


class AskRequest(CborMap):
    miner: Address


class AskResponse(CborMap):
    ask: SignedStorageAsk | None


class Transfer(CborMap, kw_only=True):
    """How the provider gets the deal's data: Type "http" with Params the JSON of HttpRequest; all
    zero for an offline deal."""

    type: str = ""
    client_id: Annotated[str, Name("ClientID")] = ""
    params: Bytes = b""
    size: Uint64 = 0


class DealParams(CborMap, kw_only=True):
    """Boost's DealParamsV120 (`/fil/storage/mk/1.2.0`)."""

    deal_uuid: DealUUID
    is_offline: bool
    client_deal_proposal: ClientDealProposal
    deal_data_root: CID
    transfer: Transfer

    @property
    def uuid(self) -> uuid.UUID:
        return uuid.UUID(bytes=self.deal_uuid)


class DealResponse(CborMap):
    accepted: bool
    message: str = ""  # why the proposal was rejected; empty when accepted


class DealStatusRequest(CborMap):
    deal_uuid: DealUUID
    signature: Signature


class DealStatus(CborMap, kw_only=True):
    """Boost's DealStatus, plus filpy's State, SectorNumber, PieceOffset and InclusionProof."""

    error: str = ""
    status: str  # Boost's checkpoint: Accepted, Transferred, Published, AddedPiece, Complete
    sealing_status: str = ""
    proposal: DealProposal
    signed_proposal_cid: CID
    publish_cid: CID | None = None
    chain_deal_id: Annotated[Uint64, Name("ChainDealID")] = 0
    state: Uint64  # a StorageDealStatus; any number decodes, as go-fil-markets reads statuses
    sector_number: Uint64 | None = None
    piece_offset: Uint64 | None = None
    inclusion_proof: Annotated[bytes, BytesMax(MAX_INCLUSION_PROOF)] = b""


class DealStatusResponse(CborMap, kw_only=True):
    deal_uuid: DealUUID
    error: str = ""  # why the status cannot be given (unknown deal, bad signature)
    deal_status: DealStatus | None = None
    is_offline: bool = False
    transfer_size: Uint64 = 0
    n_bytes_received: Annotated[Uint64, Name("NBytesReceived")] = 0


def signed_proposal_cid(deal: ClientDealProposal) -> CID:
    """The proposal CID Lotus and Boost name a deal by: dag-cbor, sha2-256 (go-cbor-util's AsIpld)."""
    return CID.hash_of(deal.to_bytes(), DAG_CBOR, SHA2_256)


# Each protocol declared once for the client's and the provider's side (sizes: most a message may take).
ASK: Final = CborExchange(ASK_PROTOCOL, AskRequest.from_cbor, AskResponse.from_cbor, 1 << 10, 4 << 10)
DEAL: Final = CborExchange(DEAL_PROTOCOL, DealParams.from_cbor, DealResponse.from_cbor, 64 << 10, 64 << 10)
STATUS: Final = CborExchange(
    STATUS_PROTOCOL, DealStatusRequest.from_cbor, DealStatusResponse.from_cbor, 1 << 10, 64 << 10
)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """Boost's transport HttpRequest, the JSON in Transfer.Params of an "http" transfer:
    `{"URL": "...", "Headers": {"Authorization": "..."}}`. Written by hand: its Headers are a JSON
    object of names to values, which declared types do not express."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return json.dumps({"URL": self.url, "Headers": self.headers}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "HttpRequest":
        try:
            raw: Any = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DecodeError(f"Transfer.Params: not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise DecodeError("Transfer.Params: expected a JSON object {URL, Headers}")
        url = raw.get("URL")
        headers = raw.get("Headers") or {}
        if not isinstance(url, str) or not url:
            raise DecodeError("Transfer.Params.URL: expected a URL")
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise DecodeError("Transfer.Params.Headers: expected an object of header names to values")
        return cls(url, dict(headers))
