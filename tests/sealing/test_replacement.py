"""A sector lost for good on the assembled node (tests/sealing/devnet.py: blocks produced and validated,
the Window PoSt scheduler and the sealing pipeline running): declared faulty, terminated by the miner
actor once faulty past the fault max age with the termination fee, its deals slashed by the market, and a
committed-capacity sector sealed in its place to Proving; a pipeline restarted while it follows the
faulty sector still replaces it, once.

On the devnet profile with a fault max age of one proving period (120 epochs) instead of three: the same
termination, fee and replacement, some 240 fewer epochs to mine."""

import os
from dataclasses import replace
from pathlib import Path
from typing import Final

import pytest
import trio

from actors import builtin
from actors.miner.policy import pledge_penalty_for_continued_fault
from actors.miner.proving import termination_penalty
from actors.miner.state import SectorOnChainInfo
from actors.power.state import PowerState
from actors.reward.state import RewardState
from chain.params import DEVNET
from chain.state.tree import StateTree
from chain.stmgr import market as market_queries
from chain.stmgr import miners as miner_queries
from chain.stmgr.actors import read_actor_state
from chain.types.address import Address
from chain.types.tipset import TipSet
from node.daemon import TaskStatus
from node.mining.wdpost import WindowPoStScheduler
from node.sealing.pipeline import SealingPipeline
from node.sealing.states import SectorState
from node.sealing.store import SealingStore
from node.sealing.types import ReplacedSector
from proofs import commp
from tests.sealing.devnet import WAIT, Devnet
from tests.sealing.test_deals import _publish

S = SectorState
SECTOR: Final = 2048
POLICY: Final = replace(DEVNET, fault_max_age=DEVNET.wpost_proving_period)
# Faulty from a deadline's end until fault_max_age after it, then the next deadline cron; plus the
# proving period it may take to find the fault and the epochs sealing the replacement takes.
TERMINATION_EPOCHS: Final = POLICY.fault_max_age + 2 * POLICY.wpost_proving_period + 60

pytestmark = pytest.mark.slow


def _tree(net: Devnet, ts: TipSet) -> StateTree:
    return net.node.state.tree(net.node.state.state_of(ts).state_root)


def sector_on_chain(
    net: Devnet, miner: Address, number: int, ts: TipSet | None = None
) -> SectorOnChainInfo | None:
    return miner_queries.sector_info(_tree(net, ts or net.head), miner, number)


def raw_power(net: Devnet, miner: Address) -> int:
    return int(miner_queries.miner_power(_tree(net, net.head), POLICY, miner).miner.raw_byte_power)


def burnt(net: Devnet, ts: TipSet) -> int:
    return int(_tree(net, ts).get_actor(builtin.BURNT_FUNDS_ACTOR_ADDR).balance)  # type: ignore[union-attr]


def gas_burnt(net: Devnet, ts: TipSet) -> int:
    """What ts's messages burnt in gas (base fee and over-estimation), by replaying them."""
    total = 0
    for msg in net.node.chain.messages_for_tipset(ts):
        _, ret = net.node.state.replay(ts, msg.cid())
        total += ret.gas_costs.base_fee_burn + ret.gas_costs.over_estimation_burn
    return total


async def start_stoppable(net: Devnet, nursery: trio.Nursery, pipeline: SealingPipeline) -> trio.CancelScope:
    """Start a pipeline that the test can stop on its own (its cancel scope)."""
    scopes: list[trio.CancelScope] = []

    async def serve(*, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            scopes.append(scope)
            await pipeline.run(task_status=task_status)

    await nursery.start(serve)
    net.pipelines.append(pipeline)
    return scopes[0]


async def run_until_gone(net: Devnet, miner: Address, number: int) -> TipSet:
    """Step until the sector is no longer on chain; the tipset whose execution terminated it."""
    await net.run_until(
        lambda: sector_on_chain(net, miner, number) is None,
        epochs=TERMINATION_EPOCHS,
        what=f"sector {number} terminated",
    )
    return net.head


async def test_a_sector_lost_for_good_is_terminated_with_its_fee_and_replaced(tmp_path: Path) -> None:
    net = Devnet.new(tmp_path, POLICY)
    (genesis_miner,) = net.genesis.miners
    miner = genesis_miner.id_address
    store = SealingStore.in_memory(miner.id)
    replica = net.sectors.sealed_path(miner, 0)
    async with net.running() as nursery:
        pipeline = net.pipeline(miner, store=store)
        scope = await start_stoppable(net, nursery, pipeline)
        replica.unlink()  # gone for good
        await net.run_until(
            lambda: 0 in miner_queries.miner_faults(_tree(net, net.head), miner), epochs=200, what="declared"
        )
        assert raw_power(net, miner) == SECTOR
        await net.run_until(lambda: 0 in pipeline.followed_faults(), epochs=5, what="followed")

        # The pipeline restarts on its records while the sector is faulty: the new one follows it too.
        scope.cancel()
        net.stop_tracking(pipeline)
        again = net.pipeline(miner, store=store)
        await net.start(nursery, again)
        assert 0 in again.followed_faults()

        before = sector_on_chain(net, miner, 0)
        assert before is not None
        terminated = await run_until_gone(net, miner, 0)
        parent = net.node.chain.load_tipset(terminated.parents)
        assert parent.height == terminated.height - 1  # no null round: the cron ran on parent's state
        # Its fee: the continued fault fee of its last faulty deadline plus the termination fee, at
        # the reward and power estimates of that cron (those of the parent's state), burnt.
        tree = _tree(net, parent)
        reward: RewardState = read_actor_state(tree, builtin.REWARD_ACTOR_ADDR, RewardState)
        power: PowerState = read_actor_state(tree, builtin.STORAGE_POWER_ACTOR_ADDR, PowerState)
        smoothed_reward, smoothed_power = (
            reward.this_epoch_reward_smoothed,
            power.this_epoch_qa_power_smoothed,
        )
        expected = pledge_penalty_for_continued_fault(POLICY, smoothed_reward, smoothed_power, SECTOR)
        expected += termination_penalty(
            POLICY, SECTOR, terminated.height, smoothed_reward, smoothed_power, [before]
        )
        assert burnt(net, terminated) - burnt(net, parent) - gas_burnt(net, terminated) == expected
        assert terminated.height - before.activation > POLICY.fault_max_age

        # The replacement: a CC sector, sealed to Proving; the lost one's files are gone.
        await net.run_until(lambda: bool(again.replaced_sectors()), epochs=5, what="replacement opened")
        assert again.replaced_sectors() == {0: ReplacedSector(0, 2, terminated.height, ())}
        assert again.followed_faults() == {}
        assert not net.sectors.has(miner, 0) and not replica.exists()
        await net.run_until(lambda: again.record(2).state == S.PROVING, epochs=120, what="sector 2 proving")
        assert raw_power(net, miner) == 2 * SECTOR
        assert sector_on_chain(net, miner, 2) is not None
        status = await again.sector_status(2)
        assert "replaces sector 0" in status.log[0].message
    assert net.seals == {2: 1}  # sealed once


async def test_a_deal_sector_lost_for_good_has_its_deal_slashed_and_is_replaced(tmp_path: Path) -> None:
    net = Devnet.new(tmp_path, POLICY)
    data = os.urandom(1000)
    piece = commp.commp_of_bytes(data)
    async with net.running() as nursery:
        miner = (await net.create_miner()).id_address
        pipeline = net.pipeline(miner)
        await net.start(nursery, pipeline)
        scheduler = WindowPoStScheduler.for_node(net.node, miner, net.sectors)
        await nursery.start(scheduler.run)
        net.wdpost.append(scheduler)
        (deal,) = await _publish(net, miner, [piece], duration=TERMINATION_EPOCHS + 400)
        assert deal.deal_proposal is not None
        location = await pipeline.add_piece(deal, data, piece.padded_size, deal.deal_proposal.piece_cid)
        pipeline.start_sealing(location.sector)
        await net.run_until(
            lambda: pipeline.record(location.sector).state == S.PROVING,
            epochs=150,
            what="deal sector proving",
        )
        on_market = market_queries.storage_deal(_tree(net, net.head), deal.deal_id)
        assert on_market is not None and on_market.state.slash_epoch == -1

        net.sectors.sealed_path(miner, location.sector).unlink()  # gone for good
        terminated = await run_until_gone(net, miner, location.sector)
        slashed = market_queries.storage_deal(_tree(net, terminated), deal.deal_id)
        # The market marked the deal (or its cron already settled and removed it): what the deal
        # trackers of both sides read as StorageDealSlashed.
        assert slashed is None or slashed.state.slash_epoch == terminated.height
        assert deal.deal_proposal.end_epoch > terminated.height  # slashed, not expired
        await net.run_until(
            lambda: market_queries.storage_deal(_tree(net, net.head), deal.deal_id) is None,
            epochs=POLICY.market_deal_updates_interval + 2,
            what="the slashed deal settled and removed by the market's cron",
        )

        await net.run_until(lambda: bool(pipeline.replaced_sectors()), epochs=5, what="replacement opened")
        ((lost, replaced),) = pipeline.replaced_sectors().items()
        assert lost == location.sector and replaced.deal_ids == (deal.deal_id,)
        assert pipeline.record(lost).state == S.REMOVED
        new = replaced.replacement
        with trio.fail_after(WAIT):
            assert pipeline.record(new).pieces == ()  # committed capacity: the deal cannot come back
        await net.run_until(lambda: pipeline.record(new).state == S.PROVING, epochs=120, what="replacement")
        assert raw_power(net, miner) == SECTOR
