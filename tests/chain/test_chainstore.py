"""The chain store: tipsets, the head and its height index, reorgs told to subscribers, restarts, crash
safety, messages and MsgMeta, and chain export."""

import io
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import trio
import trio.testing

from chain.chainstore import msgmeta
from chain.chainstore.metadata import MemoryMetadata
from chain.chainstore.reorg import HeadChange, NoCommonAncestor
from chain.chainstore.store import ChainStore, ChainStoreError, TipSetNotFound
from chain.crypto.signature import Signature, SigType
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.mpool.push import message_to_push
from chain.state.amt import amt_v0_from_list
from chain.store.blockstore import BlockNotFound, Blockstore, MemoryBlockstore
from chain.store.car import read_car
from chain.types.address import Address
from chain.types.message import SignedMessage, sign_message
from chain.types.tipset import EMPTY_TSK, TipSet, TipSetKey
from tests.chain.chain_helpers import GENESIS_PARENT, ChainBuilder
from tests.chain.vm_helpers import make_world

STATE = CID.hash_of(b"a state root the chain store never reads")


@pytest.fixture(params=["memory", "leveldb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChainStore]:
    if request.param == "memory":
        yield ChainStore.in_memory()
        return
    with ChainStore.open(str(tmp_path / "datastore")) as opened:
        yield opened


def _kinds(changes: list[HeadChange]) -> list[tuple[str, int]]:
    return [(c.type, c.tipset.height) for c in changes]


def _fork(builder: ChainBuilder) -> tuple[TipSet, list[TipSet], list[TipSet]]:
    """A genesis, a chain a of 3 tipsets on it, and a chain b of 4 tipsets forking at height 1."""
    genesis = builder.genesis()
    base = builder.extend(genesis, 1)[0]
    a = builder.extend(base, 3, label="a")
    b = builder.extend(base, 4, label="b")
    return base, a, b


# -- genesis, blocks and tipsets -------------------------------------------------------------------------


def test_genesis_becomes_the_head(store: ChainStore) -> None:
    builder = ChainBuilder(store, STATE)
    assert not store.has_head()
    with pytest.raises(ChainStoreError, match="no head"):
        store.head()
    genesis = builder.genesis()
    assert store.head() == genesis
    assert store.genesis() == genesis.blocks[0]
    assert store.get_tipset_by_height(0) == genesis
    assert store.is_on_heaviest_chain(genesis)
    # The same genesis again is fine; another is refused.
    builder.genesis()
    other = builder.header(None, label="other")
    with pytest.raises(ChainStoreError, match="this store's genesis is"):
        store.set_genesis(other)
    with pytest.raises(ChainStoreError, match="height 0, not 3"):
        store.set_genesis(builder.header(genesis, height=3))


def test_blocks_and_tipsets_by_key_and_cid(store: ChainStore) -> None:
    builder = ChainBuilder(store, STATE)
    genesis = builder.genesis()
    ts = builder.tipset(genesis, miners=(1000, 1001, 1002))
    assert store.load_tipset(ts.key) == ts
    assert store.get_tipset(ts.key) == ts
    assert store.get_tipset(EMPTY_TSK) == genesis  # the empty key: the head
    assert store.get_tipset_by_cid(ts.key.cid()) == ts
    for block in ts.blocks:
        assert store.get_block(block.cid()) == block
        assert store.has_block(block.cid())
    missing = builder.header(ts, label="never stored")
    with pytest.raises(BlockNotFound):
        store.get_block(missing.cid())
    with pytest.raises(TipSetNotFound, match="not found"):
        store.load_tipset(TipSetKey((missing.cid(),)))
    with pytest.raises(TipSetNotFound, match="empty tipset key"):
        store.load_tipset(EMPTY_TSK)
    with pytest.raises(TipSetNotFound, match="no tipset key block"):
        store.get_tipset_by_cid(missing.cid())
    # A key listing the blocks out of canonical order names no tipset.
    with pytest.raises(TipSetNotFound, match="canonical order"):
        ChainStore(store.blockstore, MemoryMetadata()).load_tipset(TipSetKey(tuple(reversed(ts.cids))))


# -- the head and its index ------------------------------------------------------------------------


def test_linear_chain_index_and_null_rounds(store: ChainStore) -> None:
    builder = ChainBuilder(store, STATE)
    genesis = builder.genesis()
    chain = builder.extend(genesis, 12, null_every=4)  # heights 1 2 3 5 6 7 9 10 11 13 14 15
    changes = store.set_head(chain[-1], 1234)
    assert _kinds(changes) == [("apply", ts.height) for ts in chain]
    assert store.head() == chain[-1]
    assert store.head_weight() == 1234
    assert store.tipset_weight(chain[-1]) == 1234
    assert store.tipset_weight(chain[0]) is None
    by_height = {ts.height: ts for ts in [genesis, *chain]}
    for h in range(0, 16):
        if h in by_height:
            assert store.get_tipset_by_height(h) == by_height[h]
            assert store.get_tipset_by_height(h, prev=False) == by_height[h]
        else:  # a null round: the tipset below, or the next one above
            assert store.get_tipset_by_height(h) == by_height[h - 1]
            assert store.get_tipset_by_height(h, prev=False) == by_height[h + 1]
    # From an anchor below the head.
    anchor = by_height[7]
    assert store.get_tipset_by_height(4, anchor) == by_height[3]
    assert store.get_tipset_by_height(4, anchor, prev=False) == by_height[5]
    with pytest.raises(ChainStoreError, match="height greater than start point, req: 9, head: 7"):
        store.get_tipset_by_height(9, anchor)
    with pytest.raises(ChainStoreError, match="height -1 is negative"):
        store.get_tipset_by_height(-1)


def test_height_lookup_from_an_anchor_off_the_heaviest_chain(store: ChainStore) -> None:
    builder = ChainBuilder(store, STATE)
    base, a, b = _fork(builder)
    store.set_head(b[-1], 10)
    # a's tipsets are not indexed; a lookup anchored on a walks a's chain down to the fork.
    assert store.get_tipset_by_height(3, a[-1]) == a[1]
    assert store.get_tipset_by_height(1, a[-1]) == base
    side = builder.tipset(a[0], height=a[0].height + 3, label="side")  # null rounds 3 and 4 on a side
    assert store.get_tipset_by_height(4, side) == a[0]
    assert store.get_tipset_by_height(4, side, prev=False) == side
    assert not store.is_on_heaviest_chain(a[0])
    assert store.is_on_heaviest_chain(b[0])


async def test_reorg_reverts_then_applies_and_subscribers_see_it(store: ChainStore) -> None:
    builder = ChainBuilder(store, STATE)
    base, a, b = _fork(builder)
    store.set_head(a[-1], 10)
    feed = store.subscribe()
    first = await feed.receive()
    assert first == [HeadChange("current", a[-1])]

    changes = store.set_head(b[-1], 20)
    expected = [
        ("revert", 4),
        ("revert", 3),
        ("revert", 2),
        ("apply", 2),
        ("apply", 3),
        ("apply", 4),
        ("apply", 5),
    ]
    assert _kinds(changes) == expected
    assert [c.tipset for c in changes] == [a[2], a[1], a[0], *b]
    with trio.fail_after(5):
        assert await feed.receive() == changes
    assert store.get_tipset_by_height(4) == b[2]
    assert store.get_tipset_by_height(5) == b[3]
    assert store.head_weight() == 20
    # And back: the path reverses.
    back = store.set_head(a[-1], 30)
    assert [c.tipset for c in back] == [*reversed(b), *a]
    with trio.fail_after(5):
        assert await feed.receive() == back
    with pytest.raises(ChainStoreError, match="height greater than start point"):
        store.get_tipset_by_height(5)
    # Setting the same head again changes nothing and tells no one.
    assert store.set_head(a[-1], 30) == []
    assert base == store.get_tipset_by_height(1)


def test_reorg_drops_index_entries_the_new_chain_leaves_null(store: ChainStore) -> None:
    builder = ChainBuilder(store, STATE)
    genesis = builder.genesis()
    a = builder.extend(genesis, 3, label="a")  # heights 1, 2, 3
    b = [builder.tipset(genesis, height=2, label="b")]  # 1 is a null round on b
    b.append(builder.tipset(b[0], height=4, label="b"))  # and 3
    store.set_head(a[-1], 5)
    store.set_head(b[-1], 6)
    assert store.get_tipset_by_height(1) == genesis
    assert store.get_tipset_by_height(1, prev=False) == b[0]
    assert store.get_tipset_by_height(3) == b[0]
    assert store.get_tipset_by_height(3, prev=False) == b[1]
    assert not store.is_on_heaviest_chain(a[0])


def test_chain_path_both_ways(store: ChainStore) -> None:
    builder = ChainBuilder(store, STATE)
    _base, a, b = _fork(builder)
    path = store.chain_path(a[-1].key, b[-1].key)
    assert [(c.type, c.tipset) for c in path] == [
        *(("revert", ts) for ts in reversed(a)),
        *(("apply", ts) for ts in b),
    ]
    assert _kinds(store.chain_path(b[1].key, b[1].key)) == []
    assert _kinds(store.chain_path(b[3].key, b[1].key)) == [("revert", 5), ("revert", 4)]


def test_too_deep_a_reorg_and_a_foreign_chain_are_refused() -> None:
    store = ChainStore.in_memory(max_reorg=2)
    builder = ChainBuilder(store, STATE)
    _base, a, b = _fork(builder)
    store.set_head(a[-1], 10)
    with pytest.raises(NoCommonAncestor, match="within 2 tipsets"):
        store.set_head(b[-1], 20)
    assert store.head() == a[-1]
    assert store.head_weight() == 10
    assert store.get_tipset_by_height(2) == a[0]
    # A chain from another genesis has no common ancestor at all.
    foreign_genesis = TipSet((builder.header(None, label="foreign"),))
    store.put_tipset(foreign_genesis)
    foreign = builder.tipset(foreign_genesis, label="foreign")
    with pytest.raises(NoCommonAncestor, match="do not share a genesis"):
        store.chain_path(a[0].key, foreign.key)


def test_take_heavier_compares_weight_then_tickets(store: ChainStore) -> None:
    builder = ChainBuilder(store, STATE)
    genesis = builder.genesis()
    x = builder.tipset(genesis, label="x")
    y = builder.tipset(genesis, label="y")
    assert store.take_heavier(x, 10)
    assert not store.take_heavier(y, 9)
    assert not store.take_heavier(x, 10)
    winner, loser = (x, y) if x.min_ticket().less(y.min_ticket()) else (y, x)
    store.set_head(loser, 10)
    assert store.take_heavier(winner, 10)
    assert store.head() == winner
    assert not store.take_heavier(loser, 10)
    assert store.take_heavier(loser, 11)


def test_head_change_callbacks_run_in_order_and_failures_are_contained(store: ChainStore) -> None:
    builder = ChainBuilder(store, STATE)
    _base, a, b = _fork(builder)
    seen: list[tuple[list[int], list[int]]] = []

    def broken(revert: list[TipSet], apply: list[TipSet]) -> None:
        raise RuntimeError("a broken listener")

    store.on_head_change(broken)
    store.on_head_change(lambda r, ap: seen.append(([t.height for t in r], [t.height for t in ap])))
    store.set_head(a[-1], 1)
    store.set_head(b[-1], 2)
    assert seen == [([], [1, 2, 3, 4]), ([4, 3, 2], [2, 3, 4, 5])]


# -- subscribers -----------------------------------------------------------------------------------


async def test_a_slow_subscriber_is_dropped_and_others_go_on() -> None:
    store = ChainStore.in_memory()
    builder = ChainBuilder(store, STATE)
    genesis = builder.genesis()
    chain = builder.extend(genesis, 5)
    slow = store.subscribe(buffer=2)  # holds "current" and one more change
    fast = store.subscribe()
    received: list[list[HeadChange]] = []
    for ts in chain:
        store.set_head(ts, ts.height)
        await trio.testing.wait_all_tasks_blocked()
        received.append(await fast.receive())
    # fast got "current" first, so what it read in the loop lags one behind; it still has the last.
    with trio.fail_after(5):
        received.append(await fast.receive())
    assert [c[0].type for c in received] == ["current", "apply", "apply", "apply", "apply", "apply"]
    assert [c[0].tipset for c in received[1:]] == chain
    # slow was closed when its buffer overflowed: it reads what it had, then the end of the channel.
    assert (await slow.receive())[0].type == "current"
    assert (await slow.receive())[0].tipset == chain[0]
    with trio.fail_after(5), pytest.raises(trio.EndOfChannel):
        await slow.receive()


async def test_subscribers_hear_of_heads_set_from_worker_threads() -> None:
    store = ChainStore.in_memory()
    builder = ChainBuilder(store, STATE)
    genesis = builder.genesis()
    chain = builder.extend(genesis, 3)
    feed = store.subscribe()
    assert (await feed.receive())[0].tipset == genesis
    for ts in chain:
        await trio.to_thread.run_sync(store.set_head, ts, ts.height)
    with trio.fail_after(5):
        got = [await feed.receive() for _ in chain]
    assert [g[0].tipset for g in got] == chain
    # A subscriber that closes its end is forgotten at the next change.
    await feed.aclose()
    more = builder.extend(chain[-1], 1)
    store.set_head(more[0], 9)
    await trio.testing.wait_all_tasks_blocked()
    assert store._fanout.subscribers == 0


async def test_a_subscriber_hears_nothing_from_before_it_subscribed() -> None:
    store = ChainStore.in_memory()
    builder = ChainBuilder(store, STATE)
    genesis = builder.genesis()
    one, two = builder.extend(genesis, 2)
    store.set_head(one, 1)  # delivered to nobody: there is no subscriber yet
    feed = store.subscribe()
    store.set_head(two, 2)
    with trio.fail_after(5):
        assert await feed.receive() == [HeadChange("current", one)]
        assert await feed.receive() == [HeadChange("apply", two)]


# -- restarts and crashes --------------------------------------------------------------------------


def _stored_fork(path: str) -> tuple[list[TipSet], list[TipSet]]:
    """A datastore at path holding _fork's chains a and b, a the head at weight 7; closed again."""
    with ChainStore.open(path) as store:
        _base, a, b = _fork(ChainBuilder(store, STATE))
        store.set_head(a[-1], 7)
    return a, b


def test_restart_reads_the_stored_head_and_index(tmp_path: Path) -> None:
    path = str(tmp_path / "datastore")
    a, b = _stored_fork(path)
    with ChainStore.open(path) as store:
        store.set_head(b[-1], 77)
    with ChainStore.open(path) as store:
        assert store.head() == b[-1]
        assert store.head_weight() == 77
        assert store.genesis().cid() == store.get_tipset_by_height(0).cids[0]
        assert [store.get_tipset_by_height(h) for h in range(2, 6)] == b
        assert store.tipset_weight(a[-1]) == 7
        assert not store.is_on_heaviest_chain(a[-1])


def test_a_failed_head_batch_changes_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "datastore")
    a, b = _stored_fork(path)
    with ChainStore.open(path) as store:
        real = store._meta

        class FailingMidBatch:
            """Lets the batch stage its writes, then fails before it is written."""

            def __getattr__(self, name: str) -> object:
                return getattr(real, name)

            def batch(self):  # type: ignore[no-untyped-def]
                outer = real.batch()

                class Ctx:
                    def __enter__(self):  # type: ignore[no-untyped-def]
                        return outer.__enter__()

                    def __exit__(self, *exc: object) -> bool:
                        failure = OSError("disk gone mid-batch")
                        outer.__exit__(OSError, failure, None)
                        raise failure

                return Ctx()

        store._meta = FailingMidBatch()  # type: ignore[assignment]
        with pytest.raises(OSError, match="disk gone"):
            store.set_head(b[-1], 99)
        store._meta = real
        assert store.head() == a[-1]
    with ChainStore.open(path) as store:
        assert store.head() == a[-1]
        assert store.head_weight() == 7
        assert [store.get_tipset_by_height(h) for h in range(2, 5)] == a
        assert store.get_tipset_by_height(4) == a[-1]
        # The blocks of b were written before the batch: they are there, merely not the head.
        assert store.load_tipset(b[-1].key) == b[-1]


CRASH_SCRIPT = """
import os, sys
from chain.encoding.cid import CID
from chain.chainstore.store import ChainStore
from tests.chain.chain_helpers import ChainBuilder

store = ChainStore.open(sys.argv[1])
builder = ChainBuilder(store, CID.hash_of(b"state"))
genesis = builder.genesis()
tip = builder.extend(genesis, 3)[-1]
store.set_head(tip, 3)
pending = builder.extend(tip, 2, label="never head")  # blocks written ...
print("PENDING", pending[-1].key.to_bytes().hex(), flush=True)
os._exit(9)  # ... and the process dies before the head batch
"""


def test_a_crash_between_the_blocks_and_the_head_batch_loses_nothing(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = str(tmp_path / "datastore")
    proc = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, path], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 9, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("PENDING "))
    pending_key = TipSetKey.from_bytes(bytes.fromhex(line.split()[1]))
    with ChainStore.open(path) as store:
        assert store.head().height == 3
        assert store.head_weight() == 3
        assert [store.get_tipset_by_height(h).height for h in range(4)] == [0, 1, 2, 3]
        pending = store.load_tipset(pending_key)
        assert pending.height == 5
        changes = store.set_head(pending, 5)  # the new blocks are usable after the restart
        assert _kinds(changes) == [("apply", 4), ("apply", 5)]


# -- messages --------------------------------------------------------------------------------------


def test_msg_meta_matches_the_reference_cids() -> None:
    store = ChainStore.in_memory()
    # Forest's chain_sync tests (compute_msg_meta): the empty MsgMeta, and one with an unsigned message
    # from f02 to f01 (every other field zero) as BLS and the same message with a 1-byte secp signature.
    assert str(store.put_messages([], [])) == "bafy2bzacecmda75ovposbdateg7eyhwij65zklgyijgcjwynlklmqazpwlhba"
    msg = message_to_push(Address.new_id(1), Address.new_id(2))  # every field but the two zero
    signed = SignedMessage(msg, Signature(SigType.SECP256K1, b"\x00"))
    meta = store.put_messages([msg], [signed])
    assert str(meta) == "bafy2bzaceasssikoiintnok7f3sgnekfifarzobyr3r4f25sgxmn23q4c35ic"
    # The empty receipts root of Lotus headers is the empty legacy AMT.
    assert (
        str(amt_v0_from_list(MemoryBlockstore(), []))
        == "bafy2bzacedswlcz5ddgqnyo3sak3jmhmkxashisnlpq6ujgyhe4mlobzpnhs6"
    )
    assert store.read_msg_meta(meta) == ((msg.cid(),), (signed.cid(),))
    # A fresh store over the same blocks decodes the AMTs rather than using its cache.
    fresh = ChainStore(store.blockstore, MemoryMetadata())
    assert fresh.read_msg_meta(meta) == ((msg.cid(),), (signed.cid(),))


def test_a_messages_root_is_built_once_for_its_checks_and_storing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gossip's or chain exchange's check, validation's and storing the messages build a block's MsgMeta
    once (chain/chainstore/msgmeta.py remembers it by the lists); what is stored reads back."""
    built: list[object] = []
    real = msgmeta.amt_v0_from_list

    def counting(store: Blockstore, values: Iterable[object]) -> CID:
        built.append(values)
        return real(store, values)

    monkeypatch.setattr(msgmeta, "amt_v0_from_list", counting)
    bls = [CID.hash_of(b"built once: bls")]
    secpk = [CID.hash_of(b"built once: secp %d" % i) for i in range(3)]
    root = msgmeta.msg_meta_cid(bls, secpk)
    assert msgmeta.msg_meta_cid(tuple(bls), tuple(secpk)) == root
    store = ChainStore.in_memory()
    assert store.put_msg_meta(bls, secpk) == root
    assert len(built) == 2  # its two AMTs, once
    fresh = ChainStore(store.blockstore, MemoryMetadata())
    assert fresh.read_msg_meta(root) == (tuple(bls), tuple(secpk))
    assert msgmeta.msg_meta_cid(secpk, bls) != root


def test_messages_of_a_block_and_of_a_tipset() -> None:
    world = make_world(accounts=3)
    store = ChainStore(world.store, MemoryMetadata())
    builder = ChainBuilder(store, world.tree.flush())
    genesis = builder.genesis()
    key0, key1 = world.addresses[0], world.addresses[1]
    m0 = world.message(0, key1, value=1, nonce=0)
    m1 = world.message(0, key1, value=1, nonce=1)
    m2 = world.message(1, key0, value=1, nonce=0)
    bls_signed = SignedMessage(world.message(2, key0, nonce=0).message, Signature(SigType.BLS, bytes(96)))
    meta_a = store.put_messages([bls_signed], [m0, m1])
    # The second block repeats m1 (already taken) and carries m0's sender at nonce 5 (out of sequence).
    skipped = world.message(0, key1, value=2, nonce=5)
    meta_b = store.put_messages([], [m1, m2, skipped])
    # A label under which block a comes first in the tipset's canonical (ticket) order.
    label = next(
        lab
        for lab in map(str, range(50))
        if builder.header(genesis, miner=1000, label=lab).ticket.less(  # type: ignore[union-attr]
            builder.header(genesis, miner=1001, label=lab).ticket  # type: ignore[arg-type]
        )
    )
    ts = builder.tipset(genesis, miners=(1000, 1001), messages=[meta_a, meta_b], label=label)
    assert [b.miner.id for b in ts.blocks] == [1000, 1001]
    bls, secpk = store.messages_for_block(ts.blocks[0])
    assert bls == [bls_signed.message]  # stored without its signature
    assert secpk == [m0, m1]
    assert store.get_message(bls_signed.cid()) == bls_signed.message
    assert store.get_message(m0.cid()) == m0
    per_block = store.block_messages_for_tipset(ts)
    assert per_block[0].bls_messages == (bls_signed.message,)
    assert per_block[0].secpk_messages == (m0, m1)
    assert per_block[1].secpk_messages == (m2,)  # m1 again and sender 0 at nonce 5 are left out
    assert [m.cid() for m in store.messages_for_tipset(ts)] == [
        bls_signed.cid(),
        m0.cid(),
        m1.cid(),
        m2.cid(),
    ]
    with pytest.raises(BlockNotFound):
        store.get_message(CID.hash_of(b"no such message"))
    # As stored, undecoded (what chain exchange serves): the same messages' bytes.
    raw_bls, raw_secpk = store.message_blocks(ts.blocks[0])
    assert raw_bls == [(bls_signed.cid(), bls_signed.message.to_bytes())]
    assert raw_secpk == [(m.cid(), m.to_bytes()) for m in (m0, m1)]
    # A MsgMeta listing a signed message among the unsigned ones (or the reverse) is refused by either.
    swapped = builder.header(genesis, miner=1002, messages=store.put_msg_meta([m0.cid()], [bls_signed.cid()]))
    for read in (store.message_blocks, store.messages_for_block):
        with pytest.raises(DecodeError, match="is not an unsigned message"):
            read(swapped)
    swapped = builder.header(genesis, miner=1002, messages=store.put_msg_meta([], [bls_signed.cid()]))
    with pytest.raises(DecodeError, match="is not a signed message"):
        store.message_blocks(swapped)


def test_id_and_key_senders_are_one_sender_in_a_tipset() -> None:
    world = make_world(accounts=2)
    store = ChainStore(world.store, MemoryMetadata())
    builder = ChainBuilder(store, world.tree.flush())
    genesis = builder.genesis()
    by_key = world.message(0, world.addresses[1], nonce=0)
    # The same sender by its ID address, at the same nonce: a different message, but not a new sequence.
    by_id_msg = replace(by_key.message, from_=world.ids[0])
    by_id = sign_message(by_id_msg, world.keys[0])
    next_by_id = sign_message(replace(by_id_msg, nonce=1), world.keys[0])
    ts = builder.tipset(genesis, messages=[store.put_messages([], [by_key, by_id, next_by_id])])
    assert [m.cid() for m in store.messages_for_tipset(ts)] == [by_key.cid(), next_by_id.cid()]


def test_receipts_are_read_in_order() -> None:
    from chain.types.receipt import MessageReceipt

    store = ChainStore.in_memory()
    receipts = [MessageReceipt(exit_code=i, return_data=bytes([i]), gas_used=100 * i) for i in range(3)]
    root = amt_v0_from_list(store.blockstore, [r.to_cbor() for r in receipts])
    assert store.read_receipts(root) == receipts


# -- export ----------------------------------------------------------------------------------------


def test_export_walks_headers_messages_and_recent_states() -> None:
    world = make_world(accounts=2)
    store = ChainStore(world.store, MemoryMetadata())
    state_root = world.tree.flush()
    builder = ChainBuilder(store, state_root)
    genesis = builder.genesis()
    msg = world.message(0, world.addresses[1], nonce=0)
    meta = store.put_messages([], [msg])
    chain = [builder.tipset(genesis, messages=[meta])]
    chain += builder.extend(chain[0], 3)
    head = chain[-1]

    out = io.BytesIO()
    count = store.export(head, out, recent_roots=2)
    roots, blocks = read_car(io.BytesIO(out.getvalue()))
    assert roots == head.cids
    cids = [cid for cid, _ in blocks]
    assert count == len(cids) == len(set(cids))
    assert cids[0] == head.cids[0]  # the exported tipset's header comes first
    assert GENESIS_PARENT in cids
    assert msg.cid() in cids and meta in cids
    assert state_root in cids
    assert all(block.cid() in cids for ts in [genesis, *chain] for block in ts.blocks)
    # Every block of the state tree is there: reading the state from the CAR alone works.
    from chain.state.tree import StateTree
    from chain.store.car import import_car

    copy = MemoryBlockstore()
    import_car(copy, io.BytesIO(out.getvalue()))
    assert StateTree.load(copy, state_root).get_actor(world.addresses[0]) is not None
    # Without old messages and no recent roots, only the headers, the genesis state and recent messages.
    small = io.BytesIO()
    store.export(head, small, recent_roots=0, skip_old_messages=True)
    _, few = read_car(io.BytesIO(small.getvalue()))
    few_cids = {cid for cid, _ in few}
    assert msg.cid() not in few_cids
    assert state_root in few_cids  # the genesis state always goes in
    with pytest.raises(ValueError, match="cannot be negative"):
        store.export(head, io.BytesIO(), recent_roots=-1)


REORG_LOOP_SCRIPT = """
import sys, time
from chain.encoding.cid import CID
from chain.chainstore.store import ChainStore
from tests.chain.chain_helpers import ChainBuilder

store = ChainStore.open(sys.argv[1])
builder = ChainBuilder(store, CID.hash_of(b"state"))
tips = {"a": builder.genesis(), "b": builder.genesis()}
weight = 0
deadline = time.monotonic() + 30
for i in range(100_000):  # killed long before; bounded all the same
    side = "ab"[i % 2]
    # Each side grows by one or two epochs (a null round now and then), and becomes the head.
    step = 2 if i % 3 == 0 else 1
    tips[side] = builder.tipset(tips[side], height=tips[side].height + step, label=side)
    weight += 1
    store.set_head(tips[side], weight)
    if i == 10:
        print("READY", flush=True)
    if time.monotonic() > deadline:
        break
"""


def test_kill_9_during_reorgs_leaves_a_consistent_head_and_index(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    path = str(tmp_path / "datastore")
    proc = subprocess.Popen(
        [sys.executable, "-c", REORG_LOOP_SCRIPT, path], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # bounded: the script prints READY early or exits within 30 s
            if line.startswith("READY"):
                break
        time.sleep(0.3)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    with ChainStore.open(path) as store:
        head = store.head()
        assert store.head_weight() >= 11
        ts = head
        while ts.height > 0:
            assert store.get_tipset_by_height(ts.height) == ts
            parent = store.load_tipset(ts.parents)
            for null in range(parent.height + 1, ts.height):
                assert store.get_tipset_by_height(null) == parent
                assert store.get_tipset_by_height(null, prev=False) == ts
            ts = parent
        assert store.get_tipset_by_height(0) == ts
