"""Funding a channel (lotus paychmgr/simple.go): what each queued request of a pair gets, the create
and add-funds messages, and what became of them.

The requests waiting on a pair are processed together, in Lotus's order: off-chain ones first, then the
other reserving ones, then the non-reserving ones, smaller amounts first within each. With no channel,
one init.Exec of the payment channel actor creates it with the sum of the requests; with a message in
flight, every request waits; otherwise reserving requests are filled from the non-reserved funds where
they fit, and one plain send adds the rest. Each function here is synchronous (store, state, message
pool): the manager runs them in a worker thread, holding the pair's lock.
"""

from dataclasses import dataclass, replace

import structlog

from actors import builtin
from actors.dispatch import METHOD_SEND, encode_params
from actors.init.types import ExecParams, ExecReturn, InitMethod
from actors.paych.types import ConstructorParams
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.mpool.push import message_to_push
from chain.stmgr.search import MsgLookup
from chain.types.address import Address
from chain.types.fil import format_fil_unitless
from node.markets.paych_chain import ChainView, PaychNode, channel_state, push
from node.markets.paych_store import ChannelRecord, MessageRecord, PaychStore, new_channel_id
from node.markets.paych_types import ChannelInfo, Direction, PaychError

_log = structlog.get_logger(__name__)


@dataclass(eq=False)
class FundsRequest:
    """A PaychGet (reserve) or PaychFund (not) waiting on its pair; outcome set once processed."""

    amount: int
    reserve: bool
    off_chain: bool
    outcome: ChannelInfo | PaychError | None = None

    def order(self) -> tuple[bool, bool, int]:
        return (not self.off_chain, not self.reserve, self.amount)


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A create or add-funds message whose landing the manager waits for."""

    from_: Address
    to: Address
    channel_id: str
    message: CID


Outcomes = dict[FundsRequest, ChannelInfo | PaychError]


def _add_funds_hint(from_: Address, to: Address, amount: int) -> str:
    return f"'filpy paych add-funds {from_} {to} {format_fil_unitless(amount)}'"


def outbound_active(node: PaychNode, store: PaychStore, from_: Address, to: Address) -> ChannelRecord | None:
    """Our channel from `from_` to `to` that is not settling (lotus OutboundActiveByFromTo)."""
    view: ChainView | None = None
    for rec in store.channels():
        if rec.direction != Direction.OUTBOUND or rec.settling or (rec.control, rec.target) != (from_, to):
            continue
        if rec.channel is not None:
            view = view or ChainView.of(node)
            found = channel_state(view, rec.channel)
            if found is None or found.state.settling_at != 0:
                continue
        return rec
    return None


def process_requests(
    node: PaychNode, store: PaychStore, from_: Address, to: Address, requests: list[FundsRequest]
) -> tuple[Outcomes, SentMessage | None]:
    """What each request (in FundsRequest.order) gets now, none for those that wait; and the message
    sent, if one was (lotus processTask)."""
    outcomes: Outcomes = {}
    rec = outbound_active(node, store, from_, to)
    if rec is None:
        for r in requests:
            if r.off_chain:
                outcomes[r] = PaychError(
                    f"payment channel doesn't exist, create with {_add_funds_hint(from_, to, r.amount)}"
                )
        rest = [r for r in requests if r not in outcomes]
        return outcomes, (_create(node, store, from_, to, rest, outcomes) if rest else None)
    if rec.wait_sentinel is not None:
        return outcomes, None  # behind the message in flight
    channel = rec.channel
    assert channel is not None
    used = 0
    for r in requests:
        if not r.reserve:
            break  # non-reserving requests come last: they always go to the chain
        if r.amount > rec.available_amount - used:
            if r.off_chain:
                outcomes[r] = PaychError(
                    f"not enough funds available in the payment channel {channel}; "
                    f"add funds with {_add_funds_hint(from_, to, r.amount)}"
                )
                continue
            break
        used += r.amount
        outcomes[r] = ChannelInfo(channel, None)
    rest = [r for r in requests if r not in outcomes]
    amount = sum(r.amount for r in rest)
    if amount == 0:
        for r in rest:
            outcomes[r] = ChannelInfo(channel, None)
        rest = []
    rec = replace(rec, available_amount=rec.available_amount - used)
    if not rest:
        if used:
            with store.change() as change:
                change.put_channel(rec)
        return outcomes, None
    non_reserved = sum(r.amount for r in rest if not r.reserve)
    try:
        signed = push(node, message_to_push(channel, from_, value=amount, method=METHOD_SEND), "adding funds")
    except PaychError as exc:
        for r in rest:
            outcomes[r] = exc
        with store.change() as change:
            change.put_channel(rec)  # what was reserved stays reserved
        return outcomes, None
    mcid = signed.cid()
    rec = replace(rec, pending_amount=amount, pending_available_amount=non_reserved, add_funds_msg=mcid)
    with store.change() as change:
        change.put_message(MessageRecord(rec.channel_id, mcid))
        change.put_channel(rec)
    for r in rest:
        outcomes[r] = ChannelInfo(channel, mcid)
    _log.info("paych adding funds", channel=str(channel), amount=amount, message=str(mcid))
    return outcomes, SentMessage(from_, to, rec.channel_id, mcid)


def _create(
    node: PaychNode,
    store: PaychStore,
    from_: Address,
    to: Address,
    requests: list[FundsRequest],
    outcomes: Outcomes,
) -> SentMessage | None:
    """Send init.Exec of a new channel for the requests' sum and record it (lotus createPaych)."""
    amount = sum(r.amount for r in requests)
    non_reserved = sum(r.amount for r in requests if not r.reserve)
    exec_params = ExecParams(builtin.PAYCH_ACTOR_CODE, encode_params(ConstructorParams(from_, to)))
    msg = message_to_push(
        builtin.INIT_ACTOR_ADDR, from_, value=amount, method=InitMethod.Exec, params=exec_params
    )
    try:
        signed = push(node, msg, "initializing paych actor")
    except PaychError as exc:
        for r in requests:
            outcomes[r] = exc
        return None
    mcid = signed.cid()
    rec = ChannelRecord(
        channel_id=new_channel_id(),
        channel=None,
        control=from_,
        target=to,
        direction=Direction.OUTBOUND,
        pending_amount=amount,
        pending_available_amount=non_reserved,
        create_msg=mcid,
    )
    with store.change() as change:
        change.put_channel(rec)
        change.put_message(MessageRecord(rec.channel_id, mcid))
    for r in requests:
        outcomes[r] = ChannelInfo(None, mcid)
    _log.info("paych creating channel", from_=str(from_), to=str(to), amount=amount, message=str(mcid))
    return SentMessage(from_, to, rec.channel_id, mcid)


def pending_messages(store: PaychStore) -> list[SentMessage]:
    """The create and add-funds messages the store marks as in flight (sent before a restart)."""
    return [
        SentMessage(rec.from_, rec.to, rec.channel_id, rec.wait_sentinel)
        for rec in store.channels()
        if rec.direction == Direction.OUTBOUND and rec.wait_sentinel is not None
    ]


def record_landing(store: PaychStore, sent: SentMessage, lookup: MsgLookup | None, error: str) -> None:
    """Record what became of a create or add-funds message (lotus waitPaychCreateMsg,
    waitAddFundsMsg): channel and message records in one batch. lookup is None when the message could
    not be followed (error says why)."""
    msg = store.message(sent.message)
    if msg is None or msg.received:
        return
    rec = store.channel(sent.channel_id)
    code = None if lookup is None else lookup.receipt.exit_code
    with store.change() as change:
        if rec is None:
            error = error or f"payment channel record {sent.channel_id} is gone"
        elif rec.create_msg == sent.message:
            robust = None
            if lookup is not None and code == 0:
                try:
                    robust = ExecReturn.from_bytes(lookup.receipt.return_data).robust_address
                except DecodeError as exc:
                    error = f"payment channel creation returned an unreadable address: {exc}"
            elif not error:
                error = f"payment channel creation failed (exit code {code})"
            if robust is None:
                change.remove_channel(rec)
            else:
                change.put_channel(
                    replace(
                        rec,
                        channel=robust,
                        amount=rec.pending_amount,
                        available_amount=rec.pending_available_amount,
                        pending_amount=0,
                        pending_available_amount=0,
                        create_msg=None,
                    )
                )
        elif rec.add_funds_msg == sent.message:
            landed = lookup is not None and code == 0
            if not landed and not error:
                error = f"voucher channel creation failed: adding funds (exit code {code})"
            added, made_available = (rec.pending_amount, rec.pending_available_amount) if landed else (0, 0)
            change.put_channel(
                replace(
                    rec,
                    amount=rec.amount + added,
                    available_amount=rec.available_amount + made_available,
                    pending_amount=0,
                    pending_available_amount=0,
                    add_funds_msg=None,
                )
            )
        change.put_message(replace(msg, received=True, error=error))
    if error:
        _log.error("paych message failed", message=str(sent.message), error=error)
    else:
        _log.info("paych message landed", message=str(sent.message), channel_id=sent.channel_id)
