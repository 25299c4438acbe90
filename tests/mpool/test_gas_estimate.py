"""Gas estimates (limit, fee cap, premium, the whole message) and MpoolPushMessage's server side."""

import random
import threading

import pytest

from chain.crypto.signature import Signature
from chain.encoding import dagcbor
from chain.mpool.errors import NotEnoughFunds
from chain.mpool.gas_estimate import (
    DEFAULT_MAX_FEE,
    MIN_GAS_PREMIUM,
    GasEstimationError,
    cap_gas_fee,
    gas_estimate_fee_cap,
    gas_estimate_gas_limit,
    gas_estimate_gas_premium,
    gas_estimate_message_gas,
    median_gas_premium,
)
from chain.mpool.push import MessagePusher, PushRefused, SendSpec
from chain.types.address import Address
from chain.types.message import Message
from tests.chain.vm_helpers import FIL
from tests.mpool.harness import Harness, make_harness


def _unsigned(h: Harness, sender: int, **changes: object) -> Message:
    fields: dict[str, object] = {
        "to": h.world.addresses[(sender + 1) % len(h.world.addresses)],
        "from_": h.world.addresses[sender],
        "nonce": 0,
        "value": FIL,
        "gas_limit": 0,
        "gas_fee_cap": 0,
        "gas_premium": 0,
        "method": 0,
    }
    fields.update(changes)
    return Message(**fields)  # type: ignore[arg-type]


class Wallet:
    """Signs with the harness's account keys, as the node's wallet will."""

    def __init__(self, h: Harness) -> None:
        self._keys = dict(zip(h.world.addresses, h.world.keys, strict=True))
        self.signed = 0

    def sign(self, address: Address, data: bytes) -> Signature:
        self.signed += 1
        return self._keys[address].sign(data)


def test_gas_limit_estimate_is_the_gas_the_message_uses() -> None:
    h = make_harness()
    used = gas_estimate_gas_limit(h.pool, h.state, _unsigned(h, 0), h.genesis)
    # Apply the same transfer for real with a generous limit: it uses what was estimated, give or
    # take a few bytes of message size (the estimate runs it with the block gas limit and zero fees,
    # whose encodings differ in length from the real ones; hence Lotus's 1.25 margin).
    real = h.message(0, nonce=0, value=FIL, gas_limit=used * 2)
    ts = h.mine(h.genesis, [real])
    actual = h.receipts[ts.key][0].gas_used
    assert abs(used - actual) <= 20 * 1300


def test_gas_limit_estimate_runs_the_pending_messages_first() -> None:
    h = make_harness()
    h.pool.add(h.message(0, nonce=0))
    # Nonce 1 only applies after nonce 0: the estimate must run the pending message first.
    assert gas_estimate_gas_limit(h.pool, h.state, _unsigned(h, 0, nonce=1), h.genesis) > 0
    # With nonce 0 (what MpoolPushMessage sends), the message takes the next nonce after the pending.
    assert gas_estimate_gas_limit(h.pool, h.state, _unsigned(h, 0, nonce=0), h.genesis) > 0


def test_gas_limit_estimate_reports_failures() -> None:
    h = make_harness()
    probe = h.world.add_probe()
    h.state.after[h.genesis.key] = h.world.tree.flush()
    failing = _unsigned(h, 0, to=probe, value=0, method=3, params=dagcbor.encode([1, 18]))
    with pytest.raises(
        GasEstimationError,
        match=r"execution failed \(exit=\[ErrForbidden\(18\)\], vm error=\[told to fail\]\)",
    ):
        gas_estimate_gas_limit(h.pool, h.state, failing, h.genesis)
    burner = _unsigned(h, 0, to=probe, value=0, method=7, params=dagcbor.encode(20_000_000_000))
    with pytest.raises(GasEstimationError, match="ran out of gas"):
        gas_estimate_gas_limit(h.pool, h.state, burner, h.genesis)


def test_fee_cap_estimate_is_the_base_fee_after_maximal_rises() -> None:
    h = make_harness(base_fee=100)
    msg = _unsigned(h, 0, gas_premium=7)
    # 1.125^20 = 10.545..., in 1/256ths: 2699.
    assert gas_estimate_fee_cap(msg, 20, h.genesis, 8) == 100 * 2699 // 256 + 7
    assert gas_estimate_fee_cap(msg, 0, h.genesis, 8) == 100 + 7


def test_median_gas_premium_walks_half_the_capacity_from_the_top() -> None:
    target = 5_000_000_000
    # One block: the walk goes 52.5% of the target (2.625e9 gas) down from the highest premium.
    prices = [(500, 1_000_000_000), (400, 1_000_000_000), (300, 1_000_000_000), (200, 1_000_000_000)]
    assert median_gas_premium(prices, 1, target) == (300 + 400) // 2
    assert median_gas_premium([(500, 4_000_000_000)], 1, target) == 500
    assert median_gas_premium([], 1, target) == 0


def test_premium_estimate_from_history_and_the_minimums() -> None:
    h = make_harness()
    rng = random.Random(7)
    # No history: Lotus's minimums, by how soon the message should go in.
    for n, base in ((1, 2 * MIN_GAS_PREMIUM), (2, 3 * MIN_GAS_PREMIUM // 2), (10, MIN_GAS_PREMIUM)):
        estimate = gas_estimate_gas_premium(h.store, n, h.genesis, 5_000_000_000, rng)
        assert abs(estimate - base) <= base * 3 // 100  # 0.5% noise, 6 sigma
    # History: two tipsets whose messages paid 300,000 and more for most of the gas.
    tip = h.genesis
    for nonce in range(2):
        msgs = [
            h.message(s, nonce=nonce, premium=300_000, fee_cap=1_000_000, gas_limit=3_000_000_000)
            for s in (0, 1)
        ]
        tip = h.mine(tip, msgs)
    tip = h.mine(tip, [])
    estimate = gas_estimate_gas_premium(h.store, 2, tip, 5_000_000_000, rng)
    assert abs(estimate - 300_000) <= 300_000 * 3 // 100


def test_cap_gas_fee() -> None:
    h = make_harness()
    msg = _unsigned(h, 0, gas_limit=1_000_000, gas_fee_cap=10**12, gas_premium=10**12)
    capped = cap_gas_fee(msg, DEFAULT_MAX_FEE)
    assert capped.gas_fee_cap == DEFAULT_MAX_FEE // 1_000_000
    assert capped.gas_premium == capped.gas_fee_cap
    cheap = _unsigned(h, 0, gas_limit=1_000_000, gas_fee_cap=1_000, gas_premium=10)
    assert cap_gas_fee(cheap, DEFAULT_MAX_FEE) == cheap
    assert cap_gas_fee(cheap, 5 * 10**9, maximize_fee_cap=True).gas_fee_cap == 5_000


def test_message_gas_estimate_fills_what_is_zero() -> None:
    h = make_harness()
    rng = random.Random(1)
    msg = _unsigned(h, 0)
    used = gas_estimate_gas_limit(h.pool, h.state, msg, h.genesis)
    out = gas_estimate_message_gas(h.pool, h.state, h.store, msg, h.genesis, rng=rng)
    assert out.gas_limit == int(used * 1.25)
    assert abs(out.gas_premium - MIN_GAS_PREMIUM) <= MIN_GAS_PREMIUM * 3 // 100
    assert out.gas_fee_cap == 100 * 2699 // 256 + out.gas_premium
    # Given values are kept; a small max fee caps the fee cap (and the premium under it).
    given = _unsigned(h, 0, gas_limit=2_000_000, gas_premium=50, gas_fee_cap=500)
    assert gas_estimate_message_gas(h.pool, h.state, h.store, given, h.genesis) == given
    tight = gas_estimate_message_gas(h.pool, h.state, h.store, given, h.genesis, max_fee=2_000_000 * 40)
    assert (tight.gas_fee_cap, tight.gas_premium) == (40, 40)


def test_push_message_estimates_numbers_signs_and_adds() -> None:
    h = make_harness()
    wallet = Wallet(h)
    pusher = MessagePusher(h.pool, h.state, h.store, wallet, rng=random.Random(3))
    first = pusher.push_message(_unsigned(h, 0))
    second = pusher.push_message(_unsigned(h, 0, value=2 * FIL))
    assert [first.message.nonce, second.message.nonce] == [0, 1]
    assert h.pool.pending_for(h.world.addresses[0]) == [first, second]
    first.verify_signature(h.world.addresses[0])
    assert first.message.gas_limit > 0 and first.message.gas_fee_cap >= first.message.gas_premium > 0
    # From an ID address: the message goes out from the key address.
    by_id = pusher.push_message(_unsigned(h, 1, from_=h.world.ids[1]))
    assert by_id.message.from_ == h.world.addresses[1]
    # What the wallet signed is the pool's: a pending message was not numbered twice.
    assert wallet.signed == 3


def test_push_message_refusals() -> None:
    h = make_harness(balance=10 * FIL)
    pusher = MessagePusher(h.pool, h.state, h.store, Wallet(h), rng=random.Random(3))
    with pytest.raises(PushRefused, match="MpoolPushMessage expects message nonce to be 0, was 3"):
        pusher.push_message(_unsigned(h, 0, nonce=3))
    with pytest.raises(NotEnoughFunds, match="not enough funds"):
        pusher.push_message(_unsigned(h, 0, value=10 * FIL))
    with pytest.raises(PushRefused, match="has no key address"):
        pusher.push_message(_unsigned(h, 0, from_=Address.new_id(4242)))
    assert h.pool.size == 0
    pusher.push_message(_unsigned(h, 0, value=FIL), SendSpec(max_fee=10**15))


def test_concurrent_pushes_from_one_sender_take_distinct_nonces() -> None:
    h = make_harness()
    pusher = MessagePusher(h.pool, h.state, h.store, Wallet(h), rng=random.Random(5))
    errors: list[BaseException] = []

    def push() -> None:
        try:
            for _ in range(5):
                pusher.push_message(_unsigned(h, 0))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=push) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert [m.message.nonce for m in h.pool.pending_for(h.world.addresses[0])] == list(range(20))
