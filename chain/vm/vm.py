"""The VM: applies messages to a state tree at one epoch and says what each one did.

apply_message follows Lotus's ApplyMessage (lotus chain/vm/vm.go, with the checks ref-fvm's executor
makes before running a message):
1. The gas limit must cover storing the message on chain, the message must be well formed, the sender
   must be an existing account whose nonce matches and whose balance covers GasLimit * GasFeeCap.
   A message failing these gets a receipt with GasUsed 0 and changes nothing; the block's miner pays
   a penalty (GasOutputs.miner_penalty).
2. GasLimit * GasFeeCap moves from the sender into escrow and the sender's nonce goes up.
3. The send runs under a snapshot, charged on-chain bytes, invocation, state reads and writes...; a
   non-empty return value is charged per byte. Any failure reverts the send's changes (not step 2).
4. The escrow is paid out (chain/vm/gas.py compute_gas_outputs): base-fee burn and over-estimation
   burn to the burnt-funds actor, the miner tip to the reward actor, the rest back to the sender.

Implicit messages (reward, cron: from the system actor) skip steps 1, 2 and 4.
A broken state (no burnt-funds or reward actor to pay) raises VMError. A failure of the machine
rather than of the chain (memory, recursion, the blockstore: chain/vm/abort.py) raises
ExecutionAborted and leaves the state tree as it was before the message. Nothing else escapes.
"""

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import structlog

from actors import builtin
from chain.crypto.randomness import RandomnessSource
from chain.encoding.cid import CID
from chain.params import Policy
from chain.state.tree import Actor, StateTree
from chain.types.address import Address
from chain.types.message import MAX_MESSAGE_SIZE, MESSAGE_VERSION, TOTAL_FILECOIN, Message, SignedMessage
from chain.types.receipt import MessageReceipt
from chain.vm.abort import ExecutionAborted, describe, machine_failure
from chain.vm.circulating import circulating_supply
from chain.vm.exitcode import ActorError, ExitCode
from chain.vm.gas import PRICES, GasOutputs, GasTracker, PriceList, compute_gas_outputs
from chain.vm.invocation import Environment, MessageContext, call
from chain.vm.invoker import DEFAULT_INVOKER, Invoker
from chain.vm.syscalls import LookbackState

# The network version filpy's actors implement (nv21, as the MockRuntime).
NETWORK_VERSION: Final = 21
# Python frames one nested send takes (send -> call -> invoke -> handler ...), with room to spare.
_FRAMES_PER_CALL: Final = 8
_FRAMES_BASE: Final = 2000

_log = structlog.get_logger(__name__)

ChainMessage = Message | SignedMessage


class VMError(Exception):
    """The state cannot be computed: an actor the VM itself needs is missing or broken."""


@dataclass(frozen=True, slots=True)
class ApplyRet:
    """What applying one message gave: its receipt, where its gas money went, and why it failed."""

    receipt: MessageReceipt
    gas_costs: GasOutputs
    error: str | None = None

    @property
    def exit_code(self) -> int:
        return self.receipt.exit_code


def _ensure_recursion_headroom(max_depth: int) -> None:
    """Nested sends recurse in Python; make sure the deepest allowed nesting fits the interpreter's
    recursion limit (so the depth limit, not a RecursionError, is what stops a deep call chain)."""
    needed = _FRAMES_BASE + _FRAMES_PER_CALL * max_depth
    if sys.getrecursionlimit() < needed:
        sys.setrecursionlimit(needed)


def _syntax_problem(msg: Message) -> str | None:
    """Why msg could never be in a valid block (lotus ValidForBlockInclusion), or None."""
    if msg.version != MESSAGE_VERSION:
        return f"message version {msg.version} is unsupported"
    if msg.chain_length() > MAX_MESSAGE_SIZE:
        return f"message of {msg.chain_length()} bytes exceeds {MAX_MESSAGE_SIZE} bytes"
    if msg.value < 0 or msg.value > TOTAL_FILECOIN:
        return f"message value {msg.value} is out of range"
    if msg.gas_fee_cap < 0 or msg.gas_premium < 0:
        return "gas fee cap and premium cannot be negative"
    if msg.gas_premium > msg.gas_fee_cap:
        return "gas premium exceeds the gas fee cap"
    return None


class VM:
    """Applies messages at one epoch to a state tree (which it changes in place; flush() persists)."""

    __slots__ = ("_env", "base_fee", "tree")

    def __init__(
        self,
        tree: StateTree,
        *,
        epoch: int,
        base_fee: int,
        randomness: RandomnessSource,
        policy: Policy,
        network_version: int = NETWORK_VERSION,
        invoker: Invoker = DEFAULT_INVOKER,
        prices: PriceList = PRICES,
        circ_supply: Callable[[StateTree], int] = circulating_supply,
        lookback_state: LookbackState | None = None,
    ) -> None:
        _ensure_recursion_headroom(policy.max_call_depth)
        self.tree = tree
        self.base_fee = base_fee
        self._env = Environment(
            tree=tree,
            epoch=epoch,
            network_version=network_version,
            policy=policy,
            prices=prices,
            invoker=invoker,
            randomness=randomness,
            # As the FVM: fixed for the VM's lifetime, computed from the state it starts from.
            circulating_supply=circ_supply(tree),
            account_code=builtin.ACCOUNT_ACTOR_CODE,
            lookback_state=lookback_state,
        )

    @property
    def epoch(self) -> int:
        return self._env.epoch

    @property
    def circulating_supply(self) -> int:
        return self._env.circulating_supply

    def flush(self) -> CID:
        """Persist the state tree; return its root."""
        return self.tree.flush()

    # -- messages ------------------------------------------------------------------------------------
    def _refused(self, code: ExitCode, reason: str, penalty: int) -> ApplyRet:
        receipt = MessageReceipt(exit_code=int(code), return_data=b"", gas_used=0)
        return ApplyRet(receipt, GasOutputs(miner_penalty=penalty), reason)

    def apply_message(self, cmsg: ChainMessage) -> ApplyRet:
        """Apply one message from a block; the receipt says what happened.

        Raises ExecutionAborted (the tree left as before the message) if the machine fails.
        """
        msg = cmsg.message if isinstance(cmsg, SignedMessage) else cmsg
        return self._atomically(msg, lambda: self._apply_message(cmsg))

    def _atomically(self, msg: Message, apply: Callable[[], ApplyRet]) -> ApplyRet:
        """Run apply() so that if the machine fails the tree is left exactly as before it, and the
        failure leaves as one ExecutionAborted naming the message."""
        tree = self.tree
        depth = tree.snapshot_depth
        tree.snapshot()
        try:
            ret = apply()
        except BaseException as exc:
            while tree.snapshot_depth > depth:
                tree.revert()
            failure = None if not isinstance(exc, Exception) else machine_failure(exc)
            if isinstance(exc, ExecutionAborted) or failure is not None:
                error = describe(exc if failure is None else failure)
                _log.error(
                    "message execution aborted: the machine failed, not the message",
                    message=str(msg.cid()),
                    to=str(msg.to),
                    method=msg.method,
                    epoch=self.epoch,
                    error=error,
                )
                raise ExecutionAborted(
                    f"message {msg.cid()} to {msg.to} method {msg.method} at epoch {self.epoch} "
                    f"aborted, nothing applied: {error}"
                ) from exc
            raise
        tree.clear_snapshot()
        return ret

    def _apply_message(self, cmsg: ChainMessage) -> ApplyRet:
        msg = cmsg.message if isinstance(cmsg, SignedMessage) else cmsg
        env = self._env
        inclusion = env.prices.on_chain_message(cmsg.chain_length())
        base_fee = self.base_fee
        if inclusion > msg.gas_limit:
            reason = f"gas limit {msg.gas_limit} does not cover the on-chain message cost {inclusion}"
            return self._refused(ExitCode.SysErrOutOfGas, reason, base_fee * inclusion)
        penalty = base_fee * msg.gas_limit
        problem = _syntax_problem(msg)
        if problem is not None:
            return self._refused(ExitCode.SysErrSenderInvalid, problem, penalty)
        tree = self.tree
        sender_id = tree.lookup_id(msg.from_)
        sender = None if sender_id is None else tree.get_actor(sender_id)
        if sender_id is None or sender is None:
            return self._refused(ExitCode.SysErrSenderInvalid, f"sender {msg.from_} does not exist", penalty)
        if sender.code != env.account_code:
            return self._refused(
                ExitCode.SysErrSenderInvalid, f"sender {msg.from_} is not an account", penalty
            )
        if msg.nonce != sender.nonce:
            reason = f"message nonce {msg.nonce} does not match the sender's nonce {sender.nonce}"
            return self._refused(ExitCode.SysErrSenderStateInvalid, reason, penalty)
        gas_cost = msg.gas_limit * msg.gas_fee_cap
        if sender.balance < gas_cost:
            reason = f"sender balance {sender.balance} is less than the gas cost {gas_cost}"
            return self._refused(ExitCode.SysErrSenderStateInvalid, reason, penalty)

        tree.set_actor(
            sender_id,
            Actor(
                sender.code,
                sender.head,
                sender.nonce + 1,
                sender.balance - gas_cost,
                sender.delegated_address,
            ),
        )
        gas = GasTracker(msg.gas_limit)
        ctx = MessageContext(env, gas, sender_id, msg.nonce)
        exit_code, result, error = self._run(ctx, sender_id, msg, inclusion)
        if exit_code == ExitCode.Ok and result:
            try:
                gas.charge(env.prices.on_chain_return_value(len(result)), "OnChainReturnValue")
            except ActorError as err:
                exit_code, result, error = err.exit_code, b"", err.message
        if exit_code == ExitCode.Ok:
            tree.clear_snapshot()
        else:
            tree.revert()
        gas_used = max(gas.used, 0)
        outputs = compute_gas_outputs(gas_used, msg.gas_limit, base_fee, msg.gas_fee_cap, msg.gas_premium)
        self._pay(builtin.BURNT_FUNDS_ACTOR_ADDR, outputs.base_fee_burn + outputs.over_estimation_burn)
        self._pay(builtin.REWARD_ACTOR_ADDR, outputs.miner_tip)
        self._pay(sender_id, outputs.refund)
        receipt = MessageReceipt(exit_code=int(exit_code), return_data=result, gas_used=gas_used)
        return ApplyRet(receipt, outputs, error)

    def _run(
        self, ctx: MessageContext, sender: Address, msg: Message, inclusion: int
    ) -> tuple[int, bytes, str | None]:
        """Run a message's send under a snapshot (left open for the caller to keep or revert)."""
        tree = self.tree
        tree.snapshot()
        try:
            ctx.gas.charge(inclusion, "OnChainMessage")
            return ExitCode.Ok, call(ctx, sender, msg.to, msg.method, msg.params, msg.value, 0), None
        except ActorError as err:
            return err.exit_code, b"", err.message
        except Exception as exc:
            if isinstance(exc, ExecutionAborted) or machine_failure(exc) is not None:
                raise  # _atomically reverts and reports it
            # Not inside an actor (call() converts those) and not the machine: the VM's own rules
            # failed on this message's state, e.g. an undecodable actor entry, which every node
            # meets alike. The message fails; state is intact.
            _log.error(
                "message execution failed",
                to=str(msg.to),
                method=msg.method,
                epoch=self.epoch,
                error=f"{type(exc).__name__}: {exc}",
                exc_info=exc,
            )
            return ExitCode.SysErrIllegalInstruction, b"", f"{type(exc).__name__}: {exc}"

    def _pay(self, address: Address, amount: int) -> None:
        if amount == 0:
            return
        actor = self.tree.get_actor(address)
        if actor is None:
            raise VMError(f"cannot pay {amount} to {address}: no such actor in the state")
        self.tree.set_actor(address, actor.with_balance(actor.balance + amount))

    def apply_implicit_message(self, msg: Message) -> ApplyRet:
        """Apply a message the system sends itself (block reward, cron): no nonce, no gas payment.

        Raises ExecutionAborted (the tree left as before the message) if the machine fails.
        """
        return self._atomically(msg, lambda: self._apply_implicit_message(msg))

    def _apply_implicit_message(self, msg: Message) -> ApplyRet:
        tree = self.tree
        sender = tree.lookup_id(msg.from_)
        if sender is None or tree.get_actor(sender) is None:
            return self._refused(ExitCode.SysErrSenderInvalid, f"sender {msg.from_} does not exist", 0)
        ctx = MessageContext(self._env, GasTracker(msg.gas_limit), sender, msg.nonce)
        exit_code, result, error = self._run(ctx, sender, msg, 0)
        if exit_code == ExitCode.Ok:
            tree.clear_snapshot()
        else:
            tree.revert()
            _log.warning("implicit message failed", to=str(msg.to), method=msg.method, error=error)
        receipt = MessageReceipt(exit_code=int(exit_code), return_data=result, gas_used=0)
        return ApplyRet(receipt, GasOutputs(), error)
