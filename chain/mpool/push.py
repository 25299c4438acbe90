"""MpoolPushMessage's server side (lotus node/impl/full/mpool.go, chain/messagesigner): take an unsigned
message, estimate its gas, give it the sender's next nonce, sign it with the node's wallet, add it.

Pushes from one sender are serialised (Lotus PushLocks), so that two concurrent pushes never take the
same nonce.
"""

import random
import threading
from collections import defaultdict
from dataclasses import KW_ONLY, dataclass, field, replace
from typing import Protocol

from actors.dispatch import encode_params
from chain.crypto.signature import Signature
from chain.mpool.errors import MpoolError, NotEnoughFunds
from chain.mpool.gas_estimate import DEFAULT_MAX_FEE, gas_estimate_message_gas
from chain.mpool.pool import MessagePool
from chain.mpool.provider import ChainAccess, GasStateAccess
from chain.types.address import Address
from chain.types.address import Protocol as AddressProtocol
from chain.types.message import Message, SignedMessage


class Signer(Protocol):
    def sign(self, address: Address, data: bytes) -> Signature:
        """Sign data with the key of address (Lotus WalletSign); raises if the wallet lacks it."""
        ...


@dataclass(frozen=True, slots=True)
class SendSpec:
    """Lotus api.MessageSendSpec: the most the message may pay in fees (0: the node's default), and
    whether to set the fee cap to exactly that."""

    max_fee: int = 0
    maximize_fee_cap: bool = False


def message_to_push(
    to: Address, sender: Address, *, value: int = 0, method: int = 0, params: object = None
) -> Message:
    """A message for push_message to complete: nonce and gas zero (filled in there), params encoded as
    actors take them (a declared type, a plain DAG-CBOR value, or None for none)."""
    return Message(
        to=to,
        from_=sender,
        nonce=0,
        value=value,
        gas_limit=0,
        gas_fee_cap=0,
        gas_premium=0,
        method=method,
        params=encode_params(params),
    )


class PushRefused(MpoolError):
    """MpoolPushMessage refused the message before signing it."""


@dataclass(frozen=True, eq=False, slots=True)
class MessagePusher:
    """Completes, signs and adds messages for the node's own senders (MpoolPushMessage)."""

    pool: MessagePool
    state: GasStateAccess
    chain: ChainAccess
    signer: Signer
    _: KW_ONLY
    default_max_fee: int = DEFAULT_MAX_FEE
    rng: random.Random | None = None
    _locks: defaultdict[Address, threading.Lock] = field(
        default_factory=lambda: defaultdict(threading.Lock), init=False, repr=False
    )
    _locks_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def _sender_lock(self, key: Address) -> threading.Lock:
        with self._locks_lock:
            return self._locks[key]

    def push_message(self, msg: Message, spec: SendSpec | None = None) -> SignedMessage:
        """Estimate, number, sign and add msg; the signed message (Lotus MpoolPushMessage)."""
        spec = spec or SendSpec()
        if msg.nonce != 0:
            raise PushRefused(f"MpoolPushMessage expects message nonce to be 0, was {msg.nonce}")
        head = self.pool.head
        sender = msg.from_
        if sender.protocol == AddressProtocol.ID:
            key = self.state.resolve_to_key(sender, head)
            if key is None:
                raise PushRefused(f"getting key address: {sender} has no key address")
            sender = key
        with self._sender_lock(sender):
            max_fee = spec.max_fee or self.default_max_fee
            msg = gas_estimate_message_gas(
                self.pool,
                self.state,
                self.chain,
                replace(msg, from_=sender),
                head,
                max_fee=max_fee,
                maximize_fee_cap=spec.maximize_fee_cap,
                rng=self.rng,
            )
            if msg.gas_premium > msg.gas_fee_cap:
                premium, fee_cap = msg.gas_premium, msg.gas_fee_cap
                raise PushRefused(
                    f"after estimation, GasPremium {premium} is greater than GasFeeCap {fee_cap}"
                )
            actor = self.state.actor_after(sender, head)
            balance = 0 if actor is None else actor.balance
            required = msg.value + msg.gas_fee_cap * msg.gas_limit
            if balance < required:
                raise NotEnoughFunds(required, balance, including_pending=False)
            msg = replace(msg, nonce=self.pool.get_nonce(sender))
            signed = SignedMessage(msg, self.signer.sign(sender, msg.signing_bytes()))
            self.pool.push(signed)
            return signed
