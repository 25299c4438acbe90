"""How the payment-channel manager reads the chain and sends messages: what it needs of the node, the
state after the head, a channel actor's balance, state and lanes, and MpoolPushMessage with refusals as
PaychError. Synchronous (state reads, gas estimation): the manager calls these in worker threads.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from actors import builtin
from actors.paych.actor import LANE_STATES_AMT_BITWIDTH
from actors.paych.types import LaneState, PaychState
from chain.chainstore.store import ChainStore
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.mpool.errors import MpoolError
from chain.mpool.push import MessagePusher
from chain.state.amt import Amt
from chain.state.tree import Actor, StateTree
from chain.stmgr.actors import ActorNotFound, StateQueryError, read_actor_state, resolve_to_key
from chain.stmgr.manager import StateManager
from chain.stmgr.search import MsgLookup
from chain.store.blockstore import BlockNotFound
from chain.types.address import Address
from chain.types.message import Message, SignedMessage
from chain.types.tipset import TipSet
from node.markets.paych_types import PaychError
from node.wallet import Wallet, WalletError

T = TypeVar("T")


class PaychNode(Protocol):
    """What the manager uses of the node (node.fullnode.FullNode offers it)."""

    @property
    def chain(self) -> ChainStore: ...

    @property
    def state(self) -> StateManager: ...

    @property
    def pusher(self) -> MessagePusher: ...

    @property
    def wallet(self) -> Wallet: ...

    async def run_sync(self, fn: Callable[..., T], *args: object) -> T: ...

    async def wait_msg(
        self, cid: CID, confidence: int, limit: int = ..., allow_replaced: bool = ...
    ) -> MsgLookup: ...


@dataclass(frozen=True, slots=True)
class ChainView:
    """The chain as the manager reads it: the head and the state after it."""

    head: TipSet
    tree: StateTree

    @classmethod
    def of(cls, node: PaychNode) -> "ChainView":
        head = node.chain.head()
        return cls(head, node.state.tree(node.state.state_of(head).state_root))

    @property
    def next_epoch(self) -> int:
        """The epoch a message sent now executes at, at the earliest."""
        return self.head.height + 1


@dataclass(frozen=True, slots=True)
class ChannelState:
    """A payment channel actor as the chain holds it: its balance, state and lanes."""

    actor: Actor
    state: PaychState
    lanes: dict[int, LaneState]


def channel_state(view: ChainView, channel: Address) -> ChannelState | None:
    """The channel actor after the head, None when there is none (not created, or collected)."""
    actor = view.tree.get_actor(channel)
    if actor is None:
        return None
    if actor.code != builtin.PAYCH_ACTOR_CODE:
        raise PaychError(f"{channel} is not a payment channel actor (code {actor.code})")
    try:
        state: PaychState = read_actor_state(view.tree, channel, PaychState)
        amt = Amt.load(view.tree.store, state.lane_states, LANE_STATES_AMT_BITWIDTH)
        lanes = {index: LaneState.from_cbor(raw) for index, raw in amt.items()}
    except (StateQueryError, DecodeError, BlockNotFound) as exc:
        raise PaychError(f"cannot read the state of payment channel {channel}: {exc}") from None
    return ChannelState(actor, state, lanes)


def must_channel_state(view: ChainView, channel: Address) -> ChannelState:
    found = channel_state(view, channel)
    if found is None:
        raise PaychError(f"payment channel {channel} not found on chain (never created, or collected)")
    return found


def key_of(view: ChainView, address: Address) -> Address:
    """The key address behind address (itself if it is one)."""
    try:
        return resolve_to_key(view.tree, address)
    except (ActorNotFound, StateQueryError) as exc:
        raise PaychError(f"cannot resolve {address} to a key address: {exc}") from None


def push(node: PaychNode, msg: Message, what: str) -> SignedMessage:
    """MpoolPushMessage; a refusal (gas estimation, funds, a key the wallet lacks) as PaychError."""
    try:
        return node.pusher.push_message(msg)
    except (MpoolError, WalletError) as exc:
        raise PaychError(f"{what}: {exc}") from None
