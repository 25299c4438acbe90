"""Miner pre-commit and prove-commit on MockRuntime, including a real 2 KiB sector sealed by proofs/."""

from dataclasses import replace

import pytest

from actors import builtin
from actors.market.types import ActivateDealsParams, MarketMethod
from actors.miner.actor import ACTOR
from actors.miner.policy import pre_commit_deposit_for_power, qa_power_max
from actors.miner.state import PreCommits
from actors.miner.types import (
    CheckSectorProvenParams,
    MinerMethod,
    PreCommitSectorBatchParams,
    ProveCommitSectorParams,
)
from chain.encoding import dagcbor
from chain.encoding.cid import CID, DAG_CBOR
from chain.encoding.commcid import piece_cid_v1
from chain.encoding.multihash import BLAKE2B_256, Multihash
from chain.params import MAINNET
from chain.types.address import Address
from chain.types.sector import SealVerifyInfo, SectorID
from chain.vm.exitcode import ExitCode
from proofs.registered import RegisteredPoStProof, RegisteredSealProof
from tests.actors.aborts import aborts
from tests.actors.miner_harness import (
    MINER,
    POWER,
    REAL_ZERO_COMMD,
    REWARD,
    SECTOR_SIZE,
    SEED,
    TICKET,
    WORKER,
    Harness,
    fails,
    real_verifier,
)

DEPOSIT = pre_commit_deposit_for_power(
    Harness().rt.policy,
    REWARD.this_epoch_reward_smoothed,
    POWER.quality_adj_power_smoothed,
    qa_power_max(2048),
)


def test_precommit_locks_a_deposit_and_starts_the_deadline_cron(h: Harness) -> None:
    h.precommit(h.precommit_params(7))
    state = h.state()
    assert state.pre_commit_deposits == DEPOSIT > 0
    assert state.deadline_cron_active
    assert 7 in state.get_allocated(h.rt.store)
    precommit = PreCommits.load(h.rt.store, state.pre_committed_sectors).get(7)
    assert precommit is not None and precommit.pre_commit_epoch == h.rt.curr_epoch
    assert precommit.info.unsealed_cid is None
    # a second pre-commit does not enroll the cron again
    h.precommit(h.precommit_params(8))
    assert h.state().pre_commit_deposits == 2 * DEPOSIT


def test_precommit_batch(h: Harness) -> None:
    params = PreCommitSectorBatchParams(tuple(h.precommit_params(n) for n in (1, 2, 3)))
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, WORKER)
    h.expect_stats()
    h.rt.expect_validate_caller_addr(*h.control_set())
    h.expect_enroll(h.deadline().last())
    h.rt.call(ACTOR, MinerMethod.PreCommitSectorBatch, params)
    h.rt.verify()
    assert h.state().pre_commit_deposits == 3 * DEPOSIT
    h.call_fails(
        ExitCode.ErrIllegalArgument, MinerMethod.PreCommitSectorBatch, PreCommitSectorBatchParams(())
    )
    dup = PreCommitSectorBatchParams((h.precommit_params(9), h.precommit_params(9)))
    h.call_fails(ExitCode.ErrIllegalArgument, MinerMethod.PreCommitSectorBatch, dup)


def bad_param_cases() -> list[tuple[str, dict[str, object]]]:
    wrong_codec = CID.v1(DAG_CBOR, Multihash(BLAKE2B_256, bytes(32)))
    return [
        ("unsupported proof", {"seal_proof": 3}),
        ("sealed CID prefix", {"sealed_cid": wrong_codec}),
        ("ticket from now", {"seal_rand_epoch": 10}),
        ("ticket too old", {"seal_rand_epoch": 10 - 601}),
        ("expiration too soon", {"expiration": 10 + 605 + 239}),
        ("expiration too far", {"expiration": 10 + 100_001}),
        ("replace capacity", {"replace_capacity": True}),
        ("sector number range", {"sector_number": 1 << 63}),
    ]


@pytest.mark.parametrize(("case", "changes"), bad_param_cases(), ids=[c[0] for c in bad_param_cases()])
def test_precommit_rejects_bad_params(h: Harness, case: str, changes: dict[str, object]) -> None:
    params = replace(h.precommit_params(1), **changes)  # type: ignore[arg-type]
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, WORKER)
    h.call_fails(ExitCode.ErrIllegalArgument, MinerMethod.PreCommitSector, params)


def test_precommit_rejects_too_many_deals_when_decoding(h: Harness) -> None:
    # PreCommitSectorParams itself refuses more than 256 deals, so the message is written by hand.
    raw = h.precommit_params(1).to_cbor()
    raw[4] = list(range(257))
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, WORKER)
    fails(
        h,
        ExitCode.ErrSerialization,
        lambda: h.rt.call_raw(ACTOR, MinerMethod.PreCommitSector, dagcbor.encode(raw)),
    )


def call_precommit(h: Harness, params: object) -> None:
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, h.rt.caller)
    h.expect_stats()
    h.rt.expect_validate_caller_addr(*h.control_set())
    h.rt.call(ACTOR, MinerMethod.PreCommitSector, params)


def test_precommit_rejects_reused_numbers_poor_miners_strangers_and_wrong_proofs(h: Harness) -> None:
    h.precommit(h.precommit_params(1))
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, WORKER)
    fails(h, ExitCode.ErrIllegalArgument, lambda: call_precommit(h, h.precommit_params(1)))
    # the 8 MiB seal proof is allowed on devnet but does not match this miner's 2 KiB Window PoSt
    fails(
        h,
        ExitCode.ErrIllegalArgument,
        lambda: call_precommit(h, replace(h.precommit_params(2), seal_proof=6)),
    )
    h.rt.caller = Address.new_id(555)
    fails(h, ExitCode.SysErrForbidden, lambda: call_precommit(h, h.precommit_params(2)))
    h.rt.caller = WORKER
    h.rt.balance = h.state().pre_commit_deposits + DEPOSIT - 1
    fails(h, ExitCode.ErrInsufficientFunds, lambda: call_precommit(h, h.precommit_params(2)))


def test_precommit_forbidden_during_consensus_fault(h: Harness) -> None:
    state = h.state()
    info = replace(h.info(), consensus_fault_elapsed=h.rt.curr_epoch + 5)
    h.rt.set_state(state.with_info(h.rt.store, info))
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, WORKER)
    fails(h, ExitCode.ErrForbidden, lambda: call_precommit(h, h.precommit_params(1)))


def test_prove_commit_activates_the_sector(h: Harness) -> None:
    h.precommit(h.precommit_params(1))
    h.rt.curr_epoch += h.rt.policy.pre_commit_challenge_delay + 1
    sector = h.prove_commit(1)
    assert sector is not None
    state = h.state()
    assert state.pre_commit_deposits == 0
    assert state.initial_pledge == sector.initial_pledge > 0
    assert PreCommits.load(h.rt.store, state.pre_committed_sectors).get(1) is None
    deadline, partition = h.location(1)
    assert h.partition(deadline, partition).live_power.raw == SECTOR_SIZE
    h.rt.expect_validate_caller_any()
    h.rt.call(ACTOR, MinerMethod.CheckSectorProven, CheckSectorProvenParams(1))
    h.rt.expect_validate_caller_any()
    h.call_fails(ExitCode.ErrNotFound, MinerMethod.CheckSectorProven, CheckSectorProvenParams(2))


def test_prove_commit_with_deals_uses_the_markets_commd_and_gains_quality(h: Harness) -> None:
    commd = piece_cid_v1(bytes([3]) * 32)
    h.precommit(h.precommit_params(4, deals=(11, 12)), commd=commd)
    h.rt.curr_epoch += h.rt.policy.pre_commit_challenge_delay + 1
    sector = h.prove_commit(4, deal_space=SECTOR_SIZE)
    assert sector is not None and sector.unsealed_cid == commd
    assert sector.deal_weight == SECTOR_SIZE * (sector.expiration - sector.activation)
    deadline, partition = h.location(4)
    assert h.partition(deadline, partition).live_power.qa == SECTOR_SIZE  # deals weigh 1x, like CC


def test_prove_commit_rejects(h: Harness) -> None:
    h.precommit(h.precommit_params(1))
    prove = ProveCommitSectorParams(1, b"proof")

    def call(params: ProveCommitSectorParams = prove) -> None:
        h.rt.expect_validate_caller_any()
        h.rt.call(ACTOR, MinerMethod.ProveCommitSector, params)

    fails(h, ExitCode.ErrNotFound, lambda: call(ProveCommitSectorParams(2, b"p")))
    fails(h, ExitCode.ErrForbidden, call)  # before the interactive seed
    start = h.rt.curr_epoch
    h.rt.curr_epoch = start + h.rt.policy.max_prove_commit_duration + 1
    fails(h, ExitCode.ErrIllegalArgument, call)  # too late
    h.rt.curr_epoch = start + 6
    fails(h, ExitCode.ErrIllegalArgument, lambda: h.prove_commit(1, verified=False))
    assert h.sector(1) is None


def test_prove_commit_fails_when_deals_do_not_activate_or_pledge_is_unaffordable(h: Harness) -> None:
    h.precommit(h.precommit_params(1, deals=(5,)), commd=piece_cid_v1(bytes([4]) * 32))
    h.rt.curr_epoch += 6
    pc = h.precommit_of(1)
    assert pc.info.unsealed_cid is not None
    h.rt.expect_validate_caller_any()
    svi = h.expect_seal_inputs(1, b"p")
    assert svi == SealVerifyInfo(
        5, SectorID(MINER.id, 1), (5,), TICKET, SEED, b"p", pc.info.sealed_cid, pc.info.unsealed_cid
    )
    h.rt.expect_verify_seal(svi, True)
    h.expect_stats()
    params = ActivateDealsParams((5,), pc.info.expiration)
    h.rt.expect_send(
        builtin.STORAGE_MARKET_ACTOR_ADDR, MarketMethod.ActivateDeals, params, 0, None, ExitCode.ErrNotFound
    )
    h.call_fails(ExitCode.ErrIllegalArgument, MinerMethod.ProveCommitSector, ProveCommitSectorParams(1, b"p"))

    h2 = Harness()
    h2.construct()
    h2.precommit(h2.precommit_params(1))
    h2.rt.curr_epoch += 6
    # the released deposit is all that is unlocked, and locked rewards take most of it
    h2.rt.balance = DEPOSIT
    h2.rt.set_state(replace(h2.state(), locked_funds=DEPOSIT - 1000))
    fails(h2, ExitCode.ErrInsufficientFunds, lambda: h2.prove_commit(1, expect_power=False))


def test_real_2kib_sector_is_sealed_pre_committed_and_proven(h: Harness) -> None:
    """Seal zeros with proofs.seal, pre-commit its CommR and prove it with a real vanilla proof; the
    mock's verify_seal answers by running the proofs verifier on exactly what the actor asks."""
    number = 42
    _, proof = h.precommit_zero_sector(number)
    h.rt.curr_epoch += h.rt.policy.pre_commit_challenge_delay + 1

    pc = h.precommit_of(number)
    expected = SealVerifyInfo(
        5, SectorID(MINER.id, number), (), TICKET, SEED, proof, pc.info.sealed_cid, REAL_ZERO_COMMD
    )
    assert real_verifier(expected)
    assert not real_verifier(replace(expected, interactive_randomness=bytes(32)))
    sector = h.prove_commit(number, proof=proof, unsealed=REAL_ZERO_COMMD, verified=real_verifier(expected))
    assert sector is not None and sector.unsealed_cid == REAL_ZERO_COMMD
    # a forged proof for another sector is refused by the same verifier
    h.precommit(h.precommit_params(43, sealed=pc.info.sealed_cid))
    h.rt.curr_epoch += 6
    forged = replace(expected, sector_id=SectorID(MINER.id, 43))
    fails(
        h,
        ExitCode.ErrIllegalArgument,
        lambda: h.prove_commit(43, proof=proof, unsealed=REAL_ZERO_COMMD, verified=real_verifier(forged)),
    )
    assert h.sector(43) is None


def test_mainnet_refuses_sector_sizes_proofs_cannot_verify() -> None:
    """Filecoin's 32 and 64 GiB proofs are not allowed on the mainnet profile: proofs/ can neither
    seal nor verify them, so a miner would pre-commit, pay the deposit and lose it."""
    h = Harness()
    h.rt.policy = MAINNET
    # a 32 GiB miner (its Window PoSt is 13) cannot be created
    with aborts(ExitCode.ErrIllegalArgument):
        h.construct(window_post_proof=RegisteredPoStProof.STACKED_DRG_WINDOW_32GIB_V1_1)
    h.rt.reset()
    # a 512 MiB miner can, and its 32 and 64 GiB pre-commits are refused
    h.construct(window_post_proof=RegisteredPoStProof.STACKED_DRG_WINDOW_512MIB_V1_1)
    h.rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, WORKER)
    for proof in (RegisteredSealProof.STACKED_DRG_32GIB_V1_1, RegisteredSealProof.STACKED_DRG_64GIB_V1_1):
        params = replace(h.precommit_params(1), seal_proof=int(proof))
        fails(
            h, ExitCode.ErrIllegalArgument, lambda p=params: h.rt.call(ACTOR, MinerMethod.PreCommitSector, p)
        )
