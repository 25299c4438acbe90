"""Message size limits agree with the proofs: the largest ProveCommitAggregate a profile allows fits the
message pool's limit, which fits one gossipsub RPC and the consensus limit; larger messages are refused.
"""

from collections.abc import Callable
from typing import Any

import pytest

from actors.abi import MAX_SECTOR_NUMBER
from actors.miner.types import (
    MinerMethod,
    ProveCommitAggregateParams,
    ProveCommitSectorParams,
    encode_aggregate_proof,
)
from chain import params
from chain.crypto.keys import KeyType, PrivateKey
from chain.encoding import dagcbor
from chain.params import PROFILES, Policy
from chain.types.address import Address
from chain.types.bitfield import BitField
from chain.types.message import (
    MAX_MESSAGE_SIZE,
    MAX_PARAMS_LENGTH,
    TOTAL_FILECOIN,
    InvalidMessage,
    Message,
    SignedMessage,
    sign_message,
)
from chain.vm.exitcode import ExitCode
from chain.vm.gas import PRICES
from proofs import registered, seal
from tests.chain.messages import transfer
from tests.chain.vm_helpers import expect_exit, make_world

# A BLS sender: the longest address and, in the signed form the pool measures, the longest signature.
SENDER = PrivateKey.derive(KeyType.BLS, b"aggregating-miner-worker")


def test_every_vanilla_seal_proof_is_within_the_bound_the_limits_assume() -> None:
    sizes = {p: seal.SealProof.encoded_size(registered.seal_params(p)) for p in registered.SEAL_PARAMS}
    assert sizes == {5: 283_074, 6: 713_922, 7: 929_346}  # docs/proofs.md's table
    assert sizes == params.SEAL_PROOF_SIZES and max(sizes.values()) == params.SEAL_PROOF_MAX_SIZE


def widest_message(method: int, call: Any) -> SignedMessage:
    """A signed message to a miner with every number field at its widest and a BLS sender."""
    message = Message(
        to=Address.new_id((1 << 63) - 1),
        from_=Address.of_key(SENDER),
        nonce=(1 << 64) - 1,
        value=TOTAL_FILECOIN,
        gas_limit=(1 << 63) - 1,
        gas_fee_cap=TOTAL_FILECOIN,
        gas_premium=TOTAL_FILECOIN,
        method=method,
        params=dagcbor.encode(call.to_cbor()),
    )
    return sign_message(message, SENDER)


def smallest_proof(policy: Policy) -> int:
    return min(params.SEAL_PROOF_SIZES[p] for p in policy.allowed_seal_proofs)


def largest_aggregate(policy: Policy) -> SignedMessage:
    """The biggest ProveCommitAggregate the policy lets through the actor: the most sectors, each proof
    as large as the profile's smallest seal proof (the one its count is made for), sector numbers
    scattered up to the maximum (the longest RLE+)."""
    count = policy.max_aggregated_sectors
    numbers = [MAX_SECTOR_NUMBER - 2 * i for i in range(count)]
    proofs = [bytes([i]) * smallest_proof(policy) for i in range(count)]
    aggregate = encode_aggregate_proof(proofs)
    assert len(aggregate) <= policy.max_aggregated_proof_size
    call = ProveCommitAggregateParams(BitField.from_bits(numbers), aggregate)
    return widest_message(MinerMethod.ProveCommitAggregate, call)


def fits(policy: Policy, signed: SignedMessage) -> None:
    # The pool takes it, and gossip carries it in one RPC with its envelope.
    assert len(signed.to_bytes()) <= policy.max_message_size
    assert policy.max_message_size + params.GOSSIP_ENVELOPE_ROOM <= params.GOSSIP_RPC_MAX_SIZE
    # Blocks may carry it (the consensus limit is on the unsigned message) and its params decode.
    assert signed.message.chain_length() <= MAX_MESSAGE_SIZE
    assert len(signed.message.params) <= MAX_PARAMS_LENGTH
    assert Message.from_bytes(signed.message.to_bytes()) == signed.message
    # Every message the pool accepts can be included: its limit is under the consensus one.
    assert policy.max_message_size <= MAX_MESSAGE_SIZE


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_the_largest_prove_commit_a_profile_allows_fits_its_message_limits(name: str) -> None:
    policy = PROFILES[name]
    largest = max(params.SEAL_PROOF_SIZES[p] for p in policy.allowed_seal_proofs)
    call = ProveCommitSectorParams(MAX_SECTOR_NUMBER, b"\xff" * largest)
    signed = widest_message(MinerMethod.ProveCommitSector, call)
    fits(policy, signed)
    gas = PRICES.on_chain_message(signed.chain_length()) + PRICES.on_verify_seal()
    assert gas <= policy.block_gas_limit


def test_the_mainnet_profile_cannot_aggregate() -> None:
    """512 MiB proofs (929 KB) fit one to a message: fewer than the four an aggregate needs."""
    policy = PROFILES["mainnet"]
    assert policy.max_aggregated_sectors == 1 < policy.min_aggregated_sectors
    two = encode_aggregate_proof([b"\x00" * smallest_proof(policy)] * 2)
    assert len(two) > policy.max_aggregated_proof_size


@pytest.mark.parametrize("name", [n for n, p in sorted(PROFILES.items()) if p.max_aggregated_sectors >= 2])
def test_the_largest_aggregate_a_profile_allows_fits_its_message_limits(name: str) -> None:
    policy = PROFILES[name]
    assert 2 <= policy.min_aggregated_sectors <= policy.max_aggregated_sectors
    signed = largest_aggregate(policy)
    fits(policy, signed)
    # And a block's gas holds it: storing its bytes and verifying each proof inline (at least that).
    gas = (
        PRICES.on_chain_message(signed.chain_length())
        + policy.max_aggregated_sectors * PRICES.on_verify_seal()
    )
    assert gas <= policy.block_gas_limit


def test_one_sector_more_does_not_fit_the_proof_bound() -> None:
    policy = params.DEVNET
    proofs = [b"\x00" * smallest_proof(policy)] * (policy.max_aggregated_sectors + 1)
    assert len(encode_aggregate_proof(proofs)) > policy.max_aggregated_proof_size


def padded_to(size: int, make: Callable[[bytes], Message]) -> Message:
    """make(params) with params of zeros sized so that the message's own CBOR is `size` bytes."""
    probe = 1 << 17  # any length with the same 5-byte byte-string header as the result
    padding = size - make(b"\x00" * probe).chain_length() + probe
    message = make(b"\x00" * padding)
    assert message.chain_length() == size
    return message


def test_block_validation_refuses_a_message_over_the_consensus_limit() -> None:
    at_limit = padded_to(MAX_MESSAGE_SIZE, lambda p: transfer(params=p))
    over = padded_to(MAX_MESSAGE_SIZE + 1, lambda p: transfer(params=p))
    at_limit.validate_for_block_inclusion(min_gas=1)
    with pytest.raises(InvalidMessage, match=f"exceeds {MAX_MESSAGE_SIZE} bytes"):
        over.validate_for_block_inclusion(min_gas=1)


def test_the_vm_refuses_a_message_over_the_consensus_limit() -> None:
    world = make_world()
    vm = world.vm()
    unsigned = padded_to(
        MAX_MESSAGE_SIZE + 1,
        lambda p: world.message(0, world.addresses[1], params=p, gas_limit=3_000_000_000, premium=0).message,
    )
    oversized_msg = sign_message(unsigned, world.keys[0])
    ret = vm.apply_message(oversized_msg)
    expect_exit(ret.exit_code, ExitCode.SysErrSenderInvalid)
    assert "exceeds" in (ret.error or "")
    assert ret.gas_costs.miner_penalty > 0 and world.nonce(world.ids[0]) == 0
