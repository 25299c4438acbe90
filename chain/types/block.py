"""Block headers and what travels with them (lotus chain/types/blockheader.go, blockmsg.go).

BlockHeader CBOR is a 16-field array: Miner, Ticket, ElectionProof, BeaconEntries, WinPoStProof,
Parents, ParentWeight, Height, ParentStateRoot, ParentMessageReceipts, Messages, BLSAggregate,
Timestamp, BlockSig, ForkSignaling, ParentBaseFee. Ticket, ElectionProof, BLSAggregate and BlockSig may
be null (lotus keeps them as pointers); the miner signs the header encoded with BlockSig null.

Messages points to a MsgMeta (lotus calls the block type TxMeta): the roots of two AMTs holding the
CIDs of the block's BLS messages and of its secp256k1 (signed) messages.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from chain.crypto.signature import Signature
from chain.encoding import dagcbor
from chain.encoding.bigint import encode_bigint
from chain.encoding.cid import CID
from chain.encoding.expect import (
    INT64_MAX,
    INT64_MIN,
    UINT64_MAX,
    expect_bigint,
    expect_bytes,
    expect_cid,
    expect_int,
    expect_list,
    expect_tuple,
    expect_uint,
)
from chain.types.address import Address
from chain.types.beacon import BeaconEntry
from chain.types.election import MAX_BYTES_FIELD, ElectionProof, Ticket

# cbor-gen's MaxLength: the longest array lotus decodes into a slice field.
MAX_ARRAY_LENGTH: Final = 8192
BLOCK_HEADER_FIELDS: Final = 16
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class PoStProof:
    """A Winning (or Window) PoSt proof: the registered proof type and the proof bytes."""

    proof_type: int
    proof_bytes: bytes

    def to_cbor(self) -> list[Any]:
        return [self.proof_type, self.proof_bytes]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "PoStProof") -> "PoStProof":
        proof_type, proof_bytes = expect_tuple(raw, 2, what)
        return cls(
            expect_int(proof_type, f"{what}.PoStProof"),
            expect_bytes(proof_bytes, f"{what}.ProofBytes", max_len=MAX_BYTES_FIELD),
        )


def _optional(raw: Any, decode: Callable[[Any, str], _T], what: str) -> _T | None:
    return None if raw is None else decode(raw, what)


def _signature_cbor(sig: Signature | None) -> bytes | None:
    return None if sig is None else sig.to_bytes()


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockHeader:
    miner: Address
    ticket: Ticket | None
    election_proof: ElectionProof | None
    beacon_entries: tuple[BeaconEntry, ...] = ()
    win_post_proof: tuple[PoStProof, ...] = ()
    parents: tuple[CID, ...]
    parent_weight: int
    height: int
    parent_state_root: CID
    parent_message_receipts: CID
    messages: CID
    bls_aggregate: Signature | None
    timestamp: int
    block_sig: Signature | None
    fork_signaling: int = 0
    parent_base_fee: int
    _bytes: bytes | None = field(default=None, init=False, repr=False, compare=False)
    _cid: CID | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Lists given by callers become tuples so that the header stays immutable and hashable.
        for name in ("beacon_entries", "win_post_proof", "parents"):
            value = getattr(self, name)
            if type(value) is not tuple:
                object.__setattr__(self, name, tuple(value))
        if not (
            INT64_MIN <= self.height <= INT64_MAX
            and 0 <= self.timestamp <= UINT64_MAX
            and 0 <= self.fork_signaling <= UINT64_MAX
        ):
            raise ValueError(
                "block header fields out of range: Height is int64, Timestamp and ForkSignaling uint64"
            )

    def _fields(self, block_sig: bytes | None) -> list[Any]:
        return [
            self.miner.to_bytes(),
            None if self.ticket is None else self.ticket.to_cbor(),
            None if self.election_proof is None else self.election_proof.to_cbor(),
            [entry.to_cbor() for entry in self.beacon_entries],
            [proof.to_cbor() for proof in self.win_post_proof],
            list(self.parents),
            encode_bigint(self.parent_weight),
            self.height,
            self.parent_state_root,
            self.parent_message_receipts,
            self.messages,
            _signature_cbor(self.bls_aggregate),
            self.timestamp,
            block_sig,
            self.fork_signaling,
            encode_bigint(self.parent_base_fee),
        ]

    def to_cbor(self) -> list[Any]:
        return self._fields(_signature_cbor(self.block_sig))

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "BlockHeader") -> "BlockHeader":
        f = expect_tuple(raw, BLOCK_HEADER_FIELDS, what)
        return cls(
            miner=Address.from_cbor(f[0], f"{what}.Miner"),
            ticket=_optional(f[1], Ticket.from_cbor, f"{what}.Ticket"),
            election_proof=_optional(f[2], ElectionProof.from_cbor, f"{what}.ElectionProof"),
            beacon_entries=tuple(
                BeaconEntry.from_cbor(entry, f"{what}.BeaconEntries[{i}]")
                for i, entry in enumerate(expect_list(f[3], f"{what}.BeaconEntries", MAX_ARRAY_LENGTH))
            ),
            win_post_proof=tuple(
                PoStProof.from_cbor(proof, f"{what}.WinPoStProof[{i}]")
                for i, proof in enumerate(expect_list(f[4], f"{what}.WinPoStProof", MAX_ARRAY_LENGTH))
            ),
            parents=tuple(
                expect_cid(parent, f"{what}.Parents[{i}]")
                for i, parent in enumerate(expect_list(f[5], f"{what}.Parents", MAX_ARRAY_LENGTH))
            ),
            parent_weight=expect_bigint(f[6], f"{what}.ParentWeight"),
            height=expect_int(f[7], f"{what}.Height"),
            parent_state_root=expect_cid(f[8], f"{what}.ParentStateRoot"),
            parent_message_receipts=expect_cid(f[9], f"{what}.ParentMessageReceipts"),
            messages=expect_cid(f[10], f"{what}.Messages"),
            bls_aggregate=_optional(f[11], Signature.from_cbor, f"{what}.BLSAggregate"),
            timestamp=expect_uint(f[12], f"{what}.Timestamp"),
            block_sig=_optional(f[13], Signature.from_cbor, f"{what}.BlockSig"),
            fork_signaling=expect_uint(f[14], f"{what}.ForkSignaling"),
            parent_base_fee=expect_bigint(f[15], f"{what}.ParentBaseFee"),
        )

    def to_bytes(self) -> bytes:
        data = self._bytes
        if data is None:
            data = dagcbor.encode(self.to_cbor())
            object.__setattr__(self, "_bytes", data)
        return data

    @classmethod
    def from_bytes(cls, data: bytes) -> "BlockHeader":
        header = cls.from_cbor(dagcbor.decode(data))
        object.__setattr__(header, "_bytes", bytes(data))  # strict decoding means data is canonical
        return header

    def cid(self) -> CID:
        cid = self._cid
        if cid is None:
            cid = CID.hash_of(self.to_bytes())
            object.__setattr__(self, "_cid", cid)
        return cid

    def signing_bytes(self) -> bytes:
        """What the miner's worker key signs: the header encoded with BlockSig null."""
        return dagcbor.encode(self._fields(None))


@dataclass(frozen=True, slots=True)
class MsgMeta:
    """Lotus's TxMeta: AMT roots of the block's BLS message CIDs and secp256k1 message CIDs."""

    bls_messages: CID
    secpk_messages: CID

    def to_cbor(self) -> list[Any]:
        return [self.bls_messages, self.secpk_messages]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "MsgMeta") -> "MsgMeta":
        bls, secpk = expect_tuple(raw, 2, what)
        return cls(expect_cid(bls, f"{what}.BlsMessages"), expect_cid(secpk, f"{what}.SecpkMessages"))

    def to_bytes(self) -> bytes:
        return dagcbor.encode(self.to_cbor())

    @classmethod
    def from_bytes(cls, data: bytes) -> "MsgMeta":
        return cls.from_cbor(dagcbor.decode(data))

    def cid(self) -> CID:
        return CID.hash_of(self.to_bytes())


@dataclass(frozen=True, slots=True)
class BlockMsg:
    """What a miner gossips on /fil/blocks: the header and the CIDs of its messages.

    Header may be null on the wire (lotus decodes a nil pointer); the syncer rejects such a block.
    """

    header: BlockHeader | None
    bls_messages: tuple[CID, ...]
    secpk_messages: tuple[CID, ...]

    def to_cbor(self) -> list[Any]:
        return [
            None if self.header is None else self.header.to_cbor(),
            list(self.bls_messages),
            list(self.secpk_messages),
        ]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "BlockMsg") -> "BlockMsg":
        header, bls, secpk = expect_tuple(raw, 3, what)
        return cls(
            _optional(header, BlockHeader.from_cbor, f"{what}.Header"),
            _cid_list(bls, f"{what}.BlsMessages"),
            _cid_list(secpk, f"{what}.SecpkMessages"),
        )

    def to_bytes(self) -> bytes:
        return dagcbor.encode(self.to_cbor())

    @classmethod
    def from_bytes(cls, data: bytes) -> "BlockMsg":
        return cls.from_cbor(dagcbor.decode(data))

    def cid(self) -> CID:
        if self.header is None:
            raise ValueError("BlockMsg has no header, so no CID")
        return self.header.cid()


def _cid_list(raw: Any, what: str) -> tuple[CID, ...]:
    return tuple(
        expect_cid(c, f"{what}[{i}]") for i, c in enumerate(expect_list(raw, what, MAX_ARRAY_LENGTH))
    )
