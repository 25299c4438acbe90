"""MpoolCheckMessages, MpoolCheckPendingMessages, MpoolCheckReplaceMessages."""

from chain.mpool.checks import (
    CheckStatusCode,
    MessageCheckStatus,
    MessagePrototype,
    check_messages,
    check_pending_messages,
    check_replace_messages,
)
from chain.types.address import Address
from chain.types.message import Message
from tests.chain.vm_helpers import FIL
from tests.mpool.harness import FEE_CAP, GAS_LIMIT, Harness, make_harness

C = CheckStatusCode


def _msg(h: Harness, sender: int, nonce: int, **changes: object) -> Message:
    fields: dict[str, object] = {
        "to": h.world.addresses[sender + 1],
        "from_": h.world.addresses[sender],
        "nonce": nonce,
        "value": FIL,
        "gas_limit": GAS_LIMIT,
        "gas_fee_cap": FEE_CAP,
        "gas_premium": 100,
        "method": 0,
    }
    fields.update(changes)
    return Message(**fields)  # type: ignore[arg-type]


def _failed(statuses: list[MessageCheckStatus]) -> dict[CheckStatusCode, str]:
    return {s.code: s.err for s in statuses if not s.ok}


def test_a_good_sequence_passes_every_check() -> None:
    h = make_harness()
    results = check_messages(h.pool, [MessagePrototype(_msg(h, 0, n), True) for n in range(3)])
    assert len(results) == 3
    for statuses in results:
        assert [s.code for s in statuses] == [
            C.MESSAGE_GET_STATE_NONCE,
            C.MESSAGE_GET_STATE_BALANCE,
            C.MESSAGE_SERIALIZE,
            C.MESSAGE_SIZE,
            C.MESSAGE_VALIDITY,
            C.MESSAGE_MIN_GAS,
            C.MESSAGE_MIN_BASE_FEE,
            C.MESSAGE_BASE_FEE,
            C.MESSAGE_BASE_FEE_LOWER_BOUND,
            C.MESSAGE_BASE_FEE_UPPER_BOUND,
            C.MESSAGE_NONCE,
            C.MESSAGE_BALANCE,
        ]
        assert _failed(statuses) == {}
    nonce_hints = [s.hint["nextNonce"] for r in results for s in r if s.code == C.MESSAGE_NONCE]
    assert nonce_hints == [0, 1, 2]
    balance_check = results[0][-1]
    assert balance_check.code == C.MESSAGE_BALANCE and balance_check.ok is True
    assert balance_check.hint == {"requiredFunds": str(FIL + GAS_LIMIT * FEE_CAP)}


def test_failures_are_reported_check_by_check() -> None:
    h = make_harness(balance=3 * FIL)
    protos = [
        MessagePrototype(_msg(h, 0, 1), True),  # the next nonce is 0
        MessagePrototype(_msg(h, 1, 0, gas_limit=10, gas_fee_cap=50, gas_premium=0), True),
        MessagePrototype(_msg(h, 2, 0, value=3 * FIL), True),
        MessagePrototype(_msg(h, 0, 7), False),  # no nonce chosen yet: not held to the next one
        MessagePrototype(_msg(h, 1, 1, gas_premium=2_000), True),
        MessagePrototype(_msg(h, 0, 0, from_=Address.new_id(4242)), True),
    ]
    results = check_messages(h.pool, protos)
    assert _failed(results[0]) == {C.MESSAGE_NONCE: "message nonce doesn't match next nonce (0)"}
    assert _failed(results[1]) == {
        C.MESSAGE_MIN_GAS: "GasLimit less than epoch minimum gas",
        C.MESSAGE_MIN_BASE_FEE: "GasFeeCap less than minimum base fee",
    }
    assert _failed(results[2]) == {C.MESSAGE_BALANCE: "insufficient balance"}
    assert _failed(results[3]) == {}
    # A syntax failure ends the list after the validity check.
    assert results[4][-1].code == C.MESSAGE_VALIDITY
    assert "syntactically invalid message: 'GasFeeCap' is less than 'GasPremium'" in results[4][-1].err
    assert [(s.code, s.ok) for s in results[5]] == [(C.MESSAGE_GET_STATE_NONCE, False)]


def test_pending_and_replacement_checks() -> None:
    h = make_harness(balance=3 * FIL)
    for n in range(2):
        h.pool.add(h.message(0, nonce=n, value=FIL))
    # New messages continue after the pending ones, and count their cost.
    after = check_messages(h.pool, [MessagePrototype(_msg(h, 0, 2), True)])
    assert _failed(after[0]) == {C.MESSAGE_BALANCE: "insufficient balance"}
    assert [s.hint for s in after[0] if s.code == C.MESSAGE_GET_STATE_NONCE] == [{"nonce": 2}]
    pending = check_pending_messages(h.pool, h.world.addresses[0])
    assert [_failed(r) for r in pending] == [{}, {}]
    assert check_pending_messages(h.pool, h.world.addresses[1]) == []
    # Replacing nonce 1 with a message moving 2 FIL more breaks the balance of the sequence.
    replaced = check_replace_messages(h.pool, [_msg(h, 0, 1, value=3 * FIL)])
    assert [_failed(r) for r in replaced] == [{}, {C.MESSAGE_BALANCE: "insufficient balance"}]
