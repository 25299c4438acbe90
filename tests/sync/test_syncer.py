"""chain/sync's Syncer on real chains (tests/consensus/devchain.py) served by another chain store
(store_exchange.py): catching up from the genesis in batches, reorganising onto a heavier fork,
refusing forks past finality, and bad blocks found in headers or at validation."""

from collections.abc import Callable, Sequence
from typing import Any, Final

import pytest
import trio

from chain.chainstore.reorg import APPLY, REVERT, HeadChange
from chain.consensus.fullblock import FullBlock
from chain.consensus.weight import weight_of
from chain.sync.exchange import Peer
from chain.sync.state import SyncerState, SyncStage
from chain.sync.syncer import RETRY_PAUSES, InvalidChain, Syncer, SyncError
from chain.types.address import Address
from chain.types.message import SignedMessage
from chain.types.tipset import TipSet
from tests.consensus.devchain import ALICE, BOB, DevChain, resigned
from tests.sync.store_exchange import StoreExchange

HEIGHT: Final = 40
PEER: Final = "announcing peer"
SHORT_PAUSES: Final = (0.01, 0.02, 0.05)  # between exchange retries, for tests whose peer is offline
MINER_A, MINER_B = Address.new_id(1000), Address.new_id(1001)


def build(height: int, *, transfers_every: int = 5) -> DevChain:
    dc = DevChain.new()
    while dc.head.height < height:
        messages = []
        if dc.head.height % transfers_every == 0:
            messages = dc.transfers(ALICE, Address.of_key(BOB), 2, value=7)
        dc.next_tipset(messages)
    return dc


@pytest.fixture(scope="module")
def source() -> DevChain:
    return build(HEIGHT)


class Follower:
    """A node's chain (a fresh DevChain on the same genesis) with a syncer fetching from `peer`."""

    def __init__(
        self,
        peer: DevChain,
        *,
        batch: int = 8,
        chain: DevChain | None = None,
        retry_pauses: tuple[float, ...] = RETRY_PAUSES,
    ) -> None:
        self.dc = DevChain.new() if chain is None else chain
        self.exchange = StoreExchange(peer.chain)
        self.penalized: list[tuple[Peer, str]] = []
        self.syncer = Syncer(
            self.dc.chain,
            self.dc.sm,
            self.dc.beacon,
            self.exchange,
            penalize=lambda p, r: self.penalized.append((p, r)),
            message_batch=batch,
            clock=lambda: 2e9,
            retry_pauses=retry_pauses,
        )
        self.state = SyncerState(1)

    async def sync(self, target: TipSet) -> None:
        await self.syncer.sync(target, [PEER], self.state)


def chain_of(dc: DevChain, ts: TipSet) -> list[TipSet]:
    out = [ts]
    while out[-1].height > 0:
        out.append(dc.chain.load_tipset(out[-1].parents))
    return out[::-1]


async def test_catch_up_from_genesis_in_batches(source: DevChain) -> None:
    follower = Follower(source, batch=8)
    await follower.sync(source.head)
    dc = follower.dc
    assert dc.head == source.head
    assert dc.chain.head_weight() == source.chain.head_weight()
    for ts in chain_of(source, source.head)[-5:]:
        assert dc.sm.state_of(ts) == source.sm.state_of(ts)
    snap = follower.state.snapshot()
    assert (snap.stage, snap.height, snap.target, snap.base) == (
        SyncStage.COMPLETE,
        source.head.height,
        source.head,
        TipSet((source.genesis.header,)),
    )
    assert snap.start is not None and snap.end is not None and snap.end >= snap.start
    # Headers in one request (the gap is under 900), messages in batches of 8, the peer asked first.
    assert follower.exchange.header_requests == [HEIGHT - 1]
    # (Blocks without messages need no request: their empty MsgMeta is already in the store.)
    batches = -(-(len(chain_of(source, source.head)) - 1) // 8)
    assert 0 < len(follower.exchange.message_requests) <= batches
    assert max(follower.exchange.message_requests) <= 8
    assert all(list(p) == [PEER] for p in follower.exchange.preferred)
    assert follower.syncer.tipsets_applied >= len(chain_of(source, source.head)) - 2
    assert follower.syncer.vm_applied > 0
    # A second sync to the same target has nothing to do.
    asked = len(follower.exchange.header_requests)
    await follower.sync(source.head)
    assert len(follower.exchange.header_requests) == asked


async def test_after_batch_is_called_once_each_batch_applied(source: DevChain) -> None:
    """The node layer's hook (its garbage collector policy) runs after each batch's fork choice."""
    follower = Follower(source, batch=8)
    heads: list[int] = []
    follower.syncer.after_batch = lambda: heads.append(follower.dc.head.height)
    await follower.sync(source.head)
    batches = -(-(len(chain_of(source, source.head)) - 1) // 8)
    assert len(heads) == batches
    assert heads == sorted(heads) and heads[-1] == source.head.height


async def test_headers_stay_on_disk_not_in_memory(source: DevChain) -> None:
    """Only keys are kept while walking back: the headers are in the store before any message is."""
    follower = Follower(source, batch=4)
    walked: list[int] = []
    original = follower.syncer._apply_full

    def spy(blocks: Any, above: Any) -> TipSet:
        if not walked:
            # When the first tipset is validated every header of the target's chain is stored.
            for ts in chain_of(source, source.head)[1:]:
                assert follower.dc.chain.load_tipset(ts.key) == ts
            walked.append(len(above))
        return original(blocks, above)

    follower.syncer._apply_full = spy  # type: ignore[method-assign]
    await follower.sync(source.head)
    assert walked == [len(chain_of(source, source.head)) - 2]
    assert follower.dc.head == source.head


async def test_reorg_onto_a_heavier_fork(source: DevChain) -> None:
    follower = Follower(source)
    common = chain_of(source, source.head)[-10]
    await follower.sync(common)
    # Our side: one tipset of one miner. Their side: three tipsets of both (source already has them).
    mine = follower.dc
    mine.next_tipset(miners=[MINER_A])
    ours = mine.head
    assert ours not in chain_of(source, source.head)
    changes = mine.chain.subscribe(buffer=64)
    await follower.sync(source.head)
    assert mine.head == source.head
    seen: list[HeadChange] = []
    with trio.move_on_after(1):
        while not any(c.type == APPLY and c.tipset == source.head for c in seen):
            seen.extend(await changes.receive())
    assert [c.tipset for c in seen if c.type == REVERT] == [ours]
    applied = [c.tipset for c in seen if c.type == APPLY]
    assert applied == [ts for ts in chain_of(source, source.head) if ts.height > common.height]


async def test_a_lighter_fork_does_not_take_the_head(source: DevChain) -> None:
    follower = Follower(source)
    await follower.sync(source.head)
    # A fork of one tipset from five below: validated, but lighter than the head, so not taken.
    lighter = await _fork_from(source, chain_of(source, source.head)[-6], 1, miners=[MINER_A])
    follower.syncer.exchange = StoreExchange(lighter.chain)
    await follower.sync(lighter.head)
    assert follower.dc.head == source.head
    assert follower.syncer.is_validated(lighter.head)


async def _fork_from(source: DevChain, base: TipSet, tipsets: int, miners: list[Address]) -> DevChain:
    """A chain with source's blocks up to base, then tipsets of its own."""
    fork = DevChain.new()
    for ts in chain_of(source, base)[1:]:
        for header in ts.blocks:
            bls, secpk = source.chain.messages_for_block(header)
            fork.chain.put_messages(bls, secpk)
        fork.sm.state_of(ts)
        fork.chain.set_head(ts, weight_of(fork.store, ts))
    for _ in range(tipsets):
        fork.next_tipset(miners=miners)
    return fork


async def test_a_fork_past_finality_is_refused(source: DevChain) -> None:
    finality = source.policy.chain_finality
    follower = Follower(source)
    base = chain_of(source, source.head)[1]
    await follower.sync(base)
    for _ in range(finality + 3):
        follower.dc.next_tipset(miners=[MINER_A])
    head = follower.dc.head
    theirs = await _fork_from(source, base, finality + 10, miners=[MINER_A, MINER_B])
    assert weight_of(theirs.store, theirs.head) > follower.dc.chain.head_weight()
    follower.exchange = StoreExchange(theirs.chain)
    follower.syncer.exchange = follower.exchange
    with pytest.raises(InvalidChain, match="more than 20 epochs below our head"):
        await follower.sync(theirs.head)
    assert follower.dc.head == head
    assert "fork past finality" in str(follower.syncer.bad.get(theirs.head.cids[0]))
    assert follower.state.snapshot().stage == SyncStage.ERRORED


def _next_block(dc: DevChain, messages: Sequence[SignedMessage] = ()) -> FullBlock:
    """MINER_A's block at the first epoch after dc's head that it wins."""
    for epoch in range(dc.head.height + 1, dc.head.height + 30):
        block = dc.produce(MINER_A, epoch, messages=messages)
        if block is not None:
            return block
    raise AssertionError(f"{MINER_A} won no epoch after {dc.head.height}")


def _bad_head(dc: DevChain, bad: FullBlock, *, then: int) -> None:
    """bad made dc's head without validation, with `then` valid tipsets of MINER_A on top of it."""
    ts = TipSet((bad.header,))
    dc.chain.put_messages(bad.bls_messages, bad.secp_messages)
    dc.chain.set_head(ts, weight_of(dc.store, ts))
    dc.auto_post = False
    for _ in range(then):
        dc.next_tipset(miners=[MINER_A])


def _tampered(
    change: Callable[[DevChain, FullBlock], dict[str, Any]], *, at: int, then: int
) -> tuple[DevChain, FullBlock]:
    """A chain whose block at the first epoch after `at` breaks a rule (re-signed by the worker), with
    `then` valid tipsets on top of it."""
    dc = build(at)
    block = _next_block(dc)
    bad = resigned(block, dc.miner(MINER_A).worker_key, **change(dc, block))
    _bad_head(dc, bad, then=then)
    return dc, bad


async def test_a_bad_state_root_is_found_at_validation() -> None:
    bad_chain, bad = _tampered(
        lambda dc, b: {"parent_state_root": dc.genesis.header.parent_state_root}, at=12, then=4
    )
    follower = Follower(bad_chain, batch=4)
    with pytest.raises(InvalidChain, match="StateRootMismatch"):
        await follower.sync(bad_chain.head)
    bad_cache = follower.syncer.bad
    assert "StateRootMismatch" in str(bad_cache.get(bad.cid()))
    above = [ts for ts in chain_of(bad_chain, bad_chain.head) if ts.height > bad.header.height]
    assert len(above) == 4
    for ts in above:
        reason = bad_cache.get(ts.cids[0])
        assert reason is not None and reason.original is not None
        assert f"linked to {bad.cid()}" in str(reason) and "StateRootMismatch" in str(reason)
    # The valid prefix was taken batch by batch; nothing at or above the bad block.
    head = follower.dc.head
    assert 0 < head.height < bad.header.height and head in chain_of(bad_chain, bad_chain.head)
    assert follower.penalized and follower.penalized[0][0] == PEER
    snap = follower.state.snapshot()
    assert snap.stage == SyncStage.ERRORED and "StateRootMismatch" in snap.message
    # Announced again, the target is refused at once, from the cache.
    asked = len(follower.exchange.message_requests)
    with pytest.raises(InvalidChain, match="marked bad"):
        await follower.sync(bad_chain.head)
    assert len(follower.exchange.message_requests) == asked


async def test_a_bad_header_is_found_before_anything_executes() -> None:
    bad_chain, bad = _tampered(lambda dc, b: {"timestamp": b.header.timestamp + 1}, at=6, then=3)
    follower = Follower(bad_chain)
    with pytest.raises(InvalidChain, match="WrongTimestamp"):
        await follower.sync(bad_chain.head)
    assert follower.syncer.tipsets_applied == 0
    assert follower.dc.head.height == 0
    assert follower.exchange.message_requests == []
    assert "WrongTimestamp" in str(follower.syncer.bad.get(bad.cid()))


async def test_a_network_failure_marks_nothing(source: DevChain) -> None:
    follower = Follower(source, retry_pauses=SHORT_PAUSES)  # the syncer's own add up to 14 s
    follower.exchange.online = False
    with pytest.raises(SyncError, match="connection refused") as raised:
        await follower.sync(source.head)
    assert len(follower.exchange.header_requests) == len(SHORT_PAUSES) + 1  # tried again after each
    assert not isinstance(raised.value, InvalidChain)
    assert len(follower.syncer.bad) == 0
    assert follower.penalized == []
    snap = follower.state.snapshot()
    assert snap.stage == SyncStage.ERRORED and "connection refused" in snap.message
    follower.exchange.online = True
    await follower.sync(source.head)
    assert follower.dc.head == source.head


async def test_sibling_blocks_form_one_tipset() -> None:
    dc = build(3)
    two = dc.next_tipset(miners=[MINER_A, MINER_B])
    while len(two.blocks) < 2:
        two = dc.next_tipset(miners=[MINER_A, MINER_B])
    follower = Follower(dc)
    await follower.sync(dc.chain.load_tipset(two.parents))
    first, second = (TipSet((b,)) for b in two.blocks)
    await follower.sync(first)
    assert follower.dc.head == first
    await follower.sync(second)
    assert follower.dc.head == two
    assert follower.dc.chain.head_weight() == weight_of(dc.store, two)
