"""Window PoSt (with a real proofs/post.py proof), faults, recoveries, terminations and the deadline
cron of the miner actor on MockRuntime."""

from dataclasses import replace

from actors import builtin
from actors.dispatch import encode_params
from actors.miner.actor import ACTOR
from actors.miner.deadlines import Deadline, Deadlines
from actors.miner.policy import DeadlineInfo, QuantSpec, pledge_penalty_for_continued_fault
from actors.miner.state import SectorOnChainInfo
from actors.miner.types import (
    CronEventPayload,
    DeclareFaultsParams,
    DeclareFaultsRecoveredParams,
    DeferredCronEventParams,
    MinerMethod,
    PoStPartition,
    PowerPair,
    SectorDeclaration,
    SubmitWindowedPoStParams,
    TerminateSectorsParams,
    TerminateSectorsReturn,
)
from chain.encoding.commcid import piece_cid_v1
from chain.types.bitfield import BitField
from chain.types.block import PoStProof
from chain.types.sector import SectorInfo, WindowPoStVerifyInfo
from chain.vm.exitcode import ExitCode
from proofs.post import PublicSector, generate_window_post, verify_window_post
from proofs.seal import SealedSector
from tests.actors.miner_harness import (
    COMMIT_RAND,
    MINER,
    POST_RAND,
    POWER,
    REAL_ZERO_COMMD,
    REWARD,
    SECTOR_SIZE,
    WORKER,
    Harness,
    fails,
)

POWER_OF_ONE = PowerPair(SECTOR_SIZE, SECTOR_SIZE)


def one_sector(h: Harness, number: int = 1, **kwargs: object) -> tuple[SectorOnChainInfo, int, int]:
    sector = h.commit_sector(number, **kwargs)
    deadline, partition = h.location(number)
    return sector, deadline, partition


def to_deadline_last(h: Harness, index: int) -> DeadlineInfo:
    """Run the quiet crons up to the last epoch of deadline `index` (its next instance), and stop at that
    epoch, its cron not run yet."""
    info = h.deadline_info(index)
    h.run_quiet_crons_until(info.last() - 1)
    h.rt.curr_epoch = info.last()
    return info


def to_deadline_open(h: Harness, index: int) -> DeadlineInfo:
    """Run the quiet crons of the deadlines before `index`, then stop at its opening."""
    h.run_quiet_crons_until(h.deadline_info(index).open)
    return h.deadline()


def continued_fee(qa: int) -> int:
    return pledge_penalty_for_continued_fault(
        Harness().rt.policy, REWARD.this_epoch_reward_smoothed, POWER.quality_adj_power_smoothed, qa
    )


# -- Window PoSt ------------------------------------------------------------------------------------


def real_sector(h: Harness, number: int) -> SealedSector:
    sealed, proof = h.precommit_zero_sector(number)
    h.rt.curr_epoch += h.rt.policy.pre_commit_challenge_delay + 1
    h.prove_commit(number, proof=proof, unsealed=REAL_ZERO_COMMD)
    return sealed


def check_post(info: WindowPoStVerifyInfo) -> bool:
    """What the VM's verify_post syscall does: proofs.post over the challenged sectors' CommRs."""
    sectors = [PublicSector(s.sector_number, s.sealed_cid.multihash.digest) for s in info.challenged_sectors]
    return all(verify_window_post(p.proof_type, info.randomness, sectors, p.proof_bytes) for p in info.proofs)


def test_real_window_post_keeps_the_sector_proven(h: Harness) -> None:
    sealed = real_sector(h, 7)
    deadline, partition = h.location(7)
    to_deadline_open(h, deadline)
    h.rt.curr_epoch += 1
    proving = sealed.proving_sector()
    proof = generate_window_post(10, POST_RAND, [proving]).to_bytes()
    sector = h.sector(7)
    assert sector is not None
    info = WindowPoStVerifyInfo(
        POST_RAND,
        (PoStProof(10, proof),),
        (SectorInfo(5, 7, sector.sealed_cid),),
        MINER.id,
    )
    assert check_post(info)
    # the same proof under other randomness is rejected, and the actor refuses the submission
    other = replace(info, randomness=bytes([1]) * 32)
    fails(
        h,
        ExitCode.ErrIllegalArgument,
        lambda: h.submit_post(
            (PoStPartition(partition, BitField()),),
            [sector],
            proof,
            check_post(other),
            None,
            other.randomness,
        ),
    )
    h.submit_post((PoStPartition(partition, BitField()),), [sector], proof, check_post(info))
    assert partition in h_deadline(h, deadline).partitions_posted
    # the deadline closes with the partition proven: nothing but the next cron enrolment
    h.rt.curr_epoch = h.deadline().last()
    h.cron(h.expect_next_enroll)
    assert h.partition(deadline, partition).faults.is_empty()


def h_deadline(h: Harness, index: int) -> Deadline:
    return Deadlines.load(h.rt.store, h.state().deadlines).get(h.rt.store, index)


def test_window_post_rejects(h: Harness) -> None:
    sector, deadline, partition = one_sector(h)
    info = to_deadline_open(h, deadline)
    h.rt.curr_epoch += 1
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, WORKER)
    good = SubmitWindowedPoStParams(
        deadline,
        (PoStPartition(partition, BitField()),),
        (PoStProof(10, b"p"),),
        h.rt.curr_epoch - 1,
        COMMIT_RAND,
    )

    def call(params: SubmitWindowedPoStParams, validates: bool = True, commit: bool = False) -> None:
        if validates:
            h.rt.expect_validate_caller_addr(*h.control_set())
        if commit:
            h.rt.expect_get_randomness_from_tickets(9, params.chain_commit_epoch, b"", COMMIT_RAND)
        h.rt.call(ACTOR, MinerMethod.SubmitWindowedPoSt, params)

    bad = ExitCode.ErrIllegalArgument
    fails(h, bad, lambda: call(replace(good, proofs=()), validates=False))
    fails(
        h, bad, lambda: call(replace(good, proofs=(PoStProof(13, b"p"),)), validates=False)
    )  # not on devnet
    fails(h, bad, lambda: call(replace(good, proofs=(PoStProof(11, b"p"),))))  # not this miner's type
    fails(h, bad, lambda: call(replace(good, deadline=99), validates=False))
    fails(h, bad, lambda: call(replace(good, deadline=(deadline + 1) % 12)))
    fails(h, bad, lambda: call(replace(good, chain_commit_epoch=info.challenge - 1)))
    fails(h, bad, lambda: call(replace(good, chain_commit_epoch=h.rt.curr_epoch)))
    fails(h, bad, lambda: call(replace(good, chain_commit_rand=bytes(32)), commit=True))
    skipped_all = replace(good, partitions=(PoStPartition(partition, BitField.from_bits([1])),))
    fails(h, bad, lambda: call(skipped_all, commit=True))
    fails(
        h,
        ExitCode.ErrNotFound,
        lambda: call(replace(good, partitions=(PoStPartition(5, BitField()),)), commit=True),
    )
    fails(h, bad, lambda: h.submit_post(good.partitions, [sector], verified=False))
    h.rt.caller = builtin.REWARD_ACTOR_ADDR
    fails(h, ExitCode.SysErrForbidden, lambda: call(good))
    # outside its window the deadline is not open
    h.rt.curr_epoch = info.close
    h.rt.caller = WORKER
    fails(h, bad, lambda: call(good))


def test_skipped_sector_loses_power_and_pays_at_deadline_end(h: Harness) -> None:
    first, second = h.commit_sector(1), h.commit_sector(2)
    deadline, partition = h.location(1)
    assert h.location(2) == (deadline, partition)  # the open partition is filled first
    to_deadline_open(h, deadline)
    h.rt.curr_epoch += 1
    # skipping every sector proves nothing
    everything = PoStPartition(partition, BitField.from_bits([1, 2]))
    fails(h, ExitCode.ErrIllegalArgument, lambda: h.submit_post((everything,), []))
    skip_one = PoStPartition(partition, BitField.from_bits([2]))
    h.submit_post((skip_one,), [first], power_delta=-POWER_OF_ONE)
    assert 2 in h.partition(deadline, partition).faults
    # a second submission for a proven partition is ignored (nothing left to prove)
    fails(h, ExitCode.ErrIllegalArgument, lambda: h.submit_post((PoStPartition(partition, BitField()),), []))
    h.rt.curr_epoch = h.deadline().last()
    fee = continued_fee(SECTOR_SIZE)

    def expect() -> None:
        h.expect_burn(fee)
        h.expect_next_enroll()

    h.cron(expect)
    del second


def test_declared_fault_removes_power_and_recovery_restores_it(h: Harness) -> None:
    sector, deadline, partition = one_sector(h)
    decl = SectorDeclaration(deadline, partition, BitField.from_bits([1]))
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, WORKER)
    h.rt.expect_validate_caller_addr(*h.control_set())
    h.expect_power(-POWER_OF_ONE)
    h.rt.call(ACTOR, MinerMethod.DeclareFaults, DeclareFaultsParams((decl,)))
    h.rt.verify()
    part = h.partition(deadline, partition)
    assert 1 in part.faults and part.faulty_power == POWER_OF_ONE
    # declaring it again changes nothing
    h.rt.expect_validate_caller_addr(*h.control_set())
    h.rt.call(ACTOR, MinerMethod.DeclareFaults, DeclareFaultsParams((decl,)))
    h.rt.verify()

    h.rt.expect_validate_caller_addr(*h.control_set())
    h.rt.call(ACTOR, MinerMethod.DeclareFaultsRecovered, DeclareFaultsRecoveredParams((decl,)))
    h.rt.verify()
    assert 1 in h.partition(deadline, partition).recoveries

    # the next PoSt proves the recovering sector and restores its power
    to_deadline_open(h, deadline)
    h.rt.curr_epoch += 1
    h.submit_post((PoStPartition(partition, BitField()),), [sector], power_delta=POWER_OF_ONE)
    part = h.partition(deadline, partition)
    assert part.faults.is_empty() and part.recoveries.is_empty() and part.faulty_power == PowerPair()


def test_fault_and_recovery_declarations_reject(h: Harness) -> None:
    _, deadline, partition = one_sector(h)
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, WORKER)

    def declare(method: MinerMethod, decl: SectorDeclaration) -> None:
        h.rt.expect_validate_caller_addr(*h.control_set())
        params = (
            DeclareFaultsParams((decl,))
            if method == MinerMethod.DeclareFaults
            else DeclareFaultsRecoveredParams((decl,))
        )
        h.rt.call(ACTOR, method, params)

    for method in (MinerMethod.DeclareFaults, MinerMethod.DeclareFaultsRecovered):
        fails(
            h,
            ExitCode.ErrIllegalArgument,
            lambda m=method: declare(m, SectorDeclaration(deadline, partition, BitField.from_bits([9]))),
        )
        fails(
            h,
            ExitCode.ErrNotFound,
            lambda m=method: declare(m, SectorDeclaration(deadline, 3, BitField.from_bits([1]))),
        )
        fails(
            h,
            ExitCode.ErrIllegalArgument,
            lambda m=method: declare(m, SectorDeclaration(12, 0, BitField.from_bits([1]))),
        )
    # after the fault cutoff of the deadline's next opening it is too late
    info = h.deadline_info(deadline)
    h.run_quiet_crons_until(info.fault_cutoff)
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, WORKER)
    fails(
        h,
        ExitCode.ErrIllegalArgument,
        lambda: declare(
            MinerMethod.DeclareFaults, SectorDeclaration(deadline, partition, BitField.from_bits([1]))
        ),
    )
    h.rt.caller = builtin.REWARD_ACTOR_ADDR
    fails(
        h,
        ExitCode.SysErrForbidden,
        lambda: declare(
            MinerMethod.DeclareFaults, SectorDeclaration(deadline, partition, BitField.from_bits([1]))
        ),
    )


def test_recovery_needs_the_fee_debt_paid(h: Harness) -> None:
    _, deadline, partition = one_sector(h)
    state = h.state()
    h.rt.set_state(replace(state, fee_debt=h.rt.balance))
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, WORKER)
    decl = SectorDeclaration(deadline, partition, BitField.from_bits([1]))
    h.call_fails(
        ExitCode.ErrInsufficientFunds,
        MinerMethod.DeclareFaultsRecovered,
        DeclareFaultsRecoveredParams((decl,)),
    )


def test_missed_post_is_an_undeclared_fault_with_a_penalty(h: Harness) -> None:
    sector, deadline, partition = one_sector(h)
    to_deadline_last(h, deadline)
    fee = continued_fee(SECTOR_SIZE)
    assert fee > 0

    def expect() -> None:
        h.expect_power(-POWER_OF_ONE)
        h.expect_burn(fee)
        h.expect_next_enroll()

    h.cron(expect)
    part = h.partition(deadline, partition)
    assert 1 in part.faults
    assert h.state().fee_debt == 0
    del sector


def test_sector_faulty_past_the_max_age_is_terminated(h: Harness) -> None:
    sector, deadline, partition = one_sector(h)
    info = to_deadline_last(h, deadline)
    fee = continued_fee(SECTOR_SIZE)

    def first() -> None:
        h.expect_power(-POWER_OF_ONE)
        h.expect_burn(fee)
        h.expect_next_enroll()

    h.cron(first)
    fault_expiration = info.last() + h.rt.policy.fault_max_age
    # every later occurrence of this deadline charges the continued fault fee until the max age
    while True:
        info = to_deadline_last(h, deadline)
        if info.last() >= fault_expiration:
            break

        def again() -> None:
            h.expect_burn(fee)
            h.expect_next_enroll()

        h.cron(again)
        h.rt.curr_epoch += 1
    penalty = fee + h.termination_penalty([sector])

    def last() -> None:
        h.expect_burn(penalty)
        h.expect_pledge(-sector.initial_pledge)
        # nothing is left to prove and nothing locked: the cron stops

    h.cron(last)
    assert h.sector(1) is None
    part = h.partition(deadline, partition)
    assert 1 in part.terminated and part.faults.is_empty() and part.live_power == PowerPair()
    state = h.state()
    assert state.initial_pledge == 0 and not state.deadline_cron_active


def test_sector_expires_on_time(h: Harness) -> None:
    policy = h.rt.policy
    expiration = h.rt.curr_epoch + policy.max_prove_commit_duration + policy.min_sector_expiration + 1
    sector, deadline, partition = one_sector(h, expiration=expiration)
    # keep it proven every period until it expires
    while True:
        info = h.deadline_info(deadline)
        h.run_quiet_crons_until(info.open)
        h.rt.curr_epoch = info.open + 1
        h.rt.curr_epoch = max(h.rt.curr_epoch, info.open + 1)
        quantized = info.quant_spec().quantize_up(expiration)
        if quantized == info.last():
            break
        h.submit_post((PoStPartition(partition, BitField()),), [sector])
        h.rt.curr_epoch = info.last()
        h.cron(h.expect_next_enroll)
        h.rt.curr_epoch += 1
    h.submit_post((PoStPartition(partition, BitField()),), [sector])
    h.rt.curr_epoch = info.last()

    def expire() -> None:
        h.expect_power(-POWER_OF_ONE)
        h.expect_pledge(-sector.initial_pledge)

    h.cron(expire)
    assert h.sector(1) is None
    assert h.state().initial_pledge == 0


def test_terminate_sectors(h: Harness) -> None:
    sector, deadline, partition = one_sector(h, deals=())
    decl = SectorDeclaration(deadline, partition, BitField.from_bits([1]))
    penalty = h.termination_penalty([sector])
    h.expect_terminate(POWER_OF_ONE, penalty, sector.initial_pledge)
    ret = h.rt.call_decoded(ACTOR, MinerMethod.TerminateSectors, TerminateSectorsParams((decl,)))
    h.rt.verify()
    assert TerminateSectorsReturn.from_cbor(ret) == TerminateSectorsReturn(True)
    assert h.sector(1) is None and h.state().initial_pledge == 0
    # terminating it again: not live any more
    h.rt.expect_validate_caller_addr(*h.control_set())
    h.expect_stats()
    h.call_fails(ExitCode.ErrIllegalArgument, MinerMethod.TerminateSectors, TerminateSectorsParams((decl,)))


def test_terminate_rejects_an_immutable_deadline(h: Harness) -> None:
    _, deadline, partition = one_sector(h)
    to_deadline_open(h, deadline)
    decl = SectorDeclaration(deadline, partition, BitField.from_bits([1]))
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, WORKER)
    h.rt.expect_validate_caller_addr(*h.control_set())
    h.call_fails(ExitCode.ErrIllegalArgument, MinerMethod.TerminateSectors, TerminateSectorsParams((decl,)))


def test_terminating_a_sector_with_deals_notifies_the_market(h: Harness) -> None:
    commd = piece_cid_v1(bytes([3]) * 32)
    h.precommit(h.precommit_params(1, deals=(21,)), commd=commd)
    h.rt.curr_epoch += 6
    sector = h.prove_commit(1, deal_space=1024)
    assert sector is not None
    deadline, partition = h.location(1)
    power = PowerPair(SECTOR_SIZE, h.partition(deadline, partition).live_power.qa)
    penalty = h.termination_penalty([sector])
    h.expect_terminate(power, penalty, sector.initial_pledge)
    h.market_terminate((21,))
    decl = SectorDeclaration(deadline, partition, BitField.from_bits([1]))
    h.rt.call(ACTOR, MinerMethod.TerminateSectors, TerminateSectorsParams((decl,)))
    h.rt.verify()


def test_expired_precommit_deposit_is_burnt(h: Harness) -> None:
    h.precommit(h.precommit_params(1))
    deposit = h.state().pre_commit_deposits
    policy = h.rt.policy
    cleanup = h.rt.curr_epoch + policy.max_prove_commit_duration + policy.expired_pre_commit_clean_up_delay
    due = QuantSpec(policy.wpost_challenge_window, h.state().proving_period_start).quantize_up(cleanup)
    # the first deadline cron at or after the (quantised) clean-up epoch burns the deposit
    end = h.deadline(due).last()
    h.run_quiet_crons_until(end - 1)
    h.rt.curr_epoch = end
    h.cron(lambda: h.expect_burn(deposit))
    assert h.state().pre_commit_deposits == 0
    assert not h.state().deadline_cron_active


def test_cron_only_from_power_and_ignores_other_event_types(h: Harness) -> None:
    params = DeferredCronEventParams(
        encode_params(CronEventPayload(2)),
        REWARD.this_epoch_reward_smoothed,
        POWER.quality_adj_power_smoothed,
    )
    h.rt.set_caller(builtin.POWER_ACTOR_CODE, builtin.STORAGE_POWER_ACTOR_ADDR)
    h.rt.expect_validate_caller_addr(builtin.STORAGE_POWER_ACTOR_ADDR)
    h.rt.call(ACTOR, MinerMethod.OnDeferredCronEvent, params)
    h.rt.verify()
    bad = replace(params, event_payload=b"\x01")
    h.rt.expect_validate_caller_addr(builtin.STORAGE_POWER_ACTOR_ADDR)
    h.call_fails(ExitCode.ErrIllegalState, MinerMethod.OnDeferredCronEvent, bad)
    h.rt.caller = WORKER
    h.rt.expect_validate_caller_addr(builtin.STORAGE_POWER_ACTOR_ADDR)
    h.call_fails(ExitCode.SysErrForbidden, MinerMethod.OnDeferredCronEvent, params)
