"""node/markets/paych_vouchers.py: the voucher rules as plain functions, each refusal with its words;
and the vouchers' text form (base64url CBOR, as the lotus CLI prints them)."""

import base64
from dataclasses import replace

import pytest

from actors.paych.types import LaneState, Merge, ModVerifyParams, SignedVoucher
from chain.crypto.keys import KeyType, PrivateKey
from chain.encoding import dagcbor
from chain.encoding.errors import DecodeError
from chain.types.address import Address
from node.markets import paych_vouchers as vouchers
from node.markets.paych_types import InsufficientFunds, VoucherInvalid, decode_voucher, encode_voucher

PAYER = PrivateKey.derive(KeyType.SECP256K1, b"vouchers/payer")
BLS_PAYER = PrivateKey.derive(KeyType.BLS, b"vouchers/bls-payer")
STRANGER = PrivateKey.derive(KeyType.SECP256K1, b"vouchers/stranger")
CHANNEL = Address.new_actor(b"vouchers/channel")


def voucher(lane: int, nonce: int, amount: int, key: PrivateKey = PAYER, **changes: object) -> SignedVoucher:
    sv = replace(SignedVoucher(CHANNEL, 0, 0, b"", None, lane, nonce, amount, 0), **changes)  # type: ignore[arg-type]
    return replace(sv, signature=key.sign(sv.signing_bytes()))


def check(sv: SignedVoucher, lanes: dict[int, LaneState] | None = None, balance: int = 100) -> None:
    vouchers.check_voucher(sv, signer=Address.of_key(PAYER), balance=balance, lanes=lanes or {}, height=50)


def test_stored_vouchers_apply_over_the_chains_lanes() -> None:
    on_chain = {0: LaneState(10, 3), 2: LaneState(5, 1)}
    lanes = vouchers.lanes_with_vouchers(on_chain, [voucher(0, 2, 8), voucher(0, 4, 12), voucher(1, 1, 7)])
    # lane 0: the stored nonce 2 is behind the chain's 3, the nonce 4 one is ahead; lane 1 is new
    assert lanes == {0: LaneState(12, 4), 1: LaneState(7, 1), 2: LaneState(5, 1)}
    assert vouchers.total_redeemed(lanes) == 24
    assert vouchers.total_redeemed_with(lanes, voucher(0, 5, 20)) == 32  # replaces lane 0's 12
    assert vouchers.total_redeemed_with(lanes, voucher(3, 1, 6)) == 30  # a new lane adds all of it
    assert vouchers.total_redeemed_with(lanes, voucher(0, 4, 99)) == 24  # not ahead on its lane: adds nothing


def test_a_good_voucher_passes() -> None:
    check(voucher(0, 1, 100))
    check(voucher(0, 2, 60), {0: LaneState(50, 1), 1: LaneState(40, 1)})
    bls = voucher(0, 1, 5, key=BLS_PAYER)
    vouchers.check_voucher(bls, signer=Address.of_key(BLS_PAYER), balance=5, lanes={}, height=0)


@pytest.mark.parametrize(
    ("sv", "lanes", "message"),
    [
        (
            voucher(0, 1, 5, key=STRANGER),
            {},
            "voucher signature invalid: secp256k1 signature was not made by",
        ),
        (voucher(0, 1, 5, key=BLS_PAYER), {}, "voucher signature invalid: BLS signature for an address of"),
        (replace(voucher(0, 1, 5), signature=None), {}, "voucher has no signature"),
        (voucher(0, 1, -1), {}, "voucher amount must be non-negative, was -1"),
        (voucher(0, 3, 50), {0: LaneState(10, 3)}, "nonce too low: lane 0 is at nonce 3, voucher has 3"),
        (
            voucher(0, 4, 10),
            {0: LaneState(10, 3)},
            "voucher amount is lower than amount for voucher with lower nonce",
        ),
        (voucher(0, 1, 5, merges=(Merge(1, 1),)), {}, "don't currently support paych lane merges"),
        (voucher(0, 1, 5, time_lock_max=49), {}, "voucher has expired: TimeLockMax 49 is before epoch 50"),
    ],
)
def test_refusals_say_why(sv: SignedVoucher, lanes: dict[int, LaneState], message: str) -> None:
    with pytest.raises(VoucherInvalid, match=message):
        check(sv, lanes)


def test_overspend_gives_the_shortfall() -> None:
    with pytest.raises(
        InsufficientFunds, match="not enough funds in channel to cover voucher - shortfall: 1"
    ) as e:
        check(voucher(0, 1, 101))
    assert e.value.shortfall == 1
    # other lanes' redeemed amounts count: 60 + 41 = 101 against 100
    with pytest.raises(InsufficientFunds) as e:
        check(voucher(1, 1, 41), {0: LaneState(60, 1)})
    assert e.value.shortfall == 1


def test_conditional_and_locked_vouchers_are_valid_until_they_expire() -> None:
    condition = ModVerifyParams(Address.new_id(1000), 64, b"\x82\x01\x02")
    check(voucher(0, 1, 5, extra=condition, time_lock_min=80, time_lock_max=90, secret_hash=b"h" * 32))


def test_nonces_and_best_vouchers_per_lane() -> None:
    stored = [voucher(0, 1, 5), voucher(0, 3, 9), voucher(2, 1, 4), voucher(2, 2, 3)]
    assert (
        vouchers.next_nonce(stored, 0) == 4
        and vouchers.next_nonce(stored, 2) == 3
        and vouchers.next_nonce(stored, 7) == 1
    )
    best = vouchers.best_by_lane(stored)
    assert {lane: (sv.nonce, sv.amount) for lane, sv in best.items()} == {0: (3, 9), 2: (1, 4)}


def test_voucher_text_round_trips_and_bad_text_is_refused() -> None:
    sv = voucher(3, 7, 12_345, extra=ModVerifyParams(Address.new_id(1000), 64, b"data"))
    text = encode_voucher(sv)
    assert "=" not in text and "+" not in text and "/" not in text
    assert decode_voucher(text) == sv
    assert decode_voucher(f"  {text}\n") == sv
    with pytest.raises(DecodeError, match="without padding"):
        decode_voucher(text + "==")
    with pytest.raises(DecodeError, match="not base64url"):
        decode_voucher(text[:10] + "+" + text[11:])
    with pytest.raises(DecodeError, match="voucher: empty text"):
        decode_voucher("  ")
    broken = sv.to_cbor()
    broken[7] = "not a big int"
    with pytest.raises(DecodeError, match=r"voucher: SignedVoucher.Amount"):
        decode_voucher(base64.urlsafe_b64encode(dagcbor.encode(broken)).rstrip(b"=").decode())
