"""Deals to the end with the real sealing pipeline: the provider's piece sealed into a new sector of the
genesis miner, pre-committed and proven; the deal active on chain; the client checking the sector on
chain and the provider's piece inclusion proof against its CommD before it calls the deal active; every
status in order. And the provider and its pipeline stopped while the deal's sector is sealing, started
again over the same stores: the deal still ends active."""

from pathlib import Path
from typing import Any, Final

import pytest
import trio
import trio.testing

from chain.params import DEVNET
from chain.types.tipset import TipSet
from node.markets.deal_states import StorageDealStatus as S
from node.markets.sealing_adapter import PipelineSealer
from node.markets.storage_client import _ORDER as CLIENT_ORDER
from node.sealing.config import SealingConfig
from node.sealing.pipeline import SealingPipeline
from node.sealing.states import SectorState
from proofs import pip
from tests.markets.deal_net import CLIENT, WAIT, DealNet, deal_file, deal_net

pytestmark = pytest.mark.slow

FAST: Final = SealingConfig.for_policy(DEVNET).with_overrides(
    message_confidence=1, seed_confidence=1, retry_min=0.05, retry_max=0.4
)


def with_pipeline(net: DealNet, store: Any = None) -> SealingPipeline:
    """The miner's sealing pipeline on the provider's node, the provider's sealer from now on."""
    pipeline = SealingPipeline.for_node(net.provider_node, net.miner, net.sectors, store=store, config=FAST)
    net.use_sealer(PipelineSealer(pipeline))
    return pipeline


def settled(pipeline: SealingPipeline) -> Any:
    async def settle(ts: TipSet) -> None:
        while True:
            await trio.testing.wait_all_tasks_blocked(0.002)
            if pipeline.busy == 0 and pipeline.head == ts:
                return
            await trio.sleep(0.005)

    return settle


async def start_deal(net: DealNet, path: Path, *, duration: int = 50) -> Any:
    return await net.start_deal(net.import_file(deal_file(path)), min_blocks_duration=duration)


async def test_a_deal_turns_active_once_its_sector_is_proven(tmp_path: Path) -> None:
    net = deal_net(tmp_path)
    async with net.running() as nursery:
        power_before = net.provider_node.state.miner_power(net.miner, net.head).miner.raw_byte_power
        pipeline = with_pipeline(net)
        await nursery.start(pipeline.run)
        net.settles.append(settled(pipeline))
        proposal = await start_deal(net, tmp_path / "file")
        record = await net.deal_reaches(proposal, S.StorageDealActive)
        await net.until(lambda: net.provider.deals()[0].state == S.StorageDealActive)
        assert record.sector_number is not None
        with trio.fail_after(WAIT):
            await pipeline.wait_for(record.sector_number, SectorState.PROVING)
    assert record.proof_verified and record.sector_number is not None and record.deal_id is not None
    head = net.client_node.chain.head()
    sector = net.client_node.state.sector_info(net.miner, record.sector_number, head)
    assert sector is not None and record.deal_id in sector.deal_ids
    proof = pip.PieceInclusionProof.from_bytes(record.inclusion_proof)
    assert proof.offset == record.piece_offset
    # the client saw its deal move forward only, through every state it checks itself (a provider state
    # shorter than a status poll may pass unseen); the provider went through each of its own
    states = [e.state for e in record.events]
    assert S.StorageDealWaitingForData not in states  # an online deal's data is pushed, not awaited
    assert [CLIENT_ORDER.index(s) for s in states] == sorted(CLIENT_ORDER.index(s) for s in states), states
    checked = (
        S.StorageDealFundsReserved,
        S.StorageDealProposalAccepted,
        S.StorageDealAwaitingPreCommit,
        S.StorageDealStaged,
        S.StorageDealSealing,
        S.StorageDealActive,
    )
    for state in checked:
        assert state in states, state
    assert sorted(checked, key=states.index) == list(checked), states  # and in this order
    (deal,) = net.provider.deals()
    assert [e.state for e in deal.events] == [
        S.StorageDealProposalAccepted,
        S.StorageDealTransferring,
        S.StorageDealVerifyData,
        S.StorageDealReserveProviderFunds,
        S.StorageDealProviderFunding,
        S.StorageDealPublish,
        S.StorageDealPublishing,
        S.StorageDealStaged,
        S.StorageDealSealing,
        S.StorageDealActive,
    ]
    power_after = net.provider_node.state.miner_power(net.miner, net.head).miner.raw_byte_power
    assert power_after == power_before + 2048
    assert pipeline.record(record.sector_number).state == SectorState.PROVING


async def test_a_deal_sealing_through_a_provider_restart_still_ends_active(tmp_path: Path) -> None:
    net = deal_net(tmp_path)
    async with net.running() as nursery:
        pipeline = with_pipeline(net)
        scope = await nursery.start(_cancellable_pipeline, pipeline)
        settle = settled(pipeline)
        net.settles.append(settle)
        proposal = await start_deal(net, tmp_path / "file")
        record = await net.deal_reaches(proposal, S.StorageDealStaged)
        sector = record.sector_number
        assert sector is not None
        with trio.fail_after(WAIT):
            await pipeline.wait_for(sector, SectorState.WAIT_SEED)
        # the provider and its pipeline die here, mid-sealing
        net.settles.remove(settle)
        net.stop_provider()
        scope.cancel()
        (stopped,) = net.provider.deals()
        assert stopped.state in (S.StorageDealStaged, S.StorageDealSealing)
        await net.step()
        await net.step()
        restarted = with_pipeline(net, store=pipeline.store)
        await net.restart_provider(nursery, net.provider_meta)
        await nursery.start(restarted.run)
        net.settles.append(settled(restarted))
        await net.deal_reaches(proposal, S.StorageDealActive)
        with trio.fail_after(WAIT):
            await restarted.wait_for(sector, SectorState.PROVING)
        await net.until(lambda: net.provider.deals()[0].state == S.StorageDealActive)
    assert restarted.record(sector).state == SectorState.PROVING
    assert len(restarted.record(sector).pieces) == 1  # the piece was not added again


async def _cancellable_pipeline(
    pipeline: SealingPipeline, *, task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    with trio.CancelScope() as scope:

        class Started:
            def started(self, value: Any = None) -> None:
                task_status.started(scope)

        await pipeline.run(task_status=Started())


async def test_an_active_deal_is_paid_by_cron_and_expires(tmp_path: Path) -> None:
    # A deal that starts 60 epochs ahead and lasts 24 (the devnet's defaults: 150, and 50 here): the
    # same payments and expiry over some 120 fewer epochs.
    net = deal_net(tmp_path, start_in=60)
    async with net.running() as nursery:
        pipeline = with_pipeline(net)
        await nursery.start(pipeline.run)
        net.settles.append(settled(pipeline))
        proposal = await start_deal(net, tmp_path / "file", duration=24)
        record = await net.deal_reaches(proposal, S.StorageDealActive)
        deal_id = record.deal_id
        assert deal_id is not None
        piece = record.client_deal_proposal.proposal.piece_cid
        assert net.prov.pieces.get(piece) is not None
        net.block_time = 0.0  # the chain alone ends the deal now: tipsets as fast as the nodes make them
        ended = await net.deal_reaches(proposal, S.StorageDealExpired)
        await net.until(lambda: net.provider.deals()[0].state == S.StorageDealExpired)
        # the market's cron makes the last payment and removes the deal
        await net.until(
            lambda: net.client_node.state.storage_deal(deal_id, net.client_node.chain.head()) is None
        )
        head = net.client_node.chain.head()
        provider_escrow = net.client_node.state.market_balance(net.miner, head)
        client_escrow = net.client_node.state.market_balance(CLIENT, head)
    proposal_terms = record.client_deal_proposal.proposal
    (deal,) = net.provider.deals()
    funded = sum(
        int(e.message.split()[1]) for e in deal.events if e.state == S.StorageDealProviderFunding
    )  # "adding N to the provider's escrow"
    assert provider_escrow.locked == 0 and client_escrow.locked == 0
    assert provider_escrow.escrow == funded + proposal_terms.total_storage_fee
    assert ended.message == f"the deal ended at epoch {proposal_terms.end_epoch}"
    assert net.prov.pieces.get(piece) is None  # an expired deal's piece is no longer served
    assert not Path(deal.car_path).exists()
