"""A miner's claim, power and Winning PoSt sectors are remembered per state root in the store's block
cache (chain/stmgr/miners.py), claims also per claims table: the same answers as computing them from a
store without a cache, asked again without reading the state, and never for a tree changed since it
was loaded."""

from dataclasses import replace

import pytest

from actors import builtin
from actors.power.state import Claim, ClaimsTable, PowerState
from chain.encoding.cid import CID
from chain.state.tree import StateTree
from chain.stmgr.actors import ActorNotFound, StateQueryError
from chain.stmgr.miners import (
    miner_claim,
    miner_info,
    miner_power,
    miner_sectors,
    miner_state,
    power_state,
    sectors_for_winning_post,
    winning_post_candidates,
)
from chain.store.blockstore import get_decoded, put_declared
from chain.types.address import Address
from tests.consensus.devchain import ALICE, DevChain


def test_claim_power_and_sectors_are_remembered_per_state_root() -> None:
    dc = DevChain.new()
    dc.advance(3)
    root = dc.head.parent_state_root
    plain = dc.uncached_copy()
    cache = dc.cache
    randomness = bytes(range(32))
    for miner in [m.id_address for m in dc.miners]:
        expected = (
            miner_claim(StateTree.load(plain, root), miner),
            miner_power(StateTree.load(plain, root), dc.policy, miner),
            sectors_for_winning_post(StateTree.load(plain, root), miner, randomness),
        )
        for _ in range(2):  # computed, then remembered
            tree = dc.sm.tree(root)
            found = (
                miner_claim(tree, miner),
                miner_power(tree, dc.policy, miner),
                sectors_for_winning_post(tree, miner, randomness),
            )
            assert found == expected
        assert cache.derived(("miner-claim", miner), root) is not None
    # An account has no claim: a remembered None is still None.
    account = dc.sm.tree(root).lookup_id(Address.of_key(ALICE))
    assert account is not None
    for _ in range(2):
        assert miner_claim(dc.sm.tree(root), account) is None
        assert miner_power(dc.sm.tree(root), dc.policy, account).miner.quality_adj_power == 0
    # The consensus minimum is part of what is remembered: another policy computes again.
    strict = replace(dc.policy, consensus_miner_min_power=1 << 60, consensus_miner_min_miners=0)
    miner = dc.miners[0].id_address
    assert miner_power(dc.sm.tree(root), dc.policy, miner).has_min_power
    assert not miner_power(dc.sm.tree(root), strict, miner).has_min_power


def test_a_changed_tree_is_not_answered_from_what_its_root_remembers() -> None:
    dc = DevChain.new()
    root = dc.head.parent_state_root
    miner = dc.miners[0].id_address
    tree = dc.sm.tree(root)
    assert miner_claim(tree, miner) is not None
    assert miner_power(tree, dc.policy, miner).miner.quality_adj_power > 0
    tree.delete_actor(builtin.STORAGE_POWER_ACTOR_ADDR)
    assert tree.root is None
    with pytest.raises(ActorNotFound):
        miner_claim(tree, miner)
    with pytest.raises(ActorNotFound):
        miner_power(tree, dc.policy, miner)
    assert miner_claim(dc.sm.tree(root), miner) is not None


def test_winning_post_candidates_are_shared_by_states_with_the_same_deadlines() -> None:
    # Remembered by the miner's Deadlines and MinerInfo blocks: the states of consecutive tipsets
    # (different roots) share them, and they equal what a store without a cache computes.
    dc = DevChain.new()
    dc.advance(6)
    plain = dc.uncached_copy()
    cache = dc.cache
    roots = [ts.parent_state_root for ts in dc.down_to_genesis()]
    assert len(set(roots)) > 1
    for miner in [m.id_address for m in dc.miners]:
        deadlines = set()
        for root in roots:
            expected = winning_post_candidates(StateTree.load(plain, root), miner)
            assert expected is not None and expected.active
            assert winning_post_candidates(dc.sm.tree(root), miner) == expected
            state = miner_state(dc.sm.tree(root), miner)
            deadlines.add(state.deadlines)
            found = cache.derived(("winning-post-candidates", expected.miner_id, state.info), state.deadlines)
            assert found == expected
        assert len(deadlines) < len(roots)  # some states shared a remembered answer


def _with_claim(dc: DevChain, root: CID, miner: Address, claim: Claim) -> CID:
    """State surgery in dc's store: root's state with the miner's claim replaced (a new claims table)."""
    tree = dc.sm.tree(root)
    power = tree.get_actor(builtin.STORAGE_POWER_ACTOR_ADDR)
    assert power is not None
    state = get_decoded(dc.store, power.head, PowerState.from_cbor)
    claims = ClaimsTable.load(dc.store, state.claims)
    claims.set(miner, claim)
    head = put_declared(dc.store, replace(state, claims=claims.flush()))
    tree.set_actor(builtin.STORAGE_POWER_ACTOR_ADDR, replace(power, head=head))
    return tree.flush()


def test_claims_are_shared_by_states_with_the_same_claims_table() -> None:
    # Remembered by the claims table's root too: consecutive states (different roots, as cron changes
    # the power actor's state each epoch) find a claim read in another; the answers, claims changed by
    # surgery included, equal what a store without a cache computes.
    dc = DevChain.new()
    dc.advance(6)
    roots = [ts.parent_state_root for ts in dc.down_to_genesis()]
    miners = [m.id_address for m in dc.miners]
    first = miners[0]
    changed = _with_claim(dc, roots[0], first, Claim(0, 1 << 40, 3 << 40))
    gone = _with_claim(dc, roots[0], first, Claim(0, 0, 0))
    plain = dc.uncached_copy()
    account = dc.sm.tree(roots[0]).lookup_id(Address.of_key(ALICE))
    assert account is not None
    tables = set()
    for root in [*roots, changed, gone]:
        for who in [*miners, account]:
            for policy in (dc.policy, replace(dc.policy, consensus_miner_min_power=1 << 41)):
                expected = (
                    miner_claim(StateTree.load(plain, root), who),
                    miner_power(StateTree.load(plain, root), policy, who),
                )
                for _ in range(2):
                    found = (miner_claim(dc.sm.tree(root), who), miner_power(dc.sm.tree(root), policy, who))
                    assert found == expected, (root, who)
        tables.add(power_state(dc.sm.tree(root)).claims)
        claim = dc.cache.derived(("claims-table-entry", first), power_state(dc.sm.tree(root)).claims)
        assert claim is not None
    assert len(tables) < len(roots)  # states shared a claims table
    assert miner_claim(dc.sm.tree(changed), first) == Claim(0, 1 << 40, 3 << 40)
    assert not miner_power(dc.sm.tree(gone), dc.policy, first).has_min_power


def test_a_failed_read_names_what_and_the_miner() -> None:
    # The miner's string form is made only for the message: the messages are the ones made before.
    dc = DevChain.new()
    plain = dc.uncached_copy()
    root = dc.head.parent_state_root
    miner = dc.miners[0].id_address
    state = miner_state(StateTree.load(plain, root), miner)
    plain.delete(state.info)
    plain.delete(state.sectors)
    with pytest.raises(StateQueryError, match=f"^info of miner {miner}: "):
        miner_info(StateTree.load(plain, root), miner)
    with pytest.raises(StateQueryError, match=f"^sectors of {miner}: "):
        miner_sectors(StateTree.load(plain, root), miner)
