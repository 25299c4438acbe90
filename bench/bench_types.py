"""Chain types and signatures: message CIDs, signature checks (BLS one by one and in batches, as the
check worker of a catch-up does them), block header CBOR."""

import time
from collections.abc import Callable
from typing import Final

from bench.common import per_second, report, seconds, section
from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.signature import (
    Signature,
    SigType,
    aggregate_bls,
    verify_bls,
    verify_bls_aggregate,
    verify_bls_batch,
)
from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.types.address import Address
from chain.types.beacon import BeaconEntry
from chain.types.block import BlockHeader, PoStProof
from chain.types.election import ElectionProof, Ticket
from chain.types.message import Message, SignedMessage, sign_message


def _transfer(sender: PrivateKey, nonce: int) -> Message:
    return Message(
        to=Address.new_id(1000 + nonce % 7),
        from_=Address.of_key(sender),
        nonce=nonce,
        value=10**18,
        gas_limit=1_000_000,
        gas_fee_cap=100_000,
        gas_premium=1_000,
        method=0,
    )


def _mainnet_shaped_header() -> BlockHeader:
    # Sizes as on mainnet: BLS VRF proofs (96 bytes), two beacon entries, one 192-byte Winning PoSt
    # proof, three parents, BLS aggregate and block signature.
    link = CID.hash_of(b"link")
    return BlockHeader(
        miner=Address.new_id(1234),
        ticket=Ticket(b"\xaa" * 96),
        election_proof=ElectionProof(1, b"\xbb" * 96),
        beacon_entries=(BeaconEntry(12345, b"\xcc" * 96), BeaconEntry(12346, b"\xdd" * 96)),
        win_post_proof=(PoStProof(3, b"\xee" * 192),),
        parents=(link, CID.hash_of(b"p2"), CID.hash_of(b"p3")),
        parent_weight=1 << 40,
        height=1_234_567,
        parent_state_root=CID.hash_of(b"state"),
        parent_message_receipts=CID.hash_of(b"receipts"),
        messages=CID.hash_of(b"messages"),
        bls_aggregate=Signature(SigType.BLS, b"\x11" * 96),
        timestamp=1_700_000_000,
        block_sig=Signature(SigType.BLS, b"\x22" * 96),
        parent_base_fee=100,
    )


def run() -> None:
    section("Chain types: messages and signatures")
    secp = PrivateKey.derive(KeyType.SECP256K1, b"bench secp")
    message = _transfer(secp, 1)
    data = message.to_bytes()
    n = [0]

    def fresh_cid() -> CID:
        n[0] += 1
        return _transfer(secp, n[0]).cid()

    report("message CID (build + encode + hash)", per_second(fresh_cid), "msg/s")
    report("message CID (decode bytes + hash)", per_second(lambda: Message.from_bytes(data).cid()), "msg/s")

    signed = sign_message(message, secp)
    sender = Address.of_key(secp)
    signed_bytes = signed.to_bytes()
    report(
        "secp256k1 verify (message CID known)", per_second(lambda: signed.verify_signature(sender)), "sig/s"
    )

    def decode_and_verify() -> None:
        received = SignedMessage.from_bytes(signed_bytes)
        received.verify_signature(sender)
        received.cid()

    report("secp256k1 signed message decode + verify + CID", per_second(decode_and_verify), "msg/s")

    bls = PrivateKey.derive(KeyType.BLS, b"bench bls")
    bls_signed = sign_message(_transfer(bls, 1), bls)
    bls_sender = Address.of_key(bls)
    report(
        "BLS verify (one message)", seconds(lambda: bls_signed.verify_signature(bls_sender), 5) * 1e3, "ms"
    )

    keys = [PrivateKey.derive(KeyType.BLS, i.to_bytes(2, "big")) for i in range(100)]
    batch = [sign_message(_transfer(key, i), key) for i, key in enumerate(keys)]
    aggregate = aggregate_bls([s.signature for s in batch])
    public_keys = [key.public_key for key in keys]
    cids = [s.message.cid().bytes for s in batch]
    report(
        "BLS aggregate verify (100 messages)",
        seconds(lambda: verify_bls_aggregate(aggregate, public_keys, cids), 3) * 1e3,
        "ms",
    )

    _bls_checks()

    section("Chain types: block header DAG-CBOR (mainnet-shaped)")
    header = _mainnet_shaped_header()
    encoded = dagcbor.encode(header.to_cbor())
    report(
        "BlockHeader encode (to_cbor + dagcbor.encode)",
        per_second(lambda: dagcbor.encode(header.to_cbor())),
        "ops/s",
        f"{len(encoded)} bytes",
    )
    report(
        "BlockHeader decode (dagcbor.decode + from_cbor)",
        per_second(lambda: BlockHeader.from_cbor(dagcbor.decode(encoded))),
        "ops/s",
    )
    report("BlockHeader decode + CID", per_second(lambda: BlockHeader.from_bytes(encoded).cid()), "ops/s")


BLS_CHECKS: Final = 192  # signatures per timing run


def _cpu_ms_per_signature(fn: Callable[[], object], count: int) -> float:
    """Best CPU time of fn over three runs, per signature: the figure a busy shared machine blurs least."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best / count * 1e3


def _bls_checks() -> None:
    """The BLS checks of a catch-up's check worker (block signature, ticket and election proof by a
    miner's worker key): one by one with blspy, then verify_bls_batch over batches of a tipset's three
    and of the sizes the worker reaches when it takes several tipsets' hand-offs together."""
    section("BLS checks (worker key signatures, as the check worker verifies them)")
    keys = [PrivateKey.derive(KeyType.BLS, f"bench worker {i}".encode()) for i in range(3)]
    items = []
    for i in range(BLS_CHECKS):
        key = keys[i // 3 % len(keys)]  # a block's three signatures by its miner's worker key
        data = f"signing bytes {i}".encode().ljust(200, b".")
        items.append((key.sign(data).data, key.public_key, data))

    def one_by_one() -> None:
        for item in items:
            assert verify_bls(*item)

    single = _cpu_ms_per_signature(one_by_one, len(items))
    report("BLS verify one by one (blspy)", single, "ms CPU/sig")
    for size in (3, 24, 64):

        def batched(size: int = size) -> None:
            for start in range(0, len(items), size):
                assert all(verify_bls_batch(items[start : start + size]))

        cost = _cpu_ms_per_signature(batched, len(items))
        report(f"BLS verify_bls_batch of {size}", cost, "ms CPU/sig", f"{single / cost:.2f}x one by one")
    bad = list(items[:24])
    bad[5] = (bad[6][0], *bad[5][1:])  # a signature over other bytes: the batch fails, then one by one
    assert verify_bls_batch(bad) == [i != 5 for i in range(len(bad))]
    cost = _cpu_ms_per_signature(lambda: verify_bls_batch(bad), len(bad))
    report("BLS verify_bls_batch of 24 with one bad signature", cost, "ms CPU/sig", "batch, then one by one")
