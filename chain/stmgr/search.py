"""Finding where a message was executed (Lotus StateManager.SearchForMessage, without a message index).

A message included in tipset P is executed by P's child C: its receipt is in C's ParentMessageReceipts,
and Lotus reports C (the "execution tipset") with it. The search looks at the head first, then walks
back through the chain while the sender's nonce says the message may be further down: between a tipset
and its parent, the sender's nonce must cross the message's nonce.

A message is also found through a replacement: another message from the same sender with the same nonce
and the same call (recipient, value, method, params; gas fields may differ), as when a wallet bumps the
fee. With allow_replaced the replacement's CID and receipt are returned; without, MessageReplaced. A
different call at that nonce always raises MessageReplaced.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.state.amt import LEGACY_BITWIDTH, Amt
from chain.state.tree import Actor
from chain.stmgr.actors import ActorNotFound
from chain.stmgr.chain import LOOKBACK_NO_LIMIT
from chain.store.blockstore import BlockNotFound
from chain.types.address import Address
from chain.types.message import Message, SignedMessage
from chain.types.receipt import MessageReceipt
from chain.types.tipset import TipSet

if TYPE_CHECKING:
    from chain.stmgr.manager import StateManager


class MessageReplaced(Exception):
    """At the message's nonce its sender had another message executed."""


class UnknownMessage(LookupError):
    """The message itself is not in the store, so there is nothing to search for."""


@dataclass(frozen=True, slots=True)
class MsgLookup:
    """Where a message was executed: its (or its replacement's) CID, its receipt, the execution tipset."""

    message: CID
    receipt: MessageReceipt
    tipset: TipSet

    @property
    def height(self) -> int:
        return self.tipset.height


def equal_call(a: Message, b: Message) -> bool:
    """Same message but for the gas fields (Lotus Message.EqualCall)."""
    return (
        a.version == b.version
        and a.to == b.to
        and a.from_ == b.from_
        and a.nonce == b.nonce
        and a.value == b.value
        and a.method == b.method
        and a.params == b.params
    )


def _unsigned(msg: Message | SignedMessage) -> Message:
    return msg.message if isinstance(msg, SignedMessage) else msg


def parent_receipt(sm: "StateManager", ts: TipSet, index: int) -> MessageReceipt:
    """Receipt `index` of ts's ParentMessageReceipts."""
    amt = Amt.load(sm.store, ts.parent_message_receipts, LEGACY_BITWIDTH, legacy=True)
    raw = amt.get(index)
    if raw is None:
        raise DecodeError(f"receipts of {ts.key} have no entry {index}")
    return MessageReceipt.from_cbor(raw)


def executed_in(
    sm: "StateManager", ts: TipSet, cid: CID, msg: Message, allow_replaced: bool
) -> tuple[MessageReceipt, CID] | None:
    """The receipt of msg if ts executed it (its parent included it), and the CID found."""
    if ts.height == 0:
        return None
    parent = sm.chain.load_tipset(ts.parents)
    applied = sm.messages_for_tipset(parent)
    for index in range(len(applied) - 1, -1, -1):
        candidate = _unsigned(applied[index])
        if candidate.from_ != msg.from_:
            continue
        if candidate.nonce == msg.nonce:
            found = applied[index].cid()
            if not equal_call(candidate, msg):
                raise MessageReplaced(
                    f"message {cid}: its sender's nonce {msg.nonce} went to a different message {found}"
                )
            if found != cid and not allow_replaced:
                raise MessageReplaced(f"message {cid} was replaced by {found} (same nonce and call)")
            return parent_receipt(sm, ts, index), found
        if candidate.nonce < msg.nonce:
            return None
    return None


def _actor(sm: "StateManager", address: Address, ts: TipSet) -> Actor | None:
    try:
        return sm.get_actor(address, ts)
    except ActorNotFound:
        return None


def search_msg(
    sm: "StateManager",
    head: TipSet,
    cid: CID,
    limit: int = LOOKBACK_NO_LIMIT,
    allow_replaced: bool = True,
) -> MsgLookup | None:
    """Where the message cid was executed, searching from head back at most `limit` epochs
    (LOOKBACK_NO_LIMIT: to the genesis); None if it was not (yet)."""
    try:
        chain_msg = sm.chain.get_message(cid)
    except (BlockNotFound, DecodeError) as exc:
        raise UnknownMessage(f"cannot search for message {cid}: {exc}") from None
    msg = _unsigned(chain_msg)
    found = executed_in(sm, head, cid, msg, allow_replaced)
    if found is not None:
        return MsgLookup(found[1], found[0], head)

    cur = head
    cur_actor = _actor(sm, msg.from_, cur)
    if cur_actor is None:
        return None  # the sender does not exist yet: nothing of it was executed
    sender = sm.lookup_id(msg.from_, cur)
    floor = head.height - limit
    while True:
        if cur.height == 0 or (limit != LOOKBACK_NO_LIMIT and cur.height <= floor):
            return None
        if cur_actor is None or cur_actor.nonce == 0 or cur_actor.nonce < msg.nonce:
            return None
        parent = sm.chain.load_tipset(cur.parents)
        parent_actor = _actor(sm, sender, parent)
        if parent_actor is None or (cur_actor.nonce > msg.nonce and parent_actor.nonce <= msg.nonce):
            found = executed_in(sm, cur, cid, msg, allow_replaced)
            if found is not None:
                return MsgLookup(found[1], found[0], cur)
        cur, cur_actor = parent, parent_actor
