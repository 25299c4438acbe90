"""The multisig actor on the mock runtime: construction, proposals and approvals against the threshold,
the proposal hash, cancellation, signer management (only through the multisig itself) and vesting."""

import hashlib
from collections.abc import Callable
from dataclasses import replace

import pytest

from actors import builtin
from actors.dispatch import METHOD_SEND
from actors.multisig import types as ms
from actors.multisig.actor import ACTOR
from actors.util.keys import i64_key
from chain.crypto.keys import KeyType, PrivateKey
from chain.encoding import dagcbor
from chain.params import DEVNET
from chain.state.hamt import Hamt
from chain.types.address import Address
from chain.vm.exitcode import ExitCode
from tests.actors.aborts import abort_code
from tests.actors.mock_runtime import MockRuntime

MSIG = Address.new_id(400)
A = Address.new_id(101)
B = Address.new_id(102)
C = Address.new_id(103)
D = Address.new_id(104)  # an account that is not a signer
RECIPIENT = Address.new_id(105)
B_KEY_ADDR = Address.of_key(PrivateKey.derive(KeyType.SECP256K1, b"multisig signer b"))
BALANCE = 10_000


def new_runtime() -> MockRuntime:
    rt = MockRuntime(receiver=MSIG)
    for account in (A, B, C, D, RECIPIENT):
        rt.set_actor_code(account, builtin.ACCOUNT_ACTOR_CODE)
    rt.add_id_address(B_KEY_ADDR, B)
    rt.set_caller(builtin.INIT_ACTOR_CODE, builtin.INIT_ACTOR_ADDR)
    return rt


def construct(rt: MockRuntime, params: ms.ConstructorParams) -> None:
    rt.expect_validate_caller_addr(builtin.INIT_ACTOR_ADDR)
    rt.call(ACTOR, ms.MultisigMethod.Constructor, params)
    rt.verify()


def new_multisig(threshold: int = 2, signers: tuple[Address, ...] = (A, B_KEY_ADDR, C)) -> MockRuntime:
    rt = new_runtime()
    construct(rt, ms.ConstructorParams(signers, threshold))
    rt.balance = BALANCE
    rt.curr_epoch = 10
    return rt


def msig(rt: MockRuntime) -> ms.MultisigState:
    return rt.state(ms.MultisigState)


def pending(rt: MockRuntime) -> dict[int, ms.Transaction]:
    hamt = Hamt.load(rt.store, msig(rt).pending_txs)
    return {
        txn_id: ms.Transaction.from_cbor(hamt.get(i64_key(txn_id)))
        for txn_id in range(msig(rt).next_tx_id)
        if hamt.get(i64_key(txn_id)) is not None
    }


def as_signer(rt: MockRuntime, signer: Address) -> None:
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, signer)
    rt.expect_validate_caller_type(builtin.ACCOUNT_ACTOR_CODE, builtin.MULTISIG_ACTOR_CODE)


def expect_payment(rt: MockRuntime, value: int) -> Callable[[], None]:
    """An expectation to declare once the caller's validation is expected: the transaction's send."""
    return lambda: rt.expect_send(RECIPIENT, METHOD_SEND, None, value)


def propose(
    rt: MockRuntime, signer: Address, params: ms.ProposeParams, then: Callable[[], None] | None = None
) -> ms.ProposeReturn:
    as_signer(rt, signer)
    if then is not None:
        then()
    ret = ms.ProposeReturn.from_cbor(rt.call_decoded(ACTOR, ms.MultisigMethod.Propose, params))
    rt.verify()
    return ret


def approve(
    rt: MockRuntime,
    signer: Address,
    txn_id: int,
    proposal_hash: bytes = b"",
    then: Callable[[], None] | None = None,
) -> ms.ApproveReturn:
    as_signer(rt, signer)
    if then is not None:
        then()
    ret = ms.ApproveReturn.from_cbor(
        rt.call_decoded(ACTOR, ms.MultisigMethod.Approve, ms.TxnIDParams(txn_id, proposal_hash))
    )
    rt.verify()
    return ret


def cancel(rt: MockRuntime, signer: Address, txn_id: int, proposal_hash: bytes = b"") -> None:
    as_signer(rt, signer)
    rt.call(ACTOR, ms.MultisigMethod.Cancel, ms.TxnIDParams(txn_id, proposal_hash))
    rt.verify()


def as_self(rt: MockRuntime, method: ms.MultisigMethod, params: object) -> None:
    """A method only the multisig may call on itself (through an approved transaction)."""
    rt.set_caller(builtin.MULTISIG_ACTOR_CODE, MSIG)
    rt.expect_validate_caller_addr(MSIG)
    rt.call(ACTOR, method, params)
    rt.verify()


def fails(action: object, *args: object) -> int:
    return abort_code(lambda: action(*args))  # type: ignore[operator]


PAY = ms.ProposeParams(RECIPIENT, 100, METHOD_SEND, b"")
CALL = ms.ProposeParams(RECIPIENT, 0, 42, dagcbor.encode(["opaque", 1]))


def txn_hash(txn: ms.Transaction) -> bytes:
    return hashlib.blake2b(ms.proposal_hash_data(txn), digest_size=32).digest()


# -- encodings ------------------------------------------------------------------------------------------


def test_proposal_hash_data_layout() -> None:
    txn = ms.Transaction(RECIPIENT, 100, 7, b"\x01", (A, B))
    expected = dagcbor.encode([A.to_bytes(), RECIPIENT.to_bytes(), b"\x00\x64", 7, b"\x01"])
    assert ms.proposal_hash_data(txn) == expected
    assert dagcbor.decode(ms.proposal_hash_data(replace(txn, approved=())))[0] is None


def test_transaction_ids_are_zigzag_keys() -> None:
    assert [i64_key(n) for n in (0, 1, 2, 64)] == [b"\x00", b"\x02", b"\x04", b"\x80\x01"]


def test_state_round_trip() -> None:
    rt = new_multisig()
    st = msig(rt)
    assert ms.MultisigState.from_cbor(dagcbor.decode(dagcbor.encode(st.to_cbor()))) == st


# -- Constructor ----------------------------------------------------------------------------------------


def test_constructor_resolves_signers() -> None:
    rt = new_multisig()
    st = msig(rt)
    assert st.signers == (A, B, C)
    assert (st.num_approvals_threshold, st.next_tx_id, st.unlock_duration, st.initial_balance) == (2, 0, 0, 0)
    assert pending(rt) == {}


def test_constructor_with_vesting() -> None:
    rt = new_runtime()
    rt.value_received = 1000
    construct(rt, ms.ConstructorParams((A,), 1, unlock_duration=100, start_epoch=5))
    st = msig(rt)
    assert (st.initial_balance, st.start_epoch, st.unlock_duration) == (1000, 5, 100)


@pytest.mark.parametrize(
    "params",
    [
        ms.ConstructorParams((), 1),
        ms.ConstructorParams((A, B, C), 1),  # more than the (lowered) limit of two
        ms.ConstructorParams((B, B_KEY_ADDR), 1),
        ms.ConstructorParams((A, B), 3),
        ms.ConstructorParams((A, B), 0),
        ms.ConstructorParams((A, B), 1, unlock_duration=-1),
    ],
    ids=["no-signers", "too-many", "duplicate", "threshold-high", "threshold-zero", "negative-duration"],
)
def test_constructor_rejects(params: ms.ConstructorParams) -> None:
    rt = new_runtime()
    rt.policy = replace(DEVNET, multisig_signers_max=2)
    rt.expect_validate_caller_addr(builtin.INIT_ACTOR_ADDR)
    assert fails(rt.call, ACTOR, ms.MultisigMethod.Constructor, params) == ExitCode.ErrIllegalArgument


def test_constructor_only_from_init() -> None:
    rt = new_runtime()
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, A)
    rt.expect_validate_caller_addr(builtin.INIT_ACTOR_ADDR)
    assert (
        fails(rt.call, ACTOR, ms.MultisigMethod.Constructor, ms.ConstructorParams((A,), 1))
        == ExitCode.SysErrForbidden
    )


def test_constructor_with_unknown_signer_address() -> None:
    rt = new_runtime()
    stranger = Address.of_key(PrivateKey.derive(KeyType.BLS, b"not yet on chain"))
    rt.expect_validate_caller_addr(builtin.INIT_ACTOR_ADDR)
    rt.expect_send(stranger, METHOD_SEND, None, 0)
    code = fails(rt.call, ACTOR, ms.MultisigMethod.Constructor, ms.ConstructorParams((A, stranger), 1))
    assert code == ExitCode.ErrIllegalArgument
    rt.verify()


# -- Propose / Approve ----------------------------------------------------------------------------------


def test_propose_with_threshold_one_executes() -> None:
    rt = new_multisig(threshold=1)
    as_signer(rt, A)
    rt.expect_send_raw(RECIPIENT, 42, CALL.params, 0, return_data=b"\x83\x01\x02\x03")
    ret = ms.ProposeReturn.from_cbor(rt.call_decoded(ACTOR, ms.MultisigMethod.Propose, CALL))
    rt.verify()
    assert ret == ms.ProposeReturn(0, True, 0, b"\x83\x01\x02\x03")
    assert pending(rt) == {} and msig(rt).next_tx_id == 1


def test_propose_waits_for_approval_then_executes() -> None:
    rt = new_multisig()
    assert propose(rt, A, PAY) == ms.ProposeReturn(0, False, 0, b"")
    txn = pending(rt)[0]
    assert txn == ms.Transaction(RECIPIENT, 100, METHOD_SEND, b"", (A,))
    assert approve(rt, B, 0, txn_hash(txn), expect_payment(rt, 100)) == ms.ApproveReturn(True, 0, b"")
    assert pending(rt) == {}
    assert rt.balance == BALANCE - 100


def test_failed_transaction_is_applied_with_its_exit_code() -> None:
    rt = new_multisig(threshold=1)
    as_signer(rt, A)
    rt.expect_send_raw(RECIPIENT, 42, CALL.params, 0, exit_code=ExitCode.ErrIllegalArgument)
    ret = ms.ProposeReturn.from_cbor(rt.call_decoded(ACTOR, ms.MultisigMethod.Propose, CALL))
    assert ret == ms.ProposeReturn(0, True, int(ExitCode.ErrIllegalArgument), b"")
    assert pending(rt) == {}


def test_propose_failures() -> None:
    rt = new_multisig()
    assert fails(propose, rt, D, PAY) == ExitCode.ErrForbidden
    rt.reset()
    assert fails(propose, rt, A, replace(PAY, value=-1)) == ExitCode.ErrIllegalArgument
    rt.reset()
    rt.set_caller(builtin.MINER_ACTOR_CODE, A)
    rt.expect_validate_caller_type(builtin.ACCOUNT_ACTOR_CODE, builtin.MULTISIG_ACTOR_CODE)
    assert fails(rt.call, ACTOR, ms.MultisigMethod.Propose, PAY) == ExitCode.SysErrForbidden


def test_execution_needs_funds() -> None:
    rt = new_multisig(threshold=1)
    assert fails(propose, rt, A, replace(PAY, value=BALANCE + 1)) == ExitCode.ErrInsufficientFunds


def test_vesting_locks_part_of_the_balance() -> None:
    rt = new_runtime()
    rt.value_received = 1000
    construct(rt, ms.ConstructorParams((A,), 1, unlock_duration=100, start_epoch=0))
    rt.balance = 1000
    rt.curr_epoch = 30  # 700 still locked
    assert fails(propose, rt, A, replace(PAY, value=301)) == ExitCode.ErrInsufficientFunds
    rt.reset()
    assert propose(rt, A, replace(PAY, value=300), expect_payment(rt, 300)).applied


def test_amount_locked_rounds_up() -> None:
    st = replace(msig(new_multisig()), initial_balance=1000, start_epoch=0, unlock_duration=3)
    assert [st.amount_locked(e) for e in (-1, 0, 1, 2, 3, 4)] == [1000, 1000, 667, 334, 0, 0]


def test_approve_failures() -> None:
    rt = new_multisig(threshold=3)
    propose(rt, A, PAY)
    txn = pending(rt)[0]
    assert fails(approve, rt, A, 0) == ExitCode.ErrForbidden  # already approved
    rt.reset()
    assert fails(approve, rt, D, 0) == ExitCode.ErrForbidden  # not a signer
    rt.reset()
    assert fails(approve, rt, B, 5) == ExitCode.ErrNotFound
    rt.reset()
    assert fails(approve, rt, B, 0, txn_hash(replace(txn, value=99))) == ExitCode.ErrIllegalArgument
    rt.reset()
    assert approve(rt, B, 0, txn_hash(txn)) == ms.ApproveReturn(False, 0, b"")
    assert pending(rt)[0].approved == (A, B)


def test_approve_after_threshold_lowered_executes() -> None:
    rt = new_multisig(threshold=3)
    propose(rt, A, PAY)
    approve(rt, B, 0)
    as_self(rt, ms.MultisigMethod.ChangeNumApprovalsThreshold, ms.ChangeNumApprovalsThresholdParams(2))
    # A has approved already, yet its Approve now runs the transaction.
    assert approve(rt, A, 0, then=expect_payment(rt, 100)).applied
    assert pending(rt) == {}


# -- Cancel ---------------------------------------------------------------------------------------------


def test_cancel_by_proposer() -> None:
    rt = new_multisig()
    propose(rt, A, PAY)
    propose(rt, B, CALL)
    cancel(rt, A, 0, txn_hash(pending(rt)[0]))
    assert list(pending(rt)) == [1]


def test_cancel_failures() -> None:
    rt = new_multisig()
    propose(rt, A, PAY)
    txn = pending(rt)[0]
    assert fails(cancel, rt, B, 0) == ExitCode.ErrForbidden  # not the proposer
    rt.reset()
    assert fails(cancel, rt, D, 0) == ExitCode.ErrForbidden
    rt.reset()
    assert fails(cancel, rt, A, 3) == ExitCode.ErrNotFound
    rt.reset()
    assert fails(cancel, rt, A, 0, txn_hash(replace(txn, method=9))) == ExitCode.ErrIllegalState
    rt.reset()
    assert list(pending(rt)) == [0]


# -- signers and threshold ------------------------------------------------------------------------------


def test_add_signer() -> None:
    rt = new_multisig()
    as_self(rt, ms.MultisigMethod.AddSigner, ms.AddSignerParams(D, True))
    assert msig(rt).signers == (A, B, C, D) and msig(rt).num_approvals_threshold == 3
    assert (
        fails(as_self, rt, ms.MultisigMethod.AddSigner, ms.AddSignerParams(D, False)) == ExitCode.ErrForbidden
    )
    rt.reset()
    rt.policy = replace(DEVNET, multisig_signers_max=4)
    assert (
        fails(as_self, rt, ms.MultisigMethod.AddSigner, ms.AddSignerParams(RECIPIENT, False))
        == ExitCode.ErrForbidden
    )


def test_signer_methods_only_from_the_multisig() -> None:
    rt = new_multisig()
    for method, params in (
        (ms.MultisigMethod.AddSigner, ms.AddSignerParams(D, False)),
        (ms.MultisigMethod.RemoveSigner, ms.RemoveSignerParams(A, False)),
        (ms.MultisigMethod.SwapSigner, ms.SwapSignerParams(A, D)),
        (ms.MultisigMethod.ChangeNumApprovalsThreshold, ms.ChangeNumApprovalsThresholdParams(1)),
        (ms.MultisigMethod.LockBalance, ms.LockBalanceParams(0, 10, 10)),
    ):
        rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, A)
        rt.expect_validate_caller_addr(MSIG)
        assert fails(rt.call, ACTOR, method, params) == ExitCode.SysErrForbidden


def test_remove_signer_purges_approvals() -> None:
    rt = new_multisig(threshold=3)
    propose(rt, A, PAY)  # only A approved: dropped with A
    propose(rt, B, CALL)
    approve(rt, A, 1)  # B and A: keeps B's approval
    as_self(rt, ms.MultisigMethod.RemoveSigner, ms.RemoveSignerParams(A, True))
    st = msig(rt)
    assert st.signers == (B, C) and st.num_approvals_threshold == 2
    assert {txn_id: txn.approved for txn_id, txn in pending(rt).items()} == {1: (B,)}


def test_remove_signer_failures() -> None:
    rt = new_multisig(threshold=3)
    remove = ms.MultisigMethod.RemoveSigner
    assert fails(as_self, rt, remove, ms.RemoveSignerParams(D, True)) == ExitCode.ErrForbidden
    rt.reset()
    assert fails(as_self, rt, remove, ms.RemoveSignerParams(A, False)) == ExitCode.ErrIllegalArgument
    rt.reset()
    one = new_multisig(threshold=1, signers=(A, B))
    assert fails(as_self, one, remove, ms.RemoveSignerParams(A, True)) == ExitCode.ErrIllegalArgument
    one.reset()
    as_self(one, remove, ms.RemoveSignerParams(A, False))
    assert fails(as_self, one, remove, ms.RemoveSignerParams(B, False)) == ExitCode.ErrForbidden


def test_swap_signer() -> None:
    rt = new_multisig()
    propose(rt, A, PAY)
    as_self(rt, ms.MultisigMethod.SwapSigner, ms.SwapSignerParams(A, D))
    assert msig(rt).signers == (B, C, D)
    assert pending(rt) == {}
    swap = ms.MultisigMethod.SwapSigner
    assert fails(as_self, rt, swap, ms.SwapSignerParams(A, RECIPIENT)) == ExitCode.ErrForbidden
    rt.reset()
    assert fails(as_self, rt, swap, ms.SwapSignerParams(B, C)) == ExitCode.ErrIllegalArgument


def test_change_threshold() -> None:
    rt = new_multisig()
    change = ms.MultisigMethod.ChangeNumApprovalsThreshold
    as_self(rt, change, ms.ChangeNumApprovalsThresholdParams(3))
    assert msig(rt).num_approvals_threshold == 3
    for bad in (0, 4):
        assert (
            fails(as_self, rt, change, ms.ChangeNumApprovalsThresholdParams(bad))
            == ExitCode.ErrIllegalArgument
        )
        rt.reset()


# -- LockBalance and the receiver hook ------------------------------------------------------------------


def test_lock_balance() -> None:
    rt = new_multisig()
    lock = ms.MultisigMethod.LockBalance
    assert fails(as_self, rt, lock, ms.LockBalanceParams(0, 0, 10)) == ExitCode.ErrIllegalArgument
    rt.reset()
    assert fails(as_self, rt, lock, ms.LockBalanceParams(0, 10, -1)) == ExitCode.ErrIllegalArgument
    rt.reset()
    as_self(rt, lock, ms.LockBalanceParams(20, 100, 5000))
    st = msig(rt)
    assert (st.start_epoch, st.unlock_duration, st.initial_balance) == (20, 100, 5000)
    assert fails(as_self, rt, lock, ms.LockBalanceParams(0, 10, 1)) == ExitCode.ErrForbidden


def test_universal_receiver_hook_accepts_anything() -> None:
    rt = new_multisig()
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, D)
    rt.expect_validate_caller_any()
    assert rt.call(ACTOR, ms.MultisigMethod.UniversalReceiverHook, ["token", b"\x00"]) == b""
    rt.verify()
