"""The multisig actor (builtin-actors v9): signers propose transactions, which run once enough of them
approve; the signer set and threshold change only through the multisig's own transactions; an optional
vesting schedule locks part of the balance, unlocking linearly from StartEpoch over UnlockDuration.
State and params: actors/multisig/types.py.
"""

from dataclasses import replace
from typing import Any

from actors import builtin
from actors.dispatch import ActorDef, exported, exports
from actors.multisig.types import (
    AddSignerParams,
    ApproveReturn,
    ChangeNumApprovalsThresholdParams,
    ConstructorParams,
    LockBalanceParams,
    MultisigMethod,
    MultisigState,
    ProposeParams,
    ProposeReturn,
    RemoveSignerParams,
    SwapSignerParams,
    Transaction,
    TxnIDParams,
    proposal_hash_data,
)
from actors.util.keys import i64_key
from actors.util.resolve import resolve_to_actor_id
from actors.util.stored import reading
from chain.encoding.schema import AnyCbor
from chain.state.hamt import DEFAULT_BITWIDTH, Hamt
from chain.types.address import Address
from chain.vm.exitcode import ExitCode, forbidden, illegal_argument, illegal_state, not_found
from chain.vm.runtime import Runtime

# -- methods ------------------------------------------------------------------------------------------


@exports(MultisigMethod.Constructor)
def constructor(rt: Runtime, params: ConstructorParams) -> None:
    rt.validate_immediate_caller_is(builtin.INIT_ACTOR_ADDR)
    signers_max = rt.policy.multisig_signers_max
    if not params.signers:
        raise illegal_argument("must have at least one signer")
    if len(params.signers) > signers_max:
        raise illegal_argument(f"cannot add more than {signers_max} signers")
    resolved: list[Address] = []
    for signer in params.signers:
        signer_id = resolve_to_actor_id(rt, signer)
        if signer_id in resolved:
            raise illegal_argument(f"duplicate signer not allowed: {signer}")
        resolved.append(signer_id)
    if params.num_approvals_threshold > len(params.signers):
        raise illegal_argument("must not require more approvals than signers")
    if params.num_approvals_threshold < 1:
        raise illegal_argument("must require at least one approval")
    if params.unlock_duration < 0:
        raise illegal_argument("negative unlock duration disallowed")
    st = MultisigState(
        signers=tuple(resolved),
        num_approvals_threshold=params.num_approvals_threshold,
        next_tx_id=0,
        initial_balance=0,
        start_epoch=0,
        unlock_duration=0,
        pending_txs=Hamt.new(rt.store, DEFAULT_BITWIDTH).flush(),
    )
    if params.unlock_duration != 0:
        st = replace(
            st,
            start_epoch=params.start_epoch,
            unlock_duration=params.unlock_duration,
            initial_balance=rt.value_received,
        )
    rt.set_state(st)


@exports(MultisigMethod.Propose)
def propose(rt: Runtime, params: ProposeParams) -> ProposeReturn:
    """Record a transaction with the proposer's approval; run it if that meets the threshold."""
    rt.validate_immediate_caller_type(builtin.ACCOUNT_ACTOR_CODE, builtin.MULTISIG_ACTOR_CODE)
    proposer = rt.caller
    if params.value < 0:
        raise illegal_argument(f"proposed value must be non-negative, was {params.value}")
    st = rt.state(MultisigState)
    if proposer not in st.signers:
        raise forbidden(f"{proposer} is not a signer")
    txn_id = st.next_tx_id
    txn = Transaction(params.to, params.value, params.method, params.params)
    pending = _load_pending(rt, st)
    pending.set(i64_key(txn_id), txn.to_cbor())
    rt.set_state(replace(st, next_tx_id=txn_id + 1, pending_txs=pending.flush()))
    applied, code, ret = _approve_transaction(rt, txn_id, txn)
    return ProposeReturn(txn_id, applied, code, ret)


@exports(MultisigMethod.Approve)
def approve(rt: Runtime, params: TxnIDParams) -> ApproveReturn:
    """Approve a pending transaction; it runs once approvals meet the threshold."""
    st = _signer_state(rt)
    txn = _get_transaction(rt, st, params.id, params.proposal_hash)
    # The threshold may have dropped since the last approval: then it runs without a new one.
    applied, code, ret = _execute_if_approved(rt, st, params.id, txn)
    if not applied:
        applied, code, ret = _approve_transaction(rt, params.id, txn)
    return ApproveReturn(applied, code, ret)


@exports(MultisigMethod.Cancel)
def cancel(rt: Runtime, params: TxnIDParams) -> None:
    """Withdraw a pending transaction; only its proposer may."""
    st = _signer_state(rt)
    caller = rt.caller
    pending = _load_pending(rt, st)
    key = i64_key(params.id)
    raw = pending.get(key)
    if raw is None:
        raise not_found(f"no such transaction {params.id} to cancel")
    txn = _decode_transaction(raw, params.id)
    if not txn.approved or txn.approved[0] != caller:
        raise forbidden("cannot cancel another signer's transaction")
    if params.proposal_hash and params.proposal_hash != rt.hash_blake2b(proposal_hash_data(txn)):
        raise illegal_state("hash does not match proposal params")
    pending.delete(key)
    rt.set_state(replace(st, pending_txs=pending.flush()))


@exports(MultisigMethod.AddSigner)
def add_signer(rt: Runtime, params: AddSignerParams) -> None:
    rt.validate_immediate_caller_is(rt.receiver)
    signer = resolve_to_actor_id(rt, params.signer)
    st = rt.state(MultisigState)
    signers_max = rt.policy.multisig_signers_max
    if len(st.signers) >= signers_max:
        raise forbidden(f"cannot add more than {signers_max} signers")
    if signer in st.signers:
        raise forbidden(f"{signer} is already a signer")
    threshold = st.num_approvals_threshold + (1 if params.increase else 0)
    rt.set_state(replace(st, signers=(*st.signers, signer), num_approvals_threshold=threshold))


@exports(MultisigMethod.RemoveSigner)
def remove_signer(rt: Runtime, params: RemoveSignerParams) -> None:
    rt.validate_immediate_caller_is(rt.receiver)
    signer = resolve_to_actor_id(rt, params.signer)
    st = rt.state(MultisigState)
    if signer not in st.signers:
        raise forbidden(f"{signer} is not a signer")
    if len(st.signers) == 1:
        raise forbidden("cannot remove only signer")
    threshold = st.num_approvals_threshold
    if not params.decrease and len(st.signers) - 1 < threshold:
        raise illegal_argument(
            f"can't reduce signers to {len(st.signers) - 1} below threshold {threshold} with decrease=false"
        )
    if params.decrease:
        if threshold < 2:
            raise illegal_argument(f"can't decrease approvals from {threshold} to {threshold - 1}")
        threshold -= 1
    st = _purge_approvals(rt, st, signer)
    signers = tuple(s for s in st.signers if s != signer)
    rt.set_state(replace(st, signers=signers, num_approvals_threshold=threshold))


@exports(MultisigMethod.SwapSigner)
def swap_signer(rt: Runtime, params: SwapSignerParams) -> None:
    rt.validate_immediate_caller_is(rt.receiver)
    old = resolve_to_actor_id(rt, params.from_)
    new = resolve_to_actor_id(rt, params.to)
    st = rt.state(MultisigState)
    if old not in st.signers:
        raise forbidden(f"{old} is not a signer")
    if new in st.signers:
        raise illegal_argument(f"{new} is already a signer")
    signers = (*(s for s in st.signers if s != old), new)
    st = _purge_approvals(rt, st, old)
    rt.set_state(replace(st, signers=signers))


@exports(MultisigMethod.ChangeNumApprovalsThreshold)
def change_num_approvals_threshold(rt: Runtime, params: ChangeNumApprovalsThresholdParams) -> None:
    rt.validate_immediate_caller_is(rt.receiver)
    st = rt.state(MultisigState)
    if params.new_threshold == 0 or params.new_threshold > len(st.signers):
        raise illegal_argument(
            f"new threshold {params.new_threshold} not supported for {len(st.signers)} signers"
        )
    rt.set_state(replace(st, num_approvals_threshold=params.new_threshold))


@exports(MultisigMethod.LockBalance)
def lock_balance(rt: Runtime, params: LockBalanceParams) -> None:
    """Put a vesting schedule on a multisig that has none."""
    rt.validate_immediate_caller_is(rt.receiver)
    if params.unlock_duration <= 0:
        raise illegal_argument("unlock duration must be positive")
    if params.amount < 0:
        raise illegal_argument("amount to lock must be positive")
    st = rt.state(MultisigState)
    if st.unlock_duration != 0:
        raise forbidden("modification of unlock disallowed")
    rt.set_state(
        replace(
            st,
            start_epoch=params.start_epoch,
            unlock_duration=params.unlock_duration,
            initial_balance=params.amount,
        )
    )


@exports(MultisigMethod.UniversalReceiverHook)
def universal_receiver_hook(rt: Runtime, _payload: AnyCbor) -> None:
    """Accept any token transfer notification (FRC-0046 receiver hook)."""
    rt.validate_immediate_caller_accept_any()


# -- helpers ------------------------------------------------------------------------------------------


def _signer_state(rt: Runtime) -> MultisigState:
    """The state, once the caller (an account or a multisig) is found among the signers."""
    rt.validate_immediate_caller_type(builtin.ACCOUNT_ACTOR_CODE, builtin.MULTISIG_ACTOR_CODE)
    st = rt.state(MultisigState)
    if rt.caller not in st.signers:
        raise forbidden(f"{rt.caller} is not a signer")
    return st


def _load_pending(rt: Runtime, st: MultisigState) -> Hamt:
    with reading("pending transactions"):
        return Hamt.load(rt.store, st.pending_txs, DEFAULT_BITWIDTH)


def _decode_transaction(raw: Any, txn_id: int) -> Transaction:
    with reading(f"pending transaction {txn_id}"):
        return Transaction.from_cbor(raw)


def _get_transaction(rt: Runtime, st: MultisigState, txn_id: int, proposal_hash: bytes) -> Transaction:
    raw = _load_pending(rt, st).get(i64_key(txn_id))
    if raw is None:
        raise not_found(f"no such transaction {txn_id} for approval")
    txn = _decode_transaction(raw, txn_id)
    if proposal_hash and proposal_hash != rt.hash_blake2b(proposal_hash_data(txn)):
        raise illegal_argument("hash does not match proposal params (ensure requester is an ID address)")
    return txn


def _approve_transaction(rt: Runtime, txn_id: int, txn: Transaction) -> tuple[bool, int, bytes]:
    if rt.caller in txn.approved:
        raise forbidden(f"{rt.caller} already approved this message")
    txn = replace(txn, approved=(*txn.approved, rt.caller))
    st = rt.state(MultisigState)
    pending = _load_pending(rt, st)
    pending.set(i64_key(txn_id), txn.to_cbor())
    st = replace(st, pending_txs=pending.flush())
    rt.set_state(st)
    return _execute_if_approved(rt, st, txn_id, txn)


def _execute_if_approved(
    rt: Runtime, st: MultisigState, txn_id: int, txn: Transaction
) -> tuple[bool, int, bytes]:
    """Run txn if it has enough approvals; returns (applied, exit code, return bytes)."""
    if len(txn.approved) < st.num_approvals_threshold:
        return False, int(ExitCode.Ok), b""
    st.check_available(rt.current_balance(), txn.value, rt.curr_epoch)
    result = rt.send(txn.to, txn.method, txn.params, txn.value)
    # The call may have changed this actor's state (a multisig calling itself), so reload it.
    st = rt.state(MultisigState)
    pending = _load_pending(rt, st)
    pending.delete(i64_key(txn_id))
    rt.set_state(replace(st, pending_txs=pending.flush()))
    return True, int(result.exit_code), result.return_data if result.ok else b""


def _purge_approvals(rt: Runtime, st: MultisigState, signer: Address) -> MultisigState:
    """Drop signer's approvals from every pending transaction; delete those left with none."""
    pending = _load_pending(rt, st)
    for key, raw in list(pending.items()):
        txn = _decode_transaction(raw, -1)
        if signer not in txn.approved:
            continue
        remaining = tuple(a for a in txn.approved if a != signer)
        if remaining:
            pending.set(key, replace(txn, approved=remaining).to_cbor())
        else:
            pending.delete(key)
    return replace(st, pending_txs=pending.flush())


ACTOR = ActorDef.of(
    builtin.MULTISIG_ACTOR_CODE, "multisig", MultisigState, exported(MultisigMethod, globals())
)
