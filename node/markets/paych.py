"""The payment-channel manager: Lotus's paychmgr (manager.go, simple.go, paych.go) over filpy's node.

Channels are kept per (from, to) pair: `outbound` ones this node pays through (it funds them and signs
vouchers), `inbound` ones it is paid through (it checks, stores and redeems vouchers). Records and
vouchers live in a `PaychStore` (node/markets/paych_store.py); every change is one write batch.

Funding (PaychGet, PaychFund). A request for an amount is queued on its pair, and the queue is
processed as Lotus does (node/markets/paych_funds.py): with no channel, one init.Exec of the payment
channel actor creates it; with a channel, reserving requests are filled from its non-reserved funds where
they can be, and one plain send adds the rest. While a create or add-funds message is in flight, later
requests wait behind it and are merged into the next message instead of sending one each. The answer
carries the message to wait for (`WaitSentinel`); PaychGetWaitReady waits until that message has
`confidence` tipsets on top of it (Lotus's MessageConfidence, 5).

Waiting is the manager's service (`run`): it follows each sent message with the node's `wait_msg` and
records the outcome (the channel's robust address from the init actor's return, the confirmed amounts,
or the failure), then wakes whoever waits on the pair. A restarted node takes up the messages its store
still marks as pending.

Vouchers. Amounts are cumulative per lane; a voucher is checked against the channel's state after the
head (signature by the From key, lane and nonce, the balance against every lane's redeemed amount,
node/markets/paych_vouchers.py) before it is stored or signed. PaychVoucherCheckSpendable applies
UpdateChannelState as a state call, condition included: a voucher whose Extra names a method that needs
the redeemer's proof (the miner's VerifyPieceInclusion) is spendable only with that proof, which
PaychVoucherAdd stores with the voucher and PaychVoucherSubmit sends in the message's third field.

Where filpy differs from Lotus: conditional vouchers (Extra), time-locked and hash-locked ones are
accepted by the validity check (Lotus refuses them there), and a proof is accepted and used rather than
refused; an expired voucher (TimeLockMax passed) is refused. Everything else keeps Lotus's rules and, where
Lotus has them, its words.
"""

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, TypeVar

import structlog
import trio

from actors.paych.types import (
    LaneState,
    PaychMethod,
    SignedVoucher,
    UpdateChannelStateParams,
)
from chain.encoding.cid import CID
from chain.mpool.push import message_to_push
from chain.stmgr.search import MsgLookup, UnknownMessage
from chain.types.address import Address
from node.daemon import TaskStatus
from node.markets.paych_chain import (
    ChainView,
    ChannelState,
    PaychNode,
    channel_state,
    key_of,
    must_channel_state,
    push,
)
from node.markets.paych_funds import (
    FundsRequest,
    SentMessage,
    outbound_active,
    pending_messages,
    process_requests,
    record_landing,
)
from node.markets.paych_store import ChannelRecord, PaychStore, VoucherRecord, new_channel_id
from node.markets.paych_types import (
    ChannelAvailableFunds,
    ChannelInfo,
    ChannelNotTracked,
    Direction,
    InsufficientFunds,
    PaychError,
    PaychStatus,
    PaymentInfo,
    VoucherCreateResult,
    VoucherSpec,
)
from node.markets.paych_vouchers import (
    best_by_lane,
    check_voucher,
    lanes_with_vouchers,
    next_nonce,
    total_redeemed,
)
from node.pulse import Pulse
from node.wallet import WalletError

T = TypeVar("T")
_log = structlog.get_logger(__name__)

# Tipsets on top of a create or add-funds message before the manager counts on it (lotus
# buildconstants.MessageConfidence).
MESSAGE_CONFIDENCE: Final = 5


@dataclass(eq=False)
class _Pair:
    """A (from, to) pair's lock, funds queue, and the pulse fired whenever one of its messages lands."""

    from_: Address
    to: Address
    lock: trio.Lock = field(default_factory=trio.Lock)
    queue: list[FundsRequest] = field(default_factory=list)
    changed: Pulse = field(default_factory=Pulse)

    def queued_amount(self) -> int:
        return sum(r.amount for r in self.queue if r.outcome is None)


class PaychManager:
    """See the module doc. Every method is a coroutine for the trio loop; store and chain work runs in
    the node's worker threads, under the pair's lock wherever a channel's records change."""

    name = "paych"

    def __init__(self, node: PaychNode, store: PaychStore, *, confidence: int = MESSAGE_CONFIDENCE) -> None:
        self.node = node
        self.store = store
        self.confidence = confidence
        self._pairs: dict[tuple[Address, Address], _Pair] = {}
        self._track_lock = trio.Lock()
        self._sent_send, self._sent_recv = trio.open_memory_channel[SentMessage](math.inf)

    # -- the service: waiting for create and add-funds messages --------------------------------------------
    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        """Follow every create or add-funds message to its outcome; the ones the store marks as
        pending (sent before a restart) first."""
        async with trio.open_nursery() as nursery:
            pending = await self.node.run_sync(pending_messages, self.store)
            for sent in pending:
                nursery.start_soon(self._follow, sent)
            if pending:
                _log.info("paych resumed waiting for messages", count=len(pending))
            task_status.started()
            async for sent in self._sent_recv:
                nursery.start_soon(self._follow, sent)

    async def _follow(self, sent: SentMessage) -> None:
        lookup: MsgLookup | None = None
        error = ""
        try:
            lookup = await self.node.wait_msg(sent.message, self.confidence)
        except UnknownMessage:
            error = f"message {sent.message} is unknown to this node"
        pair = self._pair(sent.from_, sent.to)
        async with pair.lock:
            await self.node.run_sync(record_landing, self.store, sent, lookup, error)
        pair.changed.fire()

    # -- helpers -----------------------------------------------------------------------------------------
    def _pair(self, from_: Address, to: Address) -> _Pair:
        key = (from_, to)
        pair = self._pairs.get(key)
        if pair is None:
            pair = self._pairs[key] = _Pair(from_, to)
        return pair

    def _normalize_sync(self, from_: Address, to: Address) -> tuple[Address, Address]:
        """The pair as key addresses (an ID address resolved through its account), so that one pair
        is one pair however its parties are written."""
        view = ChainView.of(self.node)

        def key(address: Address) -> Address:
            return address if address.is_key_address() else key_of(view, address)

        return key(from_), key(to)

    def _tracked_sync(self, channel: Address) -> ChannelRecord:
        rec = self.store.by_address(channel)
        if rec is None:
            raise ChannelNotTracked(channel)
        return rec

    async def _tracked(self, channel: Address) -> tuple[ChannelRecord, _Pair]:
        rec = await self.node.run_sync(self._tracked_sync, channel)
        return rec, self._pair(rec.from_, rec.to)

    async def _locked(self, channel: Address, fn: Callable[..., T], *args: object) -> T:
        """fn(record, *args) in a worker thread, holding the channel's pair lock; the record is read
        again under the lock."""
        _, pair = await self._tracked(channel)
        async with pair.lock:
            return await self.node.run_sync(lambda: fn(self._tracked_sync(channel), *args))

    # -- funds: PaychGet, PaychFund --------------------------------------------------------------------
    async def get_paych(
        self, from_: Address, to: Address, amount: int, *, reserve: bool = True, off_chain: bool = False
    ) -> ChannelInfo:
        """The channel from `from_` to `to` with `amount` more for us to use: created or funded by a
        message when needed (Lotus GetPaych). reserve=True (PaychGet) sets the amount aside for the
        caller; reserve=False (PaychFund) adds it as non-reserved funds. off_chain=True sends nothing
        and fails unless funds already in the channel cover the amount."""
        if off_chain and not reserve:
            raise PaychError("can't fund payment channels without on-chain operations")
        if amount < 0:
            raise PaychError(f"amount must not be negative, got {amount}")
        from_, to = await self.node.run_sync(self._normalize_sync, from_, to)
        pair = self._pair(from_, to)
        request = FundsRequest(amount, reserve, off_chain)
        pair.queue.append(request)
        try:
            while request.outcome is None:
                changed = pair.changed.next
                async with pair.lock:
                    if request.outcome is None:
                        await self._process_queue(pair)
                if request.outcome is None:
                    await changed.wait()
        finally:
            with contextlib.suppress(ValueError):
                pair.queue.remove(request)
        if isinstance(request.outcome, PaychError):
            raise request.outcome
        return request.outcome

    async def fund(self, from_: Address, to: Address, amount: int) -> ChannelInfo:
        """PaychFund: add amount to the channel (created if needed) as non-reserved funds."""
        return await self.get_paych(from_, to, amount, reserve=False)

    async def _process_queue(self, pair: _Pair) -> None:
        requests = sorted((r for r in pair.queue if r.outcome is None), key=FundsRequest.order)
        if not requests:
            return
        outcomes, sent = await self.node.run_sync(
            process_requests, self.node, self.store, pair.from_, pair.to, requests
        )
        for request, outcome in outcomes.items():
            request.outcome = outcome
            with contextlib.suppress(ValueError):
                pair.queue.remove(request)
        if sent is not None:
            self._sent_send.send_nowait(sent)

    async def get_wait_ready(self, sentinel: CID) -> Address:
        """The channel once the create or add-funds message `sentinel` has landed with enough
        confidence; its failure, if it failed (Lotus GetPaychWaitReady)."""
        msg = await self.node.run_sync(self.store.message, sentinel)
        if msg is None:
            raise PaychError(f"Could not find wait msg cid {sentinel}")
        rec = await self.node.run_sync(self.store.channel, msg.channel_id)
        if rec is None:
            raise PaychError(msg.error or f"the channel of message {sentinel} is no longer tracked")
        pair = self._pair(rec.from_, rec.to)
        while True:
            changed = pair.changed.next
            msg = await self.node.run_sync(self.store.message, sentinel)
            assert msg is not None
            if msg.error:
                raise PaychError(msg.error)
            if msg.received:
                rec = await self.node.run_sync(self.store.channel, msg.channel_id)
                if rec is None or rec.channel is None:
                    raise PaychError(f"message {sentinel} landed but its channel is not tracked")
                return rec.channel
            await changed.wait()

    # -- what a channel holds ------------------------------------------------------------------------------
    async def available_funds(self, channel: Address) -> ChannelAvailableFunds:
        """PaychAvailableFunds."""
        rec, pair = await self._tracked(channel)
        return await self.node.run_sync(self._funds_sync, rec.channel_id, pair.queued_amount())

    async def available_funds_by_from_to(self, from_: Address, to: Address) -> ChannelAvailableFunds:
        """PaychAvailableFundsByFromTo: all zeros and no channel when there is no active one."""
        from_, to = await self.node.run_sync(self._normalize_sync, from_, to)
        pair = self._pair(from_, to)
        rec = await self.node.run_sync(outbound_active, self.node, self.store, from_, to)
        if rec is None:
            return ChannelAvailableFunds(channel=None, from_=from_, to=to)
        return await self.node.run_sync(self._funds_sync, rec.channel_id, pair.queued_amount())

    def _funds_sync(self, channel_id: str, queued: int) -> ChannelAvailableFunds:
        rec = self.store.channel(channel_id)
        if rec is None:
            raise PaychError(f"payment channel record {channel_id} is gone")
        redeemed = 0
        if rec.channel is not None:
            found = channel_state(ChainView.of(self.node), rec.channel)
            on_chain = {} if found is None else found.lanes
            stored = [v.voucher for v in self.store.vouchers(channel_id)]
            redeemed = total_redeemed(lanes_with_vouchers(on_chain, stored))
        return ChannelAvailableFunds(
            channel=rec.channel,
            from_=rec.from_,
            to=rec.to,
            confirmed_amt=rec.amount,
            pending_amt=rec.pending_amount,
            non_reserved_amt=rec.available_amount,
            pending_available_amt=rec.pending_available_amount,
            pending_wait_sentinel=rec.wait_sentinel,
            queued_amt=queued,
            voucher_reedeemed_amt=redeemed,
        )

    async def list_channels(self) -> list[Address]:
        """PaychList: every tracked channel whose address is known."""
        records = await self.node.run_sync(self.store.channels)
        return [rec.channel for rec in records if rec.channel is not None]

    async def status(self, channel: Address) -> PaychStatus:
        """PaychStatus: our address on the channel and its direction."""
        rec, _ = await self._tracked(channel)
        return PaychStatus(rec.control, rec.direction)

    async def channel_state(self, channel: Address) -> ChannelState | None:
        """The channel actor after the head (None when it does not exist)."""
        return await self.node.run_sync(lambda: channel_state(ChainView.of(self.node), channel))

    async def allocate_lane(self, channel: Address) -> int:
        """PaychAllocateLane: a lane no voucher of ours uses yet."""
        return await self._locked(channel, self._allocate_lane_sync)

    def _allocate_lane_sync(self, rec: ChannelRecord) -> int:
        with self.store.change() as change:
            change.put_channel(replace(rec, next_lane=rec.next_lane + 1))
        return rec.next_lane

    async def new_payment(self, from_: Address, to: Address, specs: Sequence[VoucherSpec]) -> PaymentInfo:
        """PaychNewPayment: reserve the last voucher's amount, take a new lane, sign the vouchers on it.
        Unlike Lotus, a create or add-funds message sent for it is waited for first, so that the
        channel exists and holds the funds the vouchers need."""
        if not specs:
            raise PaychError("PaychNewPayment needs at least one voucher")
        got = await self.get_paych(from_, to, specs[-1].amount)
        channel = got.channel
        if got.wait_sentinel is not None:
            channel = await self.get_wait_ready(got.wait_sentinel)
        assert channel is not None
        lane = await self.allocate_lane(channel)
        vouchers = []
        for spec in specs:
            made = await self.create_voucher(channel, spec, lane)
            if made.voucher is None:
                raise PaychError(f"Could not create voucher - shortfall of {made.shortfall}")
            vouchers.append(made.voucher)
        return PaymentInfo(channel, got.wait_sentinel, tuple(vouchers))

    # -- vouchers ----------------------------------------------------------------------------------------
    async def create_voucher(self, channel: Address, spec: VoucherSpec, lane: int) -> VoucherCreateResult:
        """PaychVoucherCreate (with VoucherSpec's locks and condition): sign a voucher for spec.amount
        in total on lane, with the lane's next nonce, and store it; no voucher and the shortfall when
        the channel's balance does not cover it."""
        return await self._locked(channel, self._create_voucher_sync, spec, lane)

    def _create_voucher_sync(self, rec: ChannelRecord, spec: VoucherSpec, lane: int) -> VoucherCreateResult:
        if rec.direction != Direction.OUTBOUND or rec.channel is None:
            raise PaychError(f"cannot create vouchers on {rec.channel}: this node is not the channel's payer")
        stored = [v.voucher for v in self.store.vouchers(rec.channel_id)]
        sv = SignedVoucher(
            channel_addr=rec.channel,
            time_lock_min=spec.time_lock_min,
            time_lock_max=spec.time_lock_max,
            secret_hash=b"",
            extra=spec.extra,
            lane=lane,
            nonce=next_nonce(stored, lane),
            amount=spec.amount,
            min_settle_height=spec.min_settle,
        )
        try:
            sv = replace(sv, signature=self.node.wallet.sign(rec.control, sv.signing_bytes()))
        except WalletError as exc:
            raise PaychError(f"failed to sign voucher: {exc}") from None
        try:
            self._add_voucher_sync(rec, sv, b"", 0)
        except InsufficientFunds as exc:
            return VoucherCreateResult(None, exc.shortfall)
        except PaychError as exc:
            raise PaychError(f"failed to persist voucher: {exc}") from None
        return VoucherCreateResult(sv, 0)

    async def create_voucher_for_more(self, channel: Address, lane: int, more: int) -> VoucherCreateResult:
        """A voucher paying `more` on top of what the lane holds already (the highest of our stored
        vouchers and the chain's lane): what a payer streaming payments for data asks for."""
        if more <= 0:
            raise PaychError(f"a voucher must add a positive amount, got {more}")
        return await self._locked(channel, self._create_voucher_for_more_sync, lane, more)

    def _create_voucher_for_more_sync(self, rec: ChannelRecord, lane: int, more: int) -> VoucherCreateResult:
        held = max(
            (v.voucher.amount for v in self.store.vouchers(rec.channel_id) if v.voucher.lane == lane),
            default=0,
        )
        on_chain = 0
        if rec.channel is not None:
            found = channel_state(ChainView.of(self.node), rec.channel)
            state = None if found is None else found.lanes.get(lane)
            on_chain = 0 if state is None else state.redeemed
        return self._create_voucher_sync(rec, VoucherSpec(amount=max(held, on_chain) + more), lane)

    async def _inbound(self, channel: Address) -> ChannelRecord:
        """The channel's record; an untracked channel is tracked as inbound from the chain when our
        wallet holds its To key (lotus trackInboundChannel)."""
        async with self._track_lock:
            return await self.node.run_sync(self._track_inbound_sync, channel)

    def _track_inbound_sync(self, channel: Address) -> ChannelRecord:
        rec = self.store.by_address(channel)
        if rec is not None:
            return rec
        view = ChainView.of(self.node)
        found = must_channel_state(view, channel)
        from_key = key_of(view, found.state.from_)
        to_key = key_of(view, found.state.to)
        if not self.node.wallet.has(to_key):
            raise PaychError(
                f"cannot add voucher for channel {channel}: wallet does not have key for address {to_key}"
            )
        rec = ChannelRecord(
            channel_id=new_channel_id(),
            channel=channel,
            control=to_key,
            target=from_key,
            direction=Direction.INBOUND,
            next_lane=max(found.lanes, default=-1) + 1,
        )
        with self.store.change() as change:
            change.put_channel(rec)
        _log.info("paych tracking inbound channel", channel=str(channel), from_=str(from_key))
        return rec

    async def pays_to(self, channel: Address, recipient: Address) -> bool:
        """Whether the channel on chain pays recipient (its To is the same actor); PaychError if there
        is no such channel."""
        return await self.node.run_sync(self._pays_to_sync, channel, recipient)

    def _pays_to_sync(self, channel: Address, recipient: Address) -> bool:
        view = ChainView.of(self.node)
        to = must_channel_state(view, channel).state.to
        return key_of(view, to) == key_of(view, recipient)

    async def check_voucher_valid(self, channel: Address, sv: SignedVoucher) -> None:
        """PaychVoucherCheckValid: raise VoucherInvalid unless the voucher could be redeemed (now or
        once its locks open). Tracks an unknown channel paying us, as Lotus does."""
        rec = await self._inbound(channel)
        pair = self._pair(rec.from_, rec.to)
        async with pair.lock:
            await self.node.run_sync(self._check_valid_sync, rec, sv)

    def _check_valid_sync(self, rec: ChannelRecord, sv: SignedVoucher) -> dict[int, LaneState]:
        """The channel's lanes (chain and stored) after checking sv against them."""
        assert rec.channel is not None
        view = ChainView.of(self.node)
        same = sv.channel_addr == rec.channel
        if not same and view.tree.lookup_id(sv.channel_addr) != view.tree.lookup_id(rec.channel):
            raise PaychError(
                "voucher ChannelAddr doesn't match channel address, "
                f"got {sv.channel_addr}, expected {rec.channel}"
            )
        found = must_channel_state(view, rec.channel)
        signer = key_of(view, found.state.from_)
        stored = [v.voucher for v in self.store.vouchers(rec.channel_id)]
        lanes = lanes_with_vouchers(found.lanes, stored)
        check_voucher(sv, signer=signer, balance=found.actor.balance, lanes=lanes, height=view.next_epoch)
        return lanes

    async def add_voucher(self, channel: Address, sv: SignedVoucher, proof: bytes, min_delta: int) -> int:
        """PaychVoucherAdd: check and store a voucher paying us; what it adds over its lane's amount.
        `proof` is kept for the voucher's condition (used when checking and submitting it)."""
        rec = await self._inbound(channel)
        pair = self._pair(rec.from_, rec.to)
        async with pair.lock:
            return await self.node.run_sync(
                lambda: self._add_voucher_sync(self._tracked_sync(channel), sv, proof, min_delta)
            )

    def _add_voucher_sync(self, rec: ChannelRecord, sv: SignedVoucher, proof: bytes, min_delta: int) -> int:
        held = self.store.voucher(rec.channel_id, sv)
        if held is not None and held.voucher == sv:
            _log.warning("paych voucher re-added", channel=str(rec.channel), lane=sv.lane, nonce=sv.nonce)
            if proof and proof != held.proof:  # a proof given again replaces the one kept
                with self.store.change() as change:
                    change.put_voucher(rec.channel_id, replace(held, proof=proof))
            return 0
        lanes = self._check_valid_sync(rec, sv)
        lane = lanes.get(sv.lane)
        redeemed = 0 if lane is None else lane.redeemed
        delta = sv.amount - redeemed
        if min_delta > delta:
            raise PaychError(
                f"addVoucher: supplied token amount too low; minD={min_delta}, D={delta}; "
                f"laneAmt={redeemed}; v.Amt={sv.amount}"
            )
        with self.store.change() as change:
            change.put_voucher(rec.channel_id, VoucherRecord(sv, proof))
            if rec.next_lane <= sv.lane:
                change.put_channel(replace(rec, next_lane=sv.lane + 1))
        return delta

    async def list_vouchers(self, channel: Address) -> list[VoucherRecord]:
        """The channel's stored vouchers, with their proofs and submitted flags (lane, nonce order)."""
        rec, _ = await self._tracked(channel)
        return await self.node.run_sync(self.store.vouchers, rec.channel_id)

    async def check_voucher_spendable(
        self, channel: Address, sv: SignedVoucher, secret: bytes, proof: bytes
    ) -> bool:
        """PaychVoucherCheckSpendable: whether UpdateChannelState with this voucher would succeed now,
        run as a state call from the channel's To; false once submitted. Without a proof, the one
        stored with the voucher is used."""
        return await self._locked(channel, self._spendable_sync, sv, secret, proof)

    async def stored_voucher(self, channel: Address, sv: SignedVoucher) -> VoucherRecord | None:
        """The voucher as the channel's store holds it (with its proof and submitted flag), if it does."""
        rec, _ = await self._tracked(channel)
        return await self.node.run_sync(self._stored_voucher, rec, sv)

    def _stored_voucher(self, rec: ChannelRecord, sv: SignedVoucher) -> VoucherRecord | None:
        held = self.store.voucher(rec.channel_id, sv)
        return held if held is not None and held.voucher == sv else None

    def _spendable_sync(self, rec: ChannelRecord, sv: SignedVoucher, secret: bytes, proof: bytes) -> bool:
        held = self._stored_voucher(rec, sv)
        if held is None:
            raise PaychError("cannot submit voucher that has not been added to channel")
        if held.submitted:
            return False
        assert rec.channel is not None
        view = ChainView.of(self.node)
        found = must_channel_state(view, rec.channel)
        recipient = key_of(view, found.state.to)
        params = UpdateChannelStateParams(sv, secret, (proof or held.proof) or None)
        msg = message_to_push(rec.channel, recipient, method=PaychMethod.UpdateChannelState, params=params)
        return self.node.state.call(msg, view.head).receipt.exit_code == 0

    async def best_spendable_by_lane(self, channel: Address) -> dict[int, SignedVoucher]:
        """The spendable stored voucher of the highest amount on each lane (lotus BestSpendableByLane)."""
        return await self._locked(channel, self._best_spendable_sync)

    def _best_spendable_sync(self, rec: ChannelRecord) -> dict[int, SignedVoucher]:
        spendable = [
            held.voucher
            for held in self.store.vouchers(rec.channel_id)
            if not held.submitted and self._spendable_sync(rec, held.voucher, b"", b"")
        ]
        return best_by_lane(spendable)

    async def submit_voucher(self, channel: Address, sv: SignedVoucher, secret: bytes, proof: bytes) -> CID:
        """PaychVoucherSubmit: send UpdateChannelState with the voucher (and the secret, and the proof
        for its condition: the one given, else the one stored with it); the voucher and the lower ones of
        its lane are marked submitted."""
        return await self._locked(channel, self._submit_sync, sv, secret, proof)

    def _submit_sync(self, rec: ChannelRecord, sv: SignedVoucher, secret: bytes, proof: bytes) -> CID:
        assert rec.channel is not None
        held = self._stored_voucher(rec, sv)
        if held is not None and held.submitted:
            raise PaychError("cannot submit voucher that has already been submitted")
        proof = proof or (held.proof if held is not None else b"")
        params = UpdateChannelStateParams(sv, secret, proof or None)
        # The channel checks the voucher's signature against the party that did not send the message, so
        # our own vouchers on an outbound channel are redeemed from its To: possible when this node holds
        # that key too (a client retrieving from its own provider, as on a single-node devnet).
        sender = rec.control
        if rec.direction == Direction.OUTBOUND and self.node.wallet.has(rec.target):
            sender = rec.target
        msg = message_to_push(rec.channel, sender, method=PaychMethod.UpdateChannelState, params=params)
        signed = push(self.node, msg, "submitting voucher")
        with self.store.change() as change:
            change.put_voucher(rec.channel_id, VoucherRecord(sv, proof, submitted=True))
            for other in self.store.vouchers(rec.channel_id):
                if other.voucher.lane == sv.lane and other.voucher.nonce < sv.nonce and not other.submitted:
                    change.put_voucher(rec.channel_id, replace(other, submitted=True))
        _log.info("paych voucher submitted", channel=str(rec.channel), lane=sv.lane, amount=sv.amount)
        return signed.cid()

    # -- settling and collecting --------------------------------------------------------------------------
    async def settle(self, channel: Address) -> CID:
        """PaychSettle: start the channel's settling period."""
        return await self._locked(channel, self._settle_sync)

    def _settle_sync(self, rec: ChannelRecord) -> CID:
        assert rec.channel is not None
        signed = push(
            self.node,
            message_to_push(rec.channel, rec.control, method=PaychMethod.Settle),
            "settling channel",
        )
        with self.store.change() as change:
            change.put_channel(replace(rec, settling=True))
        return signed.cid()

    async def collect(self, channel: Address) -> CID:
        """PaychCollect: after the settling period, pay out what the vouchers redeemed and close it."""
        return await self._locked(channel, self._collect_sync)

    def _collect_sync(self, rec: ChannelRecord) -> CID:
        assert rec.channel is not None
        return push(
            self.node,
            message_to_push(rec.channel, rec.control, method=PaychMethod.Collect),
            "collecting channel",
        ).cid()

    async def settling_inbound(self) -> list[tuple[Address, int]]:
        """The inbound channels settling on chain whose settle height the chain has not reached: each
        with that height (what the settler acts on)."""
        return await self.node.run_sync(self._settling_inbound_sync)

    def _settling_inbound_sync(self) -> list[tuple[Address, int]]:
        view: ChainView | None = None
        out = []
        for rec in self.store.channels():
            if rec.direction != Direction.INBOUND or rec.channel is None:
                continue
            view = view or ChainView.of(self.node)
            found = channel_state(view, rec.channel)
            if found is None:
                continue
            settling_at = found.state.settling_at
            if settling_at != 0 and view.next_epoch < settling_at:
                out.append((rec.channel, settling_at))
        return out
