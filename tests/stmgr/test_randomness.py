"""Randomness from the chain, as Lotus chain/rand at network version >= 14: tickets and beacon entries
over null rounds, the genesis for epochs up to 0, nothing from the future; and the lookback tipset an
election uses."""

import pytest

from chain.consensus.beacon import MOCK_ROUND_OFFSET
from chain.crypto.randomness import DomainSeparationTag, blake2b_256, draw_randomness, mock_beacon_data
from chain.stmgr.randomness import latest_beacon_entry
from chain.types.address import Address
from chain.types.tipset import TipSet
from tests.consensus.devchain import DevChain

MINER = Address.new_id(1000)


@pytest.fixture(scope="module")
def dc() -> DevChain:
    """One miner of two online: null rounds happen (the first ones within 40 epochs)."""
    chain = DevChain.new()
    chain.online = {MINER}
    while len(chain.null_rounds) < 2:
        assert chain.head.height < 60
        chain.next_tipset()
    return chain


def at(dc: DevChain, height: int) -> TipSet:
    ts = dc.chain.get_tipset_by_height(height, dc.head)
    assert ts.height == height
    return ts


def test_chain_randomness_over_null_rounds(dc: DevChain) -> None:
    rand = dc.sm.randomness(dc.head)
    null = dc.null_rounds[0]
    above = dc.chain.get_tipset_by_height(null, dc.head, prev=False)
    below = dc.chain.get_tipset_by_height(null, dc.head, prev=True)
    assert below.height < null < above.height
    # no lookback: a null round draws from the first tipset above it
    assert rand.chain_digest(null) == blake2b_256(above.min_ticket().vrf_proof)
    # a tipset's own epoch draws from its own smallest ticket
    assert rand.chain_digest(below.height) == blake2b_256(below.min_ticket().vrf_proof)
    genesis = dc.genesis_ts
    assert rand.chain_digest(-5) == rand.chain_digest(0) == blake2b_256(genesis.min_ticket().vrf_proof)
    drawn = rand.draw_chain(DomainSeparationTag.TicketProduction, null, b"entropy")
    assert drawn == draw_randomness(
        above.min_ticket().vrf_proof, DomainSeparationTag.TicketProduction, null, b"entropy"
    )
    with pytest.raises(ValueError, match="from the future"):
        rand.chain_digest(dc.head.height + 1)


def test_beacon_randomness(dc: DevChain) -> None:
    rand = dc.sm.randomness(dc.head)
    for epoch in (1, dc.null_rounds[0], dc.head.height):
        entry = rand.beacon_entry(epoch)
        assert entry.round == epoch + MOCK_ROUND_OFFSET and entry.data == mock_beacon_data(entry.round)
        assert rand.beacon_digest(epoch) == blake2b_256(entry.data)
    genesis_entry = dc.genesis.header.beacon_entries[-1]
    assert rand.beacon_entry(0) == rand.beacon_entry(-3) == genesis_entry
    tag = DomainSeparationTag.WindowedPoStChallengeSeed
    assert dc.sm.draw_beacon_randomness(dc.head, tag, 5, b"x") == draw_randomness(
        mock_beacon_data(5 + MOCK_ROUND_OFFSET), tag, 5, b"x"
    )
    assert dc.sm.beacon_entry(dc.head, 5) == rand.beacon_entry(5)
    with pytest.raises(ValueError, match="from the future"):
        rand.beacon_entry(dc.head.height + 1)


def test_latest_beacon_entry(dc: DevChain) -> None:
    head_entries = dc.head.blocks[0].beacon_entries
    assert latest_beacon_entry(dc.chain, dc.head) == head_entries[-1]
    assert latest_beacon_entry(dc.chain, dc.genesis_ts).round == 0


def test_lookback(dc: DevChain) -> None:
    finality = dc.policy.chain_finality
    # early rounds look back to the genesis state (the state after the genesis, read from height 1)
    lookback, state = dc.sm.lookback(dc.head, finality)
    assert lookback == dc.genesis_ts and state == dc.sm.state_of(dc.genesis_ts).state_root
    # later: the tipset at round - finality and the state after it
    round_ = dc.head.height + 1
    lookback, state = dc.sm.lookback(dc.head, round_)
    target = round_ - finality
    assert lookback == dc.chain.get_tipset_by_height(target, dc.head, prev=True)
    after = dc.chain.get_tipset_by_height(target + 1, dc.head)
    assert state == after.parent_state_root == dc.sm.state_of(lookback).state_root
    # on the genesis itself
    assert dc.sm.lookback(dc.genesis_ts, 1)[0] == dc.genesis_ts
    # more null rounds than the lookback: the base itself and the state after it
    first = at(dc, 1)
    assert dc.sm.lookback(first, 1 + finality + 5) == (first, dc.sm.state_of(first).state_root)
