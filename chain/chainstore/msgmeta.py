"""How a block header commits to its messages: a MsgMeta (Lotus's TxMeta), two legacy AMTs of message
CIDs, BLS then secp256k1, in block order (the layout Lotus writes for blocks).

The chain store writes it with a block's messages; gossip checks a BlockMsg's CID lists against the
header's Messages field and chain exchange the messages a peer sends (lotus validateMsgMeta), and
block validation checks it again for every block, whatever its source.

A block on its way in has its MsgMeta built up to three times from the same lists: by gossip's or chain
exchange's check, by validation's, and when its messages are stored. `msg_meta_blocks` remembers what
the last few thousand lists built (a pure function of the lists), so it is built once; every check
still compares the header's field with it.
"""

import functools
from collections.abc import Sequence
from typing import Final

from chain.encoding.cid import CID
from chain.state.amt import amt_v0_from_list
from chain.store.blockstore import MemoryBlockstore
from chain.types.block import MsgMeta

# Lists remembered: more than the blocks of the two message batches the syncer holds (64 tipsets each).
_REMEMBERED: Final = 4096

# The MsgMeta's CID, and its blocks: the two AMTs' nodes and the MsgMeta itself.
Built = tuple[CID, tuple[tuple[CID, bytes], ...]]


@functools.lru_cache(maxsize=_REMEMBERED)
def _build(bls_cids: tuple[CID, ...], secpk_cids: tuple[CID, ...]) -> Built:
    scratch = MemoryBlockstore()
    scratch.block_cache = None
    meta = MsgMeta(
        bls_messages=amt_v0_from_list(scratch, bls_cids),
        secpk_messages=amt_v0_from_list(scratch, secpk_cids),
    )
    cid = meta.cid()
    return cid, (*scratch.items(), (cid, meta.to_bytes()))


def msg_meta_blocks(bls_cids: Sequence[CID], secpk_cids: Sequence[CID]) -> Built:
    """The MsgMeta CID of these message CIDs and the blocks to store for it (built in a scratch store)."""
    return _build(tuple(bls_cids), tuple(secpk_cids))


def msg_meta_cid(bls_cids: Sequence[CID], secpk_cids: Sequence[CID]) -> CID:
    """The root a block header's Messages field must equal for these message CIDs."""
    return msg_meta_blocks(bls_cids, secpk_cids)[0]
