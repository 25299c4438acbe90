"""A devnet chain of two pre-sealed miners over 80 epochs, every block produced by the producer and
validated before it is applied: tipsets of two blocks while both mine, null rounds once one of them is
offline, transfers (secp256k1 and BLS) carried by both blocks of a tipset but applied once, Window
PoSts proven on time (so both miners keep their power), rewards paid."""

import itertools
from typing import Final

import pytest

from actors import builtin
from chain.consensus.beacon import MOCK_ROUND_OFFSET, beacon_entries_for_block
from chain.consensus.election import (
    compute_vrf,
    election_randomness,
    mining_base,
    win_count,
)
from chain.consensus.weight import weight_of
from chain.crypto.randomness import mock_beacon_data
from chain.types.address import Address
from chain.types.tipset import TipSet
from tests.consensus.devchain import ALICE, BOB, CAROL, GENESIS_TIME, DevChain

HEIGHT: Final = 80
OFFLINE_FROM: Final = 25  # t01001 stops mining after this height
MINER_A, MINER_B = Address.new_id(1000), Address.new_id(1001)
BOB_ADDR, CAROL_ADDR = Address.of_key(BOB), Address.of_key(CAROL)


@pytest.fixture(scope="module")
def dc() -> DevChain:
    chain = DevChain.new()
    while chain.head.height < HEIGHT:
        if chain.head.height >= OFFLINE_FROM:
            chain.online.discard(MINER_B)
        messages = []
        if chain.head.height % 5 == 0:
            messages = [*chain.transfers(ALICE, BOB_ADDR, 2, value=10), *chain.transfers(BOB, CAROL_ADDR, 1)]
        chain.next_tipset(messages)
    return chain


def tipsets(dc: DevChain) -> list[TipSet]:
    out = [dc.head]
    while out[-1].height > 0:
        out.append(dc.chain.load_tipset(out[-1].parents))
    return out[::-1]


def test_heights_timestamps_and_weights(dc: DevChain) -> None:
    chain = tipsets(dc)
    assert chain[0] == dc.genesis_ts
    for parent, child in itertools.pairwise(chain):
        assert child.height > parent.height
        for block in child.blocks:
            assert block.timestamp == GENESIS_TIME + dc.policy.block_delay_secs * block.height
            assert block.parent_weight == weight_of(dc.store, parent)
        assert weight_of(dc.store, child) > weight_of(dc.store, parent)
    heights = {ts.height for ts in chain}
    assert sorted(set(range(HEIGHT + 1)) - heights) == dc.null_rounds


def test_two_block_tipsets_while_both_mine(dc: DevChain) -> None:
    early = [ts for ts in tipsets(dc) if 0 < ts.height <= OFFLINE_FROM]
    assert any(len(ts.blocks) == 2 for ts in early)
    late = [ts for ts in tipsets(dc) if ts.height > OFFLINE_FROM + 1]
    assert all({b.miner for b in ts.blocks} == {MINER_A} for ts in late)


def test_null_rounds_are_epochs_the_online_miner_lost(dc: DevChain) -> None:
    """Each null round is an epoch where t01000's election proof earns nothing (recomputed here from the
    tipset below it), and the next block carries the beacon entries of the null epochs too."""
    assert len(dc.null_rounds) >= 2
    chain = tipsets(dc)
    for epoch in dc.null_rounds:
        base = max((ts for ts in chain if ts.height < epoch), key=lambda ts: ts.height)
        mbase = mining_base(dc.sm, dc.beacon, MINER_A, base, epoch)
        assert mbase is not None and mbase.eligible
        vrf = compute_vrf(
            dc.miner(MINER_A).worker_key, election_randomness(mbase.beacon_base, MINER_A, epoch)
        )
        assert win_count(vrf, mbase.miner_power, mbase.network_power) == 0
        after = min((ts for ts in chain if ts.height > epoch), key=lambda ts: ts.height)
        entries = after.blocks[0].beacon_entries
        assert [e.round for e in entries] == [
            h + MOCK_ROUND_OFFSET for h in range(base.height + 1, after.height + 1)
        ]
        assert all(e.data == mock_beacon_data(e.round) for e in entries)
        assert entries == beacon_entries_for_block(dc.beacon, after.height, base.height)


def test_messages_applied_once_though_both_blocks_carry_them(dc: DevChain) -> None:
    chain = tipsets(dc)
    doubled = [ts for ts in chain if len(ts.blocks) == 2 and dc.chain.messages_for_block(ts.blocks[0])[1]]
    assert doubled, "a two-block tipset carrying transfers"
    for ts in doubled:
        carried = [dc.chain.messages_for_block(b) for b in ts.blocks]
        assert carried[0] == carried[1]
        applied = dc.sm.messages_for_tipset(ts)
        assert len(applied) == len(carried[0][0]) + len(carried[0][1])
        assert len(dc.sm.state_of(ts).receipts) == len(applied)
    sent_rounds = len([h for h in range(0, HEIGHT, 5)])
    assert dc.nonce(Address.of_key(ALICE)) == 2 * sent_rounds
    assert dc.nonce(BOB_ADDR) == sent_rounds
    for ts in chain[1:]:
        assert all(r.exit_code == 0 for r in dc.sm.state_of(ts).receipts)


def test_window_posts_keep_both_miners_powered(dc: DevChain) -> None:
    proven = {(miner, deadline) for _, miner, deadline in dc.posts}
    assert {miner for miner, _ in proven} == {MINER_A, MINER_B}
    for miner in (MINER_A, MINER_B):
        assert dc.sm.miner_faults(miner, dc.head).is_empty()
        power = dc.sm.miner_power(miner, dc.head)
        assert power.miner.raw_byte_power == 2 * 2048 and power.has_min_power


def test_block_rewards_reach_the_miners(dc: DevChain) -> None:
    tree = dc.sm.tree(dc.sm.state_of(dc.head).state_root)
    genesis = dc.sm.tree(dc.genesis_ts.parent_state_root)
    for miner in (MINER_A, MINER_B):
        after, before = tree.get_actor(miner), genesis.get_actor(miner)
        assert after is not None and before is not None
        assert after.balance > before.balance
    reward_after = tree.get_actor(builtin.REWARD_ACTOR_ADDR)
    reward_before = genesis.get_actor(builtin.REWARD_ACTOR_ADDR)
    assert reward_after is not None and reward_before is not None
    assert reward_after.balance < reward_before.balance


def test_a_chain_resumes_after_more_null_rounds_than_the_lookback() -> None:
    """A devnet stopped for longer than chain_finality epochs: its next block, past the gap, is
    produced and valid (the election looks back to the base tipset itself)."""
    chain = DevChain.new()
    chain.next_tipset()
    base = chain.head
    gap_start = base.height + chain.policy.chain_finality + 2
    block = next(
        b
        for epoch in range(gap_start, gap_start + 20)
        for miner in (MINER_A, MINER_B)
        if (b := chain.produce(miner, epoch)) is not None
    )
    assert chain.sm.lookback(base, block.header.height) == (base, chain.sm.state_of(base).state_root)
    ts = chain.apply([block])
    assert len(ts.blocks[0].beacon_entries) == ts.height - base.height
    assert chain.next_tipset().height > ts.height
