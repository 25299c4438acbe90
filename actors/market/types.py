"""The market actor's data: deal proposals and states, method params and returns (builtin-actors v9).

Every struct is a CBOR array in field order. DealProposal is signed by the client over exactly this
encoding (Lotus's cbor-gen output), so its field order and kinds are part of the protocol: Label is a
text string or a byte string (v9's DealLabel union); token amounts are big integers as bytes.

This module is a leaf: the miner actor imports the params it sends to the market from here.
"""

from dataclasses import dataclass
from typing import Any, Final

from actors.miner.bitfield import BitField
from chain.crypto.signature import Signature
from chain.encoding import dagcbor
from chain.encoding.bigint import encode_bigint
from chain.encoding.cid import CID, DAG_CBOR, FIL_COMMITMENT_UNSEALED
from chain.encoding.errors import DecodeError
from chain.encoding.expect import (
    expect_bigint,
    expect_bool,
    expect_cid,
    expect_int,
    expect_list,
    expect_optional_cid,
    expect_tuple,
    expect_uint,
)
from chain.encoding.multihash import BLAKE2B_256, SHA2_256_TRUNC254_PADDED, Multihash
from chain.types.address import Address
from chain.types.sector import expect_deal_ids

EPOCH_UNDEFINED: Final = -1
NO_ALLOCATION_ID: Final = 0

# Bounds on list lengths in params; a message is far smaller than any of these allows anyway.
MAX_DEALS_PER_MESSAGE: Final = 8192
MAX_DEAL_IDS: Final = 8192
MAX_SECTORS_PER_CALL: Final = 8192
MAX_LABEL_DECODE: Final = 2 << 20  # cbor-gen's ByteArrayMaxLen; the actor's own limit is far lower

Label = str | bytes


def is_piece_cid(cid: CID) -> bool:
    """A v1 CID of an unsealed commitment: codec fil-commitment-unsealed, sha2-256-trunc254-padded."""
    mh = cid.multihash
    return (
        cid.version == 1
        and cid.codec == FIL_COMMITMENT_UNSEALED
        and mh.code == SHA2_256_TRUNC254_PADDED
        and len(mh.digest) == 32
    )


@dataclass(frozen=True, slots=True)
class DealProposal:
    piece_cid: CID
    piece_size: int  # padded
    verified_deal: bool
    client: Address
    provider: Address
    label: Label
    start_epoch: int
    end_epoch: int
    storage_price_per_epoch: int
    provider_collateral: int
    client_collateral: int

    @property
    def duration(self) -> int:
        return self.end_epoch - self.start_epoch

    @property
    def total_storage_fee(self) -> int:
        return self.storage_price_per_epoch * self.duration

    @property
    def client_balance_requirement(self) -> int:
        return self.client_collateral + self.total_storage_fee

    def to_cbor(self) -> list[Any]:
        return [
            self.piece_cid,
            self.piece_size,
            self.verified_deal,
            self.client.to_cbor(),
            self.provider.to_cbor(),
            self.label,
            self.start_epoch,
            self.end_epoch,
            encode_bigint(self.storage_price_per_epoch),
            encode_bigint(self.provider_collateral),
            encode_bigint(self.client_collateral),
        ]

    def signing_bytes(self) -> bytes:
        """What the client signs: the proposal's CBOR."""
        return dagcbor.encode(self.to_cbor())

    def cid(self) -> CID:
        """The proposal's CID (dag-cbor, blake2b-256), the key of the market's pending-proposals set."""
        return CID.hash_of(self.signing_bytes())

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "DealProposal") -> "DealProposal":
        (cid, size, verified, client, provider, label, start, end, price, pcoll, ccoll) = expect_tuple(
            raw, 11, what
        )
        if type(label) is not str and type(label) is not bytes:
            raise DecodeError(f"{what}.Label: expected a text or byte string, got {type(label).__name__}")
        if len(label) > MAX_LABEL_DECODE:
            raise DecodeError(f"{what}.Label: {len(label)} exceeds {MAX_LABEL_DECODE}")
        return cls(
            expect_cid(cid, f"{what}.PieceCID"),
            expect_uint(size, f"{what}.PieceSize"),
            expect_bool(verified, f"{what}.VerifiedDeal"),
            Address.from_cbor(client, f"{what}.Client"),
            Address.from_cbor(provider, f"{what}.Provider"),
            label,
            expect_int(start, f"{what}.StartEpoch"),
            expect_int(end, f"{what}.EndEpoch"),
            expect_bigint(price, f"{what}.StoragePricePerEpoch"),
            expect_bigint(pcoll, f"{what}.ProviderCollateral"),
            expect_bigint(ccoll, f"{what}.ClientCollateral"),
        )


def deal_cid_from_digest(digest: bytes) -> CID:
    """A proposal CID from the blake2b-256 of its CBOR (the actor hashes through rt.hash_blake2b)."""
    return CID.v1(DAG_CBOR, Multihash(BLAKE2B_256, digest))


@dataclass(frozen=True, slots=True)
class ClientDealProposal:
    proposal: DealProposal
    client_signature: Signature

    def to_cbor(self) -> list[Any]:
        return [self.proposal.to_cbor(), self.client_signature.to_cbor()]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "ClientDealProposal") -> "ClientDealProposal":
        proposal, signature = expect_tuple(raw, 2, what)
        return cls(
            DealProposal.from_cbor(proposal, f"{what}.Proposal"),
            Signature.from_cbor(signature, f"{what}.ClientSignature"),
        )


@dataclass(frozen=True, slots=True)
class DealState:
    sector_start_epoch: int  # -1 until the deal is in a proven sector
    last_updated_epoch: int  # -1 until the first cron payment
    slash_epoch: int  # -1 unless the deal's sector was terminated
    verified_claim: int = NO_ALLOCATION_ID

    def to_cbor(self) -> list[Any]:
        return [self.sector_start_epoch, self.last_updated_epoch, self.slash_epoch, self.verified_claim]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "DealState") -> "DealState":
        start, updated, slash, claim = expect_tuple(raw, 4, what)
        return cls(
            expect_int(start, f"{what}.SectorStartEpoch"),
            expect_int(updated, f"{what}.LastUpdatedEpoch"),
            expect_int(slash, f"{what}.SlashEpoch"),
            expect_uint(claim, f"{what}.VerifiedClaim"),
        )


# -- params and returns ------------------------------------------------------------------------------


def decode_add_balance_params(raw: Any) -> Address:
    """AddBalance takes the address to credit, as a bare address (not wrapped in an array)."""
    return Address.from_cbor(raw, "AddBalance.ProviderOrClient")


@dataclass(frozen=True, slots=True)
class WithdrawBalanceParams:
    provider_or_client: Address
    amount: int

    def to_cbor(self) -> list[Any]:
        return [self.provider_or_client.to_cbor(), encode_bigint(self.amount)]

    @classmethod
    def from_cbor(cls, raw: Any) -> "WithdrawBalanceParams":
        address, amount = expect_tuple(raw, 2, "WithdrawBalanceParams")
        return cls(
            Address.from_cbor(address, "WithdrawBalanceParams.ProviderOrClient"),
            expect_bigint(amount, "WithdrawBalanceParams.Amount"),
        )


@dataclass(frozen=True, slots=True)
class WithdrawBalanceReturn:
    """The amount withdrawn; a transparent wrapper, so its CBOR is the bare big integer."""

    amount_withdrawn: int

    def to_cbor(self) -> bytes:
        return encode_bigint(self.amount_withdrawn)

    @classmethod
    def from_cbor(cls, raw: Any) -> "WithdrawBalanceReturn":
        return cls(expect_bigint(raw, "WithdrawBalanceReturn"))


@dataclass(frozen=True, slots=True)
class PublishStorageDealsParams:
    deals: tuple[ClientDealProposal, ...]

    def to_cbor(self) -> list[Any]:
        return [[d.to_cbor() for d in self.deals]]

    @classmethod
    def from_cbor(cls, raw: Any) -> "PublishStorageDealsParams":
        (deals,) = expect_tuple(raw, 1, "PublishStorageDealsParams")
        return cls(
            tuple(
                ClientDealProposal.from_cbor(d, f"PublishStorageDealsParams.Deals[{i}]")
                for i, d in enumerate(
                    expect_list(deals, "PublishStorageDealsParams.Deals", MAX_DEALS_PER_MESSAGE)
                )
            )
        )


@dataclass(frozen=True, slots=True)
class PublishStorageDealsReturn:
    ids: tuple[int, ...]
    valid_deals: BitField  # indexes (in the params) of the deals that were published

    def to_cbor(self) -> list[Any]:
        return [list(self.ids), self.valid_deals.to_cbor()]

    @classmethod
    def from_cbor(cls, raw: Any) -> "PublishStorageDealsReturn":
        ids, valid = expect_tuple(raw, 2, "PublishStorageDealsReturn")
        return cls(
            expect_deal_ids(ids, "PublishStorageDealsReturn.IDs", MAX_DEAL_IDS), BitField.from_cbor(valid)
        )


@dataclass(frozen=True, slots=True)
class SectorDeals:
    sector_type: int  # registered seal proof
    sector_expiry: int
    deal_ids: tuple[int, ...]

    def to_cbor(self) -> list[Any]:
        return [self.sector_type, self.sector_expiry, list(self.deal_ids)]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "SectorDeals") -> "SectorDeals":
        proof, expiry, deals = expect_tuple(raw, 3, what)
        return cls(
            expect_int(proof, f"{what}.SectorType"),
            expect_int(expiry, f"{what}.SectorExpiry"),
            expect_deal_ids(deals, f"{what}.DealIDs", MAX_DEAL_IDS),
        )


@dataclass(frozen=True, slots=True)
class VerifyDealsForActivationParams:
    sectors: tuple[SectorDeals, ...]

    def to_cbor(self) -> list[Any]:
        return [[s.to_cbor() for s in self.sectors]]

    @classmethod
    def from_cbor(cls, raw: Any) -> "VerifyDealsForActivationParams":
        (sectors,) = expect_tuple(raw, 1, "VerifyDealsForActivationParams")
        what = "VerifyDealsForActivationParams.Sectors"
        return cls(
            tuple(SectorDeals.from_cbor(s, what) for s in expect_list(sectors, what, MAX_SECTORS_PER_CALL))
        )


@dataclass(frozen=True, slots=True)
class SectorDealData:
    commd: CID | None  # None: the sector holds no deals (its CommD is that of zeros)

    def to_cbor(self) -> list[Any]:
        return [self.commd]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "SectorDealData") -> "SectorDealData":
        (commd,) = expect_tuple(raw, 1, what)
        return cls(expect_optional_cid(commd, f"{what}.CommD"))


@dataclass(frozen=True, slots=True)
class VerifyDealsForActivationReturn:
    sectors: tuple[SectorDealData, ...]

    def to_cbor(self) -> list[Any]:
        return [[s.to_cbor() for s in self.sectors]]

    @classmethod
    def from_cbor(cls, raw: Any) -> "VerifyDealsForActivationReturn":
        (sectors,) = expect_tuple(raw, 1, "VerifyDealsForActivationReturn")
        what = "VerifyDealsForActivationReturn.Sectors"
        return cls(
            tuple(SectorDealData.from_cbor(s, what) for s in expect_list(sectors, what, MAX_SECTORS_PER_CALL))
        )


@dataclass(frozen=True, slots=True)
class ActivateDealsParams:
    deal_ids: tuple[int, ...]
    sector_expiry: int

    def to_cbor(self) -> list[Any]:
        return [list(self.deal_ids), self.sector_expiry]

    @classmethod
    def from_cbor(cls, raw: Any) -> "ActivateDealsParams":
        deals, expiry = expect_tuple(raw, 2, "ActivateDealsParams")
        return cls(
            expect_deal_ids(deals, "ActivateDealsParams.DealIDs", MAX_DEAL_IDS),
            expect_int(expiry, "ActivateDealsParams.SectorExpiry"),
        )


@dataclass(frozen=True, slots=True)
class VerifiedDealInfo:
    client: int  # actor ID
    allocation_id: int
    data: CID
    size: int

    def to_cbor(self) -> list[Any]:
        return [self.client, self.allocation_id, self.data, self.size]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "VerifiedDealInfo") -> "VerifiedDealInfo":
        client, alloc, data, size = expect_tuple(raw, 4, what)
        return cls(
            expect_uint(client, f"{what}.Client"),
            expect_uint(alloc, f"{what}.AllocationId"),
            expect_cid(data, f"{what}.Data"),
            expect_uint(size, f"{what}.Size"),
        )


@dataclass(frozen=True, slots=True)
class ActivateDealsResult:
    nonverified_deal_space: int
    verified_infos: tuple[VerifiedDealInfo, ...] = ()

    def to_cbor(self) -> list[Any]:
        return [encode_bigint(self.nonverified_deal_space), [v.to_cbor() for v in self.verified_infos]]

    @classmethod
    def from_cbor(cls, raw: Any) -> "ActivateDealsResult":
        space, infos = expect_tuple(raw, 2, "ActivateDealsResult")
        what = "ActivateDealsResult.VerifiedInfos"
        return cls(
            expect_bigint(space, "ActivateDealsResult.NonVerifiedDealSpace"),
            tuple(VerifiedDealInfo.from_cbor(v, what) for v in expect_list(infos, what, MAX_DEAL_IDS)),
        )


@dataclass(frozen=True, slots=True)
class OnMinerSectorsTerminateParams:
    epoch: int
    deal_ids: tuple[int, ...]

    def to_cbor(self) -> list[Any]:
        return [self.epoch, list(self.deal_ids)]

    @classmethod
    def from_cbor(cls, raw: Any) -> "OnMinerSectorsTerminateParams":
        epoch, deals = expect_tuple(raw, 2, "OnMinerSectorsTerminateParams")
        return cls(
            expect_int(epoch, "OnMinerSectorsTerminateParams.Epoch"),
            expect_deal_ids(deals, "OnMinerSectorsTerminateParams.DealIDs", MAX_DEAL_IDS),
        )


@dataclass(frozen=True, slots=True)
class SectorDataSpec:
    deal_ids: tuple[int, ...]
    sector_type: int

    def to_cbor(self) -> list[Any]:
        return [list(self.deal_ids), self.sector_type]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "SectorDataSpec") -> "SectorDataSpec":
        deals, proof = expect_tuple(raw, 2, what)
        return cls(
            expect_deal_ids(deals, f"{what}.DealIDs", MAX_DEAL_IDS), expect_int(proof, f"{what}.SectorType")
        )


@dataclass(frozen=True, slots=True)
class ComputeDataCommitmentParams:
    inputs: tuple[SectorDataSpec, ...]

    def to_cbor(self) -> list[Any]:
        return [[i.to_cbor() for i in self.inputs]]

    @classmethod
    def from_cbor(cls, raw: Any) -> "ComputeDataCommitmentParams":
        (inputs,) = expect_tuple(raw, 1, "ComputeDataCommitmentParams")
        what = "ComputeDataCommitmentParams.Inputs"
        return cls(
            tuple(SectorDataSpec.from_cbor(i, what) for i in expect_list(inputs, what, MAX_SECTORS_PER_CALL))
        )


@dataclass(frozen=True, slots=True)
class ComputeDataCommitmentReturn:
    commds: tuple[CID, ...]

    def to_cbor(self) -> list[Any]:
        return [list(self.commds)]

    @classmethod
    def from_cbor(cls, raw: Any) -> "ComputeDataCommitmentReturn":
        (commds,) = expect_tuple(raw, 1, "ComputeDataCommitmentReturn")
        what = "ComputeDataCommitmentReturn.CommDs"
        return cls(tuple(expect_cid(c, what) for c in expect_list(commds, what, MAX_SECTORS_PER_CALL)))
