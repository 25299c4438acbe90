"""What the methods share: the tipset or block a call names, the state manager's errors and the
message pool's refusals turned into the answers Lotus gives, and pushing a message.

Every query runs in a worker thread (`node.run_sync`): loading a tipset and reading the state touch
LevelDB, and a query may decode many HAMT nodes.

    return await at_tipset(node, tsk, lambda ts: node.state.get_actor(address, ts))
    ts = await tipset_of(node, tsk)  # when the method does more than one query
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from chain.chainstore.store import TipSetNotFound
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.mpool.errors import MpoolError
from chain.stmgr.actors import ActorNotFound, StateQueryError
from chain.stmgr.randomness import BeaconEntryNotFound
from chain.store.blockstore import BlockNotFound
from chain.types.block import BlockHeader
from chain.types.message import Message
from chain.types.tipset import InvalidTipSet, TipSet, TipSetKey
from node.fullnode import FullNode
from node.wallet import WalletError
from rpc.errors import LotusCode, RpcError, answer_errors

T = TypeVar("T")

# A state manager's randomness draw: (tipset, personalization tag, epoch, entropy) -> randomness.
DrawFn = Callable[[TipSet, int, int, bytes], bytes]


def load_tipset(node: FullNode, tsk: TipSetKey) -> TipSet:
    """The tipset a call names; the empty key is the head (Lotus GetTipSetFromKey)."""
    try:
        return node.chain.get_tipset(tsk)
    except (TipSetNotFound, BlockNotFound, InvalidTipSet, DecodeError) as exc:
        raise RpcError(f"loading tipset {tsk}: {reason(exc)}") from None


async def tipset_of(node: FullNode, tsk: TipSetKey) -> TipSet:
    """load_tipset from the event loop: the head at once for the empty key, else in a worker thread."""
    if tsk.is_empty():
        return node.chain.head()
    return await node.run_sync(load_tipset, node, tsk)


async def read_or_answer(
    node: FullNode, doing: str, errors: tuple[type[Exception], ...], fn: Callable[..., T], *args: object
) -> T:
    """`fn(*args)` in a worker thread; any of `errors` it raises answers the call (code 1) with
    `doing: reason`, without the traceback."""
    try:
        return await node.run_sync(fn, *args)
    except errors as exc:
        raise RpcError(f"{doing}: {reason(exc)}") from None


async def block_of(node: FullNode, cid: CID) -> BlockHeader:
    """The block header cid names; RpcError when there is none or the block is not a header."""
    return await read_or_answer(
        node, f"loading block {cid}", (BlockNotFound, DecodeError), node.chain.get_block, cid
    )


def reason(exc: Exception) -> str:
    """What went wrong, for an error message (a KeyError's text without its quotes)."""
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


def pool_refusal(exc: MpoolError) -> RpcError:
    """A message pool refusal as the caller sees it: Lotus's words (chain/mpool/errors.py), code 1."""
    return RpcError(str(exc))


@contextmanager
def state_errors() -> Iterator[None]:
    """A missing actor answers with Lotus's ActorNotFound code; a question the state cannot answer
    (wrong kind of actor, unreadable state) with code 1 and the reason."""
    try:
        yield
    except ActorNotFound as exc:
        raise RpcError(str(exc), LotusCode.ACTOR_NOT_FOUND) from None
    except (StateQueryError, BeaconEntryNotFound, TipSetNotFound) as exc:
        raise RpcError(str(exc)) from None


async def at_tipset(node: FullNode, tsk: TipSetKey, query: Callable[[TipSet], T]) -> T:
    """query(ts) for the tipset tsk names, in a worker thread, errors answered as Lotus does."""

    def run() -> T:
        ts = load_tipset(node, tsk)
        with state_errors():
            return query(ts)

    return await node.run_sync(run)


async def push(node: FullNode, msg: Message) -> CID:
    """Estimate gas, number, sign and add msg (Lotus MpoolPushMessage); the signed message's CID."""

    def run() -> CID:
        with answer_errors(MpoolError, WalletError), state_errors():
            return node.pusher.push_message(msg).cid()

    return await node.run_sync(run)
