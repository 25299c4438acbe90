"""Nodes on 127.0.0.1 following each other's chains (tests/kit): convergence with multi-miner tipsets,
messages travelling between pools and into other miners' blocks, a late node catching up, a partition
healing into a reorg, and peers gossiping invalid blocks."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest
import trio

from chain.chainstore.reorg import APPLY, CURRENT, REVERT, HeadChange
from chain.consensus.fullblock import FullBlock
from chain.crypto.keys import KeyType, PrivateKey
from chain.mpool.push import message_to_push
from chain.sync.state import SyncStage
from chain.types.address import Address
from chain.types.election import Ticket
from chain.types.message import Message, SignedMessage, sign_message
from chain.types.tipset import TipSet
from tests.consensus.devchain import ALICE, CAROL, resigned
from tests.kit.ensemble import Ensemble, KitNode, ensemble, wait_until
from tests.kit.misbehaving import MinerBlocks

pytestmark = pytest.mark.slow

RECIPIENT = Address.new_id(100)


def transfer(key: PrivateKey, value: int) -> Message:
    """A transfer for MpoolPushMessage: nonce and gas are filled in by the pusher."""
    return message_to_push(RECIPIENT, Address.of_key(key), value=value)


def including(kit: KitNode, ts: TipSet, signed: SignedMessage) -> list[Address]:
    """The miners of ts's blocks that carry the message."""
    out = []
    for header in ts.blocks:
        bls, secpk = kit.node.chain.messages_for_block(header)
        if signed.cid() in {m.cid() for m in secpk} or signed.message.cid() in {m.cid() for m in bls}:
            out.append(header.miner)
    return out


async def state_root(kit: KitNode, ts: TipSet) -> object:
    return (await kit.node.run_sync(kit.node.state.state_of, ts)).state_root


async def test_three_nodes_two_miners() -> None:
    async with ensemble(nodes=3, miners=2) as ens:
        miner_nodes = {m.address: k.index for k in ens.nodes for m in k.miners}
        assert sorted(miner_nodes.values()) == [0, 1]
        mined = [await ens.mine_one() for _ in range(4)]
        # Every node took each tipset as its head (mine_one waits for that), and tipsets hold the
        # blocks of both miners, made on two nodes and joined on every node.
        assert any({b.miner for b in ts.blocks} == set(miner_nodes) for ts in mined)

        # A message pushed to the node that does not mine reaches the miners' pools and a block.
        carol = ens.nodes[2]
        signed = await carol.push(transfer(CAROL, 4321))
        await wait_until(
            lambda: all(k.node.mpool.pending_for(Address.of_key(CAROL)) == [signed] for k in ens.nodes[:2]),
            what="the message reaching both miners' pools",
        )
        lookup = await ens.mine_until_executed(carol, signed)
        assert lookup.receipt.exit_code == 0
        included = await carol.node.run_sync(carol.node.chain.load_tipset, lookup.tipset.parents)
        makers = including(carol, included, signed)
        assert makers and all(miner_nodes[m] != carol.index for m in makers)

        # Every node computed the same states along the chain.
        head = await ens.wait_converged()
        ts = head
        while ts.height > 0:
            roots = {await state_root(k, ts) for k in ens.nodes}
            assert len(roots) == 1, f"state roots differ at height {ts.height}"
            ts = ens.nodes[0].node.chain.load_tipset(ts.parents)
        assert all(not k.node.mpool.pending_for(Address.of_key(CAROL)) for k in ens.nodes)


async def test_late_node_catches_up_then_follows() -> None:
    async with ensemble(nodes=2, miners=1, start=[0]) as ens:
        first, late = ens.nodes
        await ens.mine(200)
        assert first.head.height >= 200
        await ens.start(late)
        await ens.connect_all()
        head = await ens.wait_converged(timeout=180)
        assert late.head.key == first.head.key == head.key
        assert await state_root(late, head) == await state_root(first, head)
        # SyncState shows the catch-up complete at the head (the worker finishes just after the head
        # moved).
        await wait_until(
            lambda: any(
                s.stage == SyncStage.COMPLETE and s.height == head.height and s.target is not None
                for s in late.sync.sync_state().active_syncs
            ),
            what="SyncState showing the catch-up complete",
        )
        assert late.sync.syncer.tipsets_applied >= 150  # it executed the chain, not just headers
        # Then it follows the head as blocks are gossiped.
        for _ in range(3):
            ts = await ens.mine_one()
            assert late.head.key == ts.key


async def drain(channel: trio.MemoryReceiveChannel[list[HeadChange]]) -> list[HeadChange]:
    out: list[HeadChange] = []
    while True:
        try:
            out.extend(channel.receive_nowait())
        except trio.WouldBlock:
            return out


async def test_partition_heals_into_a_reorg() -> None:
    async with ensemble(nodes=3, miners=2) as ens:
        lone, other, plain = ens.nodes
        await ens.mine(2)
        fork_base = await ens.wait_converged()
        await ens.partition([0], [1, 2])
        changes = lone.node.chain.subscribe(buffer=256)
        # The lone miner includes a message only its side has seen; the other side mines more.
        signed = await lone.push(transfer(ALICE, 777))
        light = await ens.mine_one([lone])
        assert including(lone, light, signed) == [lone.miners[0].address]
        heavy = await ens.mine(3, [other, plain])
        assert lone.node.chain.head_weight() < other.node.chain.head_weight()

        await ens.heal()
        await ens.wait_converged()
        assert lone.head.key == heavy.key
        # ChainNotify on the lighter side: its own tipset reverted, the other side's applied.
        seen = await drain(changes)
        assert seen[0].type == CURRENT
        reverted = [c.tipset for c in seen if c.type == REVERT]
        applied = [c.tipset for c in seen if c.type == APPLY]
        assert light in reverted
        assert heavy in applied and all(ts.height > fork_base.height for ts in applied)
        # The reverted message is pending again in the lone node's pool, and makes it onto the chain.
        assert lone.node.mpool.pending_for(Address.of_key(ALICE)) == [signed]
        lookup = await ens.mine_until_executed(other, signed)
        assert lookup.receipt.exit_code == 0


@asynccontextmanager
async def raw_publishing(kit: KitNode) -> AsyncIterator[None]:
    """Let a node publish what its own gossip validator would keep back (an attacker's node)."""
    gossip = kit.p2p.gossip
    gossip.pubsub.remove_topic_validator(gossip.blocks_topic)
    try:
        yield
    finally:
        gossip.pubsub.set_topic_validator(gossip.blocks_topic, gossip._validate_block, True)


async def forged(ens: Ensemble, attacker: KitNode) -> FullBlock:
    """A valid block of the honest miner at the next epoch it wins (the attacker knows its keys)."""
    node, base = attacker.node, attacker.head
    blocks = MinerBlocks(node.state, node.beacon, ens.genesis.miners[0])
    block: FullBlock = await node.run_sync(lambda: blocks.first_win(base))
    return block


async def test_invalid_blocks_are_not_followed_and_cost_the_sender() -> None:
    # Two attackers: after four invalid deliveries a peer's score is under the publish threshold
    # (-1000) and whatever it sends next is dropped unread, so one attacker cannot show five cases.
    async with ensemble(nodes=4, miners=1) as ens:
        victim, attackers = ens.nodes[1], ens.nodes[2:]
        await ens.mine(2)
        worker = ens.genesis.miners[0].worker_key
        stranger = PrivateKey.derive(KeyType.BLS, b"not the worker")
        good = await forged(ens, attackers[0])
        header = good.header
        other_ticket = Ticket(worker.sign(b"some other ticket").data)
        cases: list[tuple[str, bytes, FullBlock | None]] = [
            (
                "wrong state root",
                resigned(good, worker, parent_state_root=ens.genesis.header.parent_state_root),
            ),
            ("bad signature", resigned(good, stranger)),
            ("bad ticket", resigned(good, worker, ticket=other_ticket)),
            ("wrong parent weight", resigned(good, worker, parent_weight=header.parent_weight + 1)),
        ]
        published = [(name, block.block_msg().to_bytes(), block) for name, block in cases]
        published.append(("garbage", b"\x82\x01garbage that is no block", None))

        victim_head = victim.head
        for i, (name, data, block) in enumerate(published):
            attacker = attackers[i % 2]
            before = victim.score_of(attacker)
            async with raw_publishing(attacker):
                await attacker.p2p.gossip.pubsub.publish(attacker.p2p.gossip.blocks_topic, data)
            await wait_until(
                lambda attacker=attacker, before=before: victim.score_of(attacker) < before,
                what=f"{name}: the attacker penalised",
            )
            if block is not None:
                await wait_until(
                    lambda block=block: victim.sync.check_bad(block.cid()) != "",
                    what=f"{name}: the block remembered as bad",
                )
            assert victim.head.key == victim_head.key, f"{name}: the victim followed an invalid block"
        assert "StateRootMismatch" in victim.sync.check_bad(cases[0][1].cid())
        assert "InvalidBlockSignature" in victim.sync.check_bad(cases[1][1].cid())
        assert "InvalidTicket" in victim.sync.check_bad(cases[2][1].cid())
        assert "ParentWeightMismatch" in victim.sync.check_bad(cases[3][1].cid())

        # The node keeps running and follows the honest chain (the attackers, whose validators were
        # off for a while, are left out of the wait).
        ts = await ens.mine_one(ens.nodes[:2])
        assert victim.head.key == ts.key


async def test_running_miners_build_on_each_others_blocks() -> None:
    """Mining on the clock, each miner takes the heaviest tipset at the round cutoff: blocks of both
    miners at one epoch form one tipset, and the next epoch builds on all of it."""
    async with ensemble(nodes=2, miners=2) as ens:
        start = ens.nodes[0].head.height
        async with ens.running(interval=0.8):
            await ens.wait_height(start + 8)
        head = await ens.wait_converged()
        made = sum(k.sync.published_blocks for k in ens.nodes)
        chain = [ts for ts in _chain(ens.nodes[0], head) if ts.height > start]
        on_chain = sum(len(ts.blocks) for ts in chain)
        # Every block made is on the chain but those of the last epoch or two, still arriving.
        assert made - on_chain <= 2
        assert sum(len(ts.blocks) == 2 for ts in chain) >= len(chain) // 2


def _chain(kit: KitNode, head: TipSet) -> list[TipSet]:
    out = [head]
    while out[-1].height > 0:
        out.append(kit.node.chain.load_tipset(out[-1].parents))
    return out


async def test_gossiped_messages_are_judged_by_the_pool() -> None:
    async with ensemble(nodes=2, miners=1) as ens:
        sender, judge = ens.nodes
        signed = await sender.push(transfer(ALICE, 5))
        await wait_until(lambda: judge.node.mpool.pending_for(Address.of_key(ALICE)) == [signed])
        await ens.mine_one()
        await wait_until(lambda: not judge.node.mpool.pending_for(Address.of_key(ALICE)))
        before = judge.score_of(sender)
        # Its nonce is used now: not the sender's fault (Ignore). Then a sender with no actor: Reject.
        stale = replace(signed.message, value=6)
        stranger = PrivateKey.derive(KeyType.SECP256K1, b"no actor")
        unknown = replace(signed.message, from_=Address.of_key(stranger))
        for message, key in ((stale, ALICE), (unknown, stranger)):
            await sender.p2p.gossip.publish_message(sign_message(message, key))
        # Other parts of the score drift a little with time (a loaded machine's wait shows it): wait for
        # the penalty itself.
        await wait_until(lambda: before - judge.score_of(sender) > 50, what="the rejected message penalised")
        # One invalid delivery on the messages topic (-100 = 0.1 x -1000 x 1^2), not two.
        assert before - judge.score_of(sender) == pytest.approx(100, abs=1)
        assert judge.node.mpool.pending_for(Address.of_key(ALICE)) == []
