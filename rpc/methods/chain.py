"""The Chain* methods: the head and its changes, blocks, tipsets, messages, raw objects, export and
(v0) randomness (lotus api/api_full.go, api/v0api/full.go; node/impl/full/chain.go).

Every read of the chain store runs in a worker thread (`node.run_sync`): the store may block on
LevelDB. A tipset key param names a tipset, the empty key (`null` or `[]`) the head, except for
ChainGetTipSet, where Lotus refuses it. What is not in the store is an RpcError (code 1) saying what
was looked for.
"""

from collections.abc import AsyncIterator, Iterator

from chain.chainstore.export import walk_snapshot
from chain.chainstore.reorg import HeadChange, NoCommonAncestor
from chain.chainstore.store import ChainStoreError
from chain.consensus.weight import weight_of
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.schema import BigInt, Bytes, ChainEpoch, Int64
from chain.store.blockstore import BlockNotFound
from chain.store.car import encode_header, encode_section, walk_dag
from chain.types.block import BlockHeader
from chain.types.message import Message, SignedMessage
from chain.types.receipt import MessageReceipt
from chain.types.tipset import TipSet, TipSetKey
from node.fullnode import FullNode
from rpc.errors import RpcError, answer_errors
from rpc.methods.chain_types import EXPORT_PIECE, ApiMessage, BlockMessages, ExportPiece, ObjStat
from rpc.methods.query import DrawFn, block_of, read_or_answer, reason, tipset_of
from rpc.registry import READ, method

# A block or message the store lacks, or holds in a shape it cannot decode.
_NOT_STORED = (BlockNotFound, DecodeError)

# -- the head ----------------------------------------------------------------------------------------


@method("ChainHead", perm=READ, memo=True)  # the head TipSet is frozen: encoded once per head
async def chain_head(node: FullNode) -> TipSet:
    """The heaviest tipset: the head of the chain."""
    return node.chain.head()


@method("ChainNotify", perm=READ)
async def chain_notify(node: FullNode) -> AsyncIterator[tuple[HeadChange, ...]]:
    """Head changes: first [current head], then one list per change (reverts, then applies)."""
    changes = node.chain.subscribe()
    async with changes:
        async for batch in changes:
            yield tuple(batch)


@method("ChainGetGenesis", perm=READ)
async def chain_get_genesis(node: FullNode) -> TipSet:
    """The genesis tipset."""
    return TipSet((await node.run_sync(node.chain.genesis),))


# -- blocks and tipsets ------------------------------------------------------------------------------


@method("ChainGetBlock", perm=READ)
async def chain_get_block(node: FullNode, block: CID) -> BlockHeader:
    """The block header with this CID."""
    return await block_of(node, block)


@method("ChainGetTipSet", perm=READ)
async def chain_get_tipset(node: FullNode, tsk: TipSetKey) -> TipSet:
    """The tipset of exactly these blocks (the empty key names none)."""
    return await read_or_answer(
        node, f"loading tipset {tsk}", (ChainStoreError, DecodeError), node.chain.load_tipset, tsk
    )


async def _tipset_by_height(node: FullNode, height: int, tsk: TipSetKey, prev: bool) -> TipSet:
    anchor = await tipset_of(node, tsk)
    try:
        return await node.run_sync(node.chain.get_tipset_by_height, height, anchor, prev)
    except ChainStoreError as exc:
        raise RpcError(reason(exc)) from None


@method("ChainGetTipSetByHeight", perm=READ)
async def chain_get_tipset_by_height(node: FullNode, height: ChainEpoch, tsk: TipSetKey) -> TipSet:
    """The tipset at a height on the chain ending at tsk (the head for an empty key); for a null round,
    the tipset below it."""
    return await _tipset_by_height(node, height, tsk, True)


@method("ChainGetTipSetAfterHeight", perm=READ, api="v1")
async def chain_get_tipset_after_height(node: FullNode, height: ChainEpoch, tsk: TipSetKey) -> TipSet:
    """The tipset at a height on the chain ending at tsk (the head for an empty key); for a null round,
    the first tipset above it."""
    return await _tipset_by_height(node, height, tsk, False)


@method("ChainGetPath", perm=READ)
async def chain_get_path(node: FullNode, from_: TipSetKey, to: TipSetKey) -> tuple[HeadChange, ...]:
    """The reverts, then the applies, that lead from one tipset to another."""
    path = await read_or_answer(
        node,
        f"getting the path from {from_} to {to}",
        (ChainStoreError, DecodeError, NoCommonAncestor),
        node.chain.chain_path,
        from_,
        to,
    )
    return tuple(path)


@method("ChainTipSetWeight", perm=READ)
async def chain_tipset_weight(node: FullNode, tsk: TipSetKey) -> BigInt:
    """The weight of a tipset: what fork choice compares."""
    ts = await tipset_of(node, tsk)
    return await read_or_answer(node, f"weighing tipset {ts.key}", _NOT_STORED, _weight, node, ts)


def _weight(node: FullNode, ts: TipSet) -> int:
    recorded = node.chain.tipset_weight(ts)
    return weight_of(node.chain.blockstore, ts) if recorded is None else recorded


# -- messages ----------------------------------------------------------------------------------------


@method("ChainGetBlockMessages", perm=READ)
async def chain_get_block_messages(node: FullNode, block: CID) -> BlockMessages:
    """A block's BLS and secp256k1 messages, and the CIDs of both."""
    header = await block_of(node, block)
    bls, secpk = await read_or_answer(
        node, f"loading the messages of block {block}", _NOT_STORED, node.chain.messages_for_block, header
    )
    return BlockMessages.of(bls, secpk)


@method("ChainGetMessage", perm=READ)
async def chain_get_message(node: FullNode, cid: CID) -> Message:
    """A message by its CID (a signed message's CID gives its unsigned message)."""
    found = await read_or_answer(node, f"loading message {cid}", _NOT_STORED, node.chain.get_message, cid)
    return found.message if isinstance(found, SignedMessage) else found


async def _tipset_messages(node: FullNode, ts: TipSet) -> tuple[ApiMessage, ...]:
    if ts.height == 0:
        return ()
    messages = await read_or_answer(
        node, f"loading the messages of tipset {ts.key}", _NOT_STORED, node.chain.messages_for_tipset, ts
    )
    return tuple(ApiMessage.of(m) for m in messages)


@method("ChainGetMessagesInTipset", perm=READ)
async def chain_get_messages_in_tipset(node: FullNode, tsk: TipSetKey) -> tuple[ApiMessage, ...]:
    """A tipset's messages in execution order, each once (none for the genesis)."""
    return await _tipset_messages(node, await tipset_of(node, tsk))


@method("ChainGetParentMessages", perm=READ)
async def chain_get_parent_messages(node: FullNode, block: CID) -> tuple[ApiMessage, ...]:
    """The messages of a block's parent tipset, in execution order (none for the genesis)."""
    header = await block_of(node, block)
    if header.height == 0:
        return ()
    parent = await read_or_answer(
        node,
        f"loading the parents of block {block}",
        (ChainStoreError,),
        node.chain.load_tipset,
        TipSetKey(header.parents),
    )
    return await _tipset_messages(node, parent)


@method("ChainGetParentReceipts", perm=READ)
async def chain_get_parent_receipts(node: FullNode, block: CID) -> tuple[MessageReceipt, ...]:
    """The receipts of the messages of a block's parent tipset, in their order (none for the genesis)."""
    header = await block_of(node, block)
    if header.height == 0:
        return ()
    receipts = await read_or_answer(
        node,
        f"loading the parent receipts of block {block}",
        _NOT_STORED,
        node.chain.read_receipts,
        header.parent_message_receipts,
    )
    return tuple(receipts)


# -- raw objects -------------------------------------------------------------------------------------


@method("ChainReadObj", perm=READ)
async def chain_read_obj(node: FullNode, cid: CID) -> Bytes:
    """The raw bytes of a block of the node's blockstore."""
    data = await node.run_sync(node.chain.blockstore.get, cid)
    if data is None:
        raise RpcError(f"blockstore get: block {cid} not found")
    return data


@method("ChainHasObj", perm=READ)
async def chain_has_obj(node: FullNode, cid: CID) -> bool:
    """Whether the node's blockstore holds a block."""
    return await node.run_sync(node.chain.blockstore.has, cid)


def _stat(node: FullNode, obj: CID, base: CID | None) -> ObjStat:
    store = node.chain.blockstore
    known = {cid for cid, _ in walk_dag(store, [base])} if base is not None else set()
    size = links = 0
    for _, data in walk_dag(store, [obj], follow=lambda cid: cid not in known):
        size += len(data)
        links += 1
    return ObjStat(size=size, links=links)


@method("ChainStatObj", perm=READ)
async def chain_stat_obj(node: FullNode, obj: CID, base: CID | None) -> ObjStat:
    """The blocks and bytes of the DAG under obj, leaving out what is also under base (if given)."""
    return await read_or_answer(node, f"walking the DAG under {obj}", _NOT_STORED, _stat, node, obj, base)


# -- export ------------------------------------------------------------------------------------------


def _car_pieces(node: FullNode, ts: TipSet, recent_roots: int, skip_old_messages: bool) -> Iterator[bytes]:
    """The CAR of the chain ending at ts (the blocks ChainStore.export writes) in EXPORT_PIECE pieces."""
    buffer = bytearray(encode_header(ts.cids))
    for cid, data in walk_snapshot(
        node.chain.blockstore, ts, recent_roots=recent_roots, skip_old_messages=skip_old_messages
    ):
        buffer += encode_section(cid, data)
        while len(buffer) >= EXPORT_PIECE:
            yield bytes(buffer[:EXPORT_PIECE])
            del buffer[:EXPORT_PIECE]
    if buffer:
        yield bytes(buffer)


async def _export_stream(node: FullNode, pieces: Iterator[bytes]) -> AsyncIterator[bytes]:
    # Each piece is made in a worker thread when the channel asks for it: the walk never runs ahead
    # of the channel, and no task outlives it.
    while (piece := await node.run_sync(next, pieces, None)) is not None:
        yield piece
    yield b""  # Lotus ends a complete export with an empty piece; a client missing it knows it was cut


@method("ChainExport", perm=READ)
async def chain_export(
    node: FullNode, recent_roots: ChainEpoch, skip_old_messages: bool, tsk: TipSetKey
) -> AsyncIterator[ExportPiece]:
    """The chain ending at tsk as a CAR, in pieces: every header down to the genesis with its messages,
    the state trees and receipts of the last recent_roots epochs and of the genesis; an empty piece
    ends a complete export."""
    if recent_roots < 0:
        raise RpcError(f"recent roots cannot be negative, got {recent_roots}")
    ts = await tipset_of(node, tsk)
    return _export_stream(node, _car_pieces(node, ts, recent_roots, skip_old_messages))


# -- randomness (v0; /rpc/v1 has StateGetRandomnessFromTickets and StateGetRandomnessFromBeacon) -------


@method("ChainGetRandomnessFromTickets", perm=READ, api="v0")
async def chain_get_randomness_from_tickets(
    node: FullNode, tsk: TipSetKey, personalization: Int64, epoch: ChainEpoch, entropy: Bytes
) -> Bytes:
    """Randomness drawn from the ticket of the chain at epoch (on the chain ending at tsk)."""
    draw = node.state.draw_chain_randomness
    return await _randomness_v0(node, draw, "chain", tsk, personalization, epoch, entropy)


@method("ChainGetRandomnessFromBeacon", perm=READ, api="v0")
async def chain_get_randomness_from_beacon(
    node: FullNode, tsk: TipSetKey, personalization: Int64, epoch: ChainEpoch, entropy: Bytes
) -> Bytes:
    """Randomness drawn from the beacon entry of epoch (on the chain ending at tsk)."""
    draw = node.state.draw_beacon_randomness
    return await _randomness_v0(node, draw, "beacon", tsk, personalization, epoch, entropy)


async def _randomness_v0(
    node: FullNode,
    draw: DrawFn,
    what: str,
    tsk: TipSetKey,
    tag: int,
    epoch: int,
    entropy: bytes,
) -> bytes:
    ts = await tipset_of(node, tsk)
    with answer_errors(ValueError, ChainStoreError, prefix=f"drawing {what} randomness"):
        return await node.run_sync(draw, ts, tag, epoch, entropy)
