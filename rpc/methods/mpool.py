"""The Mpool* methods: pushing messages, reading and clearing the pool, its updates, and checks
(lotus api/api_full.go; node/impl/full/mpool.go).

A refusal of the pool (chain/mpool/errors.py: nonce, balance, signature, size, ...) is an RpcError with
the pool's Lotus-worded reason; the pool is unchanged by it. The pool's work (signature checks, state
reads, LevelDB writes) runs in a worker thread. MpoolPush calls go through one drain
(`push_queue`, node/drain.py): a worker thread that takes every push waiting at once and keeps
going while pushes keep coming; under load the thread hand-offs, not the pool, were the larger part of
a push's cost on the event loop (bench/bench_rpc.py, docs/rpc.md).
"""

import weakref
from collections.abc import AsyncIterator
from typing import Final

from chain.chainstore.store import ChainStoreError
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.schema import Uint64
from chain.mpool import checks
from chain.mpool.errors import MpoolError
from chain.mpool.pool import MpoolUpdate
from chain.store.blockstore import BlockNotFound
from chain.types.address import EAM_NAMESPACE, Address, Protocol
from chain.types.message import Message, SignedMessage
from chain.types.tipset import TipSet, TipSetKey
from node.drain import ThreadDrain
from node.fullnode import FullNode
from node.wallet import WalletError
from rpc.errors import RpcError
from rpc.jsontypes import Float64
from rpc.methods.mpool_types import MessageCheckStatus, MessageSendSpec
from rpc.methods.query import pool_refusal, read_or_answer, tipset_of
from rpc.registry import READ, SIGN, WRITE, method

# What walking the chain under a tipset may meet: a block missing or undecodable, a parent not loaded.
_CHAIN_ERRORS = (BlockNotFound, ChainStoreError, DecodeError)

ETH_ADDRESS_LENGTH: Final = 20
# An Ethereum address that stands for an ID address (0xff, eleven zero bytes, then the ID).
_MASKED_ID_PREFIX: Final = b"\xff" + bytes(11)


def check_recipient(msg: Message) -> None:
    """Lotus sanityCheckOutgoingMessage: a delegated recipient must be a real Ethereum address (any
    other f4 address is a black hole the chain would accept)."""
    to = msg.to
    if to.protocol != Protocol.DELEGATED:
        return
    sub = to.subaddress
    if to.namespace != EAM_NAMESPACE or len(sub) != ETH_ADDRESS_LENGTH or sub.startswith(_MASKED_ID_PREFIX):
        raise RpcError(f"message recipient {to} is a delegated address but not a valid Eth Address")


_queues: "weakref.WeakKeyDictionary[FullNode, ThreadDrain[SignedMessage, CID]]" = weakref.WeakKeyDictionary()


def push_queue(node: FullNode) -> ThreadDrain[SignedMessage, CID]:
    """The node's MpoolPush calls, in arrival order, each checked and added on its own
    (node.mpool.push) by one worker thread that takes every push waiting at once (node/drain.py)."""
    queue = _queues.get(node)
    if queue is None:
        queue = _queues[node] = ThreadDrain(node.mpool.push, name="mpool push")
    return queue


async def _push(node: FullNode, signed: SignedMessage) -> CID:
    (outcome,) = await _push_run(node, [[signed]])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


async def _push_run(node: FullNode, calls: list[list[SignedMessage]]) -> list[CID | Exception]:
    """Consecutive MpoolPush calls (of one JSON-RPC batch, or waiting together on one WebSocket
    connection): queued together, in order, so that they share the drain's passes instead of taking
    one each; every message is still checked, added and answered on its own, as if called in turn."""
    refusals: list[RpcError | None] = []
    messages = []
    for (signed,) in calls:
        try:
            check_recipient(signed.message)
        except RpcError as exc:
            refusals.append(exc)
        else:
            refusals.append(None)
            messages.append(signed)
    pushed = iter(await push_queue(node).run(messages))
    outcomes: list[CID | Exception] = []
    for refusal in refusals:
        if refusal is not None:
            outcomes.append(refusal)
        else:
            result = next(pushed)
            outcomes.append(pool_refusal(result) if isinstance(result, MpoolError) else result)
    return outcomes


@method("MpoolPush", perm=WRITE, run=_push_run)
async def mpool_push(node: FullNode, message: SignedMessage) -> CID:
    """Add a signed message to the pool (checked as Lotus does); its CID."""
    return await _push(node, message)


@method("MpoolBatchPush", perm=WRITE)
async def mpool_batch_push(node: FullNode, messages: tuple[SignedMessage, ...]) -> tuple[CID, ...]:
    """Add signed messages to the pool in order; their CIDs. The first refusal ends the batch (the
    messages before it stay in the pool)."""
    for signed in messages:
        check_recipient(signed.message)
    cids = []
    for i, signed in enumerate(messages):
        try:
            cids.append(await _push(node, signed))
        except RpcError as exc:
            raise RpcError(f"{exc.message} (message {i} of the batch; {i} added before it)") from None
    return tuple(cids)


@method("MpoolPushMessage", perm=SIGN)
async def mpool_push_message(node: FullNode, message: Message, spec: MessageSendSpec | None) -> SignedMessage:
    """Estimate the gas of an unsigned message (nonce 0), give it the sender's next nonce, sign it with
    the node's wallet and add it to the pool; the signed message."""
    check_recipient(message)
    try:
        return await node.run_sync(
            node.pusher.push_message, message, None if spec is None else spec.send_spec()
        )
    except MpoolError as exc:
        raise pool_refusal(exc) from None
    except WalletError as exc:
        raise RpcError(f"mpool push: failed to sign message: {exc}") from None


# -- reading the pool ----------------------------------------------------------------------------------


def _block_messages(node: FullNode, ts: TipSet) -> tuple[list[SignedMessage], set[CID]]:
    """ts's signed (secp256k1) messages, and the CIDs of all its messages. BLS messages are stored
    without their signatures, so they cannot be handed out as signed messages."""
    signed: list[SignedMessage] = []
    cids: set[CID] = set()
    for block in ts.blocks:
        bls, secpk = node.chain.messages_for_block(block)
        signed.extend(secpk)
        cids.update(m.cid() for m in bls)
        cids.update(m.cid() for m in secpk)
    return signed, cids


def _pending_at(node: FullNode, ts: TipSet) -> list[SignedMessage]:
    """Lotus MpoolPending: the pool's messages, plus those of the tipsets between the pool's tipset and
    a newer ts (which the pool has not seen leave)."""
    pending, pool_ts = node.mpool.pending()
    if pool_ts.height > ts.height:
        return pending
    have = {m.cid() for m in pending}
    while True:
        if pool_ts.height == ts.height:
            if pool_ts.key == ts.key:
                return pending
            have |= _block_messages(node, pool_ts)[1]
        for signed in _block_messages(node, ts)[0]:
            if signed.cid() not in have:
                have.add(signed.cid())
                pending.append(signed)
        if pool_ts.height >= ts.height:
            return pending
        ts = node.chain.load_tipset(ts.parents)


@method("MpoolPending", perm=READ)
async def mpool_pending(node: FullNode, tsk: TipSetKey) -> tuple[SignedMessage, ...]:
    """The pending messages (sender by sender, in nonce order), as of a tipset (the head for an empty
    key)."""
    ts = await tipset_of(node, tsk)
    doing = f"reading the messages of tipset {ts.key}"
    return tuple(await read_or_answer(node, doing, _CHAIN_ERRORS, _pending_at, node, ts))


@method("MpoolSelect", perm=READ)
async def mpool_select(node: FullNode, tsk: TipSetKey, ticket_quality: Float64) -> tuple[SignedMessage, ...]:
    """The messages a block mined on a tipset would carry: by gas premium, within the block gas limit."""
    ts = await tipset_of(node, tsk)
    doing = f"selecting messages on tipset {ts.key}"
    return tuple(await read_or_answer(node, doing, _CHAIN_ERRORS, node.mpool.select, ts, ticket_quality))


@method("MpoolGetNonce", perm=READ)
async def mpool_get_nonce(node: FullNode, address: Address) -> Uint64:
    """The nonce of the sender's next message: past its pending messages."""

    def nonce() -> int | None:
        if node.mpool.state_actor(address) is None:
            return None
        return node.mpool.get_nonce(address)

    found = await node.run_sync(nonce)
    if found is None:
        raise RpcError(f"resolution lookup failed ({address}): actor not found")
    return found


@method("MpoolSub", perm=READ)
async def mpool_sub(node: FullNode) -> AsyncIterator[MpoolUpdate]:
    """Messages entering (Type 0) and leaving (Type 1) the pool, from now on."""
    updates = node.mpool.subscribe()
    async with updates:
        async for update in updates:
            yield update


@method("MpoolClear", perm=WRITE)
async def mpool_clear(node: FullNode, local: bool) -> None:
    """Drop every pending message from the network; this node's own ones too if local."""
    await node.run_sync(node.mpool.clear, local)


# -- checks (v1) ---------------------------------------------------------------------------------------

CheckResults = tuple[tuple[MessageCheckStatus, ...], ...]


def _results(found: list[list[checks.MessageCheckStatus]]) -> CheckResults:
    return tuple(tuple(MessageCheckStatus.of(s) for s in statuses) for statuses in found)


@method("MpoolCheckMessages", perm=READ, api="v1")
async def mpool_check_messages(
    node: FullNode, prototypes: tuple[checks.MessagePrototype, ...]
) -> CheckResults:
    """What the pool would say of each unsigned message, check by check, without adding any."""
    return _results(await node.run_sync(checks.check_messages, node.mpool, prototypes))


@method("MpoolCheckPendingMessages", perm=READ, api="v1")
async def mpool_check_pending_messages(node: FullNode, sender: Address) -> CheckResults:
    """The checks of a sender's pending messages, as a sequence from its state."""
    return _results(await node.run_sync(checks.check_pending_messages, node.mpool, sender))


@method("MpoolCheckReplaceMessages", perm=READ, api="v1")
async def mpool_check_replace_messages(node: FullNode, messages: tuple[Message, ...]) -> CheckResults:
    """The checks of each sender's pending messages with these in their places."""
    return _results(await node.run_sync(checks.check_replace_messages, node.mpool, list(messages)))
