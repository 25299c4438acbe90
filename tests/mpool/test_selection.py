"""Selection: chains per sender, packing, and on random pools a selection that is always a valid block."""

import itertools
import random

import pytest

from chain.mpool.errors import MpoolError
from chain.mpool.selection import MsgChain, gas_perf, gas_reward, message_chains
from chain.state.tree import Actor
from chain.vm.gas import PRICES
from tests.chain.vm_helpers import FIL
from tests.mpool.harness import make_harness

BLOCK_GAS = 10_000_000_000


def test_gas_reward_is_the_capped_premium_and_penalises_underpayment() -> None:
    h = make_harness()
    paying = h.message(0, nonce=0, fee_cap=1_000, premium=300, gas_limit=1_000_000)
    assert gas_reward(paying, base_fee=100) == 300 * 1_000_000
    assert gas_reward(paying, base_fee=800) == 200 * 1_000_000  # capped at fee cap - base fee
    assert gas_reward(paying, base_fee=1_500) == -500 * 1_000_000 * 3
    assert gas_perf(10, 1_000, BLOCK_GAS) == 10 * BLOCK_GAS / 1_000


def test_chains_are_split_so_that_each_outperforms_the_next() -> None:
    h = make_harness()
    premiums = [100, 500, 50, 50, 400, 10]
    msgs = [h.message(0, nonce=n, premium=p) for n, p in enumerate(premiums)]
    actor = h.state.actor_after(h.world.addresses[0], h.genesis)
    chains = message_chains(msgs, actor, 100, lambda m: PRICES.on_chain_message(m.chain_length()), BLOCK_GAS)
    assert [m for c in chains for m in c.msgs] == msgs  # nonce order kept across chains
    for earlier, later in itertools.pairwise(chains):
        assert earlier.gas_perf > later.gas_perf
        assert earlier.next is later
    # Nothing for a sender without an actor; a nonce under the state nonce is skipped, a gap ends it.
    assert message_chains(msgs, None, 100, lambda m: 0, BLOCK_GAS) == []
    assert actor is not None
    later = Actor(actor.code, actor.head, 2, actor.balance)
    skipped = message_chains(msgs, later, 100, lambda m: 0, BLOCK_GAS)
    assert [m.message.nonce for c in skipped for m in c.msgs] == [2, 3, 4, 5]
    gapped = message_chains([msgs[0], msgs[2]], actor, 100, lambda m: 0, BLOCK_GAS)
    assert [m.message.nonce for c in gapped for m in c.msgs] == [0]


def test_trim_drops_the_tail_and_invalidates_what_follows() -> None:
    h = make_harness()
    msgs = [h.message(0, nonce=n, premium=1_000 - 100 * n, fee_cap=2_000) for n in range(4)]
    actor = h.state.actor_after(h.world.addresses[0], h.genesis)
    chains = message_chains(msgs, actor, 100, lambda m: 0, BLOCK_GAS)
    assert len(chains) == 4  # decreasing premiums: one message per chain
    first: MsgChain = chains[0]
    first.msgs.extend(chains[1].msgs)  # make a two-message chain to trim
    first.gas_limit += chains[1].gas_limit
    first.next = chains[2]
    first.trim(first.gas_limit - 1, 10, 100, BLOCK_GAS)
    assert first.msgs == msgs[:1]
    assert not chains[2].valid and not chains[3].valid
    assert chains[2].msgs == [] and first.next is None


@pytest.mark.parametrize("seed", range(12))
def test_random_pools_always_select_a_valid_block(seed: int) -> None:
    rng = random.Random(seed)
    h = make_harness(accounts=7, balance=50 * FIL)
    for sender in range(6):
        nonce = 0
        for _ in range(rng.randrange(1, 9)):
            nonce += 1 if rng.random() < 0.85 else 3  # now and then a gap
            msg = h.message(
                sender,
                nonce=nonce - 1,
                value=rng.choice([0, FIL, 10 * FIL, 30 * FIL]),
                gas_limit=rng.choice([2_000_000, 50_000_000, 1_500_000_000, 3_500_000_000]),
                fee_cap=rng.choice([100, 150, 2_000]),
                premium=rng.choice([0, 10, 100, 140]),
            )
            try:
                h.pool.add(msg)
            except MpoolError:
                continue  # over the balance or an invalid fee combination: the pool said no
    chosen = h.pool.select(h.genesis)
    assert sum(m.message.gas_limit for m in chosen) <= BLOCK_GAS
    next_nonce: dict[object, int] = {}
    for m in chosen:
        expected = next_nonce.get(m.message.from_, 0)
        assert m.message.nonce == expected
        next_nonce[m.message.from_] = expected + 1
    ts = h.mine(h.genesis, chosen)
    assert [r.exit_code for r in h.receipts[ts.key]] == [0] * len(chosen)
