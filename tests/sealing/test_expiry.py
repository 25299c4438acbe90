"""A proving sector that reaches its expiration: once the chain no longer holds it (the deadline cron
after its expiration removed it), the pipeline moves it to Removed and its files leave the sector store,
so `filpy miner sectors list` stops calling it Proving; a sector still on chain at its recorded
expiration was extended, and its record takes the chain's new expiration."""

from dataclasses import replace
from pathlib import Path

import pytest

from actors.miner.state import SectorOnChainInfo
from chain.types.address import Address
from chain.types.tipset import TipSet
from node.fullnode import FullNode
from node.sealing.chain import NodeChain
from node.sealing.sectors import SectorNotFound
from node.sealing.states import SectorState
from tests.sealing.devnet import Devnet

S = SectorState
EXPIRED, EXTENDED = 1, 0  # the genesis miner's two pre-sealed sectors
CRON_DELAY = 2  # epochs between the expiration and the chain dropping the sector


class ExpiringChain(NodeChain):
    """The node's chain, on which sector 1 expires at `expiration` (gone CRON_DELAY epochs later) and
    sector 0, recorded with the same expiration, turns out extended to `extended_to`."""

    def __init__(self, node: FullNode, expiration: int, extended_to: int) -> None:
        super().__init__(node)
        self.expiration = expiration
        self.extended_to = extended_to

    def sector_info(self, miner: Address, number: int, ts: TipSet) -> SectorOnChainInfo | None:
        info = super().sector_info(miner, number, ts)
        if info is None or number not in (EXPIRED, EXTENDED):
            return info
        if number == EXPIRED:
            gone = ts.height >= self.expiration + CRON_DELAY
            return None if gone else replace(info, expiration=self.expiration)
        return replace(info, expiration=self.expiration if ts.height < self.expiration else self.extended_to)


@pytest.mark.slow
async def test_an_expired_sector_leaves_proving_and_an_extended_one_stays(tmp_path: Path) -> None:
    net = Devnet.new(tmp_path)
    (genesis_miner,) = net.genesis.miners
    miner = genesis_miner.id_address
    async with net.running() as nursery:
        expiration = net.head.height + 4
        chain = ExpiringChain(net.node, expiration, extended_to=expiration + 10_000)
        pipeline = net.pipeline(miner, chain=chain)
        await net.start(nursery, pipeline)
        assert pipeline.sectors_summary() == {"Proving": 2}
        assert pipeline.record(EXPIRED).expiration == expiration

        # at and just after its expiration the chain still holds it: still proving
        await net.run_until(lambda: net.head.height >= expiration + CRON_DELAY - 1, what="expiration")
        assert pipeline.record(EXPIRED).state == S.PROVING

        await net.run_until(lambda: pipeline.record(EXPIRED).state == S.REMOVED, epochs=10, what="removed")
        removed = pipeline.record(EXPIRED)
        assert removed.log[-1].kind == "event;Removed"
        assert removed.log[-1].message == f"expired on chain at epoch {expiration}"
        with pytest.raises(SectorNotFound):
            net.sectors.get(miner, EXPIRED)

        kept = pipeline.record(EXTENDED)
        assert kept.state == S.PROVING and kept.expiration == expiration + 10_000
        assert net.sectors.get(miner, EXTENDED).number == EXTENDED
        assert pipeline.sectors_summary() == {"Proving": 1, "Removed": 1}
        nursery.cancel_scope.cancel()
