"""Committing sectors: PreCommitSector(Batch), ProveCommitSector and ProveCommitAggregate.

A pre-commit records the sealed CID (CommR), the seal ticket's epoch and the deals, and locks a
deposit; the deals' CommD comes from the market (VerifyDealsForActivation). After the interactive
seed is drawn (pre_commit_challenge_delay epochs later) ProveCommitSector checks the seal proof with
rt.verify_seal right away (v9 queues it for the power actor's cron; see docs/actors.md), activates the
deals, locks the initial pledge in place of the deposit, assigns the sector to a deadline and claims
its power. ProveCommitAggregate does the same for several sectors in one message, with one vanilla
seal proof per sector where v9 takes a SnarkPack aggregate.
"""

from dataclasses import dataclass, replace

from actors import builtin
from actors.abi import MAX_SECTOR_NUMBER
from actors.dispatch import encode_params, exports
from actors.market.types import (
    ActivateDealsParams,
    ActivateDealsResult,
    MarketMethod,
    SectorDeals,
    VerifyDealsForActivationParams,
    VerifyDealsForActivationReturn,
)
from actors.miner import calls
from actors.miner.deadlines import Deadlines, add_sectors_to_deadline
from actors.miner.policy import (
    SEAL_PROOFS,
    DeadlineInfo,
    QuantSpec,
    deadline_is_mutable,
    expected_reward_for_power,
    initial_pledge_for_power,
    pre_commit_deposit_for_power,
    qa_power_for_weight,
    qa_power_max,
)
from actors.miner.state import (
    MinerState,
    PreCommits,
    SectorOnChainInfo,
    SectorPreCommitInfo,
    SectorPreCommitOnChainInfo,
    Sectors,
)
from actors.miner.types import (
    CRON_EVENT_PROVING_DEADLINE,
    MinerMethod,
    PowerPair,
    PreCommitSectorBatchParams,
    PreCommitSectorParams,
    ProveCommitAggregateParams,
    ProveCommitSectorParams,
)
from actors.sends import call, decode_return
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.params import Policy
from chain.store.blockstore import put_cbor
from chain.types.bitfield import BitField
from chain.types.sector import MAX_DEALS_PER_SECTOR, SealVerifyInfo, SectorID, is_sealed_cid
from chain.vm.exitcode import (
    ExitCode,
    forbidden,
    illegal_argument,
    illegal_state,
    insufficient_funds,
    not_found,
)
from chain.vm.runtime import Runtime


def validate_expiration(policy: Policy, curr_epoch: int, activation: int, expiration: int) -> None:
    if expiration <= activation:
        raise illegal_argument(f"sector expiration {expiration} must be after activation {activation}")
    if expiration - activation < policy.min_sector_expiration:
        raise illegal_argument(
            f"invalid expiration {expiration}, sector lifetime must exceed {policy.min_sector_expiration}"
        )
    if expiration > curr_epoch + policy.max_sector_expiration_extension:
        raise illegal_argument(
            f"invalid expiration {expiration}, more than {policy.max_sector_expiration_extension} past now"
        )
    if expiration - activation > policy.sector_max_lifetime:
        raise illegal_argument(
            f"invalid expiration {expiration}, total sector lifetime exceeds {policy.sector_max_lifetime}"
        )


@exports(MinerMethod.PreCommitSector)
def pre_commit_sector(rt: Runtime, params: PreCommitSectorParams) -> None:
    pre_commit_sector_batch(rt, PreCommitSectorBatchParams((params,)))


@exports(MinerMethod.PreCommitSectorBatch)
def pre_commit_sector_batch(rt: Runtime, params: PreCommitSectorBatchParams) -> None:
    policy, curr = rt.policy, rt.curr_epoch
    sectors = params.sectors
    if not sectors:
        raise illegal_argument("batch empty")
    if len(sectors) > policy.pre_commit_sector_batch_max_size:
        raise illegal_argument(
            f"batch of {len(sectors)} too large, max {policy.pre_commit_sector_batch_max_size}"
        )
    challenge_earliest = curr - policy.max_pre_commit_randomness_lookback
    numbers = BitField()
    for pc in sectors:
        if pc.sector_number > MAX_SECTOR_NUMBER:
            raise illegal_argument(f"sector number {pc.sector_number} out of range 0..(2^63-1)")
        if pc.sector_number in numbers:
            raise illegal_argument(f"duplicate sector number {pc.sector_number}")
        numbers = numbers.with_set(pc.sector_number)
        if pc.seal_proof not in policy.allowed_seal_proofs or pc.seal_proof not in SEAL_PROOFS:
            raise illegal_argument(f"unsupported seal proof type {pc.seal_proof}")
        if not is_sealed_cid(pc.sealed_cid):
            raise illegal_argument("sealed CID had wrong prefix")
        if pc.seal_rand_epoch >= curr:
            raise illegal_argument(f"seal challenge epoch {pc.seal_rand_epoch} must be before now {curr}")
        if pc.seal_rand_epoch < challenge_earliest:
            raise illegal_argument(
                f"seal challenge epoch {pc.seal_rand_epoch} too old, must be after {challenge_earliest}"
            )
        if pc.replace_capacity:
            raise illegal_argument("cc upgrade through precommit discontinued, use ProveReplicaUpdates")
        validate_expiration(policy, curr, curr + policy.max_prove_commit_duration, pc.expiration)
        if len(pc.deal_ids) > MAX_DEALS_PER_SECTOR:
            raise illegal_argument(f"too many deals for sector {len(pc.deal_ids)} > {MAX_DEALS_PER_SECTOR}")

    reward = calls.reward_stats(rt)
    power = calls.power_stats(rt)
    commds = _deal_commds(rt, sectors)

    state, info = calls.load(rt)
    available = state.available_balance(rt.current_balance())
    state, fee_to_burn = state.repay_debts(rt.current_balance())
    calls.validate_control_caller(rt, info)
    if curr <= info.consensus_fault_elapsed:
        raise forbidden("pre-commit not allowed during active consensus fault")

    deposit = pre_commit_deposit_for_power(
        policy,
        reward.this_epoch_reward_smoothed,
        power.quality_adj_power_smoothed,
        qa_power_max(info.sector_size),
    )
    precommits = PreCommits.load(rt.store, state.pre_committed_sectors)
    quant = QuantSpec(policy.wpost_challenge_window, state.proving_period_start)
    cleanup = state.precommit_cleanup_queue(rt.store, quant)
    for pc, commd in zip(sectors, commds, strict=True):
        if SEAL_PROOFS[pc.seal_proof].window_post_proof != info.window_post_proof_type:
            raise illegal_argument(
                f"sector Window PoSt proof type of seal proof {pc.seal_proof} must match the miner's "
                f"{info.window_post_proof_type}"
            )
        precommit = SectorPreCommitInfo(
            pc.seal_proof,
            pc.sector_number,
            pc.sealed_cid,
            pc.seal_rand_epoch,
            pc.deal_ids,
            pc.expiration,
            commd,
        )
        precommits.put(SectorPreCommitOnChainInfo(precommit, deposit, curr))
        cleanup_at = curr + policy.max_prove_commit_duration + policy.expired_pre_commit_clean_up_delay
        cleanup.add(cleanup_at, BitField.from_bits([pc.sector_number]))
    total_deposit = deposit * len(sectors)
    if available < total_deposit:
        raise insufficient_funds(
            f"insufficient funds {available} for pre-commit deposit: {total_deposit}",
        )
    allocated = state.get_allocated(rt.store)
    collisions = allocated & numbers
    if collisions:
        raise illegal_argument(f"sector numbers {list(collisions)[:10]} already allocated")
    needs_cron = not state.deadline_cron_active
    state = replace(
        state.add_pre_commit_deposit(total_deposit),
        allocated_sectors=put_cbor(rt.store, (allocated | numbers).to_cbor()),
        pre_committed_sectors=precommits.flush(),
        pre_committed_sectors_cleanup=cleanup.flush(),
        deadline_cron_active=True,
    )
    rt.set_state(state)
    calls.burn(rt, fee_to_burn)
    state.check_balance_invariants(rt.current_balance())
    if needs_cron:
        last = DeadlineInfo.from_epoch(policy, state.proving_period_start, curr).last()
        calls.enroll_cron_event(rt, last, CRON_EVENT_PROVING_DEADLINE)


def _deal_commds(rt: Runtime, sectors: tuple[PreCommitSectorParams, ...]) -> list[CID | None]:
    """The CommD the market computes for each sector's deals (None for a sector without deals)."""
    if not any(pc.deal_ids for pc in sectors):
        return [None] * len(sectors)
    params = VerifyDealsForActivationParams(
        tuple(SectorDeals(pc.seal_proof, pc.expiration, pc.deal_ids) for pc in sectors)
    )
    ret = call(
        rt,
        builtin.STORAGE_MARKET_ACTOR_ADDR,
        MarketMethod.VerifyDealsForActivation,
        params,
        VerifyDealsForActivationReturn,
    )
    if len(ret.sectors) != len(sectors):
        raise illegal_state(
            f"deal weight request returned {len(ret.sectors)} records, expected {len(sectors)}"
        )
    return [s.commd for s in ret.sectors]


@exports(MinerMethod.ProveCommitSector)
def prove_commit_sector(rt: Runtime, params: ProveCommitSectorParams) -> None:
    rt.validate_immediate_caller_accept_any()
    number = params.sector_number
    if number > MAX_SECTOR_NUMBER:
        raise illegal_argument("sector number greater than maximum")
    state = rt.state(MinerState)
    precommit = PreCommits.load(rt.store, state.pre_committed_sectors).get(number)
    if precommit is None:
        raise not_found(f"no pre-committed sector {number}")
    due = _prove_commit_due(rt.policy, precommit)
    if rt.curr_epoch > due:
        raise illegal_argument(f"commitment proof for {number} too late at {rt.curr_epoch}, due {due}")
    _check_seed_drawn(rt, precommit)
    _activate(rt, [_verify_seal(rt, precommit, params.proof)])


@exports(MinerMethod.ProveCommitAggregate)
def prove_commit_aggregate(rt: Runtime, params: ProveCommitAggregateParams) -> None:
    """Prove several pre-committed sectors with one message: each sector's seal proof is verified
    (any bad one fails the message), then the sectors are activated together as ProveCommitSector
    activates one. As v9, sectors past their proving deadline are verified but left pre-committed."""
    policy = rt.policy
    count = params.sector_numbers.count()
    if count > policy.max_aggregated_sectors:
        raise illegal_argument(
            f"too many sectors addressed, addressed {count} want <= {policy.max_aggregated_sectors}"
        )
    if count < policy.min_aggregated_sectors:
        raise illegal_argument(
            f"too few sectors addressed, addressed {count} want >= {policy.min_aggregated_sectors}"
        )
    if len(params.aggregate_proof) > policy.max_aggregated_proof_size:
        raise illegal_argument(
            f"aggregate proof of size {len(params.aggregate_proof)} exceeds max size of "
            f"{policy.max_aggregated_proof_size}"
        )
    state, info = calls.load(rt)
    calls.validate_control_caller(rt, info)
    numbers = list(params.sector_numbers)
    if numbers[-1] > MAX_SECTOR_NUMBER:
        raise illegal_argument(f"sector number {numbers[-1]} greater than maximum")
    try:
        proofs = params.seal_proofs()
    except DecodeError as exc:
        raise illegal_argument(f"aggregate seal verify failed: {exc}") from None
    if len(proofs) != count:
        raise illegal_argument(f"aggregate holds {len(proofs)} seal proofs for {count} sectors")
    pending = PreCommits.load(rt.store, state.pre_committed_sectors)
    precommits = []
    for number in numbers:
        precommit = pending.get(number)
        if precommit is None:
            raise not_found(f"no pre-committed sector {number}")
        precommits.append(precommit)
    for precommit in precommits:
        _check_seed_drawn(rt, precommit)
    proven = [_verify_seal(rt, pc, proof) for pc, proof in zip(precommits, proofs, strict=True)]
    on_time = [p for p in proven if rt.curr_epoch <= _prove_commit_due(policy, p.precommit)]
    _activate(rt, on_time)


# -- the steps ProveCommitSector and ProveCommitAggregate share ----------------------------------------


@dataclass(frozen=True, slots=True)
class _ProvenSeal:
    """A pre-committed sector whose seal proof verified, and the CommD it was verified against."""

    precommit: SectorPreCommitOnChainInfo
    unsealed_cid: CID


def _prove_commit_due(policy: Policy, precommit: SectorPreCommitOnChainInfo) -> int:
    return precommit.pre_commit_epoch + policy.max_prove_commit_duration


def _interactive_epoch(policy: Policy, precommit: SectorPreCommitOnChainInfo) -> int:
    return precommit.pre_commit_epoch + policy.pre_commit_challenge_delay


def _check_seed_drawn(rt: Runtime, precommit: SectorPreCommitOnChainInfo) -> None:
    if rt.curr_epoch <= _interactive_epoch(rt.policy, precommit):
        raise forbidden(f"too early to prove sector {precommit.info.sector_number}")


def _verify_seal(rt: Runtime, precommit: SectorPreCommitOnChainInfo, proof: bytes) -> _ProvenSeal:
    """Check one sector's seal proof against its pre-commit and the chain's randomness
    (ErrIllegalArgument if it does not verify)."""
    pc = precommit.info
    entropy = calls.receiver_entropy(rt)
    ticket = rt.get_randomness_from_tickets(calls.TAG_SEAL_RANDOMNESS, pc.seal_rand_epoch, entropy)
    seed = rt.get_randomness_from_beacon(
        calls.TAG_INTERACTIVE_SEAL_CHALLENGE_SEED, _interactive_epoch(rt.policy, precommit), entropy
    )
    unsealed = (
        pc.unsealed_cid if pc.unsealed_cid is not None else rt.compute_unsealed_sector_cid(pc.seal_proof, [])
    )
    verify_info = SealVerifyInfo(
        seal_proof=pc.seal_proof,
        sector_id=SectorID(rt.receiver.id, pc.sector_number),
        deal_ids=pc.deal_ids,
        randomness=ticket,
        interactive_randomness=seed,
        proof=proof,
        sealed_cid=pc.sealed_cid,
        unsealed_cid=unsealed,
    )
    if not rt.verify_seal(verify_info):
        raise illegal_argument(f"invalid seal proof for sector {pc.sector_number}")
    return _ProvenSeal(precommit, unsealed)


def _activate(rt: Runtime, proven: list[_ProvenSeal]) -> None:
    """Activate proven sectors (v9 confirm_sector_proofs_valid_internal): activate each one's deals,
    release its deposit, lock its initial pledge, assign it to a deadline and claim its power. A sector
    whose deals the market refuses is left pre-committed; if none is left, ErrIllegalArgument."""
    policy, curr = rt.policy, rt.curr_epoch
    reward = calls.reward_stats(rt)
    power = calls.power_stats(rt)
    circulating = rt.total_fil_circ_supply()
    activated: list[tuple[_ProvenSeal, int, int]] = []
    dropped: list[str] = []
    for item in proven:
        pc = item.precommit.info
        # Pre-commit checks make this unreachable; checked before the deals so that none is activated
        # for a sector that will not exist.
        if pc.expiration - curr < policy.min_sector_expiration:
            dropped.append(f"sector {pc.sector_number} lifetime {pc.expiration - curr} is too short")
            continue
        spaces = _activate_deals(rt, pc.deal_ids, pc.expiration)
        if isinstance(spaces, ExitCode):
            dropped.append(f"sector {pc.sector_number} deals not activated (market exit code {int(spaces)})")
            continue
        activated.append((item, *spaces))
    if not activated:
        raise illegal_argument(
            f"all prove commits failed to validate: {'; '.join(dropped) or 'no sector on time'}"
        )

    state, info = calls.load(rt)
    sectors = Sectors.load(rt.store, state.sectors)
    precommits = PreCommits.load(rt.store, state.pre_committed_sectors)
    smoothed_reward, smoothed_power = reward.this_epoch_reward_smoothed, power.quality_adj_power_smoothed
    new_sectors = []
    total_pledge = total_deposit = 0
    for item, deal_space, verified_space in activated:
        pc = item.precommit.info
        duration = pc.expiration - curr
        deal_weight, verified_weight = deal_space * duration, verified_space * duration
        qa = qa_power_for_weight(info.sector_size, duration, deal_weight, verified_weight)
        pledge = initial_pledge_for_power(
            policy, qa, reward.this_epoch_baseline_power, smoothed_reward, smoothed_power, circulating
        )
        sector = SectorOnChainInfo(
            sector_number=pc.sector_number,
            seal_proof=pc.seal_proof,
            sealed_cid=pc.sealed_cid,
            deal_ids=pc.deal_ids,
            activation=curr,
            expiration=pc.expiration,
            deal_weight=deal_weight,
            verified_deal_weight=verified_weight,
            initial_pledge=pledge,
            expected_day_reward=expected_reward_for_power(
                smoothed_reward, smoothed_power, qa, policy.epochs_in_day
            ),
            expected_storage_pledge=expected_reward_for_power(
                smoothed_reward, smoothed_power, qa, policy.initial_pledge_projection
            ),
            replaced_sector_age=0,
            replaced_day_reward=0,
            sector_key_cid=None,
            simple_qa_power=True,
            unsealed_cid=item.unsealed_cid,
        )
        sectors.put(sector)
        precommits.remove(pc.sector_number)
        new_sectors.append(sector)
        total_pledge += pledge
        total_deposit += item.precommit.pre_commit_deposit
    state, added_power = _assign_to_deadlines(
        rt, state, new_sectors, info.window_post_partition_sectors, info.sector_size
    )
    state = replace(state, sectors=sectors.flush(), pre_committed_sectors=precommits.flush())
    state = state.add_pre_commit_deposit(-total_deposit)
    unlocked = state.unlocked_balance(rt.current_balance())
    if unlocked < total_pledge:
        raise insufficient_funds(
            f"insufficient funds for initial pledge requirement {total_pledge}, available: {unlocked}",
        )
    state = state.add_initial_pledge(total_pledge)
    state.check_balance_invariants(rt.current_balance())
    rt.set_state(state)
    calls.update_power(rt, added_power)
    calls.notify_pledge_changed(rt, total_pledge)


def _activate_deals(rt: Runtime, deal_ids: tuple[int, ...], expiration: int) -> tuple[int, int] | ExitCode:
    """Activate a sector's deals; returns (deal space, verified deal space) in bytes, or the market's
    exit code if it refused.

    Without a verified registry the verified deals' sizes count as verified space directly."""
    if not deal_ids:
        return 0, 0
    sent = rt.send(
        builtin.STORAGE_MARKET_ACTOR_ADDR,
        MarketMethod.ActivateDeals,
        encode_params(ActivateDealsParams(deal_ids, expiration)),
        0,
    )
    if not sent.ok:
        return sent.exit_code
    result = decode_return(sent.return_data, ActivateDealsResult, "market.ActivateDeals")
    return result.nonverified_deal_space, sum(v.size for v in result.verified_infos)


def _assignment_key(live: int, total: int, size: int, index: int) -> tuple[int, ...]:
    """builtin-actors v9 deadline_assignment order: fewest partitions after compaction, then before;
    prefer filling an open partition (the fullest); then fewest live sectors; then lowest index."""
    compacted, partitions = -(-(live + 1) // size), -(-(total + 1) // size)
    return (compacted, partitions, int(total % size == 0), -(total % size), live, index)


def _assign_to_deadlines(
    rt: Runtime,
    state: MinerState,
    new_sectors: list[SectorOnChainInfo],
    partition_size: int,
    sector_size: int,
) -> tuple[MinerState, PowerPair]:
    """Put new sectors, in sector-number order, each in the best mutable deadline (_assignment_key,
    counting the sectors placed before it), as v9's assign_sectors_to_deadlines."""
    policy = rt.policy
    deadlines = Deadlines.load(rt.store, state.deadlines)
    capacity = partition_size * policy.max_partitions_per_deadline
    counts: dict[int, tuple[int, int]] = {}  # mutable deadline -> (live, total) sectors
    for i in range(policy.wpost_period_deadlines):
        if deadline_is_mutable(policy, state.proving_period_start, i, rt.curr_epoch):
            deadline = deadlines.get(rt.store, i)
            counts[i] = (deadline.live_sectors, deadline.total_sectors)
    assigned: dict[int, list[SectorOnChainInfo]] = {}
    for sector in sorted(new_sectors, key=lambda s: s.sector_number):
        candidates = [
            _assignment_key(live, total, partition_size, i)
            for i, (live, total) in counts.items()
            if total < capacity
        ]
        if not candidates:
            raise illegal_state("no deadline can take new sectors")
        index = min(candidates)[-1]
        live, total = counts[index]
        counts[index] = (live + 1, total + 1)
        assigned.setdefault(index, []).append(sector)
    added = PowerPair()
    for index, sectors in sorted(assigned.items()):
        quant = DeadlineInfo.of(policy, state.proving_period_start, index, 0).quant_spec()
        deadline, power = add_sectors_to_deadline(
            rt.store,
            deadlines.get(rt.store, index),
            sectors,
            partition_size,
            policy.max_partitions_per_deadline,
            sector_size,
            quant,
        )
        deadlines = deadlines.with_deadline(rt.store, index, deadline)
        added = added + power
    return replace(state, deadlines=deadlines.save(rt.store)), added
