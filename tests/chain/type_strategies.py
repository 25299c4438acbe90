"""Hypothesis strategies for chain types, shared by the tests/chain/test_types_*.py files."""

from typing import Any

from hypothesis import strategies as st

from chain.crypto.signature import Signature, SigType
from chain.encoding.cid import CID
from chain.encoding.expect import INT64_MAX, INT64_MIN, UINT64_MAX
from chain.types.address import MAX_ID, MAX_SUBADDRESS_LENGTH, Address
from chain.types.beacon import BeaconEntry
from chain.types.block import BlockHeader, PoStProof
from chain.types.election import ElectionProof, Ticket
from chain.types.message import Message, SignedMessage
from chain.types.receipt import MessageReceipt

uint64 = st.integers(0, UINT64_MAX)
int64 = st.integers(INT64_MIN, INT64_MAX)
# Big integers up to the 127-byte magnitude limit, biased to small and 64-bit-crossing values.
bigint = st.one_of(
    st.integers(-(1 << 200), 1 << 200),
    st.integers(-(1 << 1000), 1 << 1000),
    st.sampled_from([0, 1, -1, (1 << 64) - 1, 1 << 64, -(1 << 64)]),
)
nonneg_bigint = st.integers(0, 1 << 300)

addresses = st.one_of(
    st.integers(0, MAX_ID).map(Address.new_id),
    st.binary(min_size=1, max_size=70).map(Address.new_secp256k1),
    st.binary(max_size=40).map(Address.new_actor),
    st.binary(min_size=48, max_size=48).map(Address.new_bls),
    st.builds(Address.new_delegated, st.integers(0, MAX_ID), st.binary(max_size=MAX_SUBADDRESS_LENGTH)),
)

cids = st.binary(max_size=64).map(CID.hash_of)

signatures = st.one_of(
    st.binary(min_size=65, max_size=65).map(lambda d: Signature(SigType.SECP256K1, d)),
    st.binary(min_size=96, max_size=96).map(lambda d: Signature(SigType.BLS, d)),
    st.builds(Signature, st.sampled_from(list(SigType)), st.binary(max_size=199)),
)


@st.composite
def messages(draw: Any) -> Message:
    return Message(
        to=draw(addresses),
        from_=draw(addresses),
        nonce=draw(uint64),
        value=draw(bigint),
        gas_limit=draw(int64),
        gas_fee_cap=draw(bigint),
        gas_premium=draw(bigint),
        method=draw(uint64),
        params=draw(st.binary(max_size=300)),
    )


signed_messages = st.builds(SignedMessage, messages(), signatures)

receipts = st.one_of(
    st.builds(
        lambda e, r, g: MessageReceipt(exit_code=e, return_data=r, gas_used=g, version=0),
        int64,
        st.binary(max_size=100),
        int64,
    ),
    st.builds(
        lambda e, r, g, c: MessageReceipt(exit_code=e, return_data=r, gas_used=g, events_root=c),
        int64,
        st.binary(max_size=100),
        int64,
        st.none() | cids,
    ),
)

tickets = st.binary(max_size=96).map(Ticket)
election_proofs = st.builds(ElectionProof, int64, st.binary(max_size=96))
beacon_entries = st.builds(BeaconEntry, uint64, st.binary(max_size=96))
post_proofs = st.builds(PoStProof, int64, st.binary(max_size=200))


@st.composite
def block_headers(
    draw: Any, height: int | None = None, parents: tuple[CID, ...] | None = None
) -> BlockHeader:
    return BlockHeader(
        miner=draw(addresses),
        ticket=draw(st.none() | tickets) if height is None else draw(tickets),
        election_proof=draw(st.none() | election_proofs),
        beacon_entries=tuple(draw(st.lists(beacon_entries, max_size=3))),
        win_post_proof=tuple(draw(st.lists(post_proofs, max_size=2))),
        parents=parents if parents is not None else tuple(draw(st.lists(cids, max_size=4))),
        parent_weight=draw(bigint),
        height=height if height is not None else draw(int64),
        parent_state_root=draw(cids),
        parent_message_receipts=draw(cids),
        messages=draw(cids),
        bls_aggregate=draw(st.none() | signatures),
        timestamp=draw(uint64),
        block_sig=draw(st.none() | signatures),
        fork_signaling=draw(uint64),
        parent_base_fee=draw(bigint),
    )


# Any DAG-CBOR value: what a peer could send in place of a well-formed structure.
dag_cbor_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(1 << 64), (1 << 64) - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.binary(max_size=80)
    | st.text(max_size=20)
    | cids,
    lambda children: (
        st.lists(children, max_size=17) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=40,
)
