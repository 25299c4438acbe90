"""Deposits, pledges and fees when the network's QA power estimate is projected to reach zero or below
within the projection window (a small network whose power shrinks).

The reference (builtin-actors' smooth `ln`, go-state-types math.Ln) takes the logarithm of any integer,
so the projected reward comes out negative and is clamped: to 0, or to 1 attoFIL for the pre-commit
deposit and the storage part of the initial pledge (v9 expected_reward_for_power_clamped_at_atto_fil).
filpy's ln used to refuse a non-positive argument, so each of these failed with an exception
(SysErrIllegalInstruction on the VM) instead.
"""

import pytest

from actors.miner.actor import ACTOR
from actors.miner.policy import (
    INITIAL_PLEDGE_MAX_PER_BYTE,
    expected_reward_for_power,
    initial_pledge_for_power,
    pledge_penalty_for_continued_fault,
    pledge_penalty_for_termination,
    pre_commit_deposit_for_power,
    qa_power_max,
)
from actors.miner.types import MinerMethod, PowerPair, SectorDeclaration, TerminateSectorsParams
from actors.power.types import CurrentTotalPowerReturn
from actors.smoothing import FilterEstimate, extrapolated_cum_sum_of_ratio
from chain.params import DEVNET
from chain.types.bitfield import BitField
from tests.actors.miner_harness import CIRCULATING, REWARD, SECTOR_SIZE, Harness

# 1,000 bytes of QA power shrinking by 100 an epoch: zero at epoch 10, well inside every window.
SHRINKING = CurrentTotalPowerReturn(1000, 1000, 0, FilterEstimate.of(1000, -100))
REWARD_ESTIMATE = REWARD.this_epoch_reward_smoothed
POWER_ESTIMATE = SHRINKING.quality_adj_power_smoothed
POWER_OF_ONE = PowerPair(SECTOR_SIZE, SECTOR_SIZE)
PROJECTIONS = (
    DEVNET.pre_commit_deposit_projection,
    DEVNET.initial_pledge_projection,
    DEVNET.continued_fault_projection,
    DEVNET.termination_penalty_lower_bound_projection,
    DEVNET.epochs_in_day,
)


@pytest.mark.parametrize("projection", PROJECTIONS)
def test_projected_reward_goes_negative_and_is_clamped_to_zero(projection: int) -> None:
    assert extrapolated_cum_sum_of_ratio(projection, 0, REWARD_ESTIMATE, POWER_ESTIMATE) < 0
    assert expected_reward_for_power(REWARD_ESTIMATE, POWER_ESTIMATE, SECTOR_SIZE, projection) == 0


def test_deposit_and_storage_pledge_are_clamped_to_one_atto() -> None:
    qa = qa_power_max(SECTOR_SIZE)
    assert pre_commit_deposit_for_power(DEVNET, REWARD_ESTIMATE, POWER_ESTIMATE, qa) == 1
    baseline = REWARD.this_epoch_baseline_power
    assert initial_pledge_for_power(DEVNET, SECTOR_SIZE, baseline, REWARD_ESTIMATE, POWER_ESTIMATE, 0) == 1
    # The consensus pledge is the sector's share of 30% of the supply, as ever, on top of the 1 atto
    # (and the whole is capped at 1 FIL per 32 GiB).
    consensus = CIRCULATING * 3 * SECTOR_SIZE // (max(POWER_ESTIMATE.estimate(), baseline, SECTOR_SIZE) * 10)
    pledge = initial_pledge_for_power(
        DEVNET, SECTOR_SIZE, baseline, REWARD_ESTIMATE, POWER_ESTIMATE, CIRCULATING
    )
    assert pledge == min(1 + consensus, INITIAL_PLEDGE_MAX_PER_BYTE * SECTOR_SIZE)


def test_fault_and_termination_fees_are_clamped() -> None:
    assert pledge_penalty_for_continued_fault(DEVNET, REWARD_ESTIMATE, POWER_ESTIMATE, SECTOR_SIZE) == 0
    args = (REWARD_ESTIMATE, 0, 0)
    assert pledge_penalty_for_termination(DEVNET, 0, 100, 0, POWER_ESTIMATE, SECTOR_SIZE, *args) == 0
    # The projected lower bound is 0, so the fee is what the sector earned: its storage pledge and
    # half its daily reward for each day of age.
    day_reward, storage_pledge, age = 10**15, 10**16, 3 * DEVNET.epochs_in_day
    fee = pledge_penalty_for_termination(
        DEVNET, day_reward, age, storage_pledge, POWER_ESTIMATE, SECTOR_SIZE, *args
    )
    assert fee == storage_pledge + day_reward * age // 2 // DEVNET.epochs_in_day


def test_precommit_and_prove_commit_while_the_network_shrinks(h: Harness) -> None:
    h.power = SHRINKING
    h.precommit(h.precommit_params(1))
    assert h.state().pre_commit_deposits == 1
    h.rt.curr_epoch += h.rt.policy.pre_commit_challenge_delay + 1
    sector = h.prove_commit(1)  # expects the pledge initial_pledge_for_power gives for SHRINKING
    assert sector is not None
    assert sector.expected_day_reward == 0 and sector.expected_storage_pledge == 0
    assert sector.initial_pledge == h.state().initial_pledge > 1
    assert h.state().pre_commit_deposits == 0


def test_deadline_cron_with_a_missed_post_while_the_network_shrinks(h: Harness) -> None:
    h.commit_sector(1)
    deadline, partition = h.location(1)
    h.power = SHRINKING  # the power actor's estimate, handed to every cron from now on
    last = h.deadline_info(deadline).last()
    h.run_quiet_crons_until(last - 1)  # the deadlines before: no faults, so a fee of 0 on 0 power
    h.rt.curr_epoch = last

    def expect() -> None:
        h.expect_power(-POWER_OF_ONE)  # the missed PoSt makes the sector faulty; its fee is 0
        h.expect_next_enroll()

    h.cron(expect)
    assert 1 in h.partition(deadline, partition).faults
    assert h.state().fee_debt == 0


def test_termination_while_the_network_shrinks(h: Harness) -> None:
    sector = h.commit_sector(1)
    deadline, partition = h.location(1)
    h.power = SHRINKING
    age = h.rt.curr_epoch - sector.activation
    fee = sector.expected_storage_pledge + sector.expected_day_reward * age // 2 // DEVNET.epochs_in_day
    h.expect_terminate(POWER_OF_ONE, fee, sector.initial_pledge)
    decl = SectorDeclaration(deadline, partition, BitField.from_bits([1]))
    h.rt.call(ACTOR, MinerMethod.TerminateSectors, TerminateSectorsParams((decl,)))
    h.rt.verify()
    assert h.sector(1) is None
