"""Keeping sectors proven: Window PoSt, fault and recovery declarations, terminations and the
end-of-deadline cron (builtin-actors v9 methods 5, 9, 10, 11 and 12)."""

from collections import defaultdict
from collections.abc import Iterable

from actors import builtin
from actors.dispatch import exports
from actors.miner import calls, faults
from actors.miner.deadlines import Deadlines
from actors.miner.policy import (
    DeadlineInfo,
    QuantSpec,
    allowed_window_post_proofs,
    deadline_is_mutable,
    pledge_penalty_for_continued_fault,
    pledge_penalty_for_termination,
)
from actors.miner.state import MinerInfo, MinerState, PreCommits, SectorOnChainInfo, Sectors, sector_power
from actors.miner.types import (
    CRON_EVENT_PROVING_DEADLINE,
    DeclareFaultsParams,
    DeclareFaultsRecoveredParams,
    DeferredCronEventParams,
    MinerMethod,
    PowerPair,
    SectorDeclaration,
    SubmitWindowedPoStParams,
    TerminateSectorsParams,
    TerminateSectorsReturn,
)
from actors.smoothing import FilterEstimate
from chain.encoding.errors import DecodeError
from chain.encoding.schema import replace
from chain.params import Policy
from chain.types.bitfield import BitField
from chain.types.sector import SectorInfo, WindowPoStVerifyInfo
from chain.vm.exitcode import forbidden, illegal_argument, illegal_state
from chain.vm.runtime import Runtime

RANDOMNESS_LENGTH = 32


def _by_deadline(
    declarations: Iterable[SectorDeclaration], deadlines: int
) -> dict[int, list[tuple[int, BitField]]]:
    grouped: dict[int, list[tuple[int, BitField]]] = defaultdict(list)
    for decl in declarations:
        if decl.deadline >= deadlines:
            raise illegal_argument(f"invalid deadline {decl.deadline}, must be < {deadlines}")
        grouped[decl.deadline].append((decl.partition, decl.sectors))
    return dict(sorted(grouped.items()))


def _check_declarations(policy: Policy, declarations: tuple[SectorDeclaration, ...]) -> None:
    if len(declarations) > policy.declarations_max:
        raise illegal_argument(f"too many declarations {len(declarations)}, max {policy.declarations_max}")
    sectors = sum(d.sectors.count() for d in declarations)
    if sectors > policy.addressed_sectors_max:
        raise illegal_argument(f"too many sectors {sectors}, max {policy.addressed_sectors_max}")


def _declaration_deadline(rt: Runtime, state: MinerState, index: int) -> DeadlineInfo:
    """The next instance of deadline `index` that has not closed; declarations must beat its cutoff."""
    period_start = DeadlineInfo.from_epoch(rt.policy, state.proving_period_start, rt.curr_epoch).period_start
    target = DeadlineInfo.of(rt.policy, period_start, index, rt.curr_epoch).next_not_elapsed()
    if target.fault_cutoff_passed():
        raise illegal_argument(f"late fault or recovery declaration for deadline {index}")
    return target


def _scope(rt: Runtime, sectors: Sectors, info: MinerInfo, deadline: DeadlineInfo) -> faults.DeadlineScope:
    return faults.DeadlineScope.of(rt.store, sectors, info.sector_size, deadline, rt.policy.fault_max_age)


@exports(MinerMethod.SubmitWindowedPoSt)
def submit_windowed_post(rt: Runtime, params: SubmitWindowedPoStParams) -> None:
    policy, curr = rt.policy, rt.curr_epoch
    if len(params.proofs) != 1:
        raise illegal_argument(f"expected exactly one proof, got {len(params.proofs)}")
    if params.proofs[0].proof_type not in allowed_window_post_proofs(policy):
        raise illegal_argument(f"proof type {params.proofs[0].proof_type} not allowed")
    if params.deadline >= policy.wpost_period_deadlines:
        raise illegal_argument(f"invalid deadline {params.deadline} of {policy.wpost_period_deadlines}")
    if len(params.chain_commit_rand) > RANDOMNESS_LENGTH:
        raise illegal_argument(f"expected at most {RANDOMNESS_LENGTH} bytes of randomness")

    state, info = calls.load(rt)
    calls.validate_control_caller(rt, info)
    if params.proofs[0].proof_type != info.window_post_proof_type:
        raise illegal_argument(
            f"expected proof of type {info.window_post_proof_type}, got {params.proofs[0].proof_type}"
        )
    limit = min(
        policy.addressed_sectors_max // info.window_post_partition_sectors, policy.addressed_partitions_max
    )
    if len(params.partitions) > limit:
        raise illegal_argument(f"too many partitions {len(params.partitions)}, limit {limit}")
    current = DeadlineInfo.from_epoch(policy, state.proving_period_start, curr)
    if not current.is_open():
        raise illegal_state(f"proving period {current.period_start} not yet open at {curr}")
    if params.deadline != current.index:
        raise illegal_argument(
            f"invalid deadline {params.deadline} at epoch {curr}, expected {current.index}"
        )
    if params.chain_commit_epoch < current.challenge:
        raise illegal_argument(
            f"expected chain commit epoch {params.chain_commit_epoch} to be after {current.challenge}"
        )
    if params.chain_commit_epoch >= curr:
        raise illegal_argument(
            f"chain commit epoch {params.chain_commit_epoch} must be less than the current epoch {curr}"
        )
    commit_rand = rt.get_randomness_from_tickets(calls.TAG_POST_CHAIN_COMMIT, params.chain_commit_epoch, b"")
    if commit_rand != params.chain_commit_rand:
        raise illegal_argument("post commit randomness mismatched")

    sectors = Sectors.load(rt.store, state.sectors)
    deadlines = Deadlines.load(rt.store, state.deadlines)
    result = faults.record_proven_partitions(
        _scope(rt, sectors, info, current), deadlines.get(rt.store, params.deadline), params.partitions
    )
    if not result.proven:
        raise illegal_argument("cannot prove partitions with no active sectors")
    randomness = rt.get_randomness_from_beacon(
        calls.TAG_WINDOW_POST_CHALLENGE_SEED, current.challenge, calls.receiver_entropy(rt)
    )
    challenged = tuple(
        SectorInfo(s.seal_proof, s.sector_number, s.sealed_cid)
        for s in (sectors.must_get(n) for n in result.proven)
    )
    verify_info = WindowPoStVerifyInfo(randomness, params.proofs, challenged, rt.receiver.id)
    if not rt.verify_post(verify_info):
        raise illegal_argument("invalid post was submitted")
    deadlines = deadlines.with_deadline(rt.store, params.deadline, result.deadline)
    rt.set_state(replace(state, deadlines=deadlines.save(rt.store)))
    calls.update_power(rt, result.power_delta)
    state.check_balance_invariants(rt.current_balance())


@exports(MinerMethod.DeclareFaults)
def declare_faults(rt: Runtime, params: DeclareFaultsParams) -> None:
    _check_declarations(rt.policy, params.faults)
    state, info = calls.load(rt)
    calls.validate_control_caller(rt, info)
    grouped = _by_deadline(params.faults, rt.policy.wpost_period_deadlines)
    sectors = Sectors.load(rt.store, state.sectors)
    deadlines = Deadlines.load(rt.store, state.deadlines)
    delta = PowerPair()
    for index, declarations in grouped.items():
        target = _declaration_deadline(rt, state, index)
        deadline, lost = faults.declare_faults(
            _scope(rt, sectors, info, target), deadlines.get(rt.store, index), declarations
        )
        deadlines = deadlines.with_deadline(rt.store, index, deadline)
        delta = delta + lost
    rt.set_state(replace(state, deadlines=deadlines.save(rt.store)))
    calls.update_power(rt, delta)


@exports(MinerMethod.DeclareFaultsRecovered)
def declare_faults_recovered(rt: Runtime, params: DeclareFaultsRecoveredParams) -> None:
    _check_declarations(rt.policy, params.recoveries)
    state, info = calls.load(rt)
    state, fee_to_burn = state.repay_debts(rt.current_balance())
    calls.validate_control_caller(rt, info)
    if rt.curr_epoch <= info.consensus_fault_elapsed:
        raise forbidden("recovery not allowed during active consensus fault")
    grouped = _by_deadline(params.recoveries, rt.policy.wpost_period_deadlines)
    sectors = Sectors.load(rt.store, state.sectors)
    deadlines = Deadlines.load(rt.store, state.deadlines)
    for index, declarations in grouped.items():
        target = _declaration_deadline(rt, state, index)
        deadline = faults.declare_recoveries(
            _scope(rt, sectors, info, target), deadlines.get(rt.store, index), declarations
        )
        deadlines = deadlines.with_deadline(rt.store, index, deadline)
    state = replace(state, deadlines=deadlines.save(rt.store))
    rt.set_state(state)
    calls.burn(rt, fee_to_burn)
    state.check_balance_invariants(rt.current_balance())


def termination_penalty(
    policy: Policy,
    sector_size: int,
    curr_epoch: int,
    reward: FilterEstimate,
    network_qa_power: FilterEstimate,
    sectors: Iterable[SectorOnChainInfo],
) -> int:
    return sum(
        pledge_penalty_for_termination(
            policy,
            s.expected_day_reward,
            curr_epoch - s.activation,
            s.expected_storage_pledge,
            network_qa_power,
            sector_power(sector_size, s).qa,
            reward,
            s.replaced_day_reward,
            s.replaced_sector_age,
        )
        for s in sectors
    )


def _settle_removed(
    rt: Runtime,
    state: MinerState,
    info: MinerInfo,
    removed: list[SectorOnChainInfo],
    penalised: list[SectorOnChainInfo],
    reward: FilterEstimate,
    network_qa_power: FilterEstimate,
    extra_penalty: int = 0,
) -> tuple[MinerState, int, int]:
    """Release the pledge of sectors leaving the miner, drop their infos and charge penalties
    (termination fees for `penalised`, plus extra_penalty). Returns (state, pledge delta, burn)."""
    pledge_released = sum(s.initial_pledge for s in removed)
    penalty = extra_penalty + termination_penalty(
        rt.policy, info.sector_size, rt.curr_epoch, reward, network_qa_power, penalised
    )
    sectors = Sectors.load(rt.store, state.sectors)
    sectors.delete(BitField.from_bits(s.sector_number for s in removed))
    state = replace(state.add_initial_pledge(-pledge_released), sectors=sectors.flush())
    state = state.apply_penalty(penalty)
    state, from_vesting, from_balance = state.repay_partial_debt(
        rt.store, rt.curr_epoch, rt.current_balance()
    )
    return state, -pledge_released - from_vesting, from_vesting + from_balance


@exports(MinerMethod.TerminateSectors)
def terminate_sectors(rt: Runtime, params: TerminateSectorsParams) -> TerminateSectorsReturn:
    policy, curr = rt.policy, rt.curr_epoch
    _check_declarations(policy, params.terminations)
    state, info = calls.load(rt)
    calls.validate_control_caller(rt, info)
    grouped = _by_deadline(params.terminations, policy.wpost_period_deadlines)
    period_start = DeadlineInfo.from_epoch(policy, state.proving_period_start, curr).period_start
    for index in grouped:
        if not deadline_is_mutable(policy, period_start, index, curr):
            raise illegal_argument(f"cannot terminate sectors in immutable deadline {index}")
    reward = calls.reward_stats(rt)
    power = calls.power_stats(rt)

    sectors = Sectors.load(rt.store, state.sectors)
    deadlines = Deadlines.load(rt.store, state.deadlines)
    removed_power = PowerPair()
    terminated: list[SectorOnChainInfo] = []
    for index, declarations in grouped.items():
        scope = _scope(rt, sectors, info, DeadlineInfo.of(policy, state.proving_period_start, index, 0))
        deadline, active, infos = faults.terminate_sectors(
            scope, deadlines.get(rt.store, index), declarations
        )
        deadlines = deadlines.with_deadline(rt.store, index, deadline)
        removed_power = removed_power + active
        terminated.extend(infos)
    state = replace(state, deadlines=deadlines.save(rt.store))
    state, pledge_delta, to_burn = _settle_removed(
        rt,
        state,
        info,
        terminated,
        terminated,
        reward.this_epoch_reward_smoothed,
        power.quality_adj_power_smoothed,
    )
    rt.set_state(state)
    calls.update_power(rt, -removed_power)
    calls.burn(rt, to_burn)
    calls.notify_pledge_changed(rt, pledge_delta)
    calls.terminate_deals(rt, curr, [d for s in terminated for d in s.deal_ids])
    state.check_balance_invariants(rt.current_balance())
    return TerminateSectorsReturn(done=True)


@exports(MinerMethod.OnDeferredCronEvent)
def on_deferred_cron_event(rt: Runtime, params: DeferredCronEventParams) -> None:
    rt.validate_immediate_caller_is(builtin.STORAGE_POWER_ACTOR_ADDR)
    try:
        payload = params.payload()
    except DecodeError as exc:
        raise illegal_state(f"failed to unmarshal miner cron payload: {exc}") from None
    if payload.event_type == CRON_EVENT_PROVING_DEADLINE:
        handle_proving_deadline(rt, params.reward_smoothed, params.quality_adj_power_smoothed)
    # Other event types (early-termination batches) are never enrolled: terminations settle at once.
    rt.state(MinerState).check_balance_invariants(rt.current_balance())


def _cleanup_expired_pre_commits(rt: Runtime, state: MinerState) -> tuple[MinerState, int]:
    """Drop pre-commits that were never proven in time; returns the state and their deposits."""
    quant = QuantSpec(rt.policy.wpost_challenge_window, state.proving_period_start)
    queue = state.precommit_cleanup_queue(rt.store, quant)
    expired = queue.pop_until(rt.curr_epoch)
    precommits = PreCommits.load(rt.store, state.pre_committed_sectors)
    deposits = 0
    for number in expired:
        precommit = precommits.get(number)
        if precommit is not None:
            precommits.remove(number)
            deposits += precommit.pre_commit_deposit
    state = replace(
        state, pre_committed_sectors=precommits.flush(), pre_committed_sectors_cleanup=queue.flush()
    )
    return state.add_pre_commit_deposit(-deposits), deposits


def handle_proving_deadline(rt: Runtime, reward: FilterEstimate, network_qa_power: FilterEstimate) -> None:
    """At the last epoch of a deadline: vest rewards, apply a due worker change, burn the deposits
    of expired pre-commits, and close the deadline (missed PoSts, expirations, fault terminations)."""
    policy, curr = rt.policy, rt.curr_epoch
    state, info = calls.load(rt)
    state, vested = state.unlock_vested_funds(rt.store, curr)
    pledge_delta = -vested
    if info.pending_worker_key is not None and curr >= info.pending_worker_key.effective_at:
        info = replace(info, worker=info.pending_worker_key.new_worker, pending_worker_key=None)
        state = state.with_info(rt.store, info)
    state, expired_deposits = _cleanup_expired_pre_commits(rt, state)
    penalty = expired_deposits

    power_delta = PowerPair()
    removed: list[SectorOnChainInfo] = []
    fault_terminated: list[SectorOnChainInfo] = []
    dl_info = DeadlineInfo.from_epoch(policy, state.proving_period_start, curr)
    if dl_info.period_started():
        next_index = (dl_info.index + 1) % policy.wpost_period_deadlines
        state = replace(state, current_deadline=next_index)
        if next_index == 0:
            state = replace(state, proving_period_start=dl_info.period_start + policy.wpost_proving_period)
        deadlines = Deadlines.load(rt.store, state.deadlines)
        deadline = deadlines.get(rt.store, dl_info.index)
        sectors = Sectors.load(rt.store, state.sectors)
        end = faults.process_deadline_end(_scope(rt, sectors, info, dl_info), deadline, dl_info.last())
        state = replace(
            state, deadlines=deadlines.with_deadline(rt.store, dl_info.index, end.deadline).save(rt.store)
        )
        power_delta = end.power_delta
        # Sectors faulty through this deadline pay the continued fault fee, and so do those a missed
        # PoSt just found faulty (v9 charges these nothing until the next deadline; see docs/actors.md).
        penalty += pledge_penalty_for_continued_fault(
            policy, reward, network_qa_power, end.previously_faulty_power.qa + end.detected_faulty_power.qa
        )
        removed = [*end.expired, *end.fault_terminated]
        fault_terminated = list(end.fault_terminated)

    state, settled_pledge, to_burn = _settle_removed(
        rt, state, info, removed, fault_terminated, reward, network_qa_power, penalty
    )
    pledge_delta += settled_pledge
    continue_cron = state.continue_deadline_cron()
    state = replace(state, deadline_cron_active=continue_cron)
    rt.set_state(state)

    calls.update_power(rt, power_delta)
    calls.burn(rt, to_burn)
    calls.notify_pledge_changed(rt, pledge_delta)
    calls.terminate_deals(rt, curr, [d for s in fault_terminated for d in s.deal_ids])
    if continue_cron:
        next_last = DeadlineInfo.from_epoch(policy, state.proving_period_start, curr + 1).last()
        calls.enroll_cron_event(rt, next_last, CRON_EVENT_PROVING_DEADLINE)
