"""The sealing pipeline on the assembled node: a miner created with power.CreateMiner pledges sectors that
are sealed, pre-committed, proven and then proven by the Window PoSt scheduler, with power on chain;
sectors ready together share a PreCommitSectorBatch and a ProveCommitAggregate; a deal's piece gets the
sector's CommD and a verifying inclusion proof."""

from dataclasses import replace
from pathlib import Path

import pytest
import trio

from actors.miner.types import MinerMethod, encode_aggregate_proof
from chain.params import DEVNET, MAINNET, SEAL_PROOF_SIZES
from chain.stmgr import miners as miner_queries
from chain.vm.exitcode import ExitCode
from node.mining.wdpost import WindowPoStScheduler
from node.sealing.batching import CommitPlan, aggregate_proof_size, batch_due, plan_commits, plan_pre_commits
from node.sealing.pipeline import SectorChange
from node.sealing.states import HAPPY_PATH, SectorState
from node.sealing.store import SealingStore
from tests.sealing.devnet import WAIT, WORKER, Devnet, fast_config

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
        with trio.fail_after(WAIT):  # sealed and pre-committed without a new block
            sent = await pipeline.wait_for(number, S.PRE_COMMIT_WAIT)
        assert sent.pre_commit_message is not None and sent.comm_r is not None
        assert net.node.mpool.pending_for(WORKER)[0].cid() == sent.pre_commit_message

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


async def test_sectors_ready_together_share_a_batch_and_an_aggregate(tmp_path: Path) -> None:
    net = Devnet.new(tmp_path)
    async with net.running() as nursery:
        miner = (await net.create_miner()).id_address
        # batches wait long for more sectors, but not once nothing else is on its way
        config = fast_config(pre_commit_batch_wait=1000, commit_batch_wait=1000)
        pipeline = net.pipeline(miner, config=config)
        await net.start(nursery, pipeline)
        first, second = await pipeline.pledge_sector(), await pipeline.pledge_sector()
        assert (first, second) == (0, 1)
        await net.run_until(
            lambda: all(pipeline.record(n).state == S.PROVING for n in (first, second)), what="both proving"
        )
        landed = net.messages_to(miner, PRE_COMMITS + COMMITS)
        assert [(m.method, code) for m, code in landed] == [
            (MinerMethod.PreCommitSectorBatch, ExitCode.Ok),
            (MinerMethod.ProveCommitAggregate, ExitCode.Ok),
        ]
        records = [pipeline.record(n) for n in (first, second)]
        assert records[0].pre_commit_message == records[1].pre_commit_message == landed[0][0].cid()
        assert records[0].commit_message == records[1].commit_message == landed[1][0].cid()
        tree = net.node.state.tree(net.node.state.state_of(net.head).state_root)
        assert miner_queries.miner_power(tree, DEVNET, miner).miner.raw_byte_power == 2 * 2048
        assert net.seals == {0: 1, 1: 1}


def test_batch_plans_follow_the_policy_limits() -> None:
    """What the batchers cut: the aggregate limits of the policy and the message size."""
    two_kib = SEAL_PROOF_SIZES[5]
    sizes = dict.fromkeys(range(7), two_kib)
    plans = plan_commits(sizes, min_aggregate=2, policy=DEVNET)
    assert DEVNET.max_aggregated_sectors == 3
    assert [(p.sectors, p.aggregate) for p in plans] == [((0, 1, 2), True), ((3, 4, 5), True), ((6,), False)]
    for plan in plans:
        proof = encode_aggregate_proof(bytes(sizes[n]) for n in plan.sectors)
        assert aggregate_proof_size([sizes[n] for n in plan.sectors]) == len(proof)
        assert len(proof) <= DEVNET.max_aggregated_proof_size
    # a fourth 2 KiB proof would not fit the message; two 8 MiB proofs do not either
    assert aggregate_proof_size([two_kib] * 4) > DEVNET.max_aggregated_proof_size
    eight_mib = plan_commits(dict.fromkeys(range(3), SEAL_PROOF_SIZES[6]), min_aggregate=2, policy=DEVNET)
    assert [(p.sectors, p.aggregate) for p in eight_mib] == [((0,), False), ((1,), False), ((2,), False)]
    # the byte limit cuts on its own where it is the tighter one
    tight = replace(DEVNET, max_aggregated_proof_size=600_000)
    cut = plan_commits(dict.fromkeys(range(5), two_kib), min_aggregate=2, policy=tight)
    assert [(len(p.sectors), p.aggregate) for p in cut] == [(2, True), (2, True), (1, False)]
    # fewer than the minimum go one by one; mainnet's 512 MiB proofs never share a message
    assert plan_commits({5: 100}, min_aggregate=2, policy=DEVNET) == [CommitPlan((5,), False)]
    mainnet = plan_commits(dict.fromkeys(range(5), SEAL_PROOF_SIZES[7]), min_aggregate=4, policy=MAINNET)
    assert [(len(p.sectors), p.aggregate) for p in mainnet] == [(1, False)] * 5
    assert plan_pre_commits([3, 1, 2], max_batch=2, policy=DEVNET) == [(1, 2), (3,)]
    due = {"head": 100, "ready_since": 98, "wait": 4, "deadline": None, "slack": 2}
    assert batch_due(**due, full=False, upstream=1) is None
    assert batch_due(**due, full=True, upstream=1) == "full"
    assert batch_due(**due, full=False, upstream=0) == "nothing else on the way"
    assert batch_due(**{**due, "ready_since": 96}, full=False, upstream=1) == "waited 4 epochs"
    assert batch_due(**{**due, "deadline": 102}, full=False, upstream=1) == "deadline 102 is near"


@pytest.mark.slow
async def test_an_8mib_sector_proves(tmp_path: Path) -> None:
    """The sector size devnet deals of real files use: sealed (seconds here), proven, with power."""
    net = Devnet.new(tmp_path)
    async with net.running() as nursery:
        miner = (await net.create_miner(sector_size=8 << 20)).id_address
        pipeline = net.pipeline(miner)
        await net.start(nursery, pipeline)
        number = await pipeline.pledge_sector()
        await net.run_until(
            lambda: pipeline.record(number).state == S.PROVING, what="the 8 MiB sector proving"
        )
        tree = net.node.state.tree(net.node.state.state_of(net.head).state_root)
        assert miner_queries.miner_power(tree, DEVNET, miner).miner.raw_byte_power == 8 << 20
        assert net.sectors.check(miner, [number]) == []
        assert len(pipeline.record(number).proof) == SEAL_PROOF_SIZES[6]  # one 8 MiB seal proof


async def test_the_genesis_miners_pre_sealed_sectors_are_imported_as_proving(tmp_path: Path) -> None:
    # As `lotus-miner init` imports pre-sealed metadata: listed, summarised and statused like any
    # sector the pipeline sealed, once, and a pledge takes the next free number.
    net = Devnet.open(tmp_path)
    (genesis_miner,) = net.genesis.miners
    miner = genesis_miner.id_address
    async with net.running() as nursery:
        pipeline = net.pipeline(miner, store=SealingStore.for_chain(net.node.chain, miner.id))
        await net.start(nursery, pipeline)
        assert pipeline.sectors_list() == [0, 1]
        assert pipeline.sectors_summary() == {"Proving": 2}
        status = await pipeline.sector_status(1)
        stored = net.sectors.get(miner, 1)
        assert (status.comm_r, status.comm_d) == (stored.sealed_cid, stored.unsealed_cid)
        assert status.activation is not None and status.expiration > net.head.height
        assert [entry.kind for entry in status.log] == ["imported"]
        assert await pipeline.pledge_sector() == 2
        nursery.cancel_scope.cancel()
    reopened = SealingStore.for_chain(net.node.chain, miner.id)
    assert [r.state for r in reopened.all()][:2] == ["Proving", "Proving"]
    assert net.seals == {}
