"""Block headers and what travels with them (lotus chain/types/blockheader.go, blockmsg.go).

BlockHeader CBOR is a 16-field array in the order declared below. Ticket, ElectionProof, BLSAggregate
and BlockSig may be null (lotus keeps them as pointers); the miner signs the header encoded with
BlockSig null.

Messages points to a MsgMeta (lotus calls the block type TxMeta): the roots of two AMTs holding the
CIDs of the block's BLS messages and of its secp256k1 (signed) messages.
"""

from typing import Annotated, Final

from chain.crypto.signature import Signature
from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.schema import (
    BigInt,
    Bytes,
    CachedCbor,
    CborTuple,
    ChainEpoch,
    Int64,
    Name,
    TokenAmount,
    Uint64,
    fields,
)
from chain.types.address import Address
from chain.types.beacon import BeaconEntry
from chain.types.election import ElectionProof, Ticket


class PoStProof(CborTuple):
    """A Winning (or Window) PoSt proof: the registered proof type and the proof bytes."""

    proof_type: Annotated[Int64, Name("PoStProof")]
    proof_bytes: Bytes


class BlockHeader(CachedCbor, kw_only=True):
    miner: Address
    ticket: Ticket | None
    election_proof: ElectionProof | None
    beacon_entries: tuple[BeaconEntry, ...] = ()
    win_post_proof: Annotated[tuple[PoStProof, ...], Name("WinPoStProof")] = ()
    parents: tuple[CID, ...]
    parent_weight: BigInt
    height: ChainEpoch
    parent_state_root: CID
    parent_message_receipts: CID
    messages: CID
    bls_aggregate: Annotated[Signature | None, Name("BLSAggregate")]
    timestamp: Uint64
    block_sig: Signature | None
    fork_signaling: Uint64 = 0
    parent_base_fee: TokenAmount

    def signing_bytes(self) -> bytes:
        """What the miner's worker key signs: the header encoded with BlockSig null."""
        raw = self.to_cbor()
        raw[_BLOCK_SIG_INDEX] = None
        return dagcbor.encode(raw)


_BLOCK_SIG_INDEX: Final = [f.name for f in fields(BlockHeader)].index("block_sig")


class MsgMeta(CborTuple):
    """Lotus's TxMeta: AMT roots of the block's BLS message CIDs and secp256k1 message CIDs."""

    bls_messages: CID
    secpk_messages: CID


class BlockMsg(CborTuple):
    """What a miner gossips on /fil/blocks: the header and the CIDs of its messages.

    Header may be null on the wire (lotus decodes a nil pointer); the syncer rejects such a block.
    """

    header: BlockHeader | None
    bls_messages: tuple[CID, ...]
    secpk_messages: tuple[CID, ...]

    def cid(self) -> CID:
        if self.header is None:
            raise ValueError("BlockMsg has no header, so no CID")
        return self.header.cid()
