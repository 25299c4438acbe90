"""MpoolCheckMessages and friends: what would the pool (and a block) say of these unsigned messages,
check by check, without adding anything (lotus chain/messagepool/check.go).

Each message gets a list of statuses in Lotus's order; a failed stateful pre-check (nonce, balance)
or a syntax failure ends that message's list early, as in Lotus. Messages of one sender are checked as
a sequence: each passing nonce check moves the expected nonce on, and the required funds accumulate.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Final

from chain.encoding.cid import CID
from chain.encoding.schema import LotusJson
from chain.mpool.pool import (
    BASE_FEE_LOWER_BOUND_FACTOR,
    MessagePool,
    base_fee_lower_bound,
)
from chain.types.address import Address
from chain.types.message import InvalidMessage, Message

# Lotus baseFeeUpperBoundFactor: a fee cap under 10x the base fee is flagged (but passes).
BASE_FEE_UPPER_BOUND_FACTOR: Final = 10
# Room left for the signature when an unsigned message's size is checked.
_SIGNATURE_ROOM: Final = 128


class CheckStatusCode(IntEnum):
    """Lotus api.CheckStatusCode."""

    MESSAGE_SERIALIZE = 1
    MESSAGE_SIZE = 2
    MESSAGE_VALIDITY = 3
    MESSAGE_MIN_GAS = 4
    MESSAGE_MIN_BASE_FEE = 5
    MESSAGE_BASE_FEE = 6
    MESSAGE_BASE_FEE_LOWER_BOUND = 7
    MESSAGE_BASE_FEE_UPPER_BOUND = 8
    MESSAGE_GET_STATE_NONCE = 9
    MESSAGE_NONCE = 10
    MESSAGE_GET_STATE_BALANCE = 11
    MESSAGE_BALANCE = 12


@dataclass(frozen=True, slots=True)
class MessageCheckStatus:
    """One check of one message (Lotus api.MessageCheckStatus). Hint values are as Lotus's JSON has
    them: nonces as numbers, token amounts and gas as decimal strings. Its JSON shape is declared once,
    with the API's (rpc/methods/mpool_types.py)."""

    cid: CID
    code: CheckStatusCode
    ok: bool
    err: str = ""
    hint: dict[str, Any] = field(default_factory=dict)


class MessagePrototype(LotusJson):
    """Lotus api.MessagePrototype: a message, and whether its nonce is already the one to use (what
    MpoolCheckMessages takes and the v1 Msig* methods return)."""

    message: Message
    valid_nonce: bool


@dataclass(slots=True)
class _Sender:
    next_nonce: int
    required: int
    balance: int


def check_messages(pool: MessagePool, protos: Sequence[MessagePrototype]) -> list[list[MessageCheckStatus]]:
    """Lotus MpoolCheckMessages: a prototype without a valid nonce is not held to the next nonce."""
    return _check(
        pool, [p.message for p in protos], interned=False, flexible=[not p.valid_nonce for p in protos]
    )


def check_pending_messages(pool: MessagePool, sender: Address) -> list[list[MessageCheckStatus]]:
    """Lotus MpoolCheckPendingMessages: the sender's pending messages as a sequence from its state."""
    msgs = [m.message for m in pool.pending_for(sender)]
    return _check(pool, msgs, interned=True, flexible=None) if msgs else []


def check_replace_messages(pool: MessagePool, replace: Sequence[Message]) -> list[list[MessageCheckStatus]]:
    """Lotus MpoolCheckReplaceMessages: each sender's pending messages with these in their places."""
    by_sender: dict[Address, dict[int, Message]] = {}
    for msg in replace:
        nonces = by_sender.get(msg.from_)
        if nonces is None:
            nonces = {m.message.nonce: m.message for m in pool.pending_for(msg.from_)}
            by_sender[msg.from_] = nonces
        nonces[msg.nonce] = msg
    msgs = [m for nonces in by_sender.values() for _, m in sorted(nonces.items())]
    return _check(pool, msgs, interned=True, flexible=None)


def _check(
    pool: MessagePool, msgs: Sequence[Message], *, interned: bool, flexible: Sequence[bool] | None
) -> list[list[MessageCheckStatus]]:
    head = pool.head
    policy = pool.policy
    base_fee = head.blocks[0].parent_base_fee
    lower = base_fee_lower_bound(base_fee, BASE_FEE_LOWER_BOUND_FACTOR, policy.minimum_base_fee)
    upper = base_fee * BASE_FEE_UPPER_BOUND_FACTOR
    senders: dict[Address, _Sender] = {}
    out: list[list[MessageCheckStatus]] = []
    for i, msg in enumerate(msgs):
        cid = msg.cid()
        statuses: list[MessageCheckStatus] = []
        out.append(statuses)

        def status(code: CheckStatusCode, ok: bool, err: str = "", **hint: Any) -> bool:
            statuses.append(MessageCheckStatus(cid, code, ok, err, hint))  # noqa: B023 - used at once
            return ok

        def check(code: CheckStatusCode, ok: bool, failure: str, **hint: Any) -> bool:
            return status(code, ok, "" if ok else failure, **hint)

        sender = senders.get(msg.from_)
        if sender is None:
            actor = pool.state_actor(msg.from_)
            if actor is None:
                status(CheckStatusCode.MESSAGE_GET_STATE_NONCE, False, f"actor {msg.from_} not found")
                continue
            next_nonce = actor.nonce
            required = 0
            if not interned:
                pending = pool.pending_summary(msg.from_)
                if pending is not None:
                    next_nonce, required = pending
            sender = senders[msg.from_] = _Sender(next_nonce, required, actor.balance)
        status(CheckStatusCode.MESSAGE_GET_STATE_NONCE, True, nonce=sender.next_nonce)
        status(CheckStatusCode.MESSAGE_GET_STATE_BALANCE, True, balance=str(sender.balance))

        data = msg.to_bytes()
        status(CheckStatusCode.MESSAGE_SERIALIZE, True)
        too_big = len(data) > policy.max_message_size - _SIGNATURE_ROOM
        check(CheckStatusCode.MESSAGE_SIZE, not too_big, "message too big")
        try:
            msg.validate_for_block_inclusion(0)
        except InvalidMessage as exc:
            status(CheckStatusCode.MESSAGE_VALIDITY, False, f"syntactically invalid message: {exc}")
            continue
        status(CheckStatusCode.MESSAGE_VALIDITY, True)

        min_gas = pool.min_gas_for(msg)
        check(
            CheckStatusCode.MESSAGE_MIN_GAS,
            msg.gas_limit >= min_gas,
            "GasLimit less than epoch minimum gas",
            minGas=str(min_gas),
        )
        if check(
            CheckStatusCode.MESSAGE_MIN_BASE_FEE,
            msg.gas_fee_cap >= policy.minimum_base_fee,
            "GasFeeCap less than minimum base fee",
        ):
            check(
                CheckStatusCode.MESSAGE_BASE_FEE,
                msg.gas_fee_cap >= base_fee,
                "GasFeeCap less than current base fee",
                baseFee=str(base_fee),
            )
            check(
                CheckStatusCode.MESSAGE_BASE_FEE_LOWER_BOUND,
                msg.gas_fee_cap >= lower,
                "GasFeeCap less than base fee lower bound for inclusion in next 20 epochs",
                baseFeeLowerBound=str(lower),
                baseFee=str(base_fee),
            )
            # Passes either way: Lotus means it as a warning.
            under = msg.gas_fee_cap < upper
            status(
                CheckStatusCode.MESSAGE_BASE_FEE_UPPER_BOUND,
                True,
                "GasFeeCap less than base fee upper bound for inclusion in next 20 epochs" if under else "",
                baseFeeUpperBound=str(upper),
                baseFee=str(base_fee),
            )

        nonce_ok = (flexible is not None and flexible[i]) or msg.nonce == sender.next_nonce
        expected = sender.next_nonce
        if nonce_ok:
            sender.next_nonce += 1
        check(
            CheckStatusCode.MESSAGE_NONCE,
            nonce_ok,
            f"message nonce doesn't match next nonce ({expected})",
            nextNonce=expected,
        )
        sender.required += msg.value + msg.gas_fee_cap * msg.gas_limit
        check(
            CheckStatusCode.MESSAGE_BALANCE,
            sender.balance >= sender.required,
            "insufficient balance",
            requiredFunds=str(sender.required),
        )
    return out
