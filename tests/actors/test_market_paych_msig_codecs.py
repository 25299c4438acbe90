"""Encoders and decoders of the market, payment channel and multisig types: round trips of generated
values, and hostile input (random CBOR, or a valid value with one field replaced) that must end in a
DecodeError and nothing else."""

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.market import types as mt
from actors.market.state import MarketState
from actors.multisig import (
    AddSignerParams,
    ConstructorParams,
    LockBalanceParams,
    MultisigState,
    ProposeParams,
    ProposeReturn,
    Transaction,
    TxnIDParams,
)
from actors.paych import (
    LaneState,
    Merge,
    ModVerifyParams,
    PaychState,
    SignedVoucher,
    UpdateChannelStateParams,
)
from chain.encoding import dagcbor
from chain.encoding.errors import DecodeError
from tests.chain.type_strategies import addresses, bigint, cids, dag_cbor_values, int64, signatures, uint64

labels = st.text(max_size=40) | st.binary(max_size=40)

deal_proposals = st.builds(
    mt.DealProposal,
    cids,
    uint64,
    st.booleans(),
    addresses,
    addresses,
    labels,
    int64,
    int64,
    bigint,
    bigint,
    bigint,
)
client_deal_proposals = st.builds(mt.ClientDealProposal, deal_proposals, signatures)
deal_ids = st.lists(uint64, max_size=5).map(tuple)

vouchers = st.builds(
    SignedVoucher,
    addresses,
    int64,
    int64,
    st.binary(max_size=40),
    st.none() | st.builds(ModVerifyParams, addresses, uint64, st.binary(max_size=40)),
    uint64,
    uint64,
    bigint,
    int64,
    st.lists(st.builds(Merge, uint64, uint64), max_size=3).map(tuple),
    st.none() | signatures,
)

ROUND_TRIPS: list[tuple[st.SearchStrategy[Any], Callable[[Any], Any]]] = [
    (deal_proposals, mt.DealProposal.from_cbor),
    (client_deal_proposals, mt.ClientDealProposal.from_cbor),
    (st.builds(mt.DealState, int64, int64, int64, uint64), mt.DealState.from_cbor),
    (
        st.lists(client_deal_proposals, max_size=3).map(lambda d: mt.PublishStorageDealsParams(tuple(d))),
        mt.PublishStorageDealsParams.from_cbor,
    ),
    (st.builds(mt.SectorDeals, int64, int64, deal_ids), mt.SectorDeals.from_cbor),
    (st.builds(mt.ActivateDealsParams, deal_ids, int64), mt.ActivateDealsParams.from_cbor),
    (
        st.builds(mt.OnMinerSectorsTerminateParams, int64, deal_ids),
        mt.OnMinerSectorsTerminateParams.from_cbor,
    ),
    (st.builds(mt.WithdrawBalanceParams, addresses, bigint), mt.WithdrawBalanceParams.from_cbor),
    (
        st.builds(
            MarketState,
            cids,
            cids,
            cids,
            cids,
            cids,
            uint64,
            cids,
            int64,
            st.integers(0, 1 << 200),
            st.integers(0, 1 << 200),
            st.integers(0, 1 << 200),
            cids,
        ),
        MarketState.from_cbor,
    ),
    (vouchers, SignedVoucher.from_cbor),
    (
        st.builds(
            UpdateChannelStateParams, vouchers, st.binary(max_size=40), st.none() | st.binary(max_size=40)
        ),
        UpdateChannelStateParams.from_cbor,
    ),
    (st.builds(LaneState, bigint, uint64), LaneState.from_cbor),
    (
        st.builds(PaychState, addresses, addresses, st.integers(0, 1 << 200), int64, int64, cids),
        PaychState.from_cbor,
    ),
    (
        st.builds(
            Transaction,
            addresses,
            bigint,
            uint64,
            st.binary(max_size=40),
            st.lists(addresses, max_size=3).map(tuple),
        ),
        Transaction.from_cbor,
    ),
    (
        st.builds(
            MultisigState,
            st.lists(addresses, max_size=4).map(tuple),
            uint64,
            int64,
            st.integers(0, 1 << 200),
            int64,
            int64,
            cids,
        ),
        MultisigState.from_cbor,
    ),
    (
        st.builds(ConstructorParams, st.lists(addresses, max_size=4).map(tuple), uint64, int64, int64),
        ConstructorParams.from_cbor,
    ),
    (st.builds(ProposeParams, addresses, bigint, uint64, st.binary(max_size=40)), ProposeParams.from_cbor),
    (
        st.builds(ProposeReturn, int64, st.booleans(), st.integers(0, 255), st.binary(max_size=20)),
        ProposeReturn.from_cbor,
    ),
    (st.builds(TxnIDParams, int64, st.binary(max_size=32)), TxnIDParams.from_cbor),
    (st.builds(AddSignerParams, addresses, st.booleans()), AddSignerParams.from_cbor),
    (st.builds(LockBalanceParams, int64, int64, bigint), LockBalanceParams.from_cbor),
]

DECODERS = [decoder for _, decoder in ROUND_TRIPS] + [
    mt.VerifyDealsForActivationParams.from_cbor,
    mt.ComputeDataCommitmentParams.from_cbor,
    mt.decode_add_balance_params,
]


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_round_trips(data: st.DataObject) -> None:
    strategy, decoder = data.draw(st.sampled_from(ROUND_TRIPS))
    value = data.draw(strategy)
    assert decoder(dagcbor.decode(dagcbor.encode(value.to_cbor()))) == value


def check_decoder(decoder: Callable[[Any], Any], raw: Any) -> None:
    """decoder either refuses raw with a DecodeError that says why, or yields a value that encodes
    back to something it decodes to the same value."""
    try:
        value = decoder(raw)
    except DecodeError as exc:
        assert str(exc)
        return
    assert decoder(dagcbor.decode(dagcbor.encode(value.to_cbor()))) == value


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(DECODERS), dag_cbor_values)
def test_random_cbor_is_rejected_cleanly(decoder: Callable[[Any], Any], raw: Any) -> None:
    check_decoder(decoder, raw)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_one_bad_field_is_named(data: st.DataObject) -> None:
    strategy, decoder = data.draw(st.sampled_from(ROUND_TRIPS))
    raw = data.draw(strategy).to_cbor()
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] = data.draw(dag_cbor_values)
    check_decoder(decoder, raw)
