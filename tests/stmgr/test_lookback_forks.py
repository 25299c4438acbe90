"""Lookbacks (StateManager.lookback_without_execution, answered from stretches of chain seen before,
chain/stmgr/stretch.py) on two forks that part well below the lookback height: every answer is the one
on the base's own chain, found by walking its parents, whatever the head is and in whatever order the
two forks' bases come (a sync of one fork then a reorg onto the other, gossip near both heads, a
partition healing, bases from several threads), over each fork's own null rounds."""

import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

import pytest

from chain.consensus.weight import weight_of
from chain.encoding.cid import CID
from chain.stmgr.manager import LOOKBACK_CACHE_SIZE, StateManager
from chain.stmgr.stretch import ChainStretches
from chain.store.lru import Lru
from chain.types.tipset import TipSet
from tests.consensus.devchain import DevChain

FORK_AT = 4  # tipsets in common above the genesis


@dataclass(frozen=True)
class Forks:
    dc: DevChain
    a: list[TipSet]  # above the fork point, mined by the first miner alone
    b: list[TipSet]  # above it, by the second miner alone, then the first (heavier: longer)

    def head_on(self, fork: list[TipSet]) -> None:
        self.dc.chain.set_head(fork[-1], weight_of(self.dc.store, fork[-1]))


@pytest.fixture(scope="module")
def forks() -> Forks:
    dc = DevChain.new()
    finality = dc.policy.chain_finality
    dc.advance(FORK_AT)
    fork_point = dc.head
    first, second = (m.id_address for m in dc.miners)
    dc.online = {first}
    a = dc.advance(finality + 10)
    dc.chain.set_head(fork_point, weight_of(dc.store, fork_point))
    dc.online = {second}
    b = dc.advance(6)
    dc.online = {first}  # a chain of its own from the fork point: other keys, states and null rounds
    b += dc.advance(finality + 8)
    forks = Forks(dc, a, b)
    # The forks differ where lookbacks from their upper parts land, null rounds included.
    assert {ts.height for ts in a} != {ts.height for ts in b}
    for fork in (a, b):  # each with null rounds of its own
        assert any(child.height - parent.height > 1 for parent, child in pairwise(fork))
    assert lookback_walked(dc, a[-1], a[-1].height + 1) != lookback_walked(dc, b[-1], b[-1].height + 1)
    assert a[-1].height - finality > fork_point.height and b[-1].height - finality > fork_point.height
    return forks


def lookback_walked(dc: DevChain, base: TipSet, round_: int) -> tuple[TipSet, CID] | None:
    """The definition: the first tipset above round_ - finality found by walking base's parents (no height
    index, no head), as (its parent, its parent state root)."""
    finality = dc.policy.chain_finality
    target = round_ - finality if round_ > finality else 0
    if target >= base.height:
        return None
    after, parent = base, dc.chain.load_tipset(base.parents)
    while parent.height > target:
        after, parent = parent, dc.chain.load_tipset(parent.parents)
    return parent, after.parent_state_root


def rounds(dc: DevChain, base: TipSet) -> range:
    """The rounds a block on base can be at, up to where base's state itself would be the lookback."""
    return range(base.height + 1, base.height + dc.policy.chain_finality + 3)


def check(dc: DevChain, sm: StateManager, bases: Iterable[TipSet]) -> int:
    """Every lookback from the bases as the walk finds it; how many had an answer."""
    answered = 0
    for base in bases:
        for round_ in rounds(dc, base):
            found = sm.lookback_without_execution(base, round_)
            assert found == lookback_walked(dc, base, round_), (base.height, round_)
            answered += found is not None
    return answered


def fresh(dc: DevChain) -> StateManager:
    return StateManager(dc.chain, policy=dc.policy, beacon=dc.beacon)


def forget_answers(sm: StateManager) -> None:
    """Drop the remembered answers, so that the stretches (kept) answer again."""
    sm._lookbacks = Lru(LOOKBACK_CACHE_SIZE)


def test_a_sync_of_one_fork_then_a_reorg_onto_the_other(forks: Forks) -> None:
    dc, sm = forks.dc, fresh(forks.dc)
    forks.head_on(forks.a)
    assert check(dc, sm, forks.a)
    # The heavier fork arrives: validated upwards from the fork point while a is still the head, then
    # made the head; the bases of a are then off the heaviest chain, and asked again.
    check(dc, sm, forks.b[: len(forks.b) // 2])
    forks.head_on(forks.b)
    check(dc, sm, forks.b[len(forks.b) // 2 :])
    check(dc, sm, forks.a)
    # And back (another head switch), from a manager whose cache of answers is cold but whose stretches
    # already hold both forks.
    forks.head_on(forks.a)
    forget_answers(sm)
    check(dc, sm, forks.b + forks.a)


def test_a_sync_starting_above_the_fork_point(forks: Forks) -> None:
    """Stretches that begin mid-fork (a node started from a snapshot): heights below them are walked."""
    dc, sm = forks.dc, fresh(forks.dc)
    forks.head_on(forks.a)
    check(dc, sm, forks.b[10:])
    check(dc, sm, forks.a[7:])
    check(dc, sm, forks.b[3:])


def test_gossip_near_both_heads(forks: Forks) -> None:
    """Two sides of a partition mining on: blocks of both arrive in height order, interleaved, while
    the head stays on one of them."""
    dc, sm = forks.dc, fresh(forks.dc)
    both = sorted(forks.a + forks.b, key=lambda ts: ts.height)
    for head in (forks.a, forks.b):
        forks.head_on(head)
        check(dc, sm, both)


def test_bases_of_both_forks_in_any_order_with_few_stretches(forks: Forks) -> None:
    dc, sm = forks.dc, fresh(forks.dc)
    # One-block tipsets of each fork (siblings of nothing here, but unseen keys) and the forks in a
    # random order, asked twice each, through managers keeping one or two stretches.
    order = forks.a + forks.b
    random.Random(10).shuffle(order)
    for kept in (1, 2):
        sm = fresh(dc)
        sm._stretches = ChainStretches(dc.policy.chain_finality, stretches=kept)
        forks.head_on(forks.b)
        check(dc, sm, [ts for ts in order for _ in range(2)])
        forget_answers(sm)
        check(dc, sm, sorted(order, key=lambda ts: ts.height))


def test_from_several_threads_while_the_head_switches(forks: Forks) -> None:
    dc, sm = forks.dc, fresh(forks.dc)
    failures: list[BaseException] = []

    def ask(fork: list[TipSet]) -> None:
        try:
            for _ in range(3):
                check(dc, sm, fork)
                forget_answers(sm)
        except BaseException as exc:  # handed to the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=ask, args=(fork,)) for fork in (forks.a, forks.b, forks.a[::-1])]
    for thread in threads:
        thread.start()
    for k in range(20):
        forks.head_on(forks.a if k % 2 else forks.b)
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
