"""How a block header commits to its messages: a MsgMeta (Lotus's TxMeta), two legacy AMTs of message
CIDs, BLS then secp256k1, in block order (the layout Lotus writes for blocks).

The chain store writes it with a block's messages; gossip checks a BlockMsg's CID lists against the
header's Messages field and chain exchange the messages a peer sends (lotus validateMsgMeta).
"""

from collections.abc import Sequence

from chain.encoding.cid import CID
from chain.state.amt import amt_v0_from_list
from chain.store.blockstore import Blockstore, MemoryBlockstore
from chain.types.block import MsgMeta


def build_msg_meta(store: Blockstore, bls_cids: Sequence[CID], secpk_cids: Sequence[CID]) -> MsgMeta:
    """The MsgMeta of these message CIDs, its two AMTs written to store (the MsgMeta itself is not)."""
    return MsgMeta(
        bls_messages=amt_v0_from_list(store, bls_cids),
        secpk_messages=amt_v0_from_list(store, secpk_cids),
    )


def msg_meta_cid(bls_cids: Sequence[CID], secpk_cids: Sequence[CID]) -> CID:
    """The root a block header's Messages field must equal for these message CIDs (built in a scratch
    store: nothing is kept)."""
    return build_msg_meta(MemoryBlockstore(), bls_cids, secpk_cids).cid()
