"""Lookback tipsets found from stretches of chain seen before (chain/stmgr/stretch.py) are those the walk
back from the base finds (ChainStore.get_tipset_by_height), over null rounds, multi-block tipsets and
their one-block forks, whatever order the bases come in."""

import random

import pytest

from chain.stmgr.manager import StateManager
from chain.stmgr.stretch import ChainStretches
from chain.types.tipset import TipSet
from tests.consensus.devchain import DevChain


@pytest.fixture(scope="module")
def dc() -> DevChain:
    """Two miners, then one of them alone (null rounds), then both again: well past finality."""
    chain = DevChain.new()
    finality = chain.policy.chain_finality
    chain.advance(finality // 2)
    chain.online = {chain.miners[0].id_address}
    while chain.head.height < 2 * finality:
        chain.next_tipset()
    chain.online = {m.id_address for m in chain.miners}
    chain.advance(finality)
    assert chain.null_rounds and any(len(ts.blocks) > 1 for ts in chain_of(chain))
    return chain


def chain_of(dc: DevChain) -> list[TipSet]:
    out = [dc.head]
    while out[-1].height > 0:
        out.append(dc.chain.load_tipset(out[-1].parents))
    return out[::-1]


def walked(dc: DevChain, base: TipSet, round_: int) -> tuple[TipSet, object] | None:
    """The lookback as found by walking back from base (the computation the stretches stand for)."""
    finality = dc.policy.chain_finality
    target = round_ - finality if round_ > finality else 0
    if target >= base.height:
        return None
    after = dc.chain.get_tipset_by_height(target + 1, base, prev=False)
    return dc.chain.load_tipset(after.parents), after.parent_state_root


def bases(dc: DevChain) -> list[TipSet]:
    """Every tipset of the chain, and each block of a multi-block tipset alone (a fork's tipset)."""
    out = []
    for ts in chain_of(dc):
        out.append(ts)
        if len(ts.blocks) > 1:
            out += [TipSet((b,)) for b in ts.blocks]
    return out


def check_all(dc: DevChain, sm: StateManager, order: list[TipSet]) -> None:
    finality = dc.policy.chain_finality
    for base in order:
        for round_ in range(base.height + 1, base.height + finality + 3):
            assert sm.lookback_without_execution(base, round_) == walked(dc, base, round_), (base, round_)


def fresh(dc: DevChain) -> StateManager:
    return StateManager(dc.chain, policy=dc.policy, beacon=dc.beacon)


def test_in_chain_order_as_a_sync_asks(dc: DevChain) -> None:
    check_all(dc, fresh(dc), bases(dc))


def test_in_any_order(dc: DevChain) -> None:
    order = bases(dc)
    random.Random(7).shuffle(order)
    check_all(dc, fresh(dc), order)
    # Twice each, so that stretches built from shuffled bases get asked too.
    check_all(dc, fresh(dc), [ts for ts in order for _ in range(2)])


def test_a_stretch_answers_once_it_reaches_back() -> None:
    dc = DevChain.new()
    finality = dc.policy.chain_finality
    dc.advance(2 * finality + 5)
    stretches = ChainStretches(finality)
    tipsets = chain_of(dc)
    answered = 0
    for base in tipsets[1:]:
        found = stretches.first_above(base, max(base.height - finality, 1))
        if found is not None:
            answered += 1
            after, parent = found
            assert after == dc.chain.get_tipset_by_height(after.height, base)
            assert after.parents == parent.key and parent.height < max(base.height - finality, 1)
    # The first base starts the stretch; from finality + 1 tipsets on it holds every answer.
    assert answered >= len(tipsets) - finality - 3


def test_bounded_stretches_still_answer_as_the_walk() -> None:
    dc = DevChain.new()
    dc.advance(30)
    tipsets = chain_of(dc)
    stretches = ChainStretches(finality=3, stretches=2)
    for k, base in enumerate(tipsets[1:], start=1):
        for height in range(max(1, base.height - 4), base.height + 1):
            found = stretches.first_above(base, height)
            if found is not None:
                first = next(ts for ts in tipsets[: k + 1] if ts.height >= height)
                assert found == (first, dc.chain.load_tipset(first.parents))
        assert len(stretches._stretches) <= 2
        with pytest.raises(ValueError, match="above the base"):
            stretches.first_above(base, base.height + 1)
        assert all(len(s.tipsets) <= 8 for s in stretches._stretches)
