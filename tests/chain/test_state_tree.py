"""The state tree: layout, caching and flush, ID resolution through the init actor, snapshots."""

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.encoding import dagcbor
from chain.encoding.bigint import encode_bigint
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.state.hamt import Hamt
from chain.state.init_state import AddressAlreadyMapped, InitState
from chain.state.tree import (
    EMPTY_OBJECT_CID,
    INIT_ACTOR_ID_ADDRESS,
    STATE_TREE_VERSION,
    Actor,
    StateRoot,
    StateTree,
    StateTreeError,
)
from chain.store.blockstore import MemoryBlockstore, get_cbor, put_cbor
from chain.types.address import Address
from tests.chain.counting_store import CountingStore

CODE = CID.hash_of(b"some code", codec=0x55)
KEY = Address.new_secp256k1(b"\x04" + bytes(64))


def actor(balance: int = 0, nonce: int = 0) -> Actor:
    return Actor(CODE, EMPTY_OBJECT_CID, nonce, balance)


def tree_with_init(store: MemoryBlockstore | None = None) -> StateTree:
    store = store or MemoryBlockstore()
    tree = StateTree.new(store)
    head = put_cbor(store, InitState.new(store, "test").to_cbor())
    tree.set_actor(INIT_ACTOR_ID_ADDRESS, Actor(CODE, head, 0, 0))
    return tree


def test_layout_is_lotus_state_tree_v5() -> None:
    store = MemoryBlockstore()
    tree = StateTree.new(store)
    tree.set_actor(Address.new_id(7), Actor(CODE, EMPTY_OBJECT_CID, 3, 10**18, None))
    root = tree.flush()
    raw = get_cbor(store, root)
    assert raw[0] == STATE_TREE_VERSION == 5
    assert raw[2] == CID.hash_of(b"\x80")  # StateInfo0{} is the empty array
    assert store.get(raw[2]) == b"\x80"
    actors = Hamt.load(store, raw[1], 5)
    assert actors.get(Address.new_id(7).to_bytes()) == [
        CODE,
        EMPTY_OBJECT_CID,
        3,
        encode_bigint(10**18),
        None,
    ]
    assert StateRoot.from_cbor(raw) == StateRoot(5, raw[1], raw[2])


def test_actor_cbor_round_trip_and_errors() -> None:
    delegated = Address.new_delegated(10, b"\x01" * 20)
    a = Actor(CODE, EMPTY_OBJECT_CID, 1, 2, delegated)
    assert Actor.from_cbor(dagcbor.decode(dagcbor.encode(a.to_cbor()))) == a
    with pytest.raises(DecodeError, match="Actor"):
        Actor.from_cbor([CODE, EMPTY_OBJECT_CID, 1, b""])
    with pytest.raises(DecodeError, match="Nonce"):
        Actor.from_cbor([CODE, EMPTY_OBJECT_CID, -1, b"", None])


@settings(max_examples=20, deadline=None)
@given(st.dictionaries(st.integers(0, 10_000), st.integers(0, 10**24), max_size=30), st.randoms())
def test_root_does_not_depend_on_write_order(balances: dict[int, int], rnd: Any) -> None:
    items = list(balances.items())
    roots = []
    for _ in range(2):
        rnd.shuffle(items)
        tree = StateTree.new(MemoryBlockstore())
        for actor_id, balance in items:
            tree.set_actor(Address.new_id(actor_id), actor(balance))
        roots.append(tree.flush())
    assert roots[0] == roots[1]


def test_flush_writes_only_what_changed_and_load_reads_back() -> None:
    store = CountingStore()
    tree = StateTree.new(store)
    for i in range(200):
        tree.set_actor(Address.new_id(i), actor(i))
    root = tree.flush()
    assert tree.flush() == root  # nothing dirty: no new root
    store.writes = 0
    tree.set_actor(Address.new_id(5), actor(555))
    root2 = tree.flush()
    # One actor changed: the root block, one path of HAMT nodes, nothing else.
    assert 2 <= store.writes <= 4
    loaded = StateTree.load(store, root2)
    assert loaded.get_actor(Address.new_id(5)) == actor(555)
    assert loaded.get_actor(Address.new_id(6)) == actor(6)
    assert loaded.get_actor(Address.new_id(999)) is None
    assert StateTree.load(store, root).get_actor(Address.new_id(5)) == actor(5)
    assert sorted(a.id for a, _ in loaded.actors()) == list(range(200))


@pytest.mark.parametrize(
    "bad", [[CODE, EMPTY_OBJECT_CID, 0], [CODE, EMPTY_OBJECT_CID, -1, b"", None], "actor"]
)
def test_a_malformed_actor_is_reported_with_its_address(bad: Any) -> None:
    store = MemoryBlockstore()
    hamt = Hamt.new(store)
    hamt.set(Address.new_id(1234).to_bytes(), bad)
    root = put_cbor(store, [STATE_TREE_VERSION, hamt.flush(), put_cbor(store, [])])
    with pytest.raises(DecodeError, match=f"^Actor {Address.new_id(1234)}[:.]"):
        StateTree.load(store, root).get_actor(Address.new_id(1234))
    with pytest.raises(DecodeError, match=f"^Actor {Address.new_id(1234)}[:.]"):
        list(StateTree.load(store, root).actors())


def test_delete_actor() -> None:
    tree = StateTree.new(MemoryBlockstore())
    tree.set_actor(Address.new_id(1), actor())
    root_before = tree.flush()
    tree.set_actor(Address.new_id(2), actor())
    tree.flush()
    assert tree.delete_actor(Address.new_id(2))
    assert not tree.delete_actor(Address.new_id(2))
    assert tree.get_actor(Address.new_id(2)) is None
    assert tree.flush() == root_before


def test_load_rejects_other_versions_and_bad_roots() -> None:
    store = MemoryBlockstore()
    info = put_cbor(store, [])
    hamt_root = Hamt.new(store).flush()
    old = put_cbor(store, [4, hamt_root, info])
    with pytest.raises(DecodeError, match="version 4"):
        StateTree.load(store, old)
    with pytest.raises(DecodeError, match="StateRoot"):
        StateTree.load(store, put_cbor(store, [5, hamt_root]))


def test_ids_resolve_through_the_init_actor() -> None:
    tree = tree_with_init()
    assert tree.lookup_id(KEY) is None
    assert tree.get_actor(KEY) is None
    id_address = tree.register_new_address(KEY)
    assert id_address == Address.new_id(100)
    tree.set_actor(id_address, actor(9))
    assert tree.lookup_id(KEY) == id_address
    assert tree.get_actor(KEY) == actor(9)
    other = Address.new_actor(b"x")
    assert tree.register_new_address(other) == Address.new_id(101)
    with pytest.raises(AddressAlreadyMapped):
        tree.register_new_address(KEY)
    # A fresh tree over the flushed state resolves through the stored map.
    root = tree.flush()
    loaded = StateTree.load(tree.store, root)
    assert loaded.lookup_id(other) == Address.new_id(101)
    assert loaded.lookup_id(Address.new_id(5)) == Address.new_id(5)


def test_set_actor_needs_a_resolvable_address() -> None:
    tree = tree_with_init()
    with pytest.raises(StateTreeError, match="no ID"):
        tree.set_actor(KEY, actor())
    bare = StateTree.new(MemoryBlockstore())
    with pytest.raises(StateTreeError, match="no init actor"):
        bare.lookup_id(KEY)


def test_snapshots_revert_and_merge() -> None:
    tree = tree_with_init()
    a, b = Address.new_id(1000), Address.new_id(1001)
    tree.set_actor(a, actor(1))
    tree.snapshot()
    tree.set_actor(a, actor(2))
    tree.snapshot()
    tree.set_actor(b, actor(3))
    new_id = tree.register_new_address(KEY)
    tree.clear_snapshot()  # keep the inner changes, revertible by the outer snapshot
    assert tree.snapshot_depth == 1
    assert tree.get_actor(b) == actor(3) and tree.lookup_id(KEY) == new_id
    tree.snapshot()
    tree.set_actor(a, actor(4))
    tree.revert()
    assert tree.get_actor(a) == actor(2)
    tree.revert()
    assert tree.snapshot_depth == 0
    assert tree.get_actor(a) == actor(1)
    assert tree.get_actor(b) is None
    assert tree.lookup_id(KEY) is None  # the ID mapping went with the init actor's state
    assert tree.register_new_address(KEY) == new_id  # and the ID is free again


def test_revert_of_a_deletion_and_of_a_cached_resolution() -> None:
    tree = tree_with_init()
    id_address = tree.register_new_address(KEY)
    tree.set_actor(id_address, actor(5))
    tree.flush()
    fresh = StateTree.load(tree.store, tree.flush())
    fresh.snapshot()
    assert fresh.delete_actor(KEY)
    assert fresh.get_actor(id_address) is None
    fresh.revert()
    assert fresh.get_actor(KEY) == actor(5)


def test_snapshot_misuse() -> None:
    tree = StateTree.new(MemoryBlockstore())
    with pytest.raises(StateTreeError):
        tree.revert()
    with pytest.raises(StateTreeError):
        tree.clear_snapshot()
    tree.snapshot()
    with pytest.raises(StateTreeError, match="snapshot open"):
        tree.flush()
