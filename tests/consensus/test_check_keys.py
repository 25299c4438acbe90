"""A block signature check's key digests the header's CID instead of its 15 KB of signing bytes
(chain/consensus/validation.py block_signature_check): equal keys exactly for the same header and
worker, and the check itself (what runs, here or in the worker process) unchanged."""

from dataclasses import replace

from chain.consensus import validation as v
from chain.consensus.verified import SignatureCheck, Verified
from chain.crypto.keys import KeyType, PrivateKey
from chain.types.address import Address
from chain.types.block import BlockHeader
from chain.types.election import Ticket
from tests.consensus.devchain import DevChain, resigned

OTHER = Address.of_key(PrivateKey.derive(KeyType.BLS, b"test-check-keys"))


def test_block_signature_keys_follow_the_header_and_the_worker() -> None:
    dc = DevChain.new()
    dc.advance(2)
    block = dc.produced[-1]
    header = block.header
    key = dc.miner(header.miner).worker_key
    worker = Address.of_key(key)
    check = v.block_signature_check(header, worker)
    plain = SignatureCheck(check.signature, check.signer, check.data)
    assert check == plain and check.run() and plain.run()
    again = BlockHeader.from_bytes(header.to_bytes())  # decoded afresh: the same header
    assert again is not header and v.block_signature_check(again, worker).key() == check.key()
    # Another worker, another signature, another signed content: other keys, and the outcomes as before.
    assert v.block_signature_check(header, OTHER).key() != check.key()
    assert not v.block_signature_check(header, OTHER).run()
    forged = replace(header, block_sig=key.sign(b"another input"))
    assert v.block_signature_check(forged, worker).key() != check.key()
    assert not v.block_signature_check(forged, worker).run()
    other_ticket = resigned(block, key, ticket=Ticket(key.sign(b"another ticket").data)).header
    assert v.block_signature_check(other_ticket, worker).key() != check.key()
    assert v.block_signature_check(other_ticket, worker).run()
    # What passed is found passed for this header only.
    checks = Verified()
    checks.signature(check)
    assert checks.passed(v.block_signature_check(header, worker))
    assert not checks.passed(v.block_signature_check(forged, worker))
    assert not checks.passed(v.block_signature_check(other_ticket, worker))
