"""Multisig methods (lotus node/impl/full/multisig.go, state.go's Msig*, api/v0api/v1_wrapper.go).

The read methods look at a tipset's parent state, as every State method. MsigCreate, MsigPropose and
MsigApprove build the message a signer sends: on /rpc/v1 they return it unsigned as a MessagePrototype
(the caller pushes it, e.g. with MpoolPushMessage), on /rpc/v0 the node pushes it at once (gas
estimated, next nonce, signed by the node's wallet) and returns the signed message's CID, as Lotus.
"""

import inspect
import typing
from collections.abc import Awaitable, Callable
from typing import Any

from actors import builtin
from actors.dispatch import encode_params
from actors.init.types import ExecParams, InitMethod
from actors.multisig.types import ConstructorParams, MultisigMethod, ProposeParams, TxnIDParams
from chain.encoding.cid import CID
from chain.encoding.schema import INT64_MAX, BigInt, Bytes, ChainEpoch, Uint64
from chain.mpool.checks import MessagePrototype
from chain.mpool.push import message_to_push
from chain.types.address import Address
from chain.types.message import Message
from chain.types.tipset import TipSet, TipSetKey
from node.fullnode import FullNode
from rpc.errors import RpcError
from rpc.methods.msig_types import MsigTransaction
from rpc.methods.query import at_tipset, load_tipset, push, state_errors
from rpc.registry import READ, SIGN, method


@method("MsigGetAvailableBalance", perm=READ)
async def msig_get_available_balance(node: FullNode, address: Address, tsk: TipSetKey) -> BigInt:
    """What a multisig may spend at a tipset's epoch: its balance less what vesting still locks."""
    return await at_tipset(node, tsk, lambda ts: node.state.msig_available_balance(address, ts))


@method("MsigGetVested", perm=READ)
async def msig_get_vested(node: FullNode, address: Address, start: TipSetKey, end: TipSetKey) -> BigInt:
    """How much of a multisig's balance vested between two tipsets' epochs."""

    def read() -> int:
        first, last = load_tipset(node, start), load_tipset(node, end)
        if first.height > last.height:
            raise RpcError(f"start tipset {first.height} is after end tipset {last.height}")
        if first.height == last.height:
            return 0
        with state_errors():
            return node.state.msig_vested(address, first, last)

    return await node.run_sync(read)


@method("MsigGetPending", perm=READ)
async def msig_get_pending(node: FullNode, address: Address, tsk: TipSetKey) -> tuple[MsigTransaction, ...]:
    """A multisig's transactions proposed and not yet approved by enough signers."""

    def read(ts: TipSet) -> tuple[MsigTransaction, ...]:
        return tuple(
            MsigTransaction(txn_id, txn.to, txn.value, txn.method, txn.params, txn.approved)
            for txn_id, txn in node.state.msig_pending(address, ts)
        )

    return await at_tipset(node, tsk, read)


# -- building messages ------------------------------------------------------------------------------------


def create_message(
    required: int, signers: tuple[Address, ...], unlock_duration: int, value: int, sender: Address
) -> Message:
    """init.Exec of a new multisig (Lotus multisig.MessageBuilder.Create, vesting from epoch 0)."""
    if len(signers) < required:
        raise RpcError("cannot require signing of more addresses than provided for multisig")
    if value < 0:
        raise RpcError("must provide a non-negative initial balance")
    params = ConstructorParams(signers, required or len(signers), unlock_duration, 0)
    exec_params = ExecParams(builtin.MULTISIG_ACTOR_CODE, encode_params(params))
    return message_to_push(
        builtin.INIT_ACTOR_ADDR, sender, value=value, method=InitMethod.Exec, params=exec_params
    )


def propose_message(
    msig: Address, to: Address, amount: int, sender: Address, method: int, params: bytes
) -> Message:
    if amount < 0:
        raise RpcError("must provide a non-negative amount for proposed send")
    proposal = ProposeParams(to, amount, method, params)
    return message_to_push(msig, sender, method=MultisigMethod.Propose, params=proposal)


def approve_message(msig: Address, txn_id: int, sender: Address) -> Message:
    if txn_id > INT64_MAX:
        raise RpcError(f"transaction ID {txn_id} is out of range for int64")
    return message_to_push(msig, sender, method=MultisigMethod.Approve, params=TxnIDParams(txn_id))


def _prototype(msg: Message) -> MessagePrototype:
    return MessagePrototype(msg, False)


def _executing(v1: Callable[..., Awaitable[MessagePrototype]], doc: str) -> Callable[..., Awaitable[CID]]:
    """The v0 form of a v1 method that returns a prototype: the same params, declared once (v1's); the
    node pushes the prototype's message and answers its CID (Lotus WrapperV1Full.executePrototype)."""

    async def execute(node: FullNode, *args: Any) -> CID:
        prototype = await v1(node, *args)
        try:
            return await push(node, prototype.message)
        except RpcError as exc:
            raise RpcError(f"pushing message: {exc.message}", exc.code, exc.data) from None

    execute.__name__ = execute.__qualname__ = f"{v1.__name__}_v0"
    execute.__doc__ = doc
    execute.__signature__ = inspect.signature(v1).replace(return_annotation=CID)  # type: ignore[attr-defined]
    execute.__annotations__ = {**typing.get_type_hints(v1, include_extras=True), "return": CID}
    return execute


@method("MsigCreate", perm=SIGN, api="v1")
async def msig_create(
    node: FullNode,
    required: Uint64,
    signers: tuple[Address, ...],
    unlock_duration: ChainEpoch,
    value: BigInt,
    sender: Address,
    gas_price: BigInt,
) -> MessagePrototype:
    """The message that creates a multisig with these signers, approvals threshold (0: all of
    them), vesting duration and initial balance (the gas price is ignored, as Lotus does)."""
    return _prototype(create_message(required, signers, unlock_duration, value, sender))


@method("MsigPropose", perm=SIGN, api="v1")
async def msig_propose(
    node: FullNode,
    msig: Address,
    to: Address,
    amount: BigInt,
    sender: Address,
    method_num: Uint64,
    params: Bytes,
) -> MessagePrototype:
    """The message by which a signer proposes that the multisig send a message."""
    return _prototype(propose_message(msig, to, amount, sender, method_num, params))


@method("MsigApprove", perm=SIGN, api="v1")
async def msig_approve(node: FullNode, msig: Address, txn_id: Uint64, sender: Address) -> MessagePrototype:
    """The message by which a signer approves a pending multisig transaction."""
    return _prototype(approve_message(msig, txn_id, sender))


# /rpc/v0's forms, pushing the message (Lotus api/v0api/v1_wrapper.go).
method("MsigCreate", perm=SIGN, api="v0")(
    _executing(msig_create, "Create a multisig: push the creating message and return its CID (v0).")
)
method("MsigPropose", perm=SIGN, api="v0")(
    _executing(msig_propose, "Propose a multisig transaction: push the proposal and return its CID (v0).")
)
method("MsigApprove", perm=SIGN, api="v0")(
    _executing(
        msig_approve, "Approve a pending multisig transaction: push the approval and return its CID (v0)."
    )
)
