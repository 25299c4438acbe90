"""Pure checks done once per node and ahead in a worker process (chain/consensus/verified.py): what is
reused, what the worker process answers, that a failure is always checked again here with its own
error, and that the worker process is stopped."""

import multiprocessing
import os
from collections.abc import Sequence

import pytest

from chain.consensus import validation as v
from chain.consensus import verified as verified_module
from chain.consensus.fullblock import FullBlock
from chain.consensus.verified import (
    WORKER_BATCH_CHECKS,
    SignatureCheck,
    Verified,
    VerifierPool,
    WinningPoStCheck,
    _serve,
    run_checks,
    verified,
)
from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.signature import SignatureError, verify_bls_batch
from chain.types.address import Address
from chain.types.election import Ticket
from tests.consensus.devchain import DevChain, resigned

KEY = PrivateKey.derive(KeyType.BLS, b"test-verified")
SIGNER = Address.of_key(KEY)


def _check(data: bytes, signed: bytes | None = None) -> SignatureCheck:
    return SignatureCheck(KEY.sign(data if signed is None else signed), SIGNER, data)


def _winner(dc: DevChain) -> FullBlock:
    for epoch in range(dc.head.height + 1, dc.head.height + 20):
        for miner in dc.miners:
            block = dc.produce(miner.id_address, epoch)
            if block is not None:
                return block
    raise AssertionError("nobody wins")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child that exited but was not reaped yet is a zombie: not running.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def test_a_passed_check_is_not_done_again_a_failed_one_always_is() -> None:
    checks = Verified()
    good = _check(b"block header")
    checks.signature(good)
    checks.signature(good)
    assert checks.reused == 1 and len(checks) == 1
    bad = _check(b"block header", signed=b"something else")
    for _ in range(2):
        with pytest.raises(SignatureError, match="does not verify"):
            checks.signature(bad)
    assert len(checks) == 1
    # Every input is in the key: the same signature over other bytes, or by another signer, is new.
    other_signer = Address.of_key(PrivateKey.derive(KeyType.BLS, b"someone else"))
    with pytest.raises(SignatureError):
        checks.signature(SignatureCheck(good.signature, other_signer, good.data))
    assert not checks.passed(SignatureCheck(good.signature, SIGNER, b"block header!"))


def test_nodes_do_not_share_their_checks() -> None:
    first, second = DevChain.new(), DevChain.new()
    assert verified(first.sm) is verified(first.sm)
    assert verified(first.sm) is not verified(second.sm)


def test_the_worker_process_checks_ahead_and_is_stopped() -> None:
    checks = Verified()
    good, bad = _check(b"one"), _check(b"two", signed=b"three")
    post = WinningPoStCheck(3, bytes(32), (), b"not a proof")
    with VerifierPool() as pool:
        pid = pool.pid
        assert pid is not None and _alive(pid)
        assert checks.submit(pool, [good, bad, post, good]) == 3
        assert checks.passed(good) and checks.ahead == 1
        assert not checks.passed(bad)  # the worker found it failing: done here, with its error
        with pytest.raises(SignatureError, match="does not verify"):
            checks.signature(bad)
        with pytest.raises(ValueError):  # the PoSt names no sectors: checked here, raising as before
            checks.winning_post(post)
        assert checks.submit(pool, [good]) == 0  # passed already
        assert checks.submit(pool, [bad]) == 1  # failures are never remembered
        assert not checks.passed(bad)
    assert not _alive(pid)
    assert checks.passed(good)  # what passed stays passed


def _mixed() -> list[SignatureCheck | WinningPoStCheck]:
    secp = PrivateKey.derive(KeyType.SECP256K1, b"test-verified secp")
    return [
        _check(b"one"),
        _check(b"two", signed=b"three"),
        SignatureCheck(secp.sign(b"four"), Address.of_key(secp), b"four"),
        SignatureCheck(secp.sign(b"five"), Address.of_key(secp), b"six"),
        SignatureCheck(KEY.sign(b"seven"), Address.of_key(secp), b"seven"),  # BLS for a secp signer
        WinningPoStCheck(3, bytes(32), (), b"not a proof"),
        _check(b"eight"),
        _check(b"nine", signed=b"nine!"),
    ]


def test_the_worker_gives_each_check_its_own_outcome() -> None:
    checks = _mixed()
    expected = [check.run() for check in checks]
    assert expected == [True, False, True, False, False, False, True, False]
    assert run_checks([check.wire() for check in checks]) == expected


def test_the_worker_batches_hand_offs_waiting_and_answers_each(monkeypatch: pytest.MonkeyPatch) -> None:
    batches: list[int] = []

    def batch(items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
        batches.append(len(items))
        return verify_bls_batch(items)

    monkeypatch.setattr(verified_module, "verify_bls_batch", batch)
    checks = _mixed()
    hand_offs = [[c.wire() for c in checks[:2]], [], [c.wire() for c in checks[2:]], [checks[0].wire()]]
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=True)
    for hand_off in hand_offs:
        parent.send(hand_off)
    parent.send(None)
    _serve(child)  # here, in this process: everything is waiting in the pipe, so one batch
    answers = [parent.recv() for _ in hand_offs]
    assert answers == [[True, False], [], [c.run() for c in checks[2:]], [True]]
    assert not parent.poll(0)
    assert batches == [5]  # the BLS signatures of all four, signed by BLS addresses
    assert sum(map(len, hand_offs)) < WORKER_BATCH_CHECKS
    parent.close()
    child.close()


def test_validation_takes_the_answers_of_checks_done_ahead() -> None:
    dc = DevChain.new()
    dc.advance(3)
    block = _winner(dc)
    parent = dc.head
    ahead = v.checks_ahead(dc.sm, block.header, parent)
    assert ahead is not None and len(ahead) == 4  # block signature, election proof, ticket, Winning PoSt
    key = dc.miner(block.header.miner).worker_key
    bad_ticket = resigned(block, key, ticket=Ticket(key.sign(b"another input").data))
    bad_checks = v.checks_ahead(dc.sm, bad_ticket.header, parent)
    assert bad_checks is not None
    checks = verified(dc.sm)
    with VerifierPool() as pool:
        assert (
            checks.submit(pool, [*ahead, *bad_checks]) == 6
        )  # the bad block's PoSt and election are the same
        v.validate_block(dc.sm, dc.beacon, block, now=block.header.timestamp)
        assert checks.ahead >= 4 and checks.reused == 0
        with pytest.raises(v.InvalidTicket, match="not the worker's VRF"):
            v.validate_block(dc.sm, dc.beacon, bad_ticket, now=block.header.timestamp)


def test_no_checks_ahead_before_the_lookback_state_exists() -> None:
    dc = DevChain.new()
    dc.advance(dc.policy.chain_finality + 2)
    block = _winner(dc)
    found = dc.sm.lookback_without_execution(dc.head, block.header.height)
    assert found is not None
    assert v.checks_ahead(dc.sm, block.header, dc.head) is not None
    # The same chain on a store that lacks the lookback state (its tipset not executed there).
    store = dc.store
    data = store.get(found[1])
    assert data is not None
    store.delete(found[1])
    try:
        assert v.checks_ahead(dc.sm, block.header, dc.head) is None
    finally:
        store.put(found[1], data)
