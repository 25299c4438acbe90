"""Computing a tipset's state: its blocks' messages, block rewards and cron, from the parent state.

The order is Lotus's ApplyBlocks (lotus chain/consensus/filcns/compute_state.go):
1. For each null round between the parent tipset and this one, run cron at that epoch.
2. At the tipset's epoch, block by block (in tipset order), apply the block's BLS messages then its
   secp256k1 messages, skipping any message (by unsigned message CID) already applied from an earlier
   block; then the implicit reward message: reward.AwardBlockReward {Miner, Penalty, GasReward,
   WinCount} with the block's summed miner penalties and miner tips (the tips were paid to the reward
   actor as the messages ran, and the reward actor passes them on to the miner).
3. Run cron at the tipset's epoch.
4. Receipts, one per applied message in order, go into an AMT of the legacy layout Lotus writes
   (chain/state/amt.py amt_v0_from_list); the state is flushed.

A failing reward or cron message means the state cannot be computed: ImplicitMessageFailed. That, a
failure of the machine (ExecutionAborted, chain/vm/abort.py) or a broken state (VMError) leaves the
state tree as it was at parent_state: the whole tipset runs under one snapshot and nothing is flushed
before it has succeeded (so null rounds are not flushed one by one as Lotus does; the root is the same).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from actors import builtin
from actors.cron.types import CronMethod
from actors.reward.types import AwardBlockRewardParams, RewardMethod
from chain.crypto.randomness import RandomnessSource
from chain.encoding.cid import CID
from chain.params import Policy
from chain.state.amt import amt_v0_from_list
from chain.state.tree import StateTree
from chain.store.blockstore import Blockstore
from chain.types.address import Address
from chain.types.message import Message, SignedMessage
from chain.types.receipt import MessageReceipt
from chain.vm.invoker import DEFAULT_INVOKER, Invoker
from chain.vm.syscalls import LookbackState
from chain.vm.vm import NETWORK_VERSION, VM, ApplyRet

# Gas limits Lotus gives the implicit messages.
REWARD_MESSAGE_GAS_LIMIT: Final = 1 << 30
CRON_GAS_LIMIT_BLOCKS: Final = 10_000


class ImplicitMessageFailed(Exception):
    """A reward or cron message failed: the tipset's state cannot be computed."""

    def __init__(self, what: str, ret: ApplyRet) -> None:
        super().__init__(f"{what} failed with exit code {ret.exit_code}: {ret.error}")
        self.ret = ret


@dataclass(frozen=True, slots=True)
class BlockMessages:
    """One block's part of a tipset: its miner, its messages and how many times it won the round."""

    miner: Address
    bls_messages: Sequence[Message] = ()
    secpk_messages: Sequence[SignedMessage] = ()
    win_count: int = 1


@dataclass(frozen=True, slots=True)
class TipsetResult:
    state_root: CID
    receipts_root: CID
    receipts: tuple[MessageReceipt, ...]
    # One entry per applied message, in receipt order: the message CID and what applying it gave.
    applied: tuple[tuple[CID, ApplyRet], ...] = field(default=(), repr=False)


def implicit_message(
    to: Address,
    method: int,
    params: bytes,
    *,
    nonce: int,
    gas_limit: int,
    value: int = 0,
    sender: Address = builtin.SYSTEM_ACTOR_ADDR,
) -> Message:
    """A message the node applies itself (VM.apply_implicit_message), from the system actor unless
    said otherwise: no gas price, as Lotus makes them (its cron and reward messages take nonce = epoch)."""
    return Message(
        to=to,
        from_=sender,
        nonce=nonce,
        value=value,
        gas_limit=gas_limit,
        gas_fee_cap=0,
        gas_premium=0,
        method=method,
        params=params,
    )


def reward_message(epoch: int, params: AwardBlockRewardParams) -> Message:
    return implicit_message(
        builtin.REWARD_ACTOR_ADDR,
        RewardMethod.AwardBlockReward,
        params.to_bytes(),
        nonce=epoch,
        gas_limit=REWARD_MESSAGE_GAS_LIMIT,
    )


def cron_message(epoch: int, policy: Policy) -> Message:
    gas_limit = policy.block_gas_limit * CRON_GAS_LIMIT_BLOCKS
    return implicit_message(
        builtin.CRON_ACTOR_ADDR, CronMethod.EpochTick, b"", nonce=epoch, gas_limit=gas_limit
    )


def run_cron(vm: VM, policy: Policy) -> None:
    ret = vm.apply_implicit_message(cron_message(vm.epoch, policy))
    if ret.exit_code != 0:
        raise ImplicitMessageFailed(f"cron at epoch {vm.epoch}", ret)


def apply_tipset(
    store: Blockstore,
    parent_state: CID,
    parent_epoch: int,
    epoch: int,
    blocks: Sequence[BlockMessages],
    *,
    base_fee: int,
    randomness: RandomnessSource,
    policy: Policy,
    network_version: int = NETWORK_VERSION,
    invoker: Invoker = DEFAULT_INVOKER,
    tree: StateTree | None = None,
    lookback_state: LookbackState | None = None,
) -> TipsetResult:
    """The state and receipts of the tipset at `epoch` whose parent tipset (at parent_epoch) has
    state parent_state. `tree` may be given to reuse an open state tree already at parent_state;
    `lookback_state` gives the chain's lookback states (consensus faults need them)."""
    if epoch <= parent_epoch:
        raise ValueError(f"tipset epoch {epoch} must be above its parent's {parent_epoch}")
    if tree is None:
        tree = StateTree.load(store, parent_state)

    def make_vm(at: int) -> VM:
        return VM(
            tree,
            epoch=at,
            base_fee=base_fee,
            randomness=randomness,
            policy=policy,
            network_version=network_version,
            invoker=invoker,
            lookback_state=lookback_state,
        )

    depth = tree.snapshot_depth
    tree.snapshot()
    try:
        vm, applied = _apply_epochs(make_vm, parent_epoch, epoch, blocks, policy)
    except BaseException:
        while tree.snapshot_depth > depth:
            tree.revert()
        raise
    tree.clear_snapshot()

    receipts = tuple(ret.receipt for _, ret in applied)
    receipts_root = amt_v0_from_list(store, [r.to_cbor() for r in receipts])
    return TipsetResult(vm.flush(), receipts_root, receipts, tuple(applied))


def _apply_epochs(
    make_vm: Callable[[int], VM],
    parent_epoch: int,
    epoch: int,
    blocks: Sequence[BlockMessages],
    policy: Policy,
) -> tuple[VM, list[tuple[CID, ApplyRet]]]:
    """Null-round crons, the blocks' messages and rewards, then cron: the tree is changed in place."""
    for null_epoch in range(parent_epoch + 1, epoch):
        run_cron(make_vm(null_epoch), policy)

    vm = make_vm(epoch)
    applied: list[tuple[CID, ApplyRet]] = []
    seen: set[CID] = set()
    for block in blocks:
        penalty = 0
        gas_reward = 0
        messages: list[Message | SignedMessage] = [*block.bls_messages, *block.secpk_messages]
        for cmsg in messages:
            msg = cmsg.message if isinstance(cmsg, SignedMessage) else cmsg
            cid = msg.cid()
            if cid in seen:
                continue
            ret = vm.apply_message(cmsg)
            applied.append((cid, ret))
            gas_reward += ret.gas_costs.miner_tip
            penalty += ret.gas_costs.miner_penalty
            seen.add(cid)
        params = AwardBlockRewardParams(block.miner, penalty, gas_reward, block.win_count)
        ret = vm.apply_implicit_message(reward_message(epoch, params))
        if ret.exit_code != 0:
            raise ImplicitMessageFailed(f"block reward for {block.miner} at epoch {epoch}", ret)
    run_cron(vm, policy)
    return vm, applied
