"""The slasher service on a FullNode's devnet chain: each fault type seen in the blocks it is handed is
reported with ReportConsensusFault and executes; the penalty and the reporter's reward show in the
balances; the offender is barred (the producer declines, validation refuses its forced blocks) until
the fault period ends, then mines again; nothing is reported twice, nor when too old or already
punished, nor on a forged header."""

from pathlib import Path

import pytest
import structlog
import trio

from actors.miner.policy import consensus_fault_penalty, reward_for_consensus_slash_report
from chain.chainstore.metadata import MemoryMetadata
from chain.consensus import validation as v
from chain.consensus.election import mining_base
from chain.consensus.fullblock import FullBlock
from chain.crypto.keys import KeyType, PrivateKey
from chain.params import DEVNET
from chain.types.address import Address
from chain.types.sector import ConsensusFaultType
from chain.types.tipset import TipSet
from chain.vm.exitcode import ExitCode
from node.config import SlasherConfig
from node.slasher import Slasher, SlasherError, slasher_service
from tests.consensus.devchain import ALICE, BOB, resigned
from tests.node.slashing import REPORTER, SlashingNode, new_node, slashing_node
from tests.polling import wait_until

BAN = DEVNET.consensus_fault_ineligibility_duration


def double_fork(s: SlashingNode) -> tuple[FullBlock, FullBlock]:
    """The offender's twin blocks at the next epoch it wins; the first (with the honest miner's block
    of that epoch, if any) becomes the head."""
    offender, honest_miner, parent = s.blocks_of(s.offender), s.blocks_of(s.honest), s.head
    posts = [m for p in s.dc.miners if (m := s.dc.post_message(p)) is not None]
    for epoch in range(parent.height + 1, parent.height + 50):
        twins = offender.twin_blocks(parent, epoch, posts)
        if twins is None:
            continue
        s.dc.validate(twins[1])  # valid on its own too
        honest = honest_miner.block_on(parent, epoch, posts)
        s.dc.apply([twins[0], *([] if honest is None else [honest])])
        return twins
    raise AssertionError("the offender won no epoch")


def time_offset(s: SlashingNode) -> tuple[FullBlock, FullBlock]:
    """The offender's block at the next epoch it wins, and another on the same parent at a later epoch
    it wins; the first becomes the head."""
    offender, parent = s.blocks_of(s.offender), s.head
    first = offender.first_win(parent)
    later = offender.first_win(parent, after=first.header.height)
    s.dc.validate(later)
    s.dc.apply([first])
    return first, later


def parent_grinding(s: SlashingNode) -> tuple[FullBlock, FullBlock, FullBlock]:
    """Both miners mine at one epoch ({own, sibling} becomes the head); the offender then mines on the
    honest miner's block alone, leaving its own out (a valid, lighter block)."""
    offender, honest, parent = s.blocks_of(s.offender), s.blocks_of(s.honest), s.head
    for epoch in range(parent.height + 1, parent.height + 50):
        own = offender.block_on(parent, epoch)
        sibling = honest.block_on(parent, epoch)
        if own is not None and sibling is not None:
            s.dc.apply([own, sibling])
            grinder = offender.first_win(TipSet((sibling.header,)))
            s.dc.validate(grinder)
            return own, sibling, grinder
    raise AssertionError("the miners never won at one epoch")


async def report_lands(s: SlashingNode, fault_epoch: int) -> TipSet:
    """Mine (the honest miner alone, so that the offender earns nothing meanwhile) until the report is
    in the pool, then the tipset including it and one on top; the including tipset."""
    await s.mine_until(fault_epoch, [s.honest])
    await s.wait_pending()
    included = await s.mine([s.honest])
    await s.mine([s.honest])
    return included


async def test_double_fork_is_reported_penalised_rewarded_and_barred(tmp_path: Path) -> None:
    with structlog.testing.capture_logs() as logs:
        async with slashing_node(tmp_path) as s:
            await s.mine()
            await s.mine()
            first, second = await s.run(double_fork, s)
            s.observe(*s.head.blocks)
            s.observe(second)
            included = await report_lands(s, first.header.height)
            (outcome,) = await s.wait_outcomes(1)

            offender = s.offender.id_address
            assert outcome.evidence.fault_type == ConsensusFaultType.DoubleForkMining
            assert {outcome.evidence.block1, outcome.evidence.block2} == {first.header, second.header}
            assert outcome.exit_code == ExitCode.Ok and outcome.skipped is None
            assert outcome.executed_at == s.head.height
            assert outcome.barred_until == included.height + BAN

            # The penalty leaves the miner; the reporter gets its share, less the gas it paid.
            before = s.node.chain.load_tipset(included.parents)
            assert included.height == before.height + 1  # no cron of a null round in between
            estimate = s.reward_estimate(included)
            penalty = consensus_fault_penalty(DEVNET, estimate)
            reward = min(penalty, reward_for_consensus_slash_report(DEVNET, estimate))
            assert 0 < reward < penalty
            assert outcome.message is not None
            _, applied = await s.run(s.node.state.replay, included, outcome.message)
            gas = applied.gas_costs
            paid = gas.base_fee_burn + gas.over_estimation_burn + gas.miner_tip
            assert s.balance(REPORTER, included) == s.balance(REPORTER, before) + reward - paid
            assert s.balance(offender, included) == s.balance(offender, before) - penalty

            # The reported blocks seen again: claimed already, nothing more is sent.
            s.observe(first, second)
            again = (await s.wait_outcomes(2))[1]
            assert again.skipped == "reported before" and not s.node.mpool.pending_for(REPORTER)

            # Barred: the producer declines, a block made anyway is refused, until the ban is over.
            # Twin blocks made while barred are a fault the miner is already punished for.
            elapsed = outcome.barred_until
            sm, beacon, blocks = s.node.state, s.node.beacon, s.blocks_of(s.offender)
            barred_twins: tuple[FullBlock, FullBlock] | None = None
            while s.head.height <= elapsed:
                head = s.head
                mbase = await s.run(mining_base, sm, beacon, offender, head, head.height + 1)
                assert mbase is not None and f"consensus fault until epoch {elapsed}" in str(mbase.ineligible)
                forced = await s.run(lambda head=head: blocks.first_win(head, forced=True))
                with pytest.raises(v.MinerNotEligible, match="barred by a consensus fault"):
                    s.dc.validate(forced)
                if barred_twins is None:
                    extra = await s.run(blocks.self_send, head, ())
                    twin = await s.run(blocks.forced_block, head, forced.header.height, [extra])
                    assert twin is not None
                    barred_twins = (forced, twin)
                    s.observe(*barred_twins)
                await s.mine([s.honest])
            back = await s.run(lambda: blocks.first_win(s.head))
            s.dc.validate(back)
            ts = await s.run(s.dc.apply, [back])
            assert offender in {b.miner for b in ts.blocks}
            barred = (await s.wait_outcomes(3))[2]
            assert barred.skipped == "already barred" and barred.barred_until == elapsed
            assert {barred.evidence.block1, barred.evidence.block2} == {b.header for b in barred_twins}
            assert not s.node.mpool.pending_for(REPORTER)

    events = [e for e in logs if e["event"].startswith("slasher.")]
    executed = [e for e in events if e["event"] == "slasher.report_executed"]
    assert len(executed) == 1 and executed[0]["exit_code"] == 0 and executed[0]["miner"] == str(offender)
    assert [e["event"] for e in events if e["event"] == "slasher.report_sent"] == ["slasher.report_sent"]


@pytest.mark.parametrize("fault", ["time offset", "parent grinding"])
async def test_time_offset_and_parent_grinding_are_reported(tmp_path: Path, fault: str) -> None:
    async with slashing_node(tmp_path) as s:
        await s.mine()
        if fault == "time offset":
            first, later = await s.run(time_offset, s)
            s.observe(first, later)
            expected = (ConsensusFaultType.TimeOffsetMining, first.header, later.header, None)
            epoch = later.header.height
        else:
            own, sibling, grinder = await s.run(parent_grinding, s)
            s.observe(own, sibling, grinder)
            expected = (ConsensusFaultType.ParentGrinding, own.header, grinder.header, sibling.header)
            epoch = grinder.header.height
        included = await report_lands(s, epoch)
        (outcome,) = await s.wait_outcomes(1)
        evidence = outcome.evidence
        assert (evidence.fault_type, evidence.block1, evidence.block2, evidence.extra) == expected
        assert outcome.exit_code == ExitCode.Ok
        assert (
            s.node.state.miner_info(s.offender.id_address, s.head).consensus_fault_elapsed
            == included.height + BAN
        )


async def test_a_forged_header_is_neither_recorded_nor_reported(tmp_path: Path) -> None:
    async with slashing_node(tmp_path) as s:
        await s.mine()
        block = await s.run(lambda: s.blocks_of(s.offender).first_win(s.head))
        forged = resigned(block, BOB, messages=block.header.parents[0])  # not the worker's signature
        s.observe(forged)
        await wait_until(lambda: s.slasher.checked == s.slasher.received, what="the forgery checked")
        assert (
            len(s.slasher.filter) == 0
            or forged.header.cid().bytes not in dict(s.slasher.filter._store.items(b"e")).values()
        )
        await s.run(s.dc.apply, [block])
        s.observe(block)  # the miner's real block takes the slot: no fault with the forgery
        await wait_until(lambda: s.slasher.checked == s.slasher.received, what="the real block checked")
        assert not s.slasher.outcomes and not s.node.mpool.pending_for(REPORTER)


async def test_faults_too_old_are_not_reported(tmp_path: Path) -> None:
    async with slashing_node(tmp_path) as s:
        await s.mine()
        first, second = await s.run(double_fork, s)
        await s.mine_until(first.header.height + DEVNET.chain_finality)
        s.observe(first, second)  # seen only now: a report would execute too late
        await wait_until(lambda: s.slasher.checked == s.slasher.received, what="the blocks checked")
        await s.mine()
        assert not s.slasher.outcomes and not s.node.mpool.pending_for(REPORTER)


async def test_evidence_from_a_block_the_store_does_not_hold(tmp_path: Path) -> None:
    """The twin the chain never took is not in the block store: the slasher keeps the headers it saw."""
    async with slashing_node(tmp_path) as s:
        await s.mine()
        first, second = await s.run(double_fork, s)
        assert not s.node.chain.has_block(second.header.cid())
        s.observe(second, store=False)
        s.observe(first)
        await report_lands(s, first.header.height)
        (outcome,) = await s.wait_outcomes(1)
        assert (outcome.evidence.block1, outcome.evidence.block2) == (second.header, first.header)
        assert outcome.exit_code == ExitCode.Ok


async def test_a_restarted_slasher_does_not_report_again(tmp_path: Path) -> None:
    node = new_node(tmp_path)
    store = MemoryMetadata()
    config = SlasherConfig(enabled=True, address=str(REPORTER))
    async with slashing_node(tmp_path, node=node, slasher=Slasher(node, config, store=store)) as s:
        await s.mine()
        first, second = await s.run(double_fork, s)
        s.observe(first, second)
        await report_lands(s, first.header.height)
        (outcome,) = await s.wait_outcomes(1)
        assert outcome.exit_code == ExitCode.Ok
    again = Slasher(node, config, store=store)
    async with slashing_node(tmp_path, node=node, slasher=again) as s:
        s.observe(first, second)
        (outcome,) = await s.wait_outcomes(1)
        assert outcome.skipped == "reported before"
        assert not node.mpool.pending_for(REPORTER)


async def test_the_reporting_address_must_be_in_the_wallet(tmp_path: Path) -> None:
    node = new_node(tmp_path)
    stranger = Address.of_key(PrivateKey.derive(KeyType.SECP256K1, b"not in the wallet"))
    with pytest.raises(SlasherError, match="not in the wallet"):
        await Slasher(node, SlasherConfig(enabled=True, address=str(stranger))).run()
    with pytest.raises(SlasherError, match="no default address"):
        await Slasher(node, SlasherConfig(enabled=True)).run()
    node.wallet.set_default(Address.of_key(ALICE))
    slasher = Slasher(node, SlasherConfig(enabled=True))
    async with trio.open_nursery() as nursery:
        await nursery.start(slasher.run)
        assert slasher.reporter == Address.of_key(ALICE)
        nursery.cancel_scope.cancel()
    assert slasher_service(node, SlasherConfig()) is None
    assert isinstance(slasher_service(node, SlasherConfig(enabled=True)), Slasher)


def test_a_full_queue_drops_headers_without_blocking(tmp_path: Path) -> None:
    node = new_node(tmp_path)
    slasher = Slasher(node, SlasherConfig(enabled=True), queue_size=1)
    slasher.observe(node.genesis)
    slasher.observe(node.genesis)
    assert (slasher.received, slasher.dropped) == (2, 1)
