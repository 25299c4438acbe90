"""The syncer's parts on their own: the bad block cache, header checks, the tipset tracker, the gossip
checks of node/chainsync and the mapping of the message pool's refusals onto gossip verdicts."""

import itertools
from collections.abc import Sequence
from dataclasses import replace
from typing import Final

import pytest

from chain.consensus import verified as verified_module
from chain.consensus.validation import BlockFromFuture, InvalidHeight
from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.signature import verify_bls_batch
from chain.encoding.cid import CID
from chain.mpool.errors import (
    BaseFeeLowerBound,
    DuplicateMessage,
    GasFeeCapTooLow,
    InvalidMessage,
    InvalidSignature,
    MessageTooBig,
    NonceGap,
    NonceTooLow,
    NotEnoughFunds,
    ReplaceByFeeTooLow,
    SenderInvalid,
    TooManyPending,
)
from chain.sync.badblocks import BadBlockCache
from chain.sync.headers import BadHeader, check_junction, check_link, check_tipset_headers
from chain.sync.syncer import Syncer
from chain.sync.tracker import TipSetTracker
from chain.types.address import Address
from chain.types.beacon import BeaconEntry
from chain.types.tipset import TipSet
from node.chainsync.checks import check_block_header, message_verdict
from node.p2p.gossip import Ignore, Reject
from tests.consensus.devchain import DevChain, resigned
from tests.consensus.test_verified import _tampered as tampered
from tests.sync.store_exchange import StoreExchange
from tests.sync.test_syncer import MINER_A, build, chain_of

NOW: Final = 2e9


def cid(n: int) -> CID:
    return CID.hash_of(n.to_bytes(4, "big"))


@pytest.fixture(scope="module")
def dc() -> DevChain:
    return build(12)


# -- the bad block cache ---------------------------------------------------------------------------------


def test_bad_block_reasons_link_to_the_original() -> None:
    cache = BadBlockCache(size=3, clock=lambda: 100.0)
    original = cache.mark([cid(1)], "StateRootMismatch: wrong", (cid(1), cid(2)))
    cache.mark_linked([cid(3)], original, f"linked to {cid(1)}")
    cache.mark_linked([cid(4)], cache.get(cid(3)), "chain contained it")  # type: ignore[arg-type]
    linked = cache.get(cid(4))
    assert linked is not None and linked.original == original  # always the first cause
    assert str(linked) == f"chain contained it caused by: [{cid(1)},{cid(2)}] StateRootMismatch: wrong"
    assert original.at == 100.0 and cid(1) in cache
    cache.mark([cid(5)], "another")  # beyond 3 entries the oldest goes
    assert len(cache) == 3 and cid(1) not in cache and cid(5) in cache
    cache.remove(cid(5))
    assert cid(5) not in cache
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError):
        BadBlockCache(size=0)


# -- header checks ------------------------------------------------------------------------------------


def test_headers_of_a_real_chain_pass(dc: DevChain) -> None:
    chain = chain_of(dc, dc.head)
    for parent, child in itertools.pairwise(chain[1:]):
        check_tipset_headers(child, now=NOW)
        check_link(child, parent, dc.policy, dc.beacon)
        check_junction(child, dc.chain.tipset_weight(parent))  # type: ignore[arg-type]


def test_each_header_rule(dc: DevChain) -> None:
    chain = chain_of(dc, dc.head)
    parent, child = chain[-2], chain[-1]
    header = child.blocks[0]

    def linked(**changes: object) -> BadHeader:
        bad = TipSet((replace(header, **changes),))  # type: ignore[arg-type]
        with pytest.raises(BadHeader) as raised:
            check_tipset_headers(bad, now=NOW)
            check_link(bad, parent, dc.policy, dc.beacon)
        assert raised.value.block == bad.cids[0]
        return raised.value

    assert "WrongTimestamp" in str(linked(timestamp=header.timestamp + 1))
    assert "ParentWeightMismatch" in str(linked(parent_weight=parent.parent_weight - 1))
    rounds = linked(beacon_entries=(*header.beacon_entries, BeaconEntry(10**6, b"x")))
    assert "InvalidBeaconEntries" in str(rounds) and not rounds.temporal
    assert "BlockSyntaxError" in str(linked(election_proof=None))
    future = linked(timestamp=int(NOW) + 100)
    assert future.temporal and isinstance(future.error, BlockFromFuture)
    with pytest.raises(BadHeader) as lower:
        check_link(parent, child, dc.policy, dc.beacon)
    assert isinstance(lower.value.error, InvalidHeight)
    with pytest.raises(BadHeader, match="ParentWeightMismatch"):
        check_junction(child, child.parent_weight + 1)


# -- the tipset tracker -----------------------------------------------------------------------------------


def test_tracker_expands_with_one_block_per_miner(dc: DevChain) -> None:
    two = next(ts for ts in reversed(chain_of(dc, dc.head)) if len(ts.blocks) == 2)
    a, b = two.blocks
    tracker = TipSetTracker(keep_epochs=5)
    single = TipSet((a,))
    assert tracker.expand(single) == single
    tracker.add(a)
    tracker.add(b)
    assert tracker.expand(single) == two
    # A second block of a miner already in the tipset is left out.
    twin = resigned(dc.produced[-1], dc.miner(b.miner).worker_key, parents=b.parents, height=b.height)
    tracker.add(replace(twin.header, miner=b.miner))
    assert tracker.expand(single) == two
    assert len(tracker) == 2
    # Heights far below the highest tracked one are forgotten.
    tracker.add(replace(a, height=a.height + 10))
    assert tracker.expand(single) == single


def test_tracker_keeps_the_heights_within_keep_epochs_of_the_highest(dc: DevChain) -> None:
    # Blocks one height at a time (a catch-up), a jump far ahead, and a block arriving below the
    # floor: what is kept is what a scan of every slot would keep.
    block = dc.head.blocks[0]
    tracker = TipSetTracker(keep_epochs=3)
    for height in range(1, 11):
        tracker.add(replace(block, height=height))

    def tracked(height: int) -> bool:
        other = TipSet((replace(block, height=height, miner=Address.new_id(9)),))
        return len(tracker.expand(other).blocks) == 2

    assert [h for h in range(1, 11) if tracked(h)] == [7, 8, 9, 10]
    assert len(tracker) == 4
    tracker.add(replace(block, height=2))  # below the floor: kept until the highest moves on
    assert len(tracker) == 5
    tracker.add(replace(block, height=1000))
    assert len(tracker) == 1
    tracker.add(replace(block, height=1001))
    assert len(tracker) == 2


# -- gossip checks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (NonceTooLow(5, 3), Ignore),
        (NonceGap(9, 3), Ignore),
        (NotEnoughFunds(10, 5, including_pending=False), Ignore),
        (GasFeeCapTooLow(1, 100), Ignore),
        (BaseFeeLowerBound(1, 100), Ignore),
        (TooManyPending("t01", 1000), Ignore),
        (ReplaceByFeeTooLow("t01", 1, 125, 100), Ignore),
        (DuplicateMessage("t01", 1), Ignore),
        (MessageTooBig(70_000, 65_536), Reject),
        (InvalidMessage("gas limit too low"), Reject),
        (InvalidSignature("does not verify"), Reject),
        (SenderInvalid("actor not found"), Reject),
    ],
)
def test_mpool_refusals_map_as_lotus(error: Exception, verdict: type) -> None:
    judged = message_verdict(error)  # type: ignore[arg-type]
    assert type(judged) is verdict
    assert type(error).__name__ in str(judged)


def _known(dc: DevChain) -> object:
    """What the sync service passes: whether a parent tipset was validated (Syncer.is_validated_key)."""
    return Syncer(dc.chain, dc.sm, dc.beacon, StoreExchange(dc.chain)).is_validated_key


def test_gossip_block_checks(dc: DevChain) -> None:
    block = next(b for e in range(dc.head.height + 1, dc.head.height + 30) if (b := dc.produce(MINER_A, e)))
    worker = dc.miner(MINER_A).worker_key
    bad = BadBlockCache()

    def check(header: object, head: TipSet | None = None, **kw: object) -> None:
        check_block_header(dc.sm, dc.beacon, bad, header, head or dc.head, _known(dc), now=NOW, **kw)  # type: ignore[arg-type]

    check(block.header)
    stranger = resigned(block, PrivateKey.derive(KeyType.BLS, b"stranger")).header
    with pytest.raises(Reject, match="InvalidBlockSignature"):
        check(stranger)
    assert bad.get(stranger.cid()) is not None
    with pytest.raises(Reject, match="marked bad"):
        check(stranger)
    with pytest.raises(Ignore, match="ahead of the clock"):
        check_block_header(
            dc.sm, dc.beacon, bad, block.header, dc.head, _known(dc), now=block.header.timestamp - 100
        )
    # Parents unknown (a fork we have not seen): the miner and its signature, on our head.
    orphan = resigned(block, worker, parents=(cid(7),)).header
    check(orphan)
    with pytest.raises(Reject, match="InvalidBlockSignature"):
        check(resigned(block, PrivateKey.derive(KeyType.BLS, b"x"), parents=(cid(7),)).header)
    nobody = resigned(block, worker, parents=(cid(7),), miner=Address.new_id(4242)).header
    with pytest.raises(Reject, match="NotAMiner"):
        check(nobody)
    far = replace(nobody, height=dc.head.height + dc.policy.chain_finality + 5)
    with pytest.raises(Ignore, match="NotAMiner"):  # far ahead of us: our view may be stale
        check(far)
    # A block on a bad parent is rejected and remembered as linked.
    bad.mark([dc.head.cids[0]], "manually marked bad")
    with pytest.raises(Reject, match="builds on"):
        check(block.header)
    assert "linked to" in str(bad.get(block.cid()))


@pytest.mark.parametrize("rule", ["InvalidBlockSignature", "InvalidElectionProof", "InvalidTicket"])
def test_gossip_verifies_a_headers_signatures_as_one_batch_and_still_refuses_a_bad_one(
    dc: DevChain, rule: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []

    def batch(items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
        batches.append(len(items))
        return verify_bls_batch(items)

    block = next(b for e in range(dc.head.height + 1, dc.head.height + 30) if (b := dc.produce(MINER_A, e)))
    monkeypatch.setattr(verified_module, "verify_bls_batch", batch)
    # A node that has checked nothing yet (making the block checked its signatures in this one).
    monkeypatch.setitem(verified_module._registry, dc.sm, verified_module.Verified())
    bad = BadBlockCache()
    check_block_header(dc.sm, dc.beacon, bad, block.header, dc.head, _known(dc), now=NOW)  # type: ignore[arg-type]
    assert batches == [3]  # the block's, the election proof's and the ticket's: one batch
    checks = verified_module.verified(dc.sm)
    assert checks.take_ahead(block.cid()) is not None  # kept for the block's full validation
    assert checks.reused == 3  # validate_header found the three passed
    forged = tampered(block, dc.miner(MINER_A).worker_key, rule)
    with pytest.raises(Reject, match=rule):
        check_block_header(dc.sm, dc.beacon, bad, forged.header, dc.head, _known(dc), now=NOW)  # type: ignore[arg-type]
    assert len(batches) == 2 and batches[1] >= 1  # the new signatures (the others passed before)
    assert rule in str(bad.get(forged.cid()))
