"""The message pool over the real state manager (chain/mpool/provider.py StateAccess and
GasStateAccess): messages pushed to the pool are selected into produced blocks, validated, applied,
and pruned from the pool when the head moves on."""

from dataclasses import replace

from chain.mpool.gas_estimate import gas_estimate_gas_limit
from chain.mpool.pool import MessagePool
from chain.types.address import Address
from chain.types.message import SignedMessage
from chain.vm.gas import PRICES
from tests.consensus.devchain import ALICE, BOB, CAROL, DevChain

ALICE_ADDR, BOB_ADDR, CAROL_ADDR = Address.of_key(ALICE), Address.of_key(BOB), Address.of_key(CAROL)


def test_state_access_reads_the_state_after_a_tipset() -> None:
    dc = DevChain.new()
    first = dc.next_tipset(dc.transfers(ALICE, CAROL_ADDR, 2))
    sm = dc.sm
    after = sm.actor_after(ALICE_ADDR, first)
    assert after is not None and after.nonce == 2  # the transfers of `first` are in
    assert sm.get_actor(ALICE_ADDR, first).nonce == 0  # the query at `first` reads its parent state
    alice_id = sm.lookup_id(ALICE_ADDR, first)
    assert sm.resolve_to_key(alice_id, first) == ALICE_ADDR
    assert sm.resolve_to_key(BOB_ADDR, first) == BOB_ADDR
    assert sm.resolve_to_key(Address.new_id(1000), first) is None  # a miner has no key
    assert sm.resolve_to_key(Address.new_id(9999), first) is None
    child = dc.next_tipset()
    assert sm.base_fee(first) == child.blocks[0].parent_base_fee


def test_pool_to_block_to_state() -> None:
    dc = DevChain.new()
    dc.auto_post = False
    pool = MessagePool(dc.chain, dc.sm, dc.head, policy=dc.policy)
    dc.chain.on_head_change(pool.head_change)
    pushed = [*dc.transfers(ALICE, CAROL_ADDR, 3, value=5), *dc.transfers(BOB, CAROL_ADDR, 2, value=6)]
    for msg in pushed:
        pool.push(msg)
    assert pool.get_nonce(ALICE_ADDR) == 3 and pool.size == 5
    selected = pool.select(dc.head)
    assert sorted(m.cid() for m in selected) == sorted(m.cid() for m in pushed)
    ts = dc.next_tipset(selected)
    applied = dc.sm.messages_for_tipset(ts)
    assert {m.cid() for m in applied} == {
        m.message.cid() if m.signature.type == 2 else m.cid() for m in pushed
    }
    dc.next_tipset()
    assert pool.size == 0  # included messages left the pool
    assert dc.sm.actor_after(CAROL_ADDR, dc.head).balance > 0  # type: ignore[union-attr]


def test_gas_estimate_runs_on_the_state_manager() -> None:
    dc = DevChain.new()
    pool = MessagePool(dc.chain, dc.sm, dc.head, policy=dc.policy)
    (msg,) = dc.transfers(ALICE, CAROL_ADDR, 1)
    used = gas_estimate_gas_limit(pool, dc.sm, msg.message, dc.head)
    assert 0 < used <= msg.message.gas_limit
    # what applying it for real uses, but for its on-chain size: the estimate runs it with the block
    # gas limit and a zero fee cap and premium, a few bytes apart
    ts = dc.next_tipset([msg])
    real = dc.sm.state_of(ts).receipts[dc.sm.messages_for_tipset(ts).index(msg)].gas_used
    probe = replace(msg.message, gas_limit=dc.policy.block_gas_limit, gas_fee_cap=0, gas_premium=0)
    size_gap = msg.chain_length() - SignedMessage(probe, msg.signature).chain_length()
    assert real - used == PRICES.on_chain_message(size_gap) - PRICES.on_chain_message(0)
