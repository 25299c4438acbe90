"""Miner construction, control addresses, balances, rewards, consensus faults and piece inclusion."""

from dataclasses import replace

from actors import builtin
from actors.account.types import AccountMethod
from actors.dispatch import METHOD_SEND
from actors.miner import types as miner
from actors.miner.actor import ACTOR
from actors.miner.policy import (
    consensus_fault_penalty,
    locked_reward_from_reward,
    reward_for_consensus_slash_report,
)
from actors.miner.state import MinerState
from actors.reward.types import RewardMethod
from chain.encoding import dagcbor
from chain.encoding.bigint import decode_bigint
from chain.encoding.commcid import commitment_of_v1, piece_cid_v1
from chain.types.address import Address
from chain.types.sector import ConsensusFault, ConsensusFaultType, PieceInclusionVerifyInfo, PieceInfo
from chain.vm.exitcode import ExitCode
from proofs import commp
from proofs.pip import PieceInclusionProof, prove_piece_inclusion, verify_piece_inclusion
from tests.actors.miner_harness import (
    BALANCE,
    CONTROL,
    FIL,
    MINER,
    OWNER,
    REPORTER,
    REWARD,
    WORKER,
    WORKER_KEY,
    Harness,
    fails,
)


def test_constructor_records_the_miner(h: Harness) -> None:
    state, info = h.state(), h.info()
    assert (info.owner, info.worker, info.control_addresses) == (OWNER, WORKER, (CONTROL,))
    assert (info.sector_size, info.window_post_partition_sectors, info.window_post_proof_type) == (
        2048,
        2,
        10,
    )
    assert info.beneficiary == OWNER and info.consensus_fault_elapsed == -1
    assert (
        state.proving_period_start
        <= h.rt.curr_epoch
        < state.proving_period_start + h.rt.policy.wpost_proving_period
    )
    assert h.deadline().index == state.current_deadline
    assert MinerState.from_cbor(dagcbor.decode(dagcbor.encode(state.to_cbor()))) == state


def construct_with(
    h: Harness, params: miner.MinerConstructorParams, pubkey: Address | None = WORKER_KEY
) -> None:
    h.rt.set_caller(builtin.INIT_ACTOR_CODE, builtin.INIT_ACTOR_ADDR)
    h.rt.expect_validate_caller_addr(builtin.INIT_ACTOR_ADDR)
    if pubkey is not None:
        h.rt.expect_send(WORKER, AccountMethod.PubkeyAddress, None, 0, pubkey)
    h.rt.call(ACTOR, miner.MinerMethod.Constructor, params)


def test_constructor_rejects() -> None:
    good = miner.MinerConstructorParams(OWNER, WORKER, (), 10, b"peer", (b"/ip4",))
    cases = [
        (replace(good, window_post_proof_type=13), None),
        (replace(good, control_addresses=(CONTROL,) * 11), None),
        (replace(good, peer_id=bytes(129)), None),
        (replace(good, multi_addresses=(b"",)), None),
        (replace(good, owner=Address.new_id(999)), None),  # no such actor
        (replace(good, owner=MINER), None),  # not a principal
        (good, Address.new_secp256k1(bytes(65))),  # the worker's key is not BLS
    ]
    for params, pubkey in cases:
        h = Harness()
        h.rt.set_actor_code(MINER, builtin.MINER_ACTOR_CODE)
        fails(h, ExitCode.ErrIllegalArgument, lambda h=h, p=params, k=pubkey: construct_with(h, p, k))
    h = Harness()
    h.rt.set_actor_code(WORKER, builtin.MULTISIG_ACTOR_CODE)
    fails(h, ExitCode.ErrIllegalArgument, lambda: construct_with(h, good, None))


def test_control_addresses(h: Harness) -> None:
    h.rt.expect_validate_caller_any()
    ret = miner.GetControlAddressesReturn.from_cbor(
        h.rt.call_decoded(ACTOR, miner.MinerMethod.ControlAddresses)
    )
    assert ret == miner.GetControlAddressesReturn(OWNER, WORKER, (CONTROL,))


NEW_WORKER = Address.new_id(104)


def request_worker_change(h: Harness, controls: tuple[Address, ...]) -> None:
    """The owner asks for NEW_WORKER (an account) as the worker, with these control addresses."""
    h.rt.set_actor_code(NEW_WORKER, builtin.ACCOUNT_ACTOR_CODE)
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, OWNER)
    h.rt.expect_send(NEW_WORKER, AccountMethod.PubkeyAddress, None, 0, WORKER_KEY)
    h.rt.expect_validate_caller_addr(OWNER)
    h.rt.call(
        ACTOR, miner.MinerMethod.ChangeWorkerAddress, miner.ChangeWorkerAddressParams(NEW_WORKER, controls)
    )


def test_worker_change_takes_effect_after_the_delay(h: Harness) -> None:
    request_worker_change(h, ())
    info = h.info()
    assert info.control_addresses == () and info.worker == WORKER
    assert info.pending_worker_key is not None
    effective = info.pending_worker_key.effective_at
    assert effective == h.rt.curr_epoch + h.rt.policy.worker_key_change_delay
    # confirming early changes nothing
    h.rt.expect_validate_caller_addr(OWNER)
    h.rt.call(ACTOR, miner.MinerMethod.ConfirmUpdateWorkerKey)
    assert h.info().worker == WORKER
    h.rt.curr_epoch = effective
    h.rt.expect_validate_caller_addr(OWNER)
    h.rt.call(ACTOR, miner.MinerMethod.ConfirmUpdateWorkerKey)
    assert h.info().worker == NEW_WORKER and h.info().pending_worker_key is None
    # only the owner may change it
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, WORKER)
    h.rt.expect_send(NEW_WORKER, AccountMethod.PubkeyAddress, None, 0, WORKER_KEY)
    h.rt.expect_validate_caller_addr(OWNER)
    h.call_fails(
        ExitCode.SysErrForbidden,
        miner.MinerMethod.ChangeWorkerAddress,
        miner.ChangeWorkerAddressParams(NEW_WORKER, ()),
    )
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, OWNER)
    too_many = miner.ChangeWorkerAddressParams(WORKER, (CONTROL,) * 11)
    h.call_fails(ExitCode.ErrIllegalArgument, miner.MinerMethod.ChangeWorkerAddress, too_many)


def test_deadline_cron_applies_a_due_worker_change(h: Harness) -> None:
    request_worker_change(h, (CONTROL,))
    h.precommit(h.precommit_params(1))  # starts the deadline cron
    h.run_quiet_crons_until(
        h.rt.curr_epoch + h.rt.policy.worker_key_change_delay + h.rt.policy.wpost_challenge_window
    )
    assert h.info().worker == NEW_WORKER


def test_peer_id_and_multiaddrs(h: Harness) -> None:
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, WORKER)
    h.rt.expect_validate_caller_addr(*h.control_set())
    h.rt.call(ACTOR, miner.MinerMethod.ChangePeerID, miner.ChangePeerIDParams(b"new peer"))
    h.rt.expect_validate_caller_addr(*h.control_set())
    h.rt.call(
        ACTOR, miner.MinerMethod.ChangeMultiaddrs, miner.ChangeMultiaddrsParams((b"/ip4/127.0.0.1/tcp/1",))
    )
    assert h.info().peer_id == b"new peer" and h.info().multiaddrs == (b"/ip4/127.0.0.1/tcp/1",)
    h.call_fails(
        ExitCode.ErrIllegalArgument, miner.MinerMethod.ChangePeerID, miner.ChangePeerIDParams(bytes(200))
    )
    h.call_fails(
        ExitCode.ErrIllegalArgument,
        miner.MinerMethod.ChangeMultiaddrs,
        miner.ChangeMultiaddrsParams((bytes(2000),)),
    )
    h.rt.caller = REPORTER
    h.rt.expect_validate_caller_addr(*h.control_set())
    h.call_fails(ExitCode.SysErrForbidden, miner.MinerMethod.ChangePeerID, miner.ChangePeerIDParams(b"x"))


def apply_rewards(h: Harness, reward: int, penalty: int, pledge_delta: int, burn: int) -> None:
    h.rt.set_caller(builtin.REWARD_ACTOR_CODE, builtin.REWARD_ACTOR_ADDR)
    h.rt.balance += reward
    h.rt.expect_validate_caller_addr(builtin.REWARD_ACTOR_ADDR)
    h.expect_pledge(pledge_delta)
    h.expect_burn(burn)
    h.rt.call(ACTOR, miner.MinerMethod.ApplyRewards, miner.ApplyRewardParams(reward, penalty))
    h.rt.verify()


def test_apply_rewards_locks_three_quarters_and_vesting_releases_them(h: Harness) -> None:
    reward = 100 * FIL
    locked = locked_reward_from_reward(reward)
    apply_rewards(h, reward, 0, locked, 0)
    state = h.state()
    assert state.locked_funds == locked == 75 * FIL
    funds = state.get_vesting(h.rt.store)
    assert funds.total() == locked and len(funds.funds) > 1
    # a penalty is paid from the unvested rewards first
    apply_rewards(h, 0, 10 * FIL, -10 * FIL, 10 * FIL)
    assert h.state().locked_funds == 65 * FIL
    # once the whole vesting period has passed, withdrawing releases everything
    h.rt.curr_epoch += h.rt.policy.reward_vesting_period + h.rt.policy.reward_vesting_quantization + 1
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, OWNER)
    h.rt.expect_validate_caller_addr(OWNER, OWNER)
    available = h.rt.balance
    h.rt.expect_send(OWNER, METHOD_SEND, None, available)
    h.expect_pledge(-65 * FIL)
    ret = h.rt.call_decoded(ACTOR, miner.MinerMethod.WithdrawBalance, miner.WithdrawBalanceParams(10**30))
    assert decode_bigint(ret, "WithdrawBalanceReturn") == available
    assert h.state().locked_funds == 0


def test_apply_rewards_rejects(h: Harness) -> None:
    h.rt.set_caller(builtin.REWARD_ACTOR_CODE, builtin.REWARD_ACTOR_ADDR)
    h.call_fails(ExitCode.ErrIllegalArgument, miner.MinerMethod.ApplyRewards, miner.ApplyRewardParams(-1, 0))
    h.call_fails(ExitCode.ErrIllegalArgument, miner.MinerMethod.ApplyRewards, miner.ApplyRewardParams(0, -1))
    h.rt.expect_validate_caller_addr(builtin.REWARD_ACTOR_ADDR)
    # the reward was not actually sent along: nothing to lock it with
    h.rt.balance = 0
    h.call_fails(
        ExitCode.ErrInsufficientFunds, miner.MinerMethod.ApplyRewards, miner.ApplyRewardParams(FIL, 0)
    )
    h.rt.balance = BALANCE
    h.rt.caller = OWNER
    h.rt.expect_validate_caller_addr(builtin.REWARD_ACTOR_ADDR)
    h.call_fails(ExitCode.SysErrForbidden, miner.MinerMethod.ApplyRewards, miner.ApplyRewardParams(0, 0))


def test_withdraw_balance(h: Harness) -> None:
    h.precommit(h.precommit_params(1))
    deposit = h.state().pre_commit_deposits
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, OWNER)
    h.rt.expect_validate_caller_addr(OWNER, OWNER)
    h.rt.expect_send(OWNER, METHOD_SEND, None, 5 * FIL)
    h.rt.call(ACTOR, miner.MinerMethod.WithdrawBalance, miner.WithdrawBalanceParams(5 * FIL))
    # asking for more than is free gets what is free: the deposit stays
    h.rt.expect_validate_caller_addr(OWNER, OWNER)
    h.rt.expect_send(OWNER, METHOD_SEND, None, BALANCE - 5 * FIL - deposit)
    h.rt.call(ACTOR, miner.MinerMethod.WithdrawBalance, miner.WithdrawBalanceParams(BALANCE))
    assert h.rt.balance == deposit
    h.call_fails(
        ExitCode.ErrIllegalArgument, miner.MinerMethod.WithdrawBalance, miner.WithdrawBalanceParams(-1)
    )
    h.rt.caller = WORKER
    h.rt.expect_validate_caller_addr(OWNER, OWNER)
    h.call_fails(ExitCode.SysErrForbidden, miner.MinerMethod.WithdrawBalance, miner.WithdrawBalanceParams(1))
    # fee debt beyond the free balance blocks withdrawals
    h.rt.set_state(replace(h.state(), fee_debt=FIL))
    h.rt.caller = OWNER
    h.rt.expect_validate_caller_addr(OWNER, OWNER)
    h.call_fails(
        ExitCode.ErrInsufficientFunds, miner.MinerMethod.WithdrawBalance, miner.WithdrawBalanceParams(1)
    )


def test_repay_debt(h: Harness) -> None:
    h.rt.set_state(replace(h.state(), fee_debt=3 * FIL))
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, WORKER)
    h.rt.expect_validate_caller_addr(*h.control_set())
    h.expect_burn(3 * FIL)
    h.rt.call(ACTOR, miner.MinerMethod.RepayDebt)
    h.rt.verify()
    assert h.state().fee_debt == 0


def report(h: Harness, fault: ConsensusFault | None) -> None:
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, REPORTER)
    h.rt.expect_validate_caller_type(*builtin.CALLER_TYPES_SIGNABLE)
    h.rt.expect_verify_consensus_fault(b"h1", b"h2", b"", fault)
    h.rt.call(
        ACTOR, miner.MinerMethod.ReportConsensusFault, miner.ReportConsensusFaultParams(b"h1", b"h2", b"")
    )


def test_report_consensus_fault_penalises_bars_and_rewards_the_reporter(h: Harness) -> None:
    h.rt.curr_epoch = 50
    fault = ConsensusFault(MINER, 49, ConsensusFaultType.DoubleForkMining)
    epoch_reward = REWARD.this_epoch_reward_smoothed.estimate()
    penalty = consensus_fault_penalty(h.rt.policy, epoch_reward)
    slasher = reward_for_consensus_slash_report(h.rt.policy, epoch_reward)
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, REPORTER)
    h.rt.expect_validate_caller_type(*builtin.CALLER_TYPES_SIGNABLE)
    h.rt.expect_verify_consensus_fault(b"h1", b"h2", b"", fault)
    h.rt.expect_send(builtin.REWARD_ACTOR_ADDR, RewardMethod.ThisEpochReward, None, 0, REWARD)
    h.rt.expect_send(REPORTER, METHOD_SEND, None, slasher)
    h.expect_burn(penalty - slasher)
    h.rt.call(
        ACTOR, miner.MinerMethod.ReportConsensusFault, miner.ReportConsensusFaultParams(b"h1", b"h2", b"")
    )
    h.rt.verify()
    assert h.info().consensus_fault_elapsed == 50 + h.rt.policy.consensus_fault_ineligibility_duration
    assert h.rt.balance == BALANCE - penalty
    # the same fault again falls inside the exclusion it caused
    h.rt.expect_validate_caller_type(*builtin.CALLER_TYPES_SIGNABLE)
    h.rt.expect_verify_consensus_fault(b"h1", b"h2", b"", fault)
    h.rt.expect_send(builtin.REWARD_ACTOR_ADDR, RewardMethod.ThisEpochReward, None, 0, REWARD)
    fails(
        h,
        ExitCode.ErrForbidden,
        lambda: h.rt.call(
            ACTOR, miner.MinerMethod.ReportConsensusFault, miner.ReportConsensusFaultParams(b"h1", b"h2", b"")
        ),
    )


def test_report_consensus_fault_rejects(h: Harness) -> None:
    h.rt.curr_epoch = 50
    fails(h, ExitCode.ErrIllegalArgument, lambda: report(h, None))
    fails(
        h,
        ExitCode.ErrIllegalArgument,
        lambda: report(h, ConsensusFault(Address.new_id(7), 49, ConsensusFaultType.TimeOffsetMining)),
    )
    fails(
        h,
        ExitCode.ErrIllegalArgument,
        lambda: report(h, ConsensusFault(MINER, 50, ConsensusFaultType.ParentGrinding)),
    )
    h.rt.set_caller(builtin.MINER_ACTOR_CODE, MINER)
    h.rt.expect_validate_caller_type(*builtin.CALLER_TYPES_SIGNABLE)
    h.call_fails(
        ExitCode.SysErrForbidden,
        miner.MinerMethod.ReportConsensusFault,
        miner.ReportConsensusFaultParams(b"", b"", b""),
    )


def test_verify_piece_inclusion_against_a_proven_sector(h: Harness) -> None:
    """Two 1 KiB pieces in a 2 KiB sector: a real proofs.pip proof of the second one is accepted,
    one of a piece that is not there is not."""
    c1, c2 = bytes([1]) * 31 + b"\x01", bytes([2]) * 31 + b"\x02"
    pieces = [commp.PieceInfo(1024, c1), commp.PieceInfo(1024, c2)]
    comm_d = commp.comm_d(pieces, 2048)
    h.precommit(h.precommit_params(1, deals=(31, 32)), commd=piece_cid_v1(comm_d))
    h.rt.curr_epoch += 6
    h.prove_commit(1, deal_space=2048)
    proof = prove_piece_inclusion(pieces, 2048, 1).to_bytes()

    def check(info: PieceInclusionVerifyInfo) -> bool:
        return verify_piece_inclusion(
            PieceInclusionProof.from_bytes(info.proof),
            comm_d=commitment_of_v1(info.unsealed_cid),
            sector_size=2048,
            comm_p=commitment_of_v1(info.piece.piece_cid),
            piece_size=info.piece.size,
        )

    def verify(piece: PieceInfo, sector: int = 1, expect: bool | None = None) -> None:
        extra = dagcbor.encode(miner.PieceInclusionExtra(sector, piece).to_cbor())
        h.rt.set_caller(builtin.PAYCH_ACTOR_CODE, Address.new_id(300))
        h.rt.expect_validate_caller_any()
        sector_info = h.sector(sector)
        if sector_info is not None:
            info = PieceInclusionVerifyInfo(5, sector_info.unsealed_cid, piece, proof)
            h.rt.expect_verify_piece_inclusion(info, check(info) if expect is None else expect)
        h.rt.call(
            ACTOR, miner.MinerMethod.VerifyPieceInclusion, miner.VerifyPieceInclusionParams(extra, proof)
        )
        h.rt.verify()

    verify(PieceInfo(1024, piece_cid_v1(c2)))
    fails(h, ExitCode.ErrIllegalArgument, lambda: verify(PieceInfo(1024, piece_cid_v1(bytes([9]) * 32))))
    fails(h, ExitCode.ErrNotFound, lambda: verify(PieceInfo(1024, piece_cid_v1(c2)), sector=2))
    h.rt.expect_validate_caller_any()
    garbage = miner.VerifyPieceInclusionParams(b"\x01", proof)
    h.call_fails(ExitCode.ErrIllegalArgument, miner.MinerMethod.VerifyPieceInclusion, garbage)
