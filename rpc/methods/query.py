"""What the State*, Msig* and Market* methods share: the tipset a call names, and the state manager's
errors turned into the answers Lotus gives.

Every query runs in a worker thread (`node.run_sync`): loading a tipset and reading the state touch
LevelDB, and a query may decode many HAMT nodes.

    return await at_tipset(node, tsk, lambda ts: node.state.get_actor(address, ts))
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
from chain.types.message import Message
from chain.types.tipset import InvalidTipSet, TipSet, TipSetKey
from node.fullnode import FullNode
from node.wallet import WalletError
from rpc.errors import LotusCode, RpcError

T = TypeVar("T")


def load_tipset(node: FullNode, tsk: TipSetKey) -> TipSet:
    """The tipset a call names; the empty key is the head (Lotus GetTipSetFromKey)."""
    try:
        return node.chain.get_tipset(tsk)
    except (TipSetNotFound, BlockNotFound, InvalidTipSet, DecodeError) as exc:
        raise RpcError(f"loading tipset {tsk}: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    if isinstance(exc, BlockNotFound):
        return f"block {exc.args[0]} not found"
    return str(exc)


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
        try:
            with state_errors():
                return node.pusher.push_message(msg).cid()
        except (MpoolError, WalletError) as exc:
            raise RpcError(str(exc)) from None

    return await node.run_sync(run)
