"""What many methods look up first, with the error a caller gets when it is missing.

A tipset key names a tipset (the empty key, `null` or `[]`, is the head, as Lotus GetTipSetFromKey); a
CID names a block header. Both are read off the event loop: the chain store may block on LevelDB.
"""

from chain.chainstore.store import ChainStoreError
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.mpool.errors import MpoolError
from chain.store.blockstore import BlockNotFound
from chain.types.block import BlockHeader
from chain.types.tipset import TipSet, TipSetKey
from node.fullnode import FullNode
from rpc.errors import RpcError


def not_found(exc: Exception) -> str:
    """The reason without KeyError's quotes."""
    return str(exc.args[0]) if exc.args else type(exc).__name__


async def tipset_of(node: FullNode, tsk: TipSetKey) -> TipSet:
    """The tipset tsk names (the head for the empty key); RpcError when it is not in the store."""
    if tsk.is_empty():
        return node.chain.head()
    try:
        return await node.run_sync(node.chain.load_tipset, tsk)
    except (ChainStoreError, DecodeError) as exc:
        raise RpcError(f"loading tipset {tsk}: {not_found(exc)}") from None


async def block_of(node: FullNode, cid: CID) -> BlockHeader:
    """The block header cid names; RpcError when there is none or the block is not a header."""
    try:
        return await node.run_sync(node.chain.get_block, cid)
    except (BlockNotFound, DecodeError) as exc:
        raise RpcError(f"loading block {cid}: {not_found(exc)}") from None


def pool_refusal(exc: MpoolError) -> RpcError:
    """A message pool refusal as the caller sees it: Lotus's words (chain/mpool/errors.py), code 1."""
    return RpcError(str(exc))
