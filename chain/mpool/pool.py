"""The message pool (lotus chain/messagepool/messagepool.go, pruning.go).

Pending messages are kept per sender, keyed by the sender's key address (an ID sender is resolved
through the state), by nonce. `add` runs Lotus's checks in Lotus's order and either inserts the message
or raises an MpoolError saying why, leaving the pool as it was:

1. stateless: size (Policy.max_message_size), syntax (Message.validate_for_block_inclusion), fee cap
   at least the minimum base fee, signature (against the sender's key address);
2. against the state after the pool's tipset: the sender exists and is an account, the nonce is not
   below its state nonce, the gas limit covers storing the message (OnChainMessage), the fee cap is
   not far under the base fee (a message from the network is refused under 1/100 of it; a local one
   is kept but not published), the balance covers this message and, with the sender's other pending
   messages, all of them (value + GasFeeCap * GasLimit each);
3. against the sender's pending messages: a nonce at most max_nonce_gap past the next expected one, at
   most max_pending_per_actor messages, the same nonce only as a replacement paying at least
   replace_by_fee_percent of the GasPremium, never the same message twice.

Lotus checks the nonce gap only for messages from the network; filpy checks it for local pushes too,
so that a client that skips nonces hears about it at once.

The pool follows the head through `head_change` (the chain store's on_head_change callback): messages
of applied tipsets leave it, messages of reverted tipsets come back (without checks, as Lotus), and
messages whose nonce the state has passed are dropped. All methods are synchronous and thread-safe;
state reads may block, so callers on the trio loop use worker threads.
"""

import threading
import time
from collections.abc import Iterable, Sequence
from enum import IntEnum
from typing import Final

import structlog
import trio

from actors import builtin
from chain.chainstore.fanout import Fanout
from chain.chainstore.metadata import MetadataStore
from chain.chainstore.reorg import reorg_ops
from chain.crypto.signature import Signature, SignatureError, SigType
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.schema import LotusJson
from chain.mpool.config import MpoolConfig
from chain.mpool.errors import (
    BaseFeeLowerBound,
    GasFeeCapTooLow,
    InvalidMessage,
    InvalidSignature,
    MessageTooBig,
    MpoolError,
    NonceTooLow,
    NotEnoughFunds,
    SenderInvalid,
)
from chain.mpool.msgset import MsgSet, required_funds
from chain.mpool.provider import ChainAccess, StateAccess
from chain.mpool.selection import message_chains, select_messages
from chain.params import Policy
from chain.state.tree import Actor
from chain.store.lru import Lru
from chain.types.address import Address, Protocol
from chain.types.message import InvalidMessage as MessageRuleBroken
from chain.types.message import Message, SignedMessage
from chain.types.tipset import TipSet, TipSetKey
from chain.vm.gas import PRICES, PriceList

# The base fee may fall by 1/8 per epoch: a fee cap 100x (network) or 10x (pruning) under it cannot be
# included within about 20 epochs (Lotus baseFeeLowerBoundFactor(Conservative)).
BASE_FEE_LOWER_BOUND_FACTOR: Final = 10
BASE_FEE_LOWER_BOUND_FACTOR_CONSERVATIVE: Final = 100
# Lotus MpoolSub buffers 20 updates per subscriber.
SUBSCRIBER_BUFFER: Final = 20
_LOCAL_PREFIX: Final = b"mpool/local/"
_CACHE_SIZE: Final = 32_768
_BLS_SIG_CACHE: Final = 40_000  # Lotus BlsSignatureCacheSize

_log = structlog.get_logger(__name__)


class MpoolChange(IntEnum):
    ADD = 0
    REMOVE = 1


class MpoolUpdate(LotusJson):
    """A message entering (Type 0) or leaving (Type 1) the pool: Lotus api.MpoolUpdate, as MpoolSub
    sends it."""

    type: MpoolChange
    message: SignedMessage


def base_fee_lower_bound(base_fee: int, factor: int, minimum: int) -> int:
    return max(base_fee // factor, minimum)


class MessagePool:
    def __init__(
        self,
        chain: ChainAccess,
        state: StateAccess,
        head: TipSet,
        *,
        policy: Policy,
        config: MpoolConfig | None = None,
        local_store: MetadataStore | None = None,
        prices: PriceList = PRICES,
    ) -> None:
        self._chain = chain
        self._state = state
        self._head = head
        self.policy = policy
        self.config = config or MpoolConfig()
        self._local_store = local_store
        self._prices = prices
        self._lock = threading.RLock()
        self._pending: dict[Address, MsgSet] = {}
        self._size = 0
        self._local: set[Address] = set()
        self._keys: Lru[Address, Address] = Lru(_CACHE_SIZE)
        self._actors: Lru[tuple[TipSetKey, Address], Actor] = Lru(_CACHE_SIZE)
        self._verified: Lru[bytes, bool] = Lru(_CACHE_SIZE)
        self._bls_sigs: Lru[CID, Signature] = Lru(_BLS_SIG_CACHE)
        self._fanout: Fanout[MpoolUpdate] = Fanout("mpool updates")
        self._last_prune = float("-inf")

    # -- the tipset the pool is at ---------------------------------------------------------------------
    @property
    def head(self) -> TipSet:
        return self._head

    @property
    def size(self) -> int:
        return self._size

    # -- state reads (cached per tipset) ------------------------------------------------------------------
    def _key_of(self, address: Address, ts: TipSet) -> Address:
        if address.protocol != Protocol.ID:
            return address
        cached = self._keys.get(address)
        if cached is not None:
            return cached
        key = self._state.resolve_to_key(address, ts)
        if key is None:
            raise SenderInvalid(f"failed to resolve {address} to a key address: no account with a key")
        self._keys.put(address, key)
        return key

    def _actor(self, address: Address, ts: TipSet) -> Actor | None:
        cached = self._actors.get((ts.key, address))
        if cached is not None:
            return cached
        actor = self._state.actor_after(address, ts)
        if actor is not None:
            self._actors.put((ts.key, address), actor)
        return actor

    def _state_nonce(self, address: Address, ts: TipSet) -> int:
        actor = self._actor(address, ts)
        return 0 if actor is None else actor.nonce

    # -- adding ------------------------------------------------------------------------------------------
    def _check_message(self, signed: SignedMessage) -> None:
        """The checks that need no state but the signer's key (Lotus checkMessage)."""
        size = len(signed.to_bytes())
        if size > self.policy.max_message_size:
            raise MessageTooBig(size, self.policy.max_message_size)
        msg = signed.message
        try:
            msg.validate_for_block_inclusion(0)
        except MessageRuleBroken as exc:
            raise InvalidMessage(f"message not valid for block inclusion: {exc}") from None
        if msg.gas_fee_cap < self.policy.minimum_base_fee:
            raise GasFeeCapTooLow(msg.gas_fee_cap, self.policy.minimum_base_fee)
        self._verify_signature(signed)

    def _verify_signature(self, signed: SignedMessage) -> None:
        sig = signed.signature
        cache_key = signed.cid().bytes + (sig.data if sig.type == SigType.BLS else b"")
        with self._lock:
            if self._verified.get(cache_key):
                return
            signer = self._key_of(signed.message.from_, self._head)
        try:
            signed.verify_signature(signer)
        except SignatureError as exc:
            raise InvalidSignature(str(exc)) from None
        with self._lock:
            self._verified.put(cache_key, True)

    def add(self, signed: SignedMessage, *, local: bool = False) -> bool:
        """Check and insert a message, or raise MpoolError. local: pushed by this node's user (kept
        across restarts, never pruned, kept even with a fee cap far under the base fee); otherwise it
        came from the network. Returns whether this node should publish it now: a local message whose
        fee cap meets the base fee lower bound (Lotus publishes the others later)."""
        self._check_message(signed)
        with self._lock:
            publish = self._add_checked(signed, self._head, local)
            if local:
                self._remember_local(signed)
        self._maybe_prune()
        return publish

    def push(self, signed: SignedMessage) -> CID:
        """A message from this node's user (MpoolPush): add(local=True); its CID."""
        self.add(signed, local=True)
        return signed.cid()

    def _add_checked(self, signed: SignedMessage, ts: TipSet, local: bool) -> bool:
        msg = signed.message
        actor = self._actor(msg.from_, ts)
        if actor is None:
            raise SenderInvalid(f"failed to get sender actor: actor {msg.from_} not found")
        if actor.nonce > msg.nonce:
            raise NonceTooLow(actor.nonce, msg.nonce)
        if actor.code != builtin.ACCOUNT_ACTOR_CODE:
            raise SenderInvalid(f"sender actor {msg.from_} is not a valid top-level sender")
        min_gas = self._prices.on_chain_message(signed.chain_length())
        try:
            msg.validate_for_block_inclusion(min_gas)
        except MessageRuleBroken as exc:
            raise InvalidMessage(f"message will not be included in a block: {exc}") from None
        publish = local
        bound = base_fee_lower_bound(
            ts.blocks[0].parent_base_fee,
            BASE_FEE_LOWER_BOUND_FACTOR_CONSERVATIVE,
            self.policy.minimum_base_fee,
        )
        if msg.gas_fee_cap < bound:
            if not local:
                raise BaseFeeLowerBound(msg.gas_fee_cap, bound)
            _log.warning(
                "local message will not be published: fee cap under the base fee lower bound",
                cid=str(signed.cid()),
                fee_cap=msg.gas_fee_cap,
                bound=bound,
            )
            publish = False
        key = self._key_of(msg.from_, ts)
        required = required_funds(signed)
        if actor.balance < required:
            raise NotEnoughFunds(required, actor.balance, including_pending=False)
        mset = self._pending.get(key)
        if mset is not None:
            required += mset.required_without(msg.nonce)
            if actor.balance < required:
                raise NotEnoughFunds(required, actor.balance, including_pending=True)
        self._insert(signed, key, ts, strict=True)
        return publish

    def _insert(self, signed: SignedMessage, key: Address, ts: TipSet, *, strict: bool) -> None:
        """Put a checked message in its sender's set (Lotus addLocked)."""
        # Stored first, as Lotus does: a disk error then leaves the pool as it was.
        self._chain.put_message(signed)
        if signed.signature.type != SigType.BLS:
            self._chain.put_message(signed.message)
        mset = self._pending.get(key)
        created = mset is None
        if mset is None:
            mset = MsgSet(self._state_nonce(key, ts))
        replaced = mset.msgs.get(signed.message.nonce)
        grew = mset.add(
            signed,
            strict=strict,
            max_nonce_gap=self.config.max_nonce_gap,
            max_pending=self.config.max_pending_per_actor,
            rbf_percent=self.config.replace_by_fee_percent,
        )
        if created:
            self._pending[key] = mset
        if grew:
            self._size += 1
        if signed.signature.type == SigType.BLS:
            self._bls_sigs.put(signed.cid(), signed.signature)
        if replaced is not None:
            self._forget_local(replaced)
            self._fanout.publish(MpoolUpdate(MpoolChange.REMOVE, replaced))
        self._fanout.publish(MpoolUpdate(MpoolChange.ADD, signed))

    # -- local messages ------------------------------------------------------------------------------------
    def _remember_local(self, signed: SignedMessage) -> None:
        key = self._key_of(signed.message.from_, self._head)
        self._local.add(key)
        if self._local_store is not None:
            self._local_store.put(_LOCAL_PREFIX + signed.cid().bytes, signed.to_bytes())

    def _forget_local(self, signed: SignedMessage) -> None:
        if self._local_store is not None:
            self._local_store.delete(_LOCAL_PREFIX + signed.cid().bytes)

    def load_local(self) -> int:
        """Re-add the local messages kept by an earlier run (Lotus loadLocal); how many came back.

        Those the chain has passed (nonce too low) are forgotten; others that fail are logged."""
        if self._local_store is None:
            return 0
        loaded = 0
        for key, raw in list(self._local_store.items(_LOCAL_PREFIX)):
            try:
                signed = SignedMessage.from_bytes(raw)
            except DecodeError as exc:
                _log.error("dropping an unreadable local message", key=key.hex(), error=str(exc))
                self._local_store.delete(key)
                continue
            try:
                self.add(signed, local=True)
                loaded += 1
            except NonceTooLow:
                self._local_store.delete(key)
            except MpoolError as exc:
                _log.warning("local message not re-added", cid=str(signed.cid()), error=str(exc))
        return loaded

    # -- reading ---------------------------------------------------------------------------------------
    def pending(self) -> tuple[list[SignedMessage], TipSet]:
        """Every pending message (sender by sender, in nonce order) and the tipset the pool is at."""
        with self._lock:
            out: list[SignedMessage] = []
            for mset in self._pending.values():
                out.extend(mset.in_nonce_order())
            return out, self._head

    def pending_for(self, address: Address) -> list[SignedMessage]:
        """One sender's pending messages in nonce order."""
        with self._lock:
            found = self._pending_of(address)
            return [] if found is None else found[1].in_nonce_order()

    def get_nonce(self, address: Address) -> int:
        """The nonce of the sender's next message: past its pending ones (Lotus MpoolGetNonce)."""
        with self._lock:
            state_nonce = self._state_nonce(address, self._head)
            found = self._pending_of(address)
            return state_nonce if found is None else max(state_nonce, found[1].next_nonce)

    def state_actor(self, address: Address) -> Actor | None:
        """The actor at address in the state after the pool's tipset."""
        with self._lock:
            return self._actor(address, self._head)

    def pending_summary(self, address: Address) -> tuple[int, int] | None:
        """(next nonce, what the pending messages may cost) of a sender with pending messages."""
        with self._lock:
            found = self._pending_of(address)
            return None if found is None else (found[1].next_nonce, found[1].required)

    def min_gas_for(self, msg: Message | SignedMessage) -> int:
        """The gas storing msg on chain costs (the pricelist's OnChainMessage)."""
        return self._prices.on_chain_message(msg.chain_length())

    # -- removing ------------------------------------------------------------------------------------------
    def remove(self, sender: Address, nonce: int, *, applied: bool) -> None:
        """Drop the sender's message of this nonce (Lotus Remove): applied when the chain included it
        (or another message of its nonce), otherwise a prune."""
        with self._lock:
            self._remove(sender, nonce, applied)

    def _pending_of(self, sender: Address) -> tuple[Address, MsgSet] | None:
        """The sender's key address and its pending messages at the head; None when it has none."""
        try:
            key = self._key_of(sender, self._head)
        except SenderInvalid:
            return None
        mset = self._pending.get(key)
        return None if mset is None else (key, mset)

    def _remove(self, sender: Address, nonce: int, applied: bool) -> None:
        found = self._pending_of(sender)
        if found is None:
            return
        key, mset = found
        dropped = mset.remove(nonce, applied)
        if dropped is not None:
            self._size -= 1
            self._forget_local(dropped)
            self._fanout.publish(MpoolUpdate(MpoolChange.REMOVE, dropped))
        if not mset.msgs:
            del self._pending[key]

    def clear(self, local: bool) -> None:
        """Drop every pending message; the local ones (and their copies on disk) too if local (Lotus
        MpoolClear)."""
        with self._lock:
            for key in list(self._pending):
                if key in self._local and not local:
                    continue
                mset = self._pending.pop(key)
                self._size -= len(mset.msgs)
                for msg in mset.msgs.values():
                    if local:
                        self._forget_local(msg)
                    self._fanout.publish(MpoolUpdate(MpoolChange.REMOVE, msg))
            if local:
                self._local.clear()

    # -- following the chain ---------------------------------------------------------------------------------
    def _signed_messages_of(self, ts: TipSet) -> list[SignedMessage]:
        """ts's messages as signed messages: BLS ones only if this pool saw their signature."""
        out: list[SignedMessage] = []
        for block in ts.blocks:
            bls, secpk = self._chain.messages_for_block(block)
            out.extend(secpk)
            for msg in bls:
                sig = self._bls_sigs.get(msg.cid())
                if sig is None:
                    _log.debug("cannot re-add a reverted BLS message: signature unknown", cid=str(msg.cid()))
                else:
                    out.append(SignedMessage(msg, sig))
        return out

    def _included(self, ts: TipSet) -> Iterable[Message]:
        for block in ts.blocks:
            bls, secpk = self._chain.messages_for_block(block)
            yield from bls
            yield from (m.message for m in secpk)

    def head_change(self, revert: Sequence[TipSet], apply: Sequence[TipSet]) -> None:
        """Follow a head change (reverted newest first, applied oldest first): messages of applied
        tipsets leave, those of reverted tipsets come back, and messages the state has passed go."""
        with self._lock:
            readd: dict[tuple[Address, int], SignedMessage] = {}
            for ts in revert:
                self._head = self._chain.load_tipset(ts.parents)
                for signed in self._signed_messages_of(ts):
                    readd[(signed.message.from_, signed.message.nonce)] = signed
            touched: set[Address] = set()
            for ts in apply:
                self._head = ts
                for msg in self._included(ts):
                    touched.add(msg.from_)
                    if readd.pop((msg.from_, msg.nonce), None) is None:
                        self._remove(msg.from_, msg.nonce, applied=True)
            for signed in readd.values():
                touched.add(signed.message.from_)
                try:
                    self._insert(
                        signed, self._key_of(signed.message.from_, self._head), self._head, strict=False
                    )
                except MpoolError as exc:
                    _log.info("reverted message not re-added", cid=str(signed.cid()), error=str(exc))
            self._drop_stale(touched)

    def _drop_stale(self, senders: Iterable[Address]) -> None:
        """Drop pending messages whose nonce the sender's state nonce has passed: never includable."""
        for sender in senders:
            found = self._pending_of(sender)
            if found is None:
                continue
            key, mset = found
            state_nonce = self._state_nonce(key, self._head)
            for nonce in [n for n in mset.msgs if n < state_nonce]:
                self._remove(key, nonce, applied=True)

    # -- selection and pruning ---------------------------------------------------------------------------
    def _min_gas(self, signed: SignedMessage) -> int:
        return self._prices.on_chain_message(signed.chain_length())

    def _pending_at(self, ts: TipSet) -> dict[Address, dict[int, SignedMessage]]:
        """The pending messages as they would be were the pool at ts (Lotus getPendingMessages)."""
        pending = {key: dict(mset.msgs) for key, mset in self._pending.items()}
        if ts.key == self._head.key:
            return pending
        revert, apply = reorg_ops(self._chain.load_tipset, self._head, ts)
        for old in revert:
            for signed in self._signed_messages_of(old):
                key = self._key_of(signed.message.from_, self._head)
                pending.setdefault(key, {})[signed.message.nonce] = signed
        for new in apply:
            for msg in self._included(new):
                key = self._key_of(msg.from_, self._head)
                msgs = pending.get(key)
                if msgs is not None:
                    msgs.pop(msg.nonce, None)
        return pending

    def select(self, base: TipSet, ticket_quality: float = 1.0) -> list[SignedMessage]:
        """Messages for a block mined on base, in the order they go into the block (Lotus
        SelectMessages, greedy; see chain.mpool.selection)."""
        if not 0 <= ticket_quality <= 1:
            raise ValueError(f"ticket quality must be within [0, 1], got {ticket_quality}")
        with self._lock:
            if self._size > self.config.size_limit_high:
                self._prune()
            started = time.perf_counter()
            pending = self._pending_at(base)
            base_fee = self._state.base_fee(base)
            priority = []
            for addr in self.config.priority_addrs:
                try:
                    priority.append(self._key_of(addr, base))
                except SenderInvalid:
                    continue
            chosen = select_messages(
                pending,
                lambda key: self._actor(key, base),
                base_fee,
                self._min_gas,
                self.policy.block_gas_limit,
                priority,
            )
            _log.debug(
                "message selection done",
                selected=len(chosen),
                pending=self._size,
                took_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            return chosen

    def _maybe_prune(self) -> None:
        with self._lock:
            if self._size <= self.config.size_limit_high:
                return
            now = time.monotonic()
            if now - self._last_prune < self.config.prune_cooldown:
                return
            self._last_prune = now
            self._prune()

    def _prune(self) -> None:
        """Keep the best messages up to size_limit_low; local and priority senders are never pruned
        (Lotus pruneMessages)."""
        base_fee = self._state.base_fee(self._head)
        bound = base_fee_lower_bound(base_fee, BASE_FEE_LOWER_BOUND_FACTOR, self.policy.minimum_base_fee)
        protected = set(self._local)
        for addr in self.config.priority_addrs:
            try:
                protected.add(self._key_of(addr, self._head))
            except SenderInvalid:
                continue
        keep = sum(len(self._pending[k].msgs) for k in protected if k in self._pending)
        candidates: dict[CID, SignedMessage] = {}
        chains = []
        for key, mset in self._pending.items():
            if key in protected:
                continue
            for msg in mset.msgs.values():
                candidates[msg.cid()] = msg
            chains += message_chains(
                mset.msgs.values(),
                self._actor(key, self._head),
                bound,
                self._min_gas,
                self.policy.block_gas_limit,
            )
        chains.sort(key=lambda c: c.sort_key())
        for chain in chains:
            if keep >= self.config.size_limit_low:
                break
            for msg in chain.msgs:
                if keep >= self.config.size_limit_low:
                    break
                candidates.pop(msg.cid(), None)
                keep += 1
        _log.info("pruning the message pool", pruned=len(candidates), kept=keep)
        for msg in candidates.values():
            self._remove(msg.message.from_, msg.message.nonce, applied=False)

    # -- subscriptions ------------------------------------------------------------------------------------
    def subscribe(self, buffer: int = SUBSCRIBER_BUFFER) -> trio.MemoryReceiveChannel[MpoolUpdate]:
        """Updates (message added or removed) from now on (Lotus MpoolSub). Call from a trio task; the
        channel ends if the subscriber falls `buffer` updates behind."""
        return self._fanout.subscribe(buffer)
