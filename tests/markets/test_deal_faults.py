"""A deal's sector lost for good, seen from both sides of the deal: the provider's miner (the genesis
miner, its Window PoSt scheduler and a real sealing pipeline) seals the deal into a new sector, which
turns active; its replica is then deleted. The scheduler declares the fault, the actor terminates the
sector once it has been faulty for the fault max age, the market slashes the deal, and the client's and
the provider's deal trackers move the deal to StorageDealSlashed, while the pipeline seals a
committed-capacity sector in the terminated one's place (a slashed deal cannot be sealed again)."""

from dataclasses import replace
from pathlib import Path
from typing import Final

import pytest
import trio

from chain.params import DEVNET
from node.markets.deal_states import StorageDealStatus as S
from node.sealing.states import SectorState
from tests.markets.deal_net import WAIT, deal_net
from tests.markets.test_deal_sealing import settled, start_deal, with_pipeline

pytestmark = pytest.mark.slow

# The devnet with a fault max age of one proving period instead of three: the same fault, termination
# and slashing, some 240 fewer epochs of waiting (each epoch of the deal net is a tipset made, gossiped,
# executed on both nodes and proven for).
POLICY: Final = replace(DEVNET, fault_max_age=DEVNET.wpost_proving_period)
# The fault found and declared (at most a proving period and a deadline), the fault max age, then the
# termination at the deadline's cron: bounded in seconds at the deal net's 0.05 s blocks and PoSts.
LOST_WAIT: Final = 600.0


async def test_a_deal_whose_sector_is_lost_for_good_is_slashed_for_its_client(tmp_path: Path) -> None:
    net = deal_net(tmp_path, policy=POLICY)
    async with net.running() as nursery:
        pipeline = with_pipeline(net)
        await nursery.start(pipeline.run)
        net.settles.append(settled(pipeline))
        proposal = await start_deal(net, tmp_path / "file", duration=DEVNET.fault_max_age * 3)
        record = await net.deal_reaches(proposal, S.StorageDealActive)
        sector, deal_id = record.sector_number, record.deal_id
        assert sector is not None and deal_id is not None
        with trio.fail_after(WAIT):
            await pipeline.wait_for(sector, SectorState.PROVING)

        # From here the chain alone drives the deal (the scheduler paces every tipset, the pipeline
        # settles after each): tipsets as fast as the nodes make them, not every 50 ms.
        net.block_time = 0.0
        net.sectors.sealed_path(net.miner, sector).unlink()  # gone for good
        with trio.fail_after(LOST_WAIT):
            slashed = await net.deal_reaches(proposal, S.StorageDealSlashed)
        assert "slashed" in slashed.message or "gone from the market" in slashed.message
        end = slashed.client_deal_proposal.proposal.end_epoch
        assert net.client_node.chain.head().height < end  # slashed before its end, not expired
        await net.until(lambda: net.provider.deals()[0].state == S.StorageDealSlashed)
        head = net.client_node.chain.head()
        assert net.client_node.state.sector_info(net.miner, sector, head) is None  # terminated

        await net.until(lambda: bool(pipeline.replaced_sectors()))
        ((lost, replaced),) = pipeline.replaced_sectors().items()
        assert lost == sector and replaced.deal_ids == (deal_id,)
        assert pipeline.record(lost).state == SectorState.REMOVED
        assert pipeline.record(replaced.replacement).pieces == ()  # committed capacity
        with trio.fail_after(WAIT):
            await pipeline.wait_for(replaced.replacement, SectorState.PROVING)
