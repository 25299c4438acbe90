"""Block messages in the blockstore: how a block's messages are stored and read back.

As Lotus (chain/store/messages.go, consensus.ToMessagesArray): each message is stored under its own CID,
BLS messages unsigned (their signatures live in the block's BLSAggregate) and secp256k1 messages signed;
a block's Messages field is the CID of a MsgMeta whose two fields are legacy-layout AMTs of those CIDs.
"""

from collections.abc import Sequence

from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.expect import expect_cid
from chain.state.amt import amt_v0_from_list, amt_v0_to_list
from chain.store.blockstore import BlockNotFound, Blockstore, get_cbor, put_cbor
from chain.types.block import MsgMeta
from chain.types.message import Message, SignedMessage

ChainMessage = Message | SignedMessage


def msg_meta_of(store: Blockstore, bls_cids: Sequence[CID], secp_cids: Sequence[CID]) -> CID:
    """Write the two CID AMTs and the MsgMeta to store; return the MsgMeta's CID."""
    meta = MsgMeta(amt_v0_from_list(store, bls_cids), amt_v0_from_list(store, secp_cids))
    return put_cbor(store, meta.to_cbor())


def put_block_messages(store: Blockstore, bls: Sequence[Message], secp: Sequence[SignedMessage]) -> CID:
    """Store the messages themselves and their MsgMeta; return the MsgMeta's CID (a header's Messages)."""
    store.put_many([(m.cid(), m.to_bytes()) for m in bls])
    store.put_many([(m.cid(), m.to_bytes()) for m in secp])
    return msg_meta_of(store, [m.cid() for m in bls], [m.cid() for m in secp])


def _cids(store: Blockstore, root: CID, what: str) -> list[CID]:
    return [expect_cid(raw, f"{what}[{i}]") for i, raw in enumerate(amt_v0_to_list(store, root))]


def load_block_messages(
    store: Blockstore, messages: CID
) -> tuple[tuple[Message, ...], tuple[SignedMessage, ...]]:
    """The BLS and secp256k1 messages a MsgMeta names; BlockNotFound or DecodeError if any is missing or
    malformed (a BLS list naming a signed message, or the other way round, is malformed)."""
    meta = MsgMeta.from_cbor(get_cbor(store, messages), "MsgMeta")
    bls = []
    for cid in _cids(store, meta.bls_messages, "MsgMeta.BlsMessages"):
        bls.append(Message.from_bytes(_get(store, cid)))
    secp = []
    for cid in _cids(store, meta.secpk_messages, "MsgMeta.SecpkMessages"):
        secp.append(SignedMessage.from_bytes(_get(store, cid)))
    return tuple(bls), tuple(secp)


def _get(store: Blockstore, cid: CID) -> bytes:
    data = store.get(cid)
    if data is None:
        raise BlockNotFound(cid)
    return data


def load_chain_message(store: Blockstore, cid: CID) -> ChainMessage:
    """A message by the CID Lotus knows it by: an unsigned message (BLS) or a signed one (Lotus
    GetCMessage). BlockNotFound if unknown, DecodeError if the block is neither."""
    data = _get(store, cid)
    # A Message is a 10-field array (CBOR header 0x8a), a SignedMessage a 2-field one (0x82).
    try:
        if data[:1] == b"\x82":
            return SignedMessage.from_bytes(data)
        return Message.from_bytes(data)
    except DecodeError as exc:
        raise DecodeError(f"block {cid} is not a message: {exc}") from None
