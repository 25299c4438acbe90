"""The storage miner actor: its method table and the methods that manage the miner itself
(construction, control addresses, balances, rewards, consensus faults, piece inclusion checks).

Sector sealing lives in actors.miner.sealing and proving in actors.miner.proving. Method numbers and
shapes are builtin-actors v9's (actors.miner.types). There is no AddBalance: funds reach a miner by a
plain value transfer (method 0), which the VM handles without calling the actor (docs/actors.md).
"""

from actors import builtin
from actors.abi import EPOCH_UNDEFINED, MAX_SECTOR_NUMBER, WithdrawBalanceReturn
from actors.dispatch import METHOD_SEND, ActorDef, exported, exports
from actors.miner import calls, proving, sealing
from actors.miner.deadlines import Deadlines
from actors.miner.policy import (
    WINDOW_POST_PROOFS,
    allowed_window_post_proofs,
    consensus_fault_penalty,
    current_proving_period_start,
    locked_reward_from_reward,
    proving_period_offset,
    reward_for_consensus_slash_report,
)
from actors.miner.state import BeneficiaryTerm, MinerInfo, MinerState, Sectors, WorkerKeyChange
from actors.miner.types import (
    ApplyRewardParams,
    ChangeMultiaddrsParams,
    ChangePeerIDParams,
    ChangeWorkerAddressParams,
    CheckSectorProvenParams,
    GetControlAddressesReturn,
    MinerConstructorParams,
    MinerMethod,
    PieceInclusionExtra,
    ReportConsensusFaultParams,
    VerifyPieceInclusionParams,
    WithdrawBalanceParams,
)
from actors.miner.vesting import VestSpec
from chain.encoding.errors import DecodeError
from chain.encoding.schema import replace
from chain.params import Policy
from chain.types.address import Address
from chain.types.sector import PieceInclusionVerifyInfo
from chain.vm.exitcode import (
    ActorError,
    forbidden,
    illegal_argument,
    illegal_state,
    insufficient_funds,
    not_found,
)
from chain.vm.runtime import Runtime


def _check_control_addresses(policy: Policy, addresses: tuple[Address, ...]) -> None:
    if len(addresses) > policy.max_control_addresses:
        raise illegal_argument(
            f"control addresses length {len(addresses)} exceeds max {policy.max_control_addresses}"
        )


def _check_peer_info(policy: Policy, peer_id: bytes | None, multiaddrs: tuple[bytes, ...] | None) -> None:
    if peer_id is not None and len(peer_id) > policy.max_peer_id_length:
        raise illegal_argument(
            f"peer ID size of {len(peer_id)} exceeds maximum size of {policy.max_peer_id_length}"
        )
    if multiaddrs is not None:
        if any(len(m) == 0 for m in multiaddrs):
            raise illegal_argument("invalid empty multiaddr")
        total = sum(len(m) for m in multiaddrs)
        if total > policy.max_multiaddr_data:
            raise illegal_argument(
                f"multiaddr size of {total} exceeds maximum of {policy.max_multiaddr_data}"
            )


@exports(MinerMethod.Constructor)
def constructor(rt: Runtime, params: MinerConstructorParams) -> None:
    rt.validate_immediate_caller_is(builtin.INIT_ACTOR_ADDR)
    policy = rt.policy
    _check_control_addresses(policy, params.control_addresses)
    _check_peer_info(policy, params.peer_id, params.multi_addresses)
    if params.window_post_proof_type not in allowed_window_post_proofs(policy):
        raise illegal_argument(f"proof type {params.window_post_proof_type} not allowed for new miner actors")
    owner = calls.resolve_control_address(rt, params.owner)
    worker = calls.resolve_worker_address(rt, params.worker)
    controls = tuple(calls.resolve_control_address(rt, a) for a in params.control_addresses)

    epoch = rt.curr_epoch
    seed = calls.receiver_entropy(rt) + epoch.to_bytes(8, "big", signed=True)
    offset = proving_period_offset(policy, rt.hash_blake2b(seed))
    period_start = current_proving_period_start(policy, epoch, offset)
    deadline_index = (epoch - period_start) // policy.wpost_challenge_window
    proof = WINDOW_POST_PROOFS[params.window_post_proof_type]
    info = MinerInfo(
        owner=owner,
        worker=worker,
        control_addresses=controls,
        pending_worker_key=None,
        peer_id=params.peer_id,
        multiaddrs=params.multi_addresses,
        window_post_proof_type=params.window_post_proof_type,
        sector_size=proof.sector_size,
        window_post_partition_sectors=proof.window_post_partition_sectors,
        consensus_fault_elapsed=EPOCH_UNDEFINED,
        pending_owner_address=None,
        beneficiary=owner,
        beneficiary_term=BeneficiaryTerm(),
    )
    deadlines = Deadlines.new(rt.store, policy.wpost_period_deadlines).save(rt.store)
    rt.set_state(MinerState.new(rt.store, info, period_start, deadline_index, deadlines))


@exports(MinerMethod.ControlAddresses)
def control_addresses(rt: Runtime) -> GetControlAddressesReturn:
    rt.validate_immediate_caller_accept_any()
    _, info = calls.load(rt)
    return GetControlAddressesReturn(info.owner, info.worker, info.control_addresses)


@exports(MinerMethod.ChangeWorkerAddress)
def change_worker_address(rt: Runtime, params: ChangeWorkerAddressParams) -> None:
    """Replace the control addresses now and schedule the worker change (the owner only)."""
    _check_control_addresses(rt.policy, params.new_control_addresses)
    new_worker = calls.resolve_worker_address(rt, params.new_worker)
    controls = tuple(calls.resolve_control_address(rt, a) for a in params.new_control_addresses)
    state, info = calls.load(rt)
    rt.validate_immediate_caller_is(info.owner)
    info = replace(info, control_addresses=controls)
    if new_worker != info.worker and info.pending_worker_key is None:
        effective = rt.curr_epoch + rt.policy.worker_key_change_delay
        info = replace(info, pending_worker_key=WorkerKeyChange(new_worker, effective))
    rt.set_state(state.with_info(rt.store, info))


@exports(MinerMethod.ConfirmUpdateWorkerKey)
def confirm_update_worker_key(rt: Runtime) -> None:
    """Apply a scheduled worker change whose effective epoch has come (the owner only)."""
    state, info = calls.load(rt)
    rt.validate_immediate_caller_is(info.owner)
    pending = info.pending_worker_key
    if pending is None or rt.curr_epoch < pending.effective_at:
        return
    rt.set_state(state.with_info(rt.store, replace(info, worker=pending.new_worker, pending_worker_key=None)))


@exports(MinerMethod.ChangePeerID)
def change_peer_id(rt: Runtime, params: ChangePeerIDParams) -> None:
    _check_peer_info(rt.policy, params.new_id, None)
    state, info = calls.load(rt)
    calls.validate_control_caller(rt, info)
    rt.set_state(state.with_info(rt.store, replace(info, peer_id=params.new_id)))


@exports(MinerMethod.ChangeMultiaddrs)
def change_multiaddrs(rt: Runtime, params: ChangeMultiaddrsParams) -> None:
    _check_peer_info(rt.policy, None, params.new_multi_addrs)
    state, info = calls.load(rt)
    calls.validate_control_caller(rt, info)
    rt.set_state(state.with_info(rt.store, replace(info, multiaddrs=params.new_multi_addrs)))


@exports(MinerMethod.CheckSectorProven)
def check_sector_proven(rt: Runtime, params: CheckSectorProvenParams) -> None:
    rt.validate_immediate_caller_accept_any()
    if params.sector_number > MAX_SECTOR_NUMBER:
        raise illegal_argument("sector number out of range")
    state = rt.state(MinerState)
    if Sectors.load(rt.store, state.sectors).get(params.sector_number) is None:
        raise not_found(f"sector {params.sector_number} not proven")


@exports(MinerMethod.ApplyRewards)
def apply_rewards(rt: Runtime, params: ApplyRewardParams) -> None:
    """Receive a block reward (locking 3/4 of it to vest) and a penalty to pay (from the reward actor)."""
    if params.reward < 0:
        raise illegal_argument("cannot lock up a negative amount of funds")
    if params.penalty < 0:
        raise illegal_argument("cannot penalize a negative amount of funds")
    state = rt.state(MinerState)
    rt.validate_immediate_caller_is(builtin.REWARD_ACTOR_ADDR)
    to_lock = locked_reward_from_reward(params.reward)
    unlocked = state.unlocked_balance(rt.current_balance())
    if unlocked < to_lock:
        raise insufficient_funds(
            f"insufficient funds to lock, available: {unlocked}, requested: {to_lock}",
        )
    state, vested = state.add_locked_funds(rt.store, rt.curr_epoch, to_lock, VestSpec.for_rewards(rt.policy))
    state = state.apply_penalty(params.penalty)
    state, from_vesting, from_balance = state.repay_partial_debt(
        rt.store, rt.curr_epoch, rt.current_balance()
    )
    rt.set_state(state)
    calls.notify_pledge_changed(rt, to_lock - vested - from_vesting)
    calls.burn(rt, from_vesting + from_balance)
    state.check_balance_invariants(rt.current_balance())


@exports(MinerMethod.ReportConsensusFault)
def report_consensus_fault(rt: Runtime, params: ReportConsensusFaultParams) -> None:
    """Penalise this miner for a proven consensus fault, bar it from winning blocks for a while and
    reward the reporter from the penalty."""
    rt.validate_immediate_caller_type(*builtin.CALLER_TYPES_SIGNABLE)
    reporter = rt.caller
    fault = rt.verify_consensus_fault(params.header1, params.header2, params.header_extra)
    if fault is None:
        raise illegal_argument("no consensus fault found")
    if fault.target != rt.receiver:
        raise illegal_argument(f"fault by {fault.target} reported to miner {rt.receiver}")
    if rt.curr_epoch - fault.epoch <= 0:
        raise illegal_argument(f"invalid fault epoch {fault.epoch} ahead of current {rt.curr_epoch}")
    this_epoch_reward = calls.reward_stats(rt).this_epoch_reward_smoothed.estimate()
    penalty = consensus_fault_penalty(rt.policy, this_epoch_reward)
    slasher_reward = reward_for_consensus_slash_report(rt.policy, this_epoch_reward)

    state, info = calls.load(rt)
    if fault.epoch < info.consensus_fault_elapsed:
        raise forbidden(
            f"fault epoch {fault.epoch} is too old, last exclusion ended at {info.consensus_fault_elapsed}",
        )
    state = state.apply_penalty(penalty)
    state, from_vesting, from_balance = state.repay_partial_debt(
        rt.store, rt.curr_epoch, rt.current_balance()
    )
    burn_amount = from_vesting + from_balance
    reward_amount = min(burn_amount, slasher_reward)
    info = replace(
        info, consensus_fault_elapsed=rt.curr_epoch + rt.policy.consensus_fault_ineligibility_duration
    )
    state = state.with_info(rt.store, info)
    rt.set_state(state)
    # A reporter that cannot receive funds does not undo the penalty.
    rt.send(reporter, METHOD_SEND, b"", reward_amount)
    calls.burn(rt, burn_amount - reward_amount)
    calls.notify_pledge_changed(rt, -from_vesting)
    state.check_balance_invariants(rt.current_balance())


@exports(MinerMethod.WithdrawBalance)
def withdraw_balance(rt: Runtime, params: WithdrawBalanceParams) -> WithdrawBalanceReturn:
    """Send up to the requested amount of available balance to the owner, repaying fee debt first."""
    if params.amount_requested < 0:
        raise illegal_argument(f"negative fund requested for withdrawal: {params.amount_requested}")
    state, info = calls.load(rt)
    rt.validate_immediate_caller_is(info.owner, info.beneficiary)
    state, vested = state.unlock_vested_funds(rt.store, rt.curr_epoch)
    available = state.available_balance(rt.current_balance())
    state, fee_to_burn = state.repay_debts(rt.current_balance())
    amount = min(available, params.amount_requested)
    if amount < 0:
        raise illegal_state(f"negative amount to withdraw: {amount}")
    rt.set_state(state)
    if amount > 0:
        sent = rt.send(info.beneficiary, METHOD_SEND, b"", amount)
        if not sent.ok:
            raise ActorError(sent.exit_code, f"failed to withdraw {amount} to {info.beneficiary}")
    calls.burn(rt, fee_to_burn)
    calls.notify_pledge_changed(rt, -vested)
    state.check_balance_invariants(rt.current_balance())
    return amount


@exports(MinerMethod.RepayDebt)
def repay_debt(rt: Runtime) -> None:
    state, info = calls.load(rt)
    calls.validate_control_caller(rt, info)
    state, from_vesting, from_balance = state.repay_partial_debt(
        rt.store, rt.curr_epoch, rt.current_balance()
    )
    rt.set_state(state)
    calls.notify_pledge_changed(rt, -from_vesting)
    calls.burn(rt, from_vesting + from_balance)
    state.check_balance_invariants(rt.current_balance())


@exports(MinerMethod.VerifyPieceInclusion)
def verify_piece_inclusion(rt: Runtime, params: VerifyPieceInclusionParams) -> None:
    """Succeed only if params.proof shows the piece named in params.extra inside a proven sector's
    CommD (a payment voucher's condition; see docs/actors.md)."""
    rt.validate_immediate_caller_accept_any()
    try:
        extra = PieceInclusionExtra.from_bytes(params.extra)
    except DecodeError as exc:
        raise illegal_argument("bad piece inclusion condition", exc) from None
    if extra.sector_number > MAX_SECTOR_NUMBER:
        raise illegal_argument("sector number out of range")
    state = rt.state(MinerState)
    sector = Sectors.load(rt.store, state.sectors).get(extra.sector_number)
    if sector is None:
        raise not_found(f"sector {extra.sector_number} not proven")
    info = PieceInclusionVerifyInfo(sector.seal_proof, sector.unsealed_cid, extra.piece, params.proof)
    if not rt.verify_piece_inclusion(info):
        raise illegal_argument(
            f"piece {extra.piece.piece_cid} is not proven to be in sector {extra.sector_number}"
        )


ACTOR = ActorDef.of(
    builtin.MINER_ACTOR_CODE, "storageminer", MinerState, exported(MinerMethod, globals(), sealing, proving)
)
