"""The consensus building blocks on their own: the mock beacon (Lotus's rounds and data), the base fee
of a tipset (its arithmetic is tested with chain/vm/gas.py), weights, VRFs and win counts."""

import hashlib

import pytest

from chain.consensus.base_fee import base_fee_of, compute_base_fee, remember_base_fee, unique_gas_limit
from chain.consensus.beacon import (
    MOCK_ROUND_OFFSET,
    InvalidBeaconEntry,
    MockBeacon,
    beacon_entries_for_block,
    check_beacon_entries,
)
from chain.consensus.election import (
    InvalidWorker,
    compute_vrf,
    election_randomness,
    miner_entropy,
    ticket_randomness,
    verify_vrf,
    win_count,
    worker_key_address,
)
from chain.consensus.expected import tipset_weight
from chain.consensus.weight import weight_of
from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.randomness import DomainSeparationTag, draw_randomness
from chain.crypto.signature import SignatureError
from chain.encoding.cid import CID
from chain.params import DEVNET
from chain.store.blockcache import cache_of
from chain.store.blockstore import MemoryBlockstore
from chain.types.address import Address
from chain.types.beacon import BeaconEntry
from chain.types.election import Ticket
from chain.vm.gas import compute_next_base_fee
from tests.consensus.devchain import ALICE, BOB, DevChain

# -- beacon ----------------------------------------------------------------------------------------------


def test_mock_beacon_is_lotus_mock() -> None:
    beacon = MockBeacon()
    assert beacon.max_beacon_round_for_epoch(7) == 7 + MOCK_ROUND_OFFSET == 107
    entry = beacon.entry(107)
    assert entry == BeaconEntry(107, hashlib.blake2b((107).to_bytes(8, "big"), digest_size=32).digest())
    beacon.verify_entry(entry, BeaconEntry(106, b""))
    with pytest.raises(InvalidBeaconEntry, match="round 107 has the wrong data"):
        beacon.verify_entry(BeaconEntry(107, bytes(32)), entry)
    with pytest.raises(LookupError):
        beacon.entry(-1)


def test_entries_for_a_block_cover_every_epoch_since_the_parent() -> None:
    beacon = MockBeacon()
    entries = beacon_entries_for_block(beacon, 10, 7)
    assert [e.round for e in entries] == [108, 109, 110]
    check_beacon_entries(beacon, entries, 10, 7, BeaconEntry(107, b""))
    with pytest.raises(InvalidBeaconEntry, match=r"rounds 108, 109, 110 .* got 108, 110"):
        check_beacon_entries(beacon, (entries[0], entries[2]), 10, 7, BeaconEntry(107, b""))
    with pytest.raises(ValueError, match="above its parent"):
        beacon_entries_for_block(beacon, 7, 7)


# -- base fee --------------------------------------------------------------------------------------------


def test_messages_count_once_for_the_base_fee() -> None:
    a, b = CID.hash_of(b"a"), CID.hash_of(b"b")
    assert unique_gas_limit([(a, 10), (b, 5), (a, 10)]) == 15


def test_base_fee_of_a_chain() -> None:
    dc = DevChain.new()
    dc.next_tipset(dc.transfers(ALICE, Address.of_key(BOB), 3))
    ts = dc.head
    bls, secp = dc.chain.messages_for_block(ts.blocks[0])
    used = sum(m.message.gas_limit for m in secp) + sum(m.gas_limit for m in bls)
    expected = compute_next_base_fee(ts.blocks[0].parent_base_fee, used, len(ts.blocks), DEVNET)
    assert compute_base_fee(dc.chain, ts, DEVNET) == expected
    child = dc.next_tipset()
    assert child.blocks[0].parent_base_fee == expected


def test_a_remembered_base_fee_equals_the_computed_one() -> None:
    # The syncer remembers a validated tipset's base fee from the messages in hand; compute_base_fee
    # then answers with it, and it is what computing it from the store gives.
    dc = DevChain.new()
    dc.next_tipset(dc.transfers(ALICE, Address.of_key(BOB), 3))
    ts = dc.head
    computed = compute_base_fee(dc.chain, ts, DEVNET)
    messages = [dc.chain.messages_for_block(header) for header in reversed(ts.blocks)]
    assert base_fee_of(ts, messages, DEVNET) == computed
    store = MemoryBlockstore()
    remember_base_fee(store, ts, messages, DEVNET)
    cache = cache_of(store)
    assert (
        cache is not None and cache.derived(("base-fee", ts.key, DEVNET), ts.blocks[0].messages) == computed
    )
    remember_base_fee(dc.store, ts, messages, DEVNET)
    assert compute_base_fee(dc.chain, ts, DEVNET) == computed


# -- weight, VRFs, wins ----------------------------------------------------------------------------------


def test_weight_of_the_genesis_and_its_child() -> None:
    dc = DevChain.new()
    genesis = dc.genesis_ts
    # 8192 bytes of power above the minimum: log2 = 13; the genesis wins nothing
    assert weight_of(dc.store, genesis) == tipset_weight(0, 8192, [0]) == 13 << 8
    child = dc.next_tipset()
    wins = [b.election_proof.win_count for b in child.blocks if b.election_proof]
    assert weight_of(dc.store, child) == tipset_weight(13 << 8, 8192, wins)


def test_a_remembered_weight_equals_the_computed_one() -> None:
    # weight_of remembers each tipset's weight in the store's block cache (by its key): asked again,
    # and from a store without a cache, the same number.
    dc = DevChain.new()
    dc.advance(3)
    plain = dc.uncached_copy()
    for ts in dc.down_to_genesis():
        computed = weight_of(plain, ts)
        assert weight_of(dc.store, ts) == computed
        assert dc.cache.derived(("tipset-weight", ts.key), ts.parent_state_root) == computed


def test_vrfs_are_bls_signatures_of_the_worker() -> None:
    worker = PrivateKey.derive(KeyType.BLS, b"worker")
    address = Address.of_key(worker)
    entry = MockBeacon().entry(105)
    miner = Address.new_id(1000)
    data = election_randomness(entry, miner, 5)
    assert data == draw_randomness(
        entry.data, DomainSeparationTag.ElectionProofProduction, 5, bytes.fromhex("4300e807")
    )
    # the entropy is the CBOR byte string of the address bytes: 0x43, then 00 (ID) and uvarint(1000)
    assert miner_entropy(miner) == bytes.fromhex("4300e807")
    proof = compute_vrf(worker, data)
    verify_vrf(address, data, proof)
    with pytest.raises(SignatureError):
        verify_vrf(address, data + b"!", proof)
    with pytest.raises(InvalidWorker, match="not a BLS key"):
        compute_vrf(PrivateKey.derive(KeyType.SECP256K1, b"secp worker"), data)
    # the ticket draws one epoch back, with the parent's smallest ticket appended to the entropy
    parent_ticket = Ticket(b"\x01" * 96)
    assert ticket_randomness(entry, miner, 5, parent_ticket) == draw_randomness(
        entry.data, DomainSeparationTag.TicketProduction, 4, miner_entropy(miner) + parent_ticket.vrf_proof
    )


def test_win_count_needs_power() -> None:
    proof = bytes(96)
    assert win_count(proof, 0, 100) == 0
    assert win_count(proof, 100, 0) == 0
    assert win_count(proof, 100, 100) >= 1  # a hash of zeros is below every threshold


def test_worker_must_be_a_bls_key() -> None:
    dc = DevChain.new()
    tree = dc.sm.tree(dc.genesis_ts.parent_state_root)
    worker = worker_key_address(tree, Address.new_id(1000))
    assert worker == Address.of_key(dc.miner(Address.new_id(1000)).worker_key)
    with pytest.raises(Exception, match="not a storage miner"):
        worker_key_address(tree, tree.lookup_id(Address.of_key(ALICE)) or Address.new_id(0))
