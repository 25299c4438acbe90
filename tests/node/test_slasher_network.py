"""Consensus faults on a live 3-node network (tests/kit/ensemble.py): a misbehaving miner signs two
blocks at one height and gossips both; another node's slasher reports it; every node's chain shows the
penalty and the reporter's reward; the offender's blocks are rejected while it is barred, the others
keep mining, and once the ban is over its blocks are taken again."""

from typing import Final

import pytest
import trio

from actors.miner.policy import consensus_fault_penalty, reward_for_consensus_slash_report
from chain.params import DEVNET
from chain.types.address import Address
from chain.types.sector import ConsensusFaultType
from chain.types.tipset import TipSet
from chain.vm.exitcode import ExitCode
from node.config import SlasherConfig
from node.slasher import ReportOutcome, Slasher
from tests.consensus.devchain import CAROL
from tests.kit.ensemble import ensemble, wait_until
from tests.kit.misbehaving import DoubleSigner
from tests.node.slashing import reward_estimate

REPORTER: Final = Address.of_key(CAROL)
BAN: Final = DEVNET.consensus_fault_ineligibility_duration


@pytest.mark.slow
async def test_a_double_signing_miner_is_reported_and_barred_on_a_three_node_network() -> None:
    async with ensemble(nodes=3, miners=3) as ens, trio.open_nursery() as nursery:
        bad, reporter, watcher = ens.nodes
        honest = [reporter, watcher]
        offender = bad.miners[0].address
        slasher = Slasher(reporter.node, SlasherConfig(enabled=True, address=str(REPORTER)))
        await nursery.start(slasher.run)
        reporter.sync.block_observers.append(slasher.observe)
        await ens.mine(2)

        # The misbehaving miner signs two blocks at one height; both reach every node.
        signer = DoubleSigner(bad.miners[0], ens)
        first, second = await signer.double_sign(await ens.wait_converged())
        # The reporter's slasher sees both and sends ReportConsensusFault; the honest miners mine it.
        await wait_until(lambda: bool(reporter.node.mpool.pending_for(REPORTER)), what="the report sent")
        await wait_until(lambda: bool(watcher.node.mpool.pending_for(REPORTER)), what="the report gossiped")

        def reports() -> list[ReportOutcome]:
            return [o for o in slasher.outcomes if o.message is not None]

        for _ in range(5):
            await ens.mine_one(honest)
            if reports():
                break
        (outcome,) = reports()
        assert all(o.skipped == "reported before" for o in slasher.outcomes if o is not outcome)
        assert outcome.exit_code == ExitCode.Ok, outcome
        assert outcome.evidence.fault_type == ConsensusFaultType.DoubleForkMining
        assert {outcome.evidence.block1, outcome.evidence.block2} == {first.header, second.header}

        # Every node's chain shows the penalty, the reward and the ban (read on the watcher here).
        await ens.wait_converged()
        state, chain = watcher.node.state, watcher.node.chain
        assert outcome.message is not None
        found = state.search_msg(chain.head(), outcome.message)
        assert found is not None and found.receipt.exit_code == ExitCode.Ok
        included = chain.load_tipset(found.tipset.parents)
        before = chain.load_tipset(included.parents)
        assert included.height == before.height + 1  # no null round's cron in between
        estimate = reward_estimate(state, included)
        penalty = consensus_fault_penalty(DEVNET, estimate)
        reward = min(penalty, reward_for_consensus_slash_report(DEVNET, estimate))
        _, applied = state.replay(included, outcome.message)
        paid = (
            applied.gas_costs.base_fee_burn
            + applied.gas_costs.over_estimation_burn
            + applied.gas_costs.miner_tip
        )

        def balance(address: Address, ts: TipSet) -> int:
            actor = state.actor_after(address, ts)
            return 0 if actor is None else actor.balance

        assert balance(REPORTER, included) == balance(REPORTER, before) + reward - paid
        assert balance(offender, included) == balance(offender, before) - penalty
        elapsed = included.height + BAN
        for kit in ens.nodes:
            assert kit.node.state.miner_info(offender, kit.head).consensus_fault_elapsed == elapsed

        # Barred: its own producer declines, and a block it makes anyway is rejected by the others.
        base = await ens.wait_converged()
        assert await bad.miners[0].produce(base, base.height + 1) is None
        forced = await signer.publish_forced(base)
        for kit in honest:
            await wait_until(
                lambda kit=kit: "MinerNotEligible" in kit.sync.check_bad(forced.cid()),
                what=f"node {kit.index} rejecting the barred miner's block",
            )
        # The network keeps going without it until the ban is over, the offender's node following.
        while (await ens.wait_converged()).height <= elapsed:
            head = await ens.mine_one(honest)
            assert offender not in {b.miner for b in head.blocks}
        # Then its blocks are taken again.
        for _ in range(10):
            head = await ens.mine_one()
            if offender in {b.miner for b in head.blocks}:
                break
        assert offender in {b.miner for b in head.blocks}
        assert reports() == [outcome]  # reported once
        nursery.cancel_scope.cancel()
