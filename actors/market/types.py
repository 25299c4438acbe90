"""The market actor's methods and data: deal proposals and states, params and returns (builtin-actors
v9).

Every struct is a CBOR array in field order. DealProposal is signed by the client over exactly this
encoding (Lotus's cbor-gen output), so its field order and kinds are part of the protocol: Label is a
text string or a byte string (v9's DealLabel union); token amounts are big integers as bytes.

This module is a leaf: the miner actor imports the params it sends to the market from here.
"""

from enum import IntEnum
from typing import Annotated, Any, Final

from actors.abi import RegisteredSealProof
from chain.crypto.signature import Signature
from chain.encoding.cid import CID, DAG_CBOR
from chain.encoding.errors import DecodeError
from chain.encoding.multihash import BLAKE2B_256, Multihash
from chain.encoding.schema import (
    MAX_BYTES_LENGTH,
    BigInt,
    CborTuple,
    ChainEpoch,
    Kind,
    MaxLen,
    Name,
    TokenAmount,
    Uint64,
    kind_name,
)
from chain.types.address import Address
from chain.types.bitfield import BitField

NO_ALLOCATION_ID: Final = 0

# Bound on list lengths in params (cbor-gen's MaxLength); a message is far smaller than this allows.
MAX_DEAL_IDS: Final = 8192
DealIDs = Annotated[tuple[Uint64, ...], MaxLen(MAX_DEAL_IDS), Name("DealIDs")]


class MarketMethod(IntEnum):
    Constructor = 1
    AddBalance = 2
    WithdrawBalance = 3
    PublishStorageDeals = 4
    VerifyDealsForActivation = 5
    ActivateDeals = 6
    OnMinerSectorsTerminate = 7
    ComputeDataCommitment = 8
    CronTick = 9


class DealLabelKind(Kind):
    """v9's DealLabel: a text string or a byte string in CBOR (cbor-gen's 2 MiB cap; the actor's own
    limit is far lower). Lotus JSON writes the text, and "" for a byte label (go-state-types
    DealLabel.MarshalJSON), and reads a string."""

    def decode(self, raw: Any, what: str) -> str | bytes:
        if type(raw) is not str and type(raw) is not bytes:
            raise DecodeError(f"{what}: expected a text or byte string, got {kind_name(raw)}")
        if len(raw) > MAX_BYTES_LENGTH:
            raise DecodeError(f"{what}: label of {len(raw)} exceeds {MAX_BYTES_LENGTH}")
        return raw

    def to_json(self, value: Any, network: str) -> str:
        return value if isinstance(value, str) else ""

    def from_json(self, raw: Any, what: str) -> str:
        if type(raw) is not str:
            raise DecodeError(f"{what}: expected a string, got {kind_name(raw)}")
        return raw

    def check(self, value: Any, what: str) -> Any:
        if type(value) is not str and type(value) is not bytes:
            raise TypeError(f"{what}: expected str or bytes, got {kind_name(value)}")
        if len(value) > MAX_BYTES_LENGTH:
            raise ValueError(f"{what}: label of {len(value)} exceeds {MAX_BYTES_LENGTH}")
        return value


Label = Annotated[str | bytes, DealLabelKind()]


class DealProposal(CborTuple):
    piece_cid: Annotated[CID, Name("PieceCID")]
    piece_size: Uint64  # padded
    verified_deal: bool
    client: Address
    provider: Address
    label: Label
    start_epoch: ChainEpoch
    end_epoch: ChainEpoch
    storage_price_per_epoch: TokenAmount
    provider_collateral: TokenAmount
    client_collateral: TokenAmount

    @property
    def duration(self) -> int:
        return self.end_epoch - self.start_epoch

    @property
    def total_storage_fee(self) -> int:
        return self.storage_price_per_epoch * self.duration

    @property
    def client_balance_requirement(self) -> int:
        return self.client_collateral + self.total_storage_fee

    def signing_bytes(self) -> bytes:
        """What the client signs: the proposal's CBOR. Its CID (cid()) keys the pending proposals."""
        return self.to_bytes()


def deal_cid_from_digest(digest: bytes) -> CID:
    """A proposal CID from the blake2b-256 of its CBOR (the actor hashes through rt.hash_blake2b)."""
    return CID.v1(DAG_CBOR, Multihash(BLAKE2B_256, digest))


class ClientDealProposal(CborTuple):
    proposal: DealProposal
    client_signature: Signature


class DealState(CborTuple):
    sector_start_epoch: ChainEpoch  # -1 until the deal is in a proven sector
    last_updated_epoch: ChainEpoch  # -1 until the first cron payment
    slash_epoch: ChainEpoch  # -1 unless the deal's sector was terminated
    verified_claim: Uint64 = NO_ALLOCATION_ID


# -- params and returns ------------------------------------------------------------------------------


class WithdrawBalanceParams(CborTuple):
    provider_or_client: Annotated[Address, Name("ProviderOrClientAddress")]
    amount: TokenAmount


class PublishStorageDealsParams(CborTuple):
    deals: tuple[ClientDealProposal, ...]


class PublishStorageDealsReturn(CborTuple):
    ids: Annotated[tuple[Uint64, ...], Name("IDs")]
    valid_deals: BitField  # indexes (in the params) of the deals that were published


class SectorDeals(CborTuple):
    sector_type: RegisteredSealProof
    sector_expiry: ChainEpoch
    deal_ids: DealIDs


class VerifyDealsForActivationParams(CborTuple):
    sectors: tuple[SectorDeals, ...]


class SectorDealData(CborTuple):
    commd: Annotated[CID | None, Name("CommD")]  # None: no deals (the sector's CommD is that of zeros)


class VerifyDealsForActivationReturn(CborTuple):
    sectors: tuple[SectorDealData, ...]


class ActivateDealsParams(CborTuple):
    deal_ids: DealIDs
    sector_expiry: ChainEpoch


class VerifiedDealInfo(CborTuple):
    client: Uint64  # actor ID
    allocation_id: Uint64
    data: CID
    size: Uint64


class ActivateDealsResult(CborTuple):
    nonverified_deal_space: Annotated[BigInt, Name("NonVerifiedDealSpace")]
    verified_infos: tuple[VerifiedDealInfo, ...] = ()


class OnMinerSectorsTerminateParams(CborTuple):
    epoch: ChainEpoch
    deal_ids: DealIDs


class SectorDataSpec(CborTuple):
    deal_ids: DealIDs
    sector_type: RegisteredSealProof


class ComputeDataCommitmentParams(CborTuple):
    inputs: tuple[SectorDataSpec, ...]


class ComputeDataCommitmentReturn(CborTuple):
    commds: Annotated[tuple[CID, ...], Name("CommDs")]
