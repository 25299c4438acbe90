"""Pure checks done once per node and ahead in a worker process (chain/consensus/verified.py): what is
reused, what the worker process answers, that a failure is always checked again here with its own
error, and that the worker process is stopped."""

import multiprocessing
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Final

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
    from_wire,
    hand_off,
    run_checks,
    verified,
)
from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.signature import SignatureError, verify_bls_batch
from chain.types.address import Address
from chain.types.block import PoStProof
from chain.types.election import Ticket
from proofs.post import PublicSector
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


def test_a_checks_key_is_the_digest_of_all_its_inputs() -> None:
    """key() is computed when first asked (the worker never asks): the digest of every input, the same
    for a check and the check its wire form makes again, different when any input differs."""
    checks = _mixed()
    post = WinningPoStCheck(3, bytes(32), (PublicSector(7, bytes(range(32))),), b"proof")
    checks.append(post)
    keys = [check.key() for check in checks]
    assert keys == [check.key() for check in checks]  # asked again: the one computed
    assert keys == [from_wire(check.wire()).key() for check in checks]
    sig = checks[0]
    assert isinstance(sig, SignatureCheck)
    assert sig.key() == verified_module._digest(
        b"sig", bytes((int(sig.signature.type),)), sig.signer.to_bytes(), sig.signature.data, sig.data
    )
    assert post.key() == verified_module._digest(
        b"post", (3).to_bytes(8, "big"), bytes(32), b"proof", (7).to_bytes(8, "big"), bytes(range(32))
    )
    others = [
        replace(sig, data=sig.data + b"!"),
        replace(post, randomness=bytes(31) + b"\x01"),
        replace(post, sectors=(PublicSector(8, bytes(range(32))),)),
        replace(post, proof_bytes=b"proof!"),
    ]
    assert len({*keys, *(check.key() for check in others)}) == len(keys) + len(others)


def test_a_hand_off_is_read_by_the_worker_as_connection_send_would_give_it() -> None:
    checks = _mixed()
    parent, child = multiprocessing.get_context("spawn").Pipe(duplex=True)
    parent.send_bytes(hand_off(checks))
    parent.send([check.wire() for check in checks])
    assert child.recv() == child.recv() == [check.wire() for check in checks]
    parent.close()
    child.close()


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
    for one in hand_offs:
        parent.send(one)
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
    found = v.checks_ahead(dc.sm, block.header, parent)
    assert found is not None
    ahead = found.all()
    assert len(ahead) == 4  # block signature, election proof, ticket, Winning PoSt
    key = dc.miner(block.header.miner).worker_key
    bad_ticket = resigned(block, key, ticket=Ticket(key.sign(b"another input").data))
    bad_found = v.checks_ahead(dc.sm, bad_ticket.header, parent)
    assert bad_found is not None
    bad_checks = bad_found.all()
    checks = verified(dc.sm)
    with VerifierPool() as pool:
        assert (
            checks.submit(pool, [*ahead, *bad_checks]) == 6
        )  # the bad block's PoSt and election are the same
        v.validate_block(dc.sm, dc.beacon, block, now=block.header.timestamp)
        assert checks.ahead >= 4 and checks.reused == 0
        with pytest.raises(v.InvalidTicket, match="not the worker's VRF"):
            v.validate_block(dc.sm, dc.beacon, bad_ticket, now=block.header.timestamp)


def _tampered(block: FullBlock, key: PrivateKey, rule: str) -> FullBlock:
    """block breaking rule, its header signed again by key unless the rule is the signature's."""
    header = block.header
    assert header.election_proof is not None
    if rule == "InvalidBlockSignature":
        return replace(block, header=replace(header, block_sig=key.sign(b"another input")))
    if rule == "InvalidElectionProof":
        forged = replace(header.election_proof, vrf_proof=key.sign(b"another input").data)
        return resigned(block, key, election_proof=forged)
    if rule == "InvalidTicket":
        return resigned(block, key, ticket=Ticket(key.sign(b"another input").data))
    (proof,) = header.win_post_proof
    data = bytearray(proof.proof_bytes)
    data[-1] ^= 0x01  # a byte of the last Merkle path
    return resigned(block, key, win_post_proof=(PoStProof(proof.proof_type, bytes(data)),))


_BUILDERS: Final = (
    "block_signature_check",
    "election_check",
    "ticket_check",
    "winning_post_check",
    "message_signature_check",
)


@pytest.mark.parametrize(
    "rule", ["InvalidBlockSignature", "InvalidElectionProof", "InvalidTicket", "InvalidWinningPoSt"]
)
def test_validation_takes_the_checks_computed_ahead_and_still_refuses_a_bad_one(
    rule: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dc = DevChain.new()
    dc.advance(3)
    good = _winner(dc)
    bad = _tampered(good, dc.miner(good.header.miner).worker_key, rule)
    parent = dc.head
    checks = verified(dc.sm)
    computed = []
    for block in (good, bad):
        found = v.checks_ahead(dc.sm, block.header, parent, block.secp_messages)
        assert found is not None and found.header is not None and found.header.winning_post is not None
        checks.keep_ahead(block.cid(), found)
        computed += found.all()

    def rebuilt(*_args: object) -> None:
        raise AssertionError("validation built a check's inputs again")

    for name in _BUILDERS:  # validation builds none: it takes those computed ahead
        monkeypatch.setattr(v, name, rebuilt)
    with VerifierPool() as pool:
        checks.submit(pool, computed)
        v.validate_block(dc.sm, dc.beacon, good, now=good.header.timestamp)
        with pytest.raises(getattr(v, rule)):
            v.validate_block(dc.sm, dc.beacon, bad, now=good.header.timestamp)
    assert checks.take_ahead(good.cid()) is None and checks.take_ahead(bad.cid()) is None  # taken once
    assert checks.ahead >= 4


def test_checks_computed_ahead_from_other_values_are_not_taken() -> None:
    dc = DevChain.new()
    dc.advance(3)
    good = _winner(dc)
    bad = _tampered(good, dc.miner(good.header.miner).worker_key, "InvalidBlockSignature")
    found = v.checks_ahead(dc.sm, good.header, dc.head)
    assert found is not None and found.header is not None
    # The good block's checks, kept for the bad block as if computed with another worker key: their
    # signature verifies, but validation computes its own (the worker differs) and refuses the block.
    other = Address.of_key(PrivateKey.derive(KeyType.BLS, b"another worker"))
    forged = replace(found, header=replace(found.header, worker=other))
    checks = verified(dc.sm)
    checks.signature(found.header.block_signature)
    checks.keep_ahead(bad.cid(), forged)
    with pytest.raises(v.InvalidBlockSignature, match="does not verify"):
        v.validate_block(dc.sm, dc.beacon, bad, now=good.header.timestamp)


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


def test_the_worker_process_imports_neither_the_state_manager_nor_the_vm() -> None:
    """The worker imports this module for its loop (spawn); the state manager, the VM and the actors
    would cost ~0.6 s of CPU and ~0.9 s of wall time at the start of every sync's worker."""
    code = (
        "import sys, chain.consensus.verified; "
        "print(sorted({m.split('.')[0] + '.' + m.split('.')[1] for m in sys.modules "
        "if m.startswith(('chain.stmgr', 'chain.vm', 'chain.state', 'actors.'))}))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()
    assert found == "[]"
