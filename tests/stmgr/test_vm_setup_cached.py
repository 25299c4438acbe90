"""Values the VM setup and block validation take from caches (chain/vm/circulating.py's locked funds
from the decoded states in the store's block cache, StateManager.read_tree's shared trees): the same as
computing them from a store without a cache, and never stale for a tree changed since it was opened."""

import threading

from actors import builtin
from actors.market.state import MarketState
from actors.power.state import PowerState
from chain.state.tree import StateTree
from chain.vm.circulating import circulating_supply, locked_funds
from tests.consensus.devchain import DevChain


def test_locked_funds_from_decoded_states_equal_the_raw_fields() -> None:
    dc = DevChain.new()
    dc.advance(4)  # the power and market actors' crons wrote their states as declared types
    cache = dc.cache
    plain = dc.uncached_copy()
    root = dc.head.parent_state_root
    for address, state_type in (
        (builtin.STORAGE_POWER_ACTOR_ADDR, PowerState),
        (builtin.STORAGE_MARKET_ACTOR_ADDR, MarketState),
    ):
        actor = dc.sm.tree(root).get_actor(address)
        assert actor is not None
        data = dc.store.get(actor.head)
        assert data is not None
        assert isinstance(cache.get(state_type.from_cbor, actor.head, data), state_type)
    tree = dc.sm.tree(root)
    assert locked_funds(tree) > 0  # the genesis miner's pledge
    assert locked_funds(tree) == locked_funds(StateTree.load(plain, root))
    assert circulating_supply(dc.sm.tree(root)) == circulating_supply(StateTree.load(plain, root))


def test_read_tree_is_shared_per_thread_and_reopened_when_changed() -> None:
    dc = DevChain.new()
    dc.advance(2)
    root = dc.head.parent_state_root
    shared = dc.sm.read_tree(root)
    assert dc.sm.read_tree(root) is shared
    assert dc.sm.read_parent_tree(dc.head) is shared
    other: list[StateTree] = []
    thread = threading.Thread(target=lambda: other.append(dc.sm.read_tree(root)))
    thread.start()
    thread.join(timeout=10)
    assert other and other[0] is not shared  # each thread its own: a StateTree is not thread-safe
    fresh = dc.sm.tree(root)
    assert fresh is not shared
    assert [a for a in shared.actors()] == [a for a in fresh.actors()]
    # A reader that changed it after all: the next reader gets the state at root again.
    shared.delete_actor(builtin.STORAGE_POWER_ACTOR_ADDR)
    again = dc.sm.read_tree(root)
    assert again is not shared
    assert again.get_actor(builtin.STORAGE_POWER_ACTOR_ADDR) is not None
