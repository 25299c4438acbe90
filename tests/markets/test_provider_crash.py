"""A provider killed twice in the middle of one storage deal, each time started again from what its
LevelDB holds on disk: once right after the data transfer (the piece verified, the deal not yet
published), once while its sector seals (the pre-commit sent). The deal ends active, with nothing lost
and nothing done twice: one PublishStorageDeals, one pre-commit and one prove-commit for the sector,
the sector sealed once, its one piece the deal's, the piece still served.

The provider runs in-process here (the market services are not wired into `filpy daemon` yet, so there
is no provider process to SIGKILL): a kill cancels the provider's and its sealing pipeline's tasks where
they stand, with no clean shutdown, and the restart closes the LevelDB and opens it again from disk,
the deal records (`/markets/`) and the sector records (the sealing store) together, as a restarted
process finds them.
"""

from pathlib import Path
from typing import Any

import plyvel
import pytest
import trio

from actors.miner.types import MinerMethod
from chain.chainstore.metadata import LevelDBMetadata
from node.markets.deal_states import StorageDealStatus as S
from node.sealing.pipeline import SealingPipeline
from node.sealing.states import SectorState
from node.sealing.store import SealingStore
from tests.markets.deal_net import WAIT, Crashable, DealNet, crashable, deal_net
from tests.markets.test_deal_sealing import settled, start_deal, with_pipeline
from tests.markets.test_provider_restart import publish_messages

pytestmark = pytest.mark.slow


class Provider:
    """The provider's half of a node: its deal records and sector records in one LevelDB on disk, its
    market service and sealing pipeline; killable and restartable over the same directory."""

    def __init__(self, net: DealNet, path: Path, seals: list[int]) -> None:
        self.net, self.path, self.seals = net, path, seals
        self.db = plyvel.DB(str(path), create_if_missing=True)
        self.meta = LevelDBMetadata(self.db, namespace=b"/markets/", sync=True)
        self.pipeline: SealingPipeline | None = None
        self._pipeline_run: Crashable | None = None
        self._settle: Any = None

    def _new_pipeline(self) -> SealingPipeline:
        pipeline = with_pipeline(self.net, store=SealingStore.for_db(self.db, self.net.miner.id))
        real = pipeline.sealer.seal_sector

        def counted(*args: Any, **kwargs: Any) -> Any:
            out = real(*args, **kwargs)
            if not out.adopted:  # really sealed, not found sealed on disk
                self.seals.append(args[1])
            return out

        pipeline.sealer.seal_sector = counted  # type: ignore[method-assign]
        return pipeline

    async def start_pipeline(self, nursery: trio.Nursery) -> None:
        self.pipeline = self._new_pipeline()
        self._pipeline_run = await crashable(nursery, self.pipeline.run)
        self._settle = settled(self.pipeline)
        self.net.settles.append(self._settle)

    async def kill(self) -> None:
        """Both services cancelled where they stand; then the LevelDB closed (the process is gone)."""
        assert self._pipeline_run is not None
        self.net.settles.remove(self._settle)
        await self.net.kill_provider()
        await self._pipeline_run.kill()
        self.db.close()

    async def restart(self, nursery: trio.Nursery) -> None:
        self.db = plyvel.DB(str(self.path))
        self.meta = LevelDBMetadata(self.db, namespace=b"/markets/", sync=True)
        await self.start_pipeline(nursery)
        await self.net.restart_provider(nursery, self.meta)


def miner_messages(net: DealNet, *methods: int) -> list[tuple[int, bytes]]:
    """(method, params) of every message to the miner with one of these methods, oldest first."""
    return [(m.method, m.params) for m in net.chain_messages() if m.to == net.miner and m.method in methods]


async def test_a_provider_killed_after_the_transfer_and_while_sealing_still_ends_the_deal_active(
    tmp_path: Path,
) -> None:
    seals: list[int] = []
    net = deal_net(tmp_path)
    provider = Provider(net, tmp_path / "provider-db", seals)
    net.provider_meta = provider.meta
    try:
        async with net.running() as nursery:
            await provider.start_pipeline(nursery)
            proposal = await start_deal(net, tmp_path / "file")

            # Kill 1: the data is in and verified, the deal not yet on chain.
            after_transfer = (
                S.StorageDealReserveProviderFunds,
                S.StorageDealProviderFunding,
                S.StorageDealPublish,
            )
            await net.until(lambda: any(d.state in after_transfer for d in net.provider.deals()))
            (at_kill,) = net.provider.deals()
            await provider.kill()
            assert Path(at_kill.car_path).is_file()  # the transferred piece is on disk
            assert publish_messages(net) == []
            await net.step()
            await provider.restart(nursery)
            (resumed,) = net.provider.deals()
            assert resumed.events[: len(at_kill.events)] == at_kill.events  # its history read back whole

            # Kill 2: the sector's pre-commit is sent, the sector not yet proven.
            staged = await net.deal_reaches(proposal, S.StorageDealStaged)
            sector = staged.sector_number
            assert sector is not None
            pipeline = provider.pipeline
            assert pipeline is not None
            with trio.fail_after(WAIT):
                await pipeline.wait_for(sector, SectorState.PRE_COMMIT_WAIT)
            await provider.kill()
            await net.step()
            await provider.restart(nursery)

            done = await net.deal_reaches(proposal, S.StorageDealActive)
            pipeline = provider.pipeline
            assert pipeline is not None
            with trio.fail_after(WAIT):
                await pipeline.wait_for(sector, SectorState.PROVING)
            await net.until(lambda: net.provider.deals()[0].state == S.StorageDealActive)
            (deal,) = net.provider.deals()
            record = pipeline.record(sector)
            head = net.client_node.chain.head()
            on_chain = net.client_node.state.storage_deal(done.deal_id or 0, head)
            sector_info = net.client_node.state.sector_info(net.miner, sector, head)
            published = publish_messages(net)
            commits = miner_messages(
                net,
                MinerMethod.PreCommitSector,
                MinerMethod.PreCommitSectorBatch,
                MinerMethod.ProveCommitSector,
                MinerMethod.ProveCommitAggregate,
            )
            piece_served = net.prov.pieces.get(done.client_deal_proposal.proposal.piece_cid) is not None
    finally:
        provider.db.close()

    assert deal.uuid == at_kill.uuid and deal.deal_id == done.deal_id
    assert len(published) == 1 and len(published[0].deals) == 1  # published once
    assert [method for method, _ in commits] == [MinerMethod.PreCommitSector, MinerMethod.ProveCommitSector]
    assert seals == [sector]  # sealed once across three runs
    assert record.state == SectorState.PROVING and len(record.pieces) == 1  # the piece added once
    assert on_chain is not None and on_chain.state.sector_start_epoch > 0
    assert sector_info is not None and list(sector_info.deal_ids) == [done.deal_id]
    assert piece_served
