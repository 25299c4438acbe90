"""The sealing pipeline on the assembled node: a miner created with power.CreateMiner pledges sectors that
are sealed, pre-committed, proven and then proven by the Window PoSt scheduler, with power on chain;
sectors ready together share a PreCommitSectorBatch and a ProveCommitAggregate; a deal's piece gets the
sector's CommD and a verifying inclusion proof."""

from pathlib import Path

import trio

from actors.miner.types import MinerMethod
from chain.encoding.commcid import commitment_of_v1
from chain.params import DEVNET
from chain.stmgr import miners as miner_queries
from chain.vm.exitcode import ExitCode
from node.mining.wdpost import WindowPoStScheduler
from node.sealing.pipeline import SectorChange
from node.sealing.states import HAPPY_PATH, SectorState
from tests.sealing.devnet import Devnet

S = SectorState
PRE_COMMITS = (MinerMethod.PreCommitSector, MinerMethod.PreCommitSectorBatch)
COMMITS = (MinerMethod.ProveCommitSector, MinerMethod.ProveCommitAggregate)


async def test_pledged_sector_proves_and_gains_power(tmp_path: Path) -> None:
    net = Devnet.new(tmp_path)
    async with net.running() as nursery:
        created = await net.create_miner()
        miner = created.id_address
        pipeline = net.pipeline(miner)
        await net.start(nursery, pipeline)
        changes = pipeline.subscribe()

        number = await pipeline.pledge_sector()
        assert number == 0

        await net.run_until(lambda: pipeline.record(number).state == S.PROVING, what="sector 0 proving")
        head = net.head
        tree = net.node.state.tree(net.node.state.state_of(head).state_root)
        power = miner_queries.miner_power(tree, DEVNET, miner)
        assert power.miner.raw_byte_power == 2048
        assert power.miner.quality_adj_power == 2048

        # the sector is in the store the Window PoSt scheduler proves from, as the chain has it
        on_chain = miner_queries.sector_info(tree, miner, number)
        assert on_chain is not None
        stored = net.sectors.get(miner, number)
        assert stored.sealed_cid == on_chain.sealed_cid
        status = await pipeline.sector_status(number)
        assert status.state == "Proving" and status.comm_r == on_chain.sealed_cid
        assert status.activation == on_chain.activation and status.expiration == on_chain.expiration
        assert status.initial_pledge == on_chain.initial_pledge > 0
        assert status.pre_commit_msg is not None and status.commit_msg is not None
        assert status.to_json()["State"] == "Proving"
        assert pipeline.sectors_summary() == {"Proving": 1}

        # it went through every state of a committed-capacity sector, in order, once each
        seen = []
        while True:
            try:
                change: SectorChange = changes.receive_nowait()
            except trio.WouldBlock:
                break
            seen.append(change.new)
        assert seen == [s.value for s in HAPPY_PATH[1:]]
        assert net.seals == {0: 1}
        methods = [m.method for m, code in net.messages_to(miner, PRE_COMMITS + COMMITS) if code == 0]
        assert methods == [MinerMethod.PreCommitSector, MinerMethod.ProveCommitSector]

        # the new miner's Window PoSt scheduler proves it from the store at its deadline
        scheduler = WindowPoStScheduler.for_node(net.node, miner, net.sectors)
        await nursery.start(scheduler.run)
        net.wdpost.append(scheduler)
        proven_at = head.height

        def posted() -> bool:
            tree = net.node.state.tree(net.node.state.state_of(net.head).state_root)
            deadlines = miner_queries.miner_deadlines(tree, miner)
            return any(not d.partitions_posted.is_empty() for d in deadlines)

        await net.run_until(
            posted, epochs=2 * DEVNET.wpost_proving_period, what="a Window PoSt of the sector"
        )
        tree = net.node.state.tree(net.node.state.state_of(net.head).state_root)
        assert miner_queries.miner_faults(tree, miner).is_empty()
        assert net.head.height > proven_at
