"""The message pool following the chain (inclusion, reverts), its subscribers, local messages across
restarts, pruning and clearing."""

from pathlib import Path

import pytest
import trio
import trio.testing

from chain.chainstore.metadata import LevelDBMetadata, MemoryMetadata
from chain.mpool.config import MpoolConfig
from chain.mpool.errors import NonceTooLow
from chain.mpool.pool import MessagePool, MpoolChange, MpoolUpdate
from chain.store.blockstore import LevelDBBlockstore
from tests.mpool.harness import make_harness


def test_included_messages_leave_and_their_successors_stay() -> None:
    h = make_harness()
    sender = h.world.addresses[0]
    msgs = [h.message(0, nonce=n) for n in range(4)]
    other = h.message(1, nonce=0)
    for m in [*msgs, other]:
        h.pool.add(m)
    ts = h.mine(h.genesis, msgs[:2])
    h.set_head(ts)
    assert h.pool.head == ts
    assert h.pool.pending_for(sender) == msgs[2:]
    assert h.pool.pending_for(h.world.addresses[1]) == [other]
    assert h.pool.get_nonce(sender) == 4
    assert h.pool.size == 3
    # A message included elsewhere with a nonce the pool holds (a different message) takes its place.
    rival = h.message(1, nonce=0, value=7)
    h.set_head(h.mine(ts, [rival]))
    assert h.pool.pending_for(h.world.addresses[1]) == []


def test_reverted_messages_come_back_and_successors_stay_valid() -> None:
    h = make_harness()
    sender = h.world.addresses[0]
    msgs = [h.message(0, nonce=n) for n in range(3)]
    for m in msgs:
        h.pool.add(m)
    with_msgs = h.mine(h.genesis, msgs[:2], label="a")
    h.set_head(with_msgs)
    assert h.pool.pending_for(sender) == [msgs[2]]
    # A heavier fork without them: they are pending again, before their pending successor.
    fork = h.mine(h.genesis, [], label="b")
    fork2 = h.mine(fork, [], label="b2")
    h.set_head(fork2)
    assert h.pool.head == fork2
    assert h.pool.pending_for(sender) == msgs
    assert h.pool.get_nonce(sender) == 3
    assert h.pool.size == 3
    # Selection on the new head takes all three, in order.
    assert h.pool.select(fork2) == msgs


def test_reverted_bls_messages_come_back_with_their_signature() -> None:
    h = make_harness(bls_accounts=True)
    sender = h.world.addresses[0]
    msg = h.message(0, nonce=0)
    h.pool.add(msg)
    h.set_head(h.mine(h.genesis, [msg], label="a"))
    assert h.pool.pending_for(sender) == []
    fork = h.mine(h.mine(h.genesis, [], label="b"), [], label="b2")
    h.set_head(fork)
    assert h.pool.pending_for(sender) == [msg]  # signature recovered: a full SignedMessage again


def test_messages_the_state_has_passed_are_dropped() -> None:
    h = make_harness()
    sender = h.world.addresses[0]
    # The pool holds nonce 1 and 2; a block from elsewhere includes 0 and a different 1.
    for n in (1, 2):
        h.pool.add(h.message(0, nonce=n))
    elsewhere = [h.message(0, nonce=0, value=1), h.message(0, nonce=1, value=99)]
    h.set_head(h.mine(h.genesis, elsewhere))
    assert [m.message.nonce for m in h.pool.pending_for(sender)] == [2]
    with pytest.raises(NonceTooLow):
        h.pool.add(h.message(0, nonce=1, value=3))


def test_select_respects_the_block_gas_limit_and_nonce_order() -> None:
    h = make_harness(accounts=5)
    limit = h.world.policy.block_gas_limit
    gas = limit // 10 + 1  # only 9 of these fit in a block
    msgs = [h.message(s, nonce=n, gas_limit=gas, premium=100 + 10 * s) for s in range(4) for n in range(4)]
    for m in reversed(msgs):  # insertion order does not matter (gaps are allowed up to 4)
        h.pool.add(m)
    chosen = h.pool.select(h.genesis)
    assert 0 < len(chosen) <= 9
    assert sum(m.message.gas_limit for m in chosen) <= limit
    by_sender: dict[object, list[int]] = {}
    for m in chosen:
        by_sender.setdefault(m.message.from_, []).append(m.message.nonce)
    for nonces in by_sender.values():
        assert nonces == list(range(len(nonces)))  # consecutive from the state nonce, in order
    # The best-paying senders come first.
    assert chosen[0].message.from_ == h.world.addresses[3]
    # What was selected is a valid block: every message applies with exit code 0.
    ts = h.mine(h.genesis, chosen)
    assert [r.exit_code for r in h.receipts[ts.key]] == [0] * len(chosen)
    assert (
        [h.state.actor_after(a, ts).nonce for a in h.world.addresses[:4]]
        == [  # type: ignore[union-attr]
            len(by_sender.get(a, [])) for a in h.world.addresses[:4]
        ]
    )


def test_select_skips_gaps_and_what_the_balance_cannot_pay() -> None:
    fil = 10**18
    h = make_harness(balance=10 * fil)
    # Sender 0: nonces 0, 1 and 3 (2 missing): only 0 and 1 can go in.
    for n in (0, 1, 3):
        h.pool.add(h.message(0, nonce=n))
    # Sender 1: nonce 0 moves 1 FIL, 1 and 2 move 3 FIL each; together they fit the 10 FIL.
    for n, value in enumerate((1, 3, 3)):
        h.pool.add(h.message(1, nonce=n, value=value * fil))
    # A block from elsewhere carries another nonce 0 of sender 1, moving 5 FIL: 1 and 2 no longer fit
    # together, and selection (which re-checks against the state) takes nonce 1 only.
    h.set_head(h.mine(h.genesis, [h.message(1, nonce=0, value=5 * fil)]))
    head = h.store.head()
    chosen = h.pool.select(head)
    picked = sorted((m.message.from_ == h.world.addresses[1], m.message.nonce) for m in chosen)
    assert picked == [(False, 0), (False, 1), (True, 1)]
    ts = h.mine(head, chosen)
    assert [r.exit_code for r in h.receipts[ts.key]] == [0] * len(chosen)
    assert h.state.actor_after(h.world.addresses[1], ts).nonce == 2  # type: ignore[union-attr]
    assert h.state.actor_after(h.world.addresses[0], ts).nonce == 2  # type: ignore[union-attr]


def test_select_on_a_tipset_the_pool_has_not_reached() -> None:
    h = make_harness()
    msgs = [h.message(0, nonce=n) for n in range(3)]
    for m in msgs:
        h.pool.add(m)
    ahead = h.mine(h.genesis, msgs[:1])  # stored, but the pool has not been told (not the head)
    assert h.pool.head == h.genesis
    assert h.pool.select(ahead) == msgs[1:]
    assert h.pool.pending_for(h.world.addresses[0]) == msgs  # selection changed nothing
    with pytest.raises(ValueError, match="ticket quality"):
        h.pool.select(ahead, 1.5)


def test_priority_senders_go_first() -> None:
    h = make_harness()
    config = MpoolConfig(priority_addrs=(h.world.addresses[2],))
    pool = MessagePool(h.store, h.state, h.genesis, policy=h.world.policy, config=config)
    rich = h.message(0, nonce=0, premium=900)
    poor = h.message(2, nonce=0, premium=1)
    pool.add(rich)
    pool.add(poor)
    assert pool.select(h.genesis) == [poor, rich]


async def test_subscribers_see_adds_replacements_and_removals() -> None:
    h = make_harness()
    feed = h.pool.subscribe()
    first = h.message(0, nonce=0)
    h.pool.add(first)
    better = h.message(0, nonce=0, premium=500)
    h.pool.add(better)
    h.set_head(h.mine(h.genesis, [better]))
    with trio.fail_after(5):
        got = [await feed.receive() for _ in range(4)]
    assert got == [
        MpoolUpdate(MpoolChange.ADD, first),
        MpoolUpdate(MpoolChange.REMOVE, first),
        MpoolUpdate(MpoolChange.ADD, better),
        MpoolUpdate(MpoolChange.REMOVE, better),
    ]


async def test_a_slow_mpool_subscriber_is_dropped() -> None:
    h = make_harness()
    slow = h.pool.subscribe(buffer=2)
    for n in range(4):
        h.pool.add(h.message(0, nonce=n))
    await trio.testing.wait_all_tasks_blocked()
    assert [(await slow.receive()).message.message.nonce for _ in range(2)] == [0, 1]
    with trio.fail_after(5), pytest.raises(trio.EndOfChannel):
        await slow.receive()
    assert h.pool.size == 4  # the pool went on regardless


def test_local_messages_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "datastore"
    with LevelDBBlockstore(path) as db:
        h = make_harness(local_store=LevelDBMetadata(db.db))
        mine = [h.message(0, nonce=n) for n in range(3)]
        for m in mine:
            h.pool.push(m)
        h.pool.add(h.message(1, nonce=0))  # from the network: not kept
        # The chain includes the first before the restart: it is not brought back.
        h.set_head(h.mine(h.genesis, mine[:1]))
        head = h.store.head()
    with LevelDBBlockstore(path) as db:
        again = MessagePool(h.store, h.state, head, policy=h.world.policy, local_store=LevelDBMetadata(db.db))
        assert again.load_local() == 2
        assert again.pending()[0] == mine[1:]


def test_load_local_forgets_messages_the_chain_passed() -> None:
    h = make_harness(local_store=MemoryMetadata())
    first = h.message(0, nonce=0)
    h.pool.push(first)
    store = h.pool._local_store
    assert store is not None
    ts = h.mine(h.genesis, [first])  # included while the pool was not following (a restart)
    again = MessagePool(h.store, h.state, ts, policy=h.world.policy, local_store=store)
    assert again.load_local() == 0
    assert list(store.items(b"mpool/local/")) == []


def test_clear_keeps_local_senders_unless_asked() -> None:
    h = make_harness()
    local = h.message(0, nonce=0)
    remote = h.message(1, nonce=0)
    h.pool.push(local)
    h.pool.add(remote)
    h.pool.clear(local=False)
    assert h.pool.pending()[0] == [local]
    h.pool.clear(local=True)
    assert h.pool.pending()[0] == []
    assert h.pool.size == 0


def test_pruning_keeps_the_best_and_never_local_messages() -> None:
    config = MpoolConfig(size_limit_high=6, size_limit_low=4, prune_cooldown=0)
    h = make_harness(accounts=8, config=config)
    h.pool.push(h.message(0, nonce=0, premium=1))  # local: never pruned, however poor
    for s in range(1, 7):
        h.pool.add(h.message(s, nonce=0, premium=100 * s))  # the 7th message triggers a prune
    kept = {m.message.from_ for m in h.pool.pending()[0]}
    assert h.pool.size == 4
    assert kept == {h.world.addresses[0], *h.world.addresses[4:7]}
