"""state_of: computed once, cached (bounded), persisted in the repo's LevelDB so a restarted node does
not execute the chain again; the open state tree gives the same roots as loading every state from its
root; failures are not cached; one writer, concurrent callers."""

import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from chain.chainstore.store import ChainStore
from chain.encoding.cid import CID
from chain.state.amt import amt_v0_to_list
from chain.stmgr.buffered import BufferedBlockstore
from chain.stmgr.index import LevelDBStateIndex, MemoryStateIndex
from chain.stmgr.manager import StateManager
from chain.store.blockstore import BlockNotFound, LevelDBBlockstore, MemoryBlockstore, put_cbor
from chain.types.address import Address
from chain.types.receipt import MessageReceipt
from chain.types.tipset import TipSet
from tests.consensus.devchain import ALICE, BOB, CAROL, DevChain

BOB_ADDR, CAROL_ADDR = Address.of_key(BOB), Address.of_key(CAROL)


def grow(dc: DevChain, tipsets: int) -> list[TipSet]:
    """tipsets more tipsets, every other one with transfers from a secp256k1 and a BLS account."""
    out = []
    for i in range(tipsets):
        messages = []
        if i % 2 == 0:
            messages = [*dc.transfers(ALICE, BOB_ADDR, 3, value=5), *dc.transfers(BOB, CAROL_ADDR, 2)]
        out.append(dc.next_tipset(messages))
    return out


def fresh_manager(dc: DevChain, chain: ChainStore | None = None, **options: Any) -> StateManager:
    return StateManager(chain or dc.chain, policy=dc.policy, beacon=dc.beacon, **options)


def test_persisted_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "datastore"
    store = ChainStore.open(path)
    dc = DevChain.new(chain=store, index=LevelDBStateIndex(store.blockstore.db))  # type: ignore[attr-defined]
    chain = grow(dc, 8)
    states = {ts.key: dc.sm.state_of(ts) for ts in chain}
    assert dc.sm.executions == len(chain)  # each tipset once (the producer and validation asked again)
    store.close()

    reopened = ChainStore.open(path)
    try:
        assert reopened.head() == chain[-1]
        index = LevelDBStateIndex(reopened.blockstore.db)  # type: ignore[attr-defined]
        sm = fresh_manager(dc, reopened, index=index)
        for ts in chain:
            assert sm.state_of(reopened.load_tipset(ts.key)) == states[ts.key]
        assert sm.executions == 0

        # without the index the same states are computed again
        recompute = fresh_manager(dc, reopened)
        assert [recompute.state_of(ts) for ts in chain] == [states[ts.key] for ts in chain]
        assert recompute.executions == len(chain)
    finally:
        reopened.close()


def test_receipts_are_read_back_from_the_index() -> None:
    index = MemoryStateIndex()
    dc = DevChain.new(index=index)
    (ts,) = grow(dc, 1)
    computed = dc.sm.state_of(ts)
    assert len(computed.receipts) == 5 and all(r.exit_code == 0 for r in computed.receipts)
    again = fresh_manager(dc, index=index).state_of(ts)
    assert again == computed and again.receipts == computed.receipts
    stored = [MessageReceipt.from_cbor(r) for r in amt_v0_to_list(dc.store, computed.receipts_root)]
    assert tuple(stored) == computed.receipts


def test_cache_is_bounded() -> None:
    dc = DevChain.new()
    chain = grow(dc, 6)
    sm = fresh_manager(dc, cache_size=2)
    for ts in chain:
        sm.state_of(ts)
    assert sm.cached == 2 and sm.executions == 6
    sm.state_of(chain[-1])  # still cached
    assert sm.executions == 6
    sm.state_of(chain[0])  # evicted and no index: computed again
    assert sm.executions == 7

    indexed = fresh_manager(dc, cache_size=2, index=MemoryStateIndex())
    for ts in chain:
        indexed.state_of(ts)
    indexed.state_of(chain[0])  # evicted from memory, found in the index
    assert indexed.executions == 6 and indexed.cached == 2
    with pytest.raises(ValueError, match="cache_size"):
        fresh_manager(dc, cache_size=0)


def test_open_tree_gives_the_same_roots_as_reloading() -> None:
    dc = DevChain.new()
    chain = grow(dc, 12)
    dc.sm.state_of(chain[-1])  # the head's state (no block on it asked for it yet)
    # the chain was built with the tree kept open: each tipset after the first started from it
    assert dc.sm.executions == len(chain) and dc.sm.tree_reuses == len(chain) - 1
    reloading = fresh_manager(dc, keep_tree_open=False)
    for ts in chain:
        assert reloading.state_of(ts) == dc.sm.state_of(ts)
    assert reloading.tree_reuses == 0 and reloading.executions == len(chain)


def test_a_fork_starts_from_its_own_parent_state() -> None:
    """Computing a tipset that is not on top of the open tree loads its parent state instead."""
    dc = DevChain.new()
    chain = grow(dc, 4)
    sm = fresh_manager(dc)
    sm.state_of(chain[3])
    assert sm.state_of(chain[1]) == dc.sm.state_of(chain[1])  # not a child of chain[3]
    assert sm.tree_reuses == 0
    assert sm.state_of(chain[2]) == dc.sm.state_of(chain[2])  # a child of chain[1]: reuses its tree
    assert sm.tree_reuses == 1


def test_a_failed_execution_is_not_cached() -> None:
    dc = DevChain.new()
    (ts,) = grow(dc, 1)
    missing = CID.hash_of(b"a state root nobody has")
    broken = TipSet(tuple(replace(b, parent_state_root=missing) for b in ts.blocks))
    dc.chain.put_tipset(broken)
    sm = fresh_manager(dc)
    with pytest.raises(BlockNotFound):
        sm.state_of(broken)
    assert sm.executions == 0 and sm.cached == 0
    assert sm.state_of(ts) == dc.sm.state_of(ts)


def test_concurrent_callers_execute_once() -> None:
    dc = DevChain.new()
    chain = grow(dc, 3)
    sm = fresh_manager(dc)
    # each kind of answer in its own list: threads finish in any order
    states: list[object] = []
    actors: list[object] = []
    errors: list[BaseException] = []

    def ask(fn: Callable[[], object], into: list[object]) -> None:
        try:
            into.append(fn())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(lambda: sm.state_of(chain[-1]), states)) for _ in range(4)]
    # readers query parent states meanwhile
    threads += [
        threading.Thread(target=ask, args=(lambda: sm.get_actor(Address.of_key(ALICE), chain[-1]), actors))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and len(states) == len(actors) == 4
    assert sm.executions == 1
    assert states == [dc.sm.state_of(chain[-1])] * 4
    assert actors == [dc.sm.get_actor(Address.of_key(ALICE), chain[-1])] * 4


def test_buffer_writes_on_commit_only() -> None:
    base = MemoryBlockstore()
    buffer = BufferedBlockstore(base)
    leaf = put_cbor(buffer, [1, 2, 3])
    garbage = put_cbor(buffer, ["not linked"])
    root = put_cbor(buffer, [leaf, "x"])
    already = put_cbor(base, ["in the base already"])
    other_root = put_cbor(buffer, [already])
    assert buffer.get(garbage) is not None and buffer.get(already) is not None and base.get(leaf) is None
    assert buffer.has(already) and not base.has(root)
    # what the roots reach through the buffer (Lotus's copy), if a caller wants only that
    assert {cid for cid, _ in buffer.reachable([root, other_root])} == {root, leaf, other_root}
    assert buffer.commit() == 4
    assert all(base.has(cid) for cid in (root, leaf, other_root, garbage)) and len(buffer) == 0
    put_cbor(buffer, ["dropped"])
    buffer.discard()
    assert len(buffer) == 0 and len(base) == 5


def test_calls_and_replays_write_nothing() -> None:
    dc = DevChain.new()
    with_messages, _ = grow(dc, 2)
    dc.sm.state_of(dc.head)
    before = len(dc.store)  # type: ignore[arg-type]
    (msg,) = dc.transfers(ALICE, CAROL_ADDR, 1)
    assert dc.sm.call_with_gas(msg, [], dc.head).exit_code == 0
    assert dc.sm.call(msg.message, dc.head).receipt.exit_code == 0
    first = dc.sm.messages_for_tipset(with_messages)[0]
    assert dc.sm.replay(with_messages, first.cid())[1].receipt.exit_code == 0
    assert len(dc.store) == before  # type: ignore[arg-type]


def test_leveldb_index_round_trip(tmp_path: Path) -> None:
    with LevelDBBlockstore(tmp_path / "ds") as store:
        index = LevelDBStateIndex(store.db)
        dc = DevChain.new()
        (ts,) = grow(dc, 1)
        a, b = CID.hash_of(b"a"), CID.hash_of(b"b")
        assert index.get(ts.key) is None
        index.put(ts.key, a, b)
        assert index.get(ts.key) == (a, b)
        # a damaged entry only means a recomputation
        store.db.put(index._key(ts.key), b"\xff")
        assert index.get(ts.key) is None
        # the index's keys never collide with blocks
        assert list(store.keys()) == []
