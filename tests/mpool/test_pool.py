"""The message pool's entry rules, each accepted and refused (with Lotus's words), over a real state."""

import re
from dataclasses import replace

import pytest

from actors import builtin
from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.signature import Signature, SigType
from chain.mpool import errors
from chain.mpool.config import MpoolConfig, min_replacement_premium
from chain.mpool.msgset import required_funds
from chain.state.tree import Actor
from chain.store.blockstore import put_cbor
from chain.types.address import Address
from chain.types.fil import format_fil
from chain.types.message import Message, SignedMessage, sign_message
from chain.vm.gas import PRICES
from tests.chain.vm_helpers import FIL, PROBE_CODE, ProbeState
from tests.mpool.harness import FEE_CAP, GAS_LIMIT, Harness, make_harness


def refused(
    h: Harness, signed: SignedMessage, kind: type[errors.MpoolError], text: str, *, local: bool = False
) -> None:
    """add(signed) raises kind with text in its message, and the pool is exactly as before."""
    before = h.pool.pending()[0]
    nonces = {a: h.pool.get_nonce(a) for a in h.world.addresses}
    size = h.pool.size
    with pytest.raises(kind, match=re.escape(text)):
        h.pool.add(signed, local=local)
    assert h.pool.pending()[0] == before
    assert {a: h.pool.get_nonce(a) for a in h.world.addresses} == nonces
    assert h.pool.size == size


def test_a_valid_message_is_added_and_counted() -> None:
    h = make_harness()
    sender = h.world.addresses[0]
    first = h.message(0, nonce=0, value=5)
    assert h.pool.get_nonce(sender) == 0
    assert h.pool.add(first) is False  # from the network: already published
    assert h.pool.pending() == ([first], h.genesis)
    assert h.pool.pending_for(sender) == [first]
    assert h.pool.pending_for(h.world.ids[0]) == [first]  # by ID address too
    assert h.pool.get_nonce(sender) == 1
    assert h.pool.get_nonce(h.world.ids[0]) == 1
    # The pool stored the message: it can be read by CID.
    assert h.store.get_message(first.cid()) == first
    assert h.store.get_message(first.message.cid()) == first.message
    second = h.message(0, nonce=1)
    assert h.pool.push(second) == second.cid()
    assert h.pool.pending_for(sender) == [first, second]
    assert h.pool.get_nonce(sender) == 2
    assert h.pool.size == 2


def test_size_limit() -> None:
    h = make_harness()
    limit = h.world.policy.max_message_size
    gas = 3_000_000_000  # storing a message near the limit costs over a billion gas
    big = h.message(0, nonce=0, params=b"\x00" * limit, gas_limit=gas)
    size = len(big.to_bytes())
    refused(
        h, big, errors.MessageTooBig, f"mpool message too large ({size}B, limit {limit}B): message too big"
    )
    fits = h.message(0, nonce=0, params=b"\x00" * (limit - 300), gas_limit=gas)
    assert len(fits.to_bytes()) <= limit
    h.pool.add(fits)


def test_syntax_rules() -> None:
    h = make_harness()
    over = h.message(0, nonce=0, premium=FEE_CAP + 1)
    refused(
        h,
        over,
        errors.InvalidMessage,
        "message not valid for block inclusion: 'GasFeeCap' is less than 'GasPremium'",
    )
    zero_gas = h.message(0, nonce=0, gas_limit=0)
    refused(h, zero_gas, errors.InvalidMessage, "'GasLimit' 0 must be positive")
    too_much = h.message(0, nonce=0, value=2_000_000_001 * FIL)
    refused(h, too_much, errors.InvalidMessage, "'Value' cannot be greater than the total Filecoin supply")


def test_gas_limit_must_cover_the_on_chain_cost() -> None:
    h = make_harness()
    probe = h.message(0, nonce=0)
    cost = PRICES.on_chain_message(probe.chain_length())
    short = h.message(0, nonce=0, gas_limit=cost - 1)
    refused(
        h,
        short,
        errors.InvalidMessage,
        f"message will not be included in a block: 'GasLimit' {cost - 1} is less than the cost of storing "
        f"the message on chain {cost}",
    )
    h.pool.add(h.message(0, nonce=0, gas_limit=cost))


def test_fee_cap_must_reach_the_minimum_base_fee() -> None:
    h = make_harness()
    low = h.message(0, nonce=0, fee_cap=99, premium=0)
    refused(h, low, errors.GasFeeCapTooLow, "gas fee cap too low (GasFeeCap: 99, minimum base fee: 100)")
    h.pool.add(h.message(0, nonce=0, fee_cap=100, premium=0))


def test_fee_cap_far_under_the_base_fee_is_refused_from_the_network_and_kept_locally() -> None:
    h = make_harness(base_fee=100_000_000)  # the genesis' ParentBaseFee: bound = 1,000,000
    cheap = h.message(0, nonce=0, fee_cap=999_999, premium=0)
    refused(
        h,
        cheap,
        errors.BaseFeeLowerBound,
        "GasFeeCap doesn't meet base fee lower bound for inclusion in the next 20 blocks "
        "(GasFeeCap: 999999, baseFeeLowerBound: 1000000): validation failure",
    )
    assert h.pool.add(cheap, local=True) is False  # kept, not published
    assert h.pool.pending_for(h.world.addresses[0]) == [cheap]
    assert h.pool.add(h.message(1, nonce=0, fee_cap=1_000_000, premium=0), local=True) is True


def test_signatures_are_checked_against_the_key_of_the_sender() -> None:
    h = make_harness()
    msg = h.message(0, nonce=0).message
    forged = sign_message(msg, h.world.keys[1])
    refused(h, forged, errors.InvalidSignature, "signature verification failed:")
    garbage = SignedMessage(msg, Signature(SigType.SECP256K1, bytes(65)))
    refused(h, garbage, errors.InvalidSignature, "signature verification failed:")
    wrong_kind = SignedMessage(msg, PrivateKey.derive(KeyType.BLS, b"x").sign(msg.signing_bytes()))
    refused(h, wrong_kind, errors.InvalidSignature, "signature verification failed:")
    # An ID sender signs with its account's key.
    by_id = sign_message(replace(msg, from_=h.world.ids[0]), h.world.keys[0])
    h.pool.add(by_id)
    assert h.pool.pending_for(h.world.addresses[0]) == [by_id]
    # An ID address with no account behind it cannot be resolved, so nothing can verify its signature.
    nobody = sign_message(replace(msg, from_=Address.new_id(9999)), h.world.keys[0])
    refused(h, nobody, errors.SenderInvalid, "failed to resolve f09999 to a key address".replace("f0", "t0"))


def test_the_sender_must_exist_and_be_an_account() -> None:
    h = make_harness()
    stranger = PrivateKey.derive(KeyType.SECP256K1, b"never funded")
    msg = Message(
        to=h.world.addresses[0],
        from_=Address.of_key(stranger),
        nonce=0,
        value=0,
        gas_limit=GAS_LIMIT,
        gas_fee_cap=FEE_CAP,
        gas_premium=0,
        method=0,
    )
    unknown = sign_message(msg, stranger)
    refused(h, unknown, errors.SenderInvalid, f"failed to get sender actor: actor {msg.from_} not found")
    # A key address whose actor is not an account (here a test actor) may not send.
    key = PrivateKey.derive(KeyType.SECP256K1, b"a probe with a key")
    address = Address.of_key(key)
    tree = h.world.tree
    id_address = tree.register_new_address(address)
    tree.set_actor(id_address, Actor(PROBE_CODE, put_cbor(tree.store, ProbeState(0).to_cbor()), 0, FIL))
    h.state.after[h.genesis.key] = tree.flush()
    not_account = sign_message(replace(msg, from_=address), key)
    refused(h, not_account, errors.SenderInvalid, f"sender actor {address} is not a valid top-level sender")
    assert builtin.ACCOUNT_ACTOR_CODE != PROBE_CODE


def test_nonce_below_the_state_nonce_is_refused() -> None:
    h = make_harness()
    first = h.message(0, nonce=0)
    h.set_head(h.mine(h.genesis, [first]))
    refused(
        h,
        h.message(0, nonce=0, value=1),
        errors.NonceTooLow,
        "minimum expected nonce is 1, got 0: message nonce too low",
    )
    h.pool.add(h.message(0, nonce=1))


def test_nonce_gap_at_most_four() -> None:
    h = make_harness()
    h.pool.add(h.message(0, nonce=4))  # nonces 0-3 missing: the largest gap allowed
    assert h.pool.get_nonce(h.world.addresses[0]) == 0  # the next nonce is still the missing one
    refused(
        h,
        h.message(0, nonce=5),
        errors.NonceGap,
        "message nonce has too big a gap from expected nonce (Nonce: 5, nextNonce: 0): unfulfilled nonce gap",
    )
    for nonce in range(4):
        h.pool.add(h.message(0, nonce=nonce))
    assert h.pool.get_nonce(h.world.addresses[0]) == 5  # the gap is filled
    h.pool.add(h.message(0, nonce=9))
    # Replacing a message beyond a gap is refused as Lotus refuses it.
    refused(
        h,
        h.message(0, nonce=9, premium=1_000),
        errors.NonceGap,
        "rejecting replace by fee because of nonce gap (Nonce: 9, nextNonce: 5): unfulfilled nonce gap",
    )


def test_at_most_1000_pending_per_sender() -> None:
    h = make_harness()
    limit = MpoolConfig().max_pending_per_actor
    assert limit == 1000
    for nonce in range(limit):
        h.pool.add(h.message(0, nonce=nonce))
    sender = h.world.addresses[0]
    refused(
        h,
        h.message(0, nonce=limit),
        errors.TooManyPending,
        f"too many pending messages for actor {sender} (limit 1000)",
    )
    # A replacement does not grow the set, so it is still allowed; other senders are unaffected.
    h.pool.add(h.message(0, nonce=limit - 1, premium=200))
    h.pool.add(h.message(1, nonce=0))
    assert h.pool.size == limit + 1


def test_replace_by_fee_needs_125_percent_of_the_premium() -> None:
    h = make_harness()
    original = h.message(0, nonce=0, premium=100)
    h.pool.add(original)
    assert min_replacement_premium(100, 125) == 125
    sender = h.world.addresses[0]
    refused(
        h,
        h.message(0, nonce=0, premium=124),
        errors.ReplaceByFeeTooLow,
        f"message from {sender} with nonce 0 already in mpool, increase GasPremium to 125 from 124 "
        "to trigger replace by fee: replace by fee has too low GasPremium",
    )
    refused(
        h,
        original,
        errors.DuplicateMessage,
        f"message from {sender} with nonce 0 already in mpool: message with nonce already exists",
    )
    better = h.message(0, nonce=0, premium=125)
    h.pool.add(better)
    assert h.pool.pending_for(sender) == [better]
    assert h.pool.size == 1
    assert h.pool.get_nonce(sender) == 1
    # Small premiums still have to grow: 125% of 1 rounds up to 2.
    assert min_replacement_premium(1, 125) == 2
    assert min_replacement_premium(0, 125) == 1


def test_balance_covers_all_pending_messages_of_the_sender() -> None:
    h = make_harness(balance=10 * FIL)
    cost = GAS_LIMIT * FEE_CAP
    refused(
        h,
        h.message(0, nonce=0, value=10 * FIL),
        errors.NotEnoughFunds,
        f"not enough funds (required: {format_fil(10 * FIL + cost)}, balance: 10 FIL): "
        "not enough funds to execute transaction",
    )
    h.pool.add(h.message(0, nonce=0, value=6 * FIL))
    second = h.message(0, nonce=1, value=4 * FIL)  # fits alone, not with the first
    refused(
        h,
        second,
        errors.NotEnoughFunds,
        f"not enough funds including pending messages (required: {format_fil(10 * FIL + 2 * cost)}, "
        "balance: 10 FIL): not enough funds to execute transaction",
    )
    h.pool.add(h.message(0, nonce=1, value=4 * FIL - 2 * cost))
    # A replacement is weighed without the message it replaces.
    h.pool.add(h.message(0, nonce=1, value=4 * FIL - 2 * cost - 1, premium=200))
    assert sum(required_funds(m) for m in h.pool.pending_for(h.world.addresses[0])) <= 10 * FIL


def test_refusals_from_a_deeper_check_leave_no_trace() -> None:
    h = make_harness()
    h.pool.add(h.message(0, nonce=0))
    # A message that passes the stateless checks and fails a later one must not have been stored as
    # pending, nor counted towards the nonce or the balance.
    refused(h, h.message(0, nonce=6), errors.NonceGap, "unfulfilled nonce gap")
    refused(h, h.message(0, nonce=1, value=10_000 * FIL), errors.NotEnoughFunds, "not enough funds")
    assert h.pool.pending_for(h.world.addresses[0])[0].message.nonce == 0
