"""The multisig actor's methods, state, params and returns (builtin-actors v9 actors/multisig).

Pending transactions live in a HAMT keyed by the transaction ID as a zigzag varint. Approve and Cancel
may carry the hash of the transaction they mean (ProposalHashData, blake2b-256), so that a signer
never approves a transaction that was swapped under the same ID.
"""

from enum import IntEnum
from typing import Annotated, Final

from chain.encoding.cid import CID
from chain.encoding.schema import Bytes, CborTuple, ChainEpoch, Int64, MaxLen, Name, TokenAmount, Uint64
from chain.types.address import Address
from chain.vm.exitcode import illegal_argument, insufficient_funds

MAX_SIGNERS_DECODE: Final = 1024  # above any policy's signers limit; bounds decoding only
Signers = Annotated[tuple[Address, ...], MaxLen(MAX_SIGNERS_DECODE)]
TxnID = Int64
ExitCodeValue = Uint64  # a receipt's exit code as the multisig reports it


class MultisigMethod(IntEnum):
    Constructor = 1
    Propose = 2
    Approve = 3
    Cancel = 4
    AddSigner = 5
    RemoveSigner = 6
    SwapSigner = 7
    ChangeNumApprovalsThreshold = 8
    LockBalance = 9
    UniversalReceiverHook = 3726118371  # frc42 method_hash("Receive")


class Transaction(CborTuple):
    to: Address
    value: TokenAmount
    method: Uint64
    params: Bytes
    approved: Signers = ()


class ProposalHashData(CborTuple):
    """What Approve and Cancel hash: the transaction with its requester (first approver) or null."""

    requester: Address | None
    to: Address
    value: TokenAmount
    method: Uint64
    params: Bytes


def proposal_hash_data(txn: Transaction) -> bytes:
    """The CBOR that Approve's and Cancel's ProposalHash is the blake2b-256 of."""
    requester = txn.approved[0] if txn.approved else None
    return ProposalHashData(requester, txn.to, txn.value, txn.method, txn.params).to_bytes()


class MultisigState(CborTuple):
    signers: Signers
    num_approvals_threshold: Uint64
    next_tx_id: Annotated[TxnID, Name("NextTxnID")]
    initial_balance: TokenAmount  # locked at start_epoch, unlocking linearly over unlock_duration
    start_epoch: ChainEpoch
    unlock_duration: ChainEpoch
    pending_txs: Annotated[CID, Name("PendingTxns")]

    def amount_locked(self, elapsed: int) -> int:
        """What is still locked elapsed epochs after start_epoch (rounded up, as builtin-actors)."""
        if elapsed >= self.unlock_duration:
            return 0
        if elapsed <= 0:
            return self.initial_balance
        remaining = self.unlock_duration - elapsed
        return -(-self.initial_balance * remaining // self.unlock_duration)

    def check_available(self, balance: int, amount: int, epoch: int) -> None:
        """Spending amount out of balance at epoch must leave the locked part untouched."""
        if amount < 0:
            raise illegal_argument(f"amount to spend {amount} less than zero")
        if balance < amount:
            raise insufficient_funds(f"current balance {balance} less than amount to spend {amount}")
        if amount == 0:
            return
        locked = self.amount_locked(epoch - self.start_epoch)
        if balance - amount < locked:
            raise insufficient_funds(
                f"balance {balance - amount} left after spending {amount} is less than the locked {locked}"
            )


class ConstructorParams(CborTuple):
    signers: Signers
    num_approvals_threshold: Uint64
    unlock_duration: ChainEpoch = 0
    start_epoch: ChainEpoch = 0


class ProposeParams(CborTuple):
    to: Address
    value: TokenAmount
    method: Uint64
    params: Bytes = b""


class ProposeReturn(CborTuple):
    txn_id: Annotated[TxnID, Name("TxnID")]
    applied: bool
    code: ExitCodeValue  # the exit code of the transaction, if applied
    ret: Bytes


class TxnIDParams(CborTuple):
    id: Annotated[TxnID, Name("ID")]
    proposal_hash: Bytes = b""  # empty: do not check


class ApproveReturn(CborTuple):
    applied: bool
    code: ExitCodeValue
    ret: Bytes


class AddSignerParams(CborTuple):
    signer: Address
    increase: bool


class RemoveSignerParams(CborTuple):
    signer: Address
    decrease: bool


class SwapSignerParams(CborTuple):
    from_: Address
    to: Address


class ChangeNumApprovalsThresholdParams(CborTuple):
    new_threshold: Uint64


class LockBalanceParams(CborTuple):
    start_epoch: ChainEpoch
    unlock_duration: ChainEpoch
    amount: TokenAmount
