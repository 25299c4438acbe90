"""Catch-ups with the blocks' signature and PoSt checks run ahead in a worker process (chain/sync/ahead.py):
the same chain results, the checks really come from the worker, and a bad block is still refused with
its own rule's error."""

import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from typing import ClassVar, Final

import pytest
import trio

from chain.consensus.fullblock import FullBlock
from chain.consensus.verified import CHECK_WORKER_NAME, Check, VerifierPool, verified
from chain.sync import syncer as syncer_module
from chain.sync.ahead import HAND_OFF_CHECKS, HAND_OFF_LEAD
from chain.sync.state import SyncerState
from chain.sync.syncer import InvalidChain, Syncer
from chain.types.address import Address
from chain.types.message import SignedMessage, sign_message
from tests.consensus.devchain import ALICE, BOB, CAROL, DevChain
from tests.consensus.test_verified import _tampered as tampered
from tests.sync.store_exchange import StoreExchange
from tests.sync.test_syncer import MINER_A, PEER, _bad_head, _next_block, build, chain_of

HEIGHT: Final = 45  # past the devnet's finality of 20: lookbacks move with the chain


def _follower(peer: DevChain) -> tuple[DevChain, Syncer]:
    dc = DevChain.new()
    syncer = Syncer(
        dc.chain,
        dc.sm,
        dc.beacon,
        StoreExchange(peer.chain),
        message_batch=16,
        clock=lambda: 2e9,
        check_ahead_from=1,
    )
    return dc, syncer


async def _refused_ahead(bad_chain: DevChain, bad: FullBlock, rule: str) -> Syncer:
    """A follower's catch-up to bad_chain, checked ahead, fails with rule's InvalidChain and stops below
    bad; its syncer."""
    dc, syncer = _follower(bad_chain)
    with pytest.raises(InvalidChain, match=rule):
        await syncer.sync(bad_chain.head, [PEER], SyncerState(1))
    assert 0 < dc.head.height < bad.header.height
    assert syncer.checks_ahead > 0
    return syncer


def _checkers() -> list[multiprocessing.process.BaseProcess]:
    """This process's live check workers (active_children also reaps those that ended)."""
    return [p for p in multiprocessing.active_children() if p.name == CHECK_WORKER_NAME]


async def _first_checker() -> multiprocessing.process.BaseProcess:
    with trio.fail_after(60):
        while not _checkers():
            await trio.sleep(0.005)
    (worker,) = _checkers()
    return worker


async def test_a_catch_up_checks_ahead_and_ends_where_the_peer_is() -> None:
    source = build(HEIGHT)
    dc, syncer = _follower(source)
    await syncer.sync(source.head, [PEER], SyncerState(1))
    assert dc.head == source.head
    assert dc.chain.head_weight() == source.chain.head_weight()
    for ts in chain_of(source, source.head)[-3:]:
        assert dc.sm.state_of(ts) == source.sm.state_of(ts)
    # Blocks above height 1: at height 1 the lookback is the genesis's own state, which validation
    # takes from executing it (checks_ahead computes nothing that needs execution).
    above = chain_of(source, source.head)[2:]
    blocks = sum(len(ts.blocks) for ts in above)
    # A message in two blocks of a tipset is one check, handed over once and found twice.
    secp = [m.cid() for ts in above for h in ts.blocks for m in source.chain.messages_for_block(h)[1]]
    signed = len(set(secp))
    assert 0 < signed < len(secp)
    checks = verified(dc.sm)
    # Four checks per block (signature, election proof, ticket, Winning PoSt) and one per secp256k1
    # message, all answered by the worker process (validation waits for those still under way).
    assert syncer.checks_ahead == 4 * blocks + signed
    assert checks.ahead == 4 * blocks + len(secp)
    assert syncer.timings.checks_ahead > 0


class _CountingPool(VerifierPool):
    """A VerifierPool that counts the checks of each hand-off."""

    hand_offs: ClassVar[list[int]] = []

    def run(self, checks: Sequence[Check], done: Callable[[Sequence[bool] | None], None]) -> int:
        if checks:
            self.hand_offs.append(len(checks))
        return super().run(checks, done)


async def test_tipsets_far_ahead_go_over_together_and_validation_never_finds_one_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Small tipsets' checks are held back into hand-offs of several while HAND_OFF_LEAD tipsets are
    ahead; every check still comes from the worker (none is still held when its block is validated)."""
    monkeypatch.setattr(syncer_module, "VerifierPool", _CountingPool)
    monkeypatch.setattr(_CountingPool, "hand_offs", [])
    source = build(HEIGHT)
    dc, syncer = _follower(source)
    await syncer.sync(source.head, [PEER], SyncerState(1))
    assert dc.head == source.head
    above = chain_of(source, source.head)[2:]
    secp = [m.cid() for ts in above for h in ts.blocks for m in source.chain.messages_for_block(h)[1]]
    blocks = sum(len(ts.blocks) for ts in above)
    assert verified(dc.sm).ahead == 4 * blocks + len(secp)  # all answered by the worker
    hand_offs = _CountingPool.hand_offs
    assert sum(hand_offs) == syncer.checks_ahead
    assert len(hand_offs) < len(above) - HAND_OFF_LEAD  # grouped, past the first few
    largest_tipset = max(4 * len(ts.blocks) + 10 for ts in above)
    assert max(hand_offs) < HAND_OFF_CHECKS + largest_tipset


@pytest.mark.parametrize(
    "rule", ["InvalidBlockSignature", "InvalidElectionProof", "InvalidTicket", "InvalidWinningPoSt"]
)
async def test_a_bad_header_checked_ahead_is_refused_with_its_rule(rule: str) -> None:
    # Validation takes the header's checks computed ahead; the worker process found this one failing,
    # validation checks it again and names the rule.
    bad_chain = build(24)
    bad = tampered(_next_block(bad_chain), bad_chain.miner(MINER_A).worker_key, rule)
    _bad_head(bad_chain, bad, then=3)
    syncer = await _refused_ahead(bad_chain, bad, rule)
    assert rule in str(syncer.bad.get(bad.cid()))


async def test_a_forged_message_signature_checked_ahead_is_refused_with_its_rule() -> None:
    # A block whose secp256k1 message is signed by another key than its sender's: the worker process
    # finds its signature failing, validation checks it again and names the rule.
    bad_chain = build(24)
    (msg,) = bad_chain.transfers(ALICE, Address.of_key(BOB), 1, value=7)
    forged = SignedMessage(msg.message, sign_message(msg.message, CAROL).signature)
    bad = _next_block(bad_chain, [forged])
    assert bad.secp_messages == (forged,)
    _bad_head(bad_chain, bad, then=3)
    syncer = await _refused_ahead(bad_chain, bad, "InvalidMessageSignature")
    assert "not made by the signer's key" in str(syncer.bad.get(bad.cid()))


async def test_a_cancelled_catch_up_stops_its_worker_process() -> None:
    source = build(HEIGHT)
    dc, syncer = _follower(source)
    assert not _checkers()
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(syncer.sync, source.head, [PEER], SyncerState(1))
            worker = await _first_checker()
            scope.cancel()
    assert scope.cancelled_caught
    assert not worker.is_alive() and not _checkers()
    assert dc.head.height < source.head.height


async def test_a_catch_up_whose_worker_dies_checks_here_and_ends_where_the_peer_is() -> None:
    source = build(HEIGHT)
    dc, syncer = _follower(source)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(syncer.sync, source.head, [PEER], SyncerState(1))
            worker = await _first_checker()
            assert worker.pid is not None
            os.kill(worker.pid, signal.SIGKILL)
    finally:
        for left in _checkers():  # never outlives the test, whatever failed
            left.kill()
    assert dc.head == source.head
    assert dc.chain.head_weight() == source.chain.head_weight()
    assert not _checkers()
