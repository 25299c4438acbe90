"""The payment channel actor on the mock runtime: construction, vouchers (signed for real), lanes,
merges, time locks, secrets, conditions (one carrying a real piece inclusion proof), Settle, Collect."""

import hashlib
from dataclasses import replace

import pytest

from actors import builtin
from actors.dispatch import METHOD_SEND
from actors.miner.types import MinerMethod, PieceInclusionExtra, VerifyPieceInclusionParams
from actors.paych import types as paych
from actors.paych.actor import ACTOR, LANE_STATES_AMT_BITWIDTH
from chain.crypto.keys import KeyType, PrivateKey
from chain.encoding import dagcbor
from chain.encoding.commcid import piece_cid_v1
from chain.encoding.errors import DecodeError
from chain.params import DEVNET
from chain.state.amt import Amt
from chain.types.address import Address
from chain.types.sector import PieceInfo
from chain.vm.exitcode import ExitCode
from proofs.commp import comm_d, commp_of_bytes
from proofs.pip import prove_piece_inclusion, verify_piece_inclusion
from tests.actors.aborts import abort_code, aborts
from tests.actors.mock_runtime import MockRuntime

PAYCH = Address.new_id(300)
FROM = Address.new_id(101)
TO = Address.new_id(102)
STRANGER = Address.new_id(103)
MINER = Address.new_id(1000)
FROM_KEY = PrivateKey.derive(KeyType.SECP256K1, b"paych payer")
TO_KEY = PrivateKey.derive(KeyType.BLS, b"paych payee")
FROM_KEY_ADDR = Address.of_key(FROM_KEY)
TO_KEY_ADDR = Address.of_key(TO_KEY)
CHANNEL_BALANCE = 1000


def new_runtime() -> MockRuntime:
    rt = MockRuntime(receiver=PAYCH)
    rt.set_actor_code(FROM, builtin.ACCOUNT_ACTOR_CODE)
    rt.set_actor_code(TO, builtin.ACCOUNT_ACTOR_CODE)
    rt.set_actor_code(STRANGER, builtin.ACCOUNT_ACTOR_CODE)
    rt.set_actor_code(MINER, builtin.MINER_ACTOR_CODE)
    rt.add_id_address(FROM_KEY_ADDR, FROM)
    rt.add_id_address(TO_KEY_ADDR, TO)
    rt.key_addresses[FROM] = FROM_KEY_ADDR
    rt.key_addresses[TO] = TO_KEY_ADDR
    return rt


def new_channel(balance: int = CHANNEL_BALANCE) -> MockRuntime:
    rt = new_runtime()
    rt.set_caller(builtin.INIT_ACTOR_CODE, builtin.INIT_ACTOR_ADDR)
    rt.expect_validate_caller_type(builtin.INIT_ACTOR_CODE)
    rt.call(ACTOR, paych.PaychMethod.Constructor, paych.ConstructorParams(FROM_KEY_ADDR, TO))
    rt.verify()
    rt.balance = balance
    rt.curr_epoch = 10
    return rt


def channel(rt: MockRuntime) -> paych.PaychState:
    return rt.state(paych.PaychState)


def lane(rt: MockRuntime, lane_id: int) -> paych.LaneState | None:
    raw = Amt.load(rt.store, channel(rt).lane_states, LANE_STATES_AMT_BITWIDTH).get(lane_id)
    return None if raw is None else paych.LaneState.from_cbor(raw)


def voucher(
    *,
    lane: int = 0,
    nonce: int = 1,
    amount: int = 100,
    key: PrivateKey = FROM_KEY,
    **changes: object,
) -> paych.SignedVoucher:
    """A voucher on this channel, signed for real by key (the payer's unless told otherwise)."""
    sv = paych.SignedVoucher(
        channel_addr=PAYCH,
        time_lock_min=0,
        time_lock_max=0,
        secret_hash=b"",
        extra=None,
        lane=lane,
        nonce=nonce,
        amount=amount,
        min_settle_height=0,
    )
    sv = replace(sv, **changes)  # type: ignore[arg-type]
    return replace(sv, signature=key.sign(sv.signing_bytes()))


def redeem(
    rt: MockRuntime, params: paych.UpdateChannelStateParams | paych.SignedVoucher, caller: Address = TO
) -> None:
    """UpdateChannelState as caller, the signature verified for real against the other party."""
    if isinstance(params, paych.SignedVoucher):
        params = paych.UpdateChannelStateParams(params)
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, caller)
    rt.expect_validate_caller_addr(FROM, TO)
    if params.sv.signature is not None:
        signer = TO if caller == FROM else FROM
        rt.expect_verify_signature_checked(params.sv.signature, signer, params.sv.signing_bytes())
    rt.call(ACTOR, paych.PaychMethod.UpdateChannelState, params)
    rt.verify()


def redeem_fails(
    rt: MockRuntime, params: paych.UpdateChannelStateParams | paych.SignedVoucher, caller: Address = TO
) -> int:
    code = abort_code(lambda: redeem(rt, params, caller))
    rt.reset()
    return code


# -- encodings ------------------------------------------------------------------------------------------


def test_voucher_signing_bytes_have_null_signature() -> None:
    sv = voucher(extra=paych.ModVerifyParams(MINER, 64, b"\x01"), merges=(paych.Merge(3, 4),))
    raw = dagcbor.decode(sv.signing_bytes())
    assert len(raw) == 11 and raw[10] is None
    assert raw[3] == b"" and raw[4] == [MINER.to_bytes(), 64, b"\x01"] and raw[9] == [[3, 4]]
    assert raw[7] == b"\x00\x64"  # Amount 100 as a big integer
    assert paych.SignedVoucher.from_cbor(dagcbor.decode(dagcbor.encode(sv.to_cbor()))) == sv
    # The signature covers every field.
    assert replace(sv, amount=101).signing_bytes() != sv.signing_bytes()


def test_update_params_forms() -> None:
    sv = voucher()
    v9 = paych.UpdateChannelStateParams(sv, b"s")
    with_proof = paych.UpdateChannelStateParams(sv, b"s", b"p")
    assert len(v9.to_cbor()) == 2 and len(with_proof.to_cbor()) == 3
    for params in (v9, with_proof):
        assert (
            paych.UpdateChannelStateParams.from_cbor(dagcbor.decode(dagcbor.encode(params.to_cbor())))
            == params
        )
    with pytest.raises(DecodeError, match="UpdateChannelStateParams"):
        paych.UpdateChannelStateParams.from_cbor([sv.to_cbor()])
    with pytest.raises(DecodeError, match="Lane"):
        paych.SignedVoucher.from_cbor([*sv.to_cbor()[:5], -1, *sv.to_cbor()[6:]])


# -- Constructor ------------------------------------------------------------------------------------------


def test_constructor_resolves_both_parties() -> None:
    rt = new_channel()
    st = channel(rt)
    assert (st.from_, st.to, st.to_send, st.settling_at, st.min_settle_height) == (FROM, TO, 0, 0, 0)
    assert len(Amt.load(rt.store, st.lane_states, LANE_STATES_AMT_BITWIDTH)) == 0
    assert paych.PaychState.from_cbor(dagcbor.decode(dagcbor.encode(st.to_cbor()))) == st


def construct_fails(rt: MockRuntime, params: paych.ConstructorParams) -> int:
    return abort_code(lambda: rt.call(ACTOR, paych.PaychMethod.Constructor, params))


def test_constructor_only_from_init() -> None:
    rt = new_runtime()
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, FROM)
    rt.expect_validate_caller_type(builtin.INIT_ACTOR_CODE)
    assert construct_fails(rt, paych.ConstructorParams(FROM, TO)) == ExitCode.SysErrForbidden


def test_constructor_parties_must_be_accounts() -> None:
    rt = new_runtime()
    rt.set_caller(builtin.INIT_ACTOR_CODE, builtin.INIT_ACTOR_ADDR)
    rt.expect_validate_caller_type(builtin.INIT_ACTOR_CODE)
    assert construct_fails(rt, paych.ConstructorParams(FROM, MINER)) == ExitCode.ErrForbidden
    rt.expect_validate_caller_type(builtin.INIT_ACTOR_CODE)
    assert (
        construct_fails(rt, paych.ConstructorParams(Address.new_id(4040), TO)) == ExitCode.ErrIllegalArgument
    )


def test_constructor_creates_unknown_key_address_or_fails() -> None:
    rt = new_runtime()
    rt.set_caller(builtin.INIT_ACTOR_CODE, builtin.INIT_ACTOR_ADDR)
    newcomer = Address.of_key(PrivateKey.derive(KeyType.SECP256K1, b"newcomer"))
    # A zero-value send would create its account; here the VM still cannot resolve it afterwards.
    rt.expect_validate_caller_type(builtin.INIT_ACTOR_CODE)
    rt.expect_send(newcomer, METHOD_SEND, None, 0)
    assert construct_fails(rt, paych.ConstructorParams(FROM, newcomer)) == ExitCode.ErrIllegalArgument
    rt.verify()
    rt.expect_validate_caller_type(builtin.INIT_ACTOR_CODE)
    rt.expect_send(newcomer, METHOD_SEND, None, 0, exit_code=ExitCode.SysErrInvalidReceiver)
    assert construct_fails(rt, paych.ConstructorParams(FROM, newcomer)) == ExitCode.SysErrInvalidReceiver


# -- UpdateChannelState ----------------------------------------------------------------------------


def test_redeem_voucher_signed_by_payer() -> None:
    rt = new_channel()
    redeem(rt, voucher(amount=100))
    assert channel(rt).to_send == 100
    assert lane(rt, 0) == paych.LaneState(100, 1)
    # A later voucher on the same lane replaces the amount: only the difference is owed.
    redeem(rt, voucher(nonce=2, amount=250))
    assert channel(rt).to_send == 250
    redeem(rt, voucher(lane=7, nonce=1, amount=50))
    assert channel(rt).to_send == 300


def test_payer_may_submit_voucher_signed_by_payee() -> None:
    rt = new_channel()
    redeem(rt, voucher(amount=40, key=TO_KEY), caller=FROM)
    assert channel(rt).to_send == 40


def test_voucher_signature_must_be_the_other_partys() -> None:
    rt = new_channel()
    assert redeem_fails(rt, voucher(key=TO_KEY)) == ExitCode.ErrIllegalArgument  # payee signed its own
    assert redeem_fails(rt, replace(voucher(), amount=999)) == ExitCode.ErrIllegalArgument  # tampered
    assert redeem_fails(rt, replace(voucher(), signature=None)) == ExitCode.ErrIllegalArgument


def test_redeem_only_by_the_parties() -> None:
    rt = new_channel()
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, STRANGER)
    rt.expect_validate_caller_addr(FROM, TO)
    with aborts(ExitCode.SysErrForbidden):
        rt.call(ACTOR, paych.PaychMethod.UpdateChannelState, paych.UpdateChannelStateParams(voucher()))


def test_voucher_must_name_this_channel() -> None:
    rt = new_channel()
    assert redeem_fails(rt, voucher(channel_addr=Address.new_id(301))) == ExitCode.ErrIllegalArgument
    unknown = Address.new_actor(b"some other channel")
    assert redeem_fails(rt, voucher(channel_addr=unknown)) == ExitCode.ErrIllegalArgument
    robust = Address.new_actor(b"this channel")
    rt.add_id_address(robust, PAYCH)
    redeem(rt, voucher(channel_addr=robust))
    assert channel(rt).to_send == 100


def test_time_locks() -> None:
    rt = new_channel()
    rt.curr_epoch = 10
    assert redeem_fails(rt, voucher(time_lock_min=11)) == ExitCode.ErrIllegalArgument
    assert redeem_fails(rt, voucher(time_lock_max=9)) == ExitCode.ErrIllegalArgument
    redeem(rt, voucher(time_lock_min=10, time_lock_max=10))


def test_negative_amount_and_insufficient_funds() -> None:
    rt = new_channel(balance=500)
    assert redeem_fails(rt, voucher(amount=-1)) == ExitCode.ErrIllegalArgument
    assert redeem_fails(rt, voucher(amount=501)) == ExitCode.ErrIllegalArgument
    redeem(rt, voucher(amount=500))


def test_secret() -> None:
    rt = new_channel()
    secret = b"open sesame"
    sv = voucher(secret_hash=hashlib.blake2b(secret, digest_size=32).digest())
    assert redeem_fails(rt, paych.UpdateChannelStateParams(sv, b"wrong")) == ExitCode.ErrIllegalArgument
    assert redeem_fails(rt, paych.UpdateChannelStateParams(sv, b"x" * 257)) == ExitCode.ErrIllegalArgument
    redeem(rt, paych.UpdateChannelStateParams(sv, secret))
    assert channel(rt).to_send == 100


def test_outdated_nonce() -> None:
    rt = new_channel()
    redeem(rt, voucher(nonce=5))
    assert redeem_fails(rt, voucher(nonce=5, amount=200)) == ExitCode.ErrIllegalArgument
    assert redeem_fails(rt, voucher(nonce=4, amount=200)) == ExitCode.ErrIllegalArgument
    assert redeem_fails(rt, voucher(lane=(1 << 63), amount=200)) == ExitCode.ErrIllegalArgument


def test_merge_lanes() -> None:
    rt = new_channel()
    redeem(rt, voucher(lane=1, nonce=1, amount=60))
    redeem(rt, voucher(lane=2, nonce=1, amount=40))
    # Lane 3 takes over both: 150 in all, of which 100 were redeemed already.
    redeem(rt, voucher(lane=3, nonce=1, amount=150, merges=(paych.Merge(1, 2), paych.Merge(2, 2))))
    assert channel(rt).to_send == 150
    assert lane(rt, 1) == paych.LaneState(60, 2) and lane(rt, 3) == paych.LaneState(150, 1)
    # The merged lanes' old vouchers can no longer be used.
    assert redeem_fails(rt, voucher(lane=1, nonce=2, amount=500)) == ExitCode.ErrIllegalArgument


def test_merge_failures() -> None:
    rt = new_channel()
    redeem(rt, voucher(lane=1, nonce=3, amount=50))
    assert redeem_fails(rt, voucher(lane=2, merges=(paych.Merge(2, 5),))) == ExitCode.ErrIllegalArgument
    assert redeem_fails(rt, voucher(lane=2, merges=(paych.Merge(9, 5),))) == ExitCode.ErrIllegalArgument
    assert redeem_fails(rt, voucher(lane=2, merges=(paych.Merge(1, 3),))) == ExitCode.ErrIllegalArgument


def test_merge_cannot_drive_balance_negative() -> None:
    rt = new_channel()
    redeem(rt, voucher(lane=1, nonce=1, amount=50))
    redeem(rt, voucher(lane=2, nonce=1, amount=50, merges=(paych.Merge(1, 2),)))
    assert channel(rt).to_send == 50
    bad = voucher(lane=3, nonce=1, amount=0, merges=(paych.Merge(1, 3), paych.Merge(2, 2)))
    assert redeem_fails(rt, bad) == ExitCode.ErrIllegalArgument


def test_min_settle_height() -> None:
    rt = new_channel()
    redeem(rt, voucher(min_settle_height=50))
    assert channel(rt).min_settle_height == 50
    settle(rt)
    assert channel(rt).settling_at == 50  # later than now + the settle delay
    redeem(rt, voucher(nonce=2, min_settle_height=80))
    assert channel(rt).settling_at == 80


def test_no_vouchers_after_settling() -> None:
    rt = new_channel()
    settle(rt)
    rt.curr_epoch = channel(rt).settling_at
    assert redeem_fails(rt, voucher()) == paych.ERR_CHANNEL_STATE_UPDATE_AFTER_SETTLED


# -- conditions (Extra) ------------------------------------------------------------------------------


def test_condition_v9_sends_data_as_params() -> None:
    rt = new_channel()
    sv = voucher(extra=paych.ModVerifyParams(MINER, 77, dagcbor.encode([1, 2])))
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, TO)
    rt.expect_validate_caller_addr(FROM, TO)
    rt.expect_verify_signature_checked(sv.signature, FROM, sv.signing_bytes())
    rt.expect_send(MINER, 77, [1, 2], 0)
    rt.call(ACTOR, paych.PaychMethod.UpdateChannelState, paych.UpdateChannelStateParams(sv))
    rt.verify()
    assert channel(rt).to_send == 100


def test_failed_condition_rejects_voucher() -> None:
    rt = new_channel()
    sv = voucher(extra=paych.ModVerifyParams(MINER, 77, b"\xff"))
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, TO)
    rt.expect_validate_caller_addr(FROM, TO)
    rt.expect_verify_signature_checked(sv.signature, FROM, sv.signing_bytes())
    rt.expect_send(
        MINER, 77, paych.PaymentVerifyParams(b"\xff", b"proof"), 0, exit_code=ExitCode.ErrForbidden
    )
    with aborts(ExitCode.ErrForbidden):
        rt.call(
            ACTOR, paych.PaychMethod.UpdateChannelState, paych.UpdateChannelStateParams(sv, b"", b"proof")
        )
    assert channel(rt).to_send == 0


def test_voucher_redeemed_with_piece_inclusion_proof() -> None:
    """The storage-deal payment flow: the client's voucher is conditional on a piece being in the
    provider's sector; the provider redeems it with a real piece inclusion proof, which the channel
    forwards to the miner actor's VerifyPieceInclusion."""
    pieces = [commp_of_bytes(bytes([7]) * 508).piece_info(), commp_of_bytes(bytes([9]) * 1016).piece_info()]
    sector_commd = comm_d(pieces, 2048)
    proof = prove_piece_inclusion(pieces, 2048, 1)
    ours = pieces[1]
    assert verify_piece_inclusion(
        proof, comm_d=sector_commd, sector_size=2048, comm_p=ours.commitment, piece_size=ours.padded_size
    )

    condition = PieceInclusionExtra(
        sector_number=7, piece=PieceInfo(ours.padded_size, piece_cid_v1(ours.commitment))
    )
    extra = paych.ModVerifyParams(
        MINER, MinerMethod.VerifyPieceInclusion, dagcbor.encode(condition.to_cbor())
    )
    sv = voucher(amount=300, extra=extra)

    rt = new_channel()
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, TO)
    rt.expect_validate_caller_addr(FROM, TO)
    rt.expect_verify_signature_checked(sv.signature, FROM, sv.signing_bytes())
    rt.expect_send(
        MINER, MinerMethod.VerifyPieceInclusion, VerifyPieceInclusionParams(extra.data, proof.to_bytes()), 0
    )
    rt.call(
        ACTOR, paych.PaychMethod.UpdateChannelState, paych.UpdateChannelStateParams(sv, b"", proof.to_bytes())
    )
    rt.verify()
    assert channel(rt).to_send == 300
    assert (
        PieceInclusionExtra.from_bytes(VerifyPieceInclusionParams(extra.data, proof.to_bytes()).extra)
        == condition
    )


# -- Settle / Collect ----------------------------------------------------------------------------------


def settle(rt: MockRuntime, caller: Address = FROM) -> None:
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, caller)
    rt.expect_validate_caller_addr(FROM, TO)
    rt.call(ACTOR, paych.PaychMethod.Settle)
    rt.verify()


def test_settle() -> None:
    rt = new_channel()
    settle(rt, caller=TO)
    assert channel(rt).settling_at == rt.curr_epoch + DEVNET.paych_settle_delay
    with aborts(ExitCode.ErrIllegalState):
        settle(rt)


def test_settle_only_by_the_parties() -> None:
    rt = new_channel()
    with aborts(ExitCode.SysErrForbidden):
        settle(rt, caller=STRANGER)


def collect(rt: MockRuntime, amount: int, exit_code: ExitCode = ExitCode.Ok) -> None:
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, TO)
    rt.expect_validate_caller_addr(FROM, TO)
    rt.expect_send(TO, METHOD_SEND, None, amount, exit_code=exit_code)
    if exit_code == ExitCode.Ok:
        rt.expect_delete_actor(FROM)
    rt.call(ACTOR, paych.PaychMethod.Collect)
    rt.verify()


def test_collect_pays_and_deletes() -> None:
    rt = new_channel()
    redeem(rt, voucher(amount=300))
    settle(rt)
    rt.curr_epoch = channel(rt).settling_at
    collect(rt, 300)
    assert rt.balance == CHANNEL_BALANCE - 300


def test_collect_before_settled() -> None:
    rt = new_channel()
    for prepare in (lambda: None, lambda: settle(rt)):
        prepare()
        rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, TO)
        rt.expect_validate_caller_addr(FROM, TO)
        with aborts(ExitCode.ErrForbidden):
            rt.call(ACTOR, paych.PaychMethod.Collect)


def test_collect_fails_if_payment_fails() -> None:
    rt = new_channel()
    settle(rt)
    rt.curr_epoch = channel(rt).settling_at
    with aborts(ExitCode.SysErrInsufficientFunds):
        collect(rt, 0, exit_code=ExitCode.SysErrInsufficientFunds)
