"""The root a block header's Messages field must equal for a given list of message CIDs.

A block commits to its messages through a MsgMeta (Lotus's TxMeta): two legacy AMTs of message CIDs,
BLS then secp256k1, in block order. Gossip checks a BlockMsg's CID lists against it and chain exchange
checks the messages a peer sends against the headers they belong to (lotus validateMsgMeta).
"""

from collections.abc import Sequence

from chain.encoding.cid import CID
from chain.state.amt import amt_v0_from_list
from chain.store.blockstore import MemoryBlockstore
from chain.types.block import MsgMeta


def msg_meta_cid(bls_messages: Sequence[CID], secpk_messages: Sequence[CID]) -> CID:
    store = MemoryBlockstore()
    meta = MsgMeta(amt_v0_from_list(store, bls_messages), amt_v0_from_list(store, secpk_messages))
    return meta.cid()
