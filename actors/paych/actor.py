"""The payment channel actor (builtin-actors v9): a one-way channel from `from` to `to`, paid out by
signed vouchers on lanes, settled after a delay and then collected. Vouchers and their conditions:
actors/paych/types.py.
"""

from dataclasses import replace
from typing import Final

from actors import builtin
from actors.dispatch import METHOD_SEND, ActorDef, exported, exports
from actors.paych.types import (
    ERR_CHANNEL_STATE_UPDATE_AFTER_SETTLED,
    ConstructorParams,
    LaneState,
    ModVerifyParams,
    PaychMethod,
    PaychState,
    PaymentVerifyParams,
    UpdateChannelStateParams,
)
from actors.sends import send_or_abort
from actors.util.resolve import resolve_to_actor_id
from actors.util.stored import reading
from chain.encoding.schema import INT64_MAX
from chain.state.amt import Amt
from chain.types.address import Address
from chain.vm.exitcode import ActorError, forbidden, illegal_argument, illegal_state
from chain.vm.runtime import Runtime

LANE_STATES_AMT_BITWIDTH: Final = 3
MAX_LANE: Final = INT64_MAX  # builtin-actors MAX_LANE = i64::MAX
MAX_SECRET_SIZE: Final = 256


# -- methods ------------------------------------------------------------------------------------------


@exports(PaychMethod.Constructor)
def constructor(rt: Runtime, params: ConstructorParams) -> None:
    # Only the init actor creates channels, on behalf of the payer.
    rt.validate_immediate_caller_type(builtin.INIT_ACTOR_CODE)
    # Both parties must be able to sign vouchers.
    to = _resolve_account(rt, params.to)
    from_ = _resolve_account(rt, params.from_)
    lanes = Amt.new(rt.store, LANE_STATES_AMT_BITWIDTH).flush()
    rt.set_state(PaychState(from_, to, 0, 0, 0, lanes))


@exports(PaychMethod.UpdateChannelState)
def update_channel_state(rt: Runtime, params: UpdateChannelStateParams) -> None:
    """Redeem a voucher signed by the other party: its lane's redeemed amount becomes sv.amount."""
    st = rt.state(PaychState)
    rt.validate_immediate_caller_is(st.from_, st.to)
    signer = st.to if rt.caller == st.from_ else st.from_
    sv = params.sv
    if sv.signature is None:
        raise illegal_argument("voucher has no signature")
    if st.settling_at != 0 and rt.curr_epoch >= st.settling_at:
        raise ActorError(
            ERR_CHANNEL_STATE_UPDATE_AFTER_SETTLED, "no vouchers can be processed after settling"
        )
    if len(params.secret) > MAX_SECRET_SIZE:
        raise illegal_argument(f"secret must be at most {MAX_SECRET_SIZE} bytes long")
    if not rt.verify_signature(sv.signature, signer, sv.signing_bytes()):
        raise illegal_argument("voucher signature invalid")

    channel = rt.resolve_address(sv.channel_addr)
    if channel is None:
        raise illegal_argument(f"voucher payment channel address {sv.channel_addr} does not resolve to an ID")
    if channel != rt.receiver:
        raise illegal_argument(f"voucher payment channel {channel} does not match receiver {rt.receiver}")
    if rt.curr_epoch < sv.time_lock_min:
        raise illegal_argument("cannot use this voucher yet")
    if sv.time_lock_max != 0 and rt.curr_epoch > sv.time_lock_max:
        raise illegal_argument("this voucher has expired")
    if sv.amount < 0:
        raise illegal_argument(f"voucher amount must be non-negative, was {sv.amount}")
    if sv.secret_hash and rt.hash_blake2b(params.secret) != sv.secret_hash:
        raise illegal_argument("incorrect secret")
    if sv.extra is not None:
        _check_condition(rt, sv.extra, params.proof)

    lanes = _load_lanes(rt, st)
    lane = _find_lane(lanes, sv.lane)
    if lane is not None and lane.nonce >= sv.nonce:
        raise illegal_argument(
            f"voucher has an outdated nonce, existing: {lane.nonce}, voucher: {sv.nonce}, cannot redeem"
        )
    lane = lane or LaneState()

    # Merged lanes count as redeemed into this one; their nonces move on so they cannot be reused.
    redeemed_from_others = 0
    for merge in sv.merges:
        if merge.lane == sv.lane:
            raise illegal_argument("voucher cannot merge lanes into its own lane")
        other = _find_lane(lanes, merge.lane)
        if other is None:
            raise illegal_argument(f"voucher specifies invalid merge lane {merge.lane}")
        if other.nonce >= merge.nonce:
            raise illegal_argument("merged lane in voucher has outdated nonce, cannot redeem")
        redeemed_from_others += other.redeemed
        lanes.set(merge.lane, LaneState(other.redeemed, merge.nonce).to_cbor())

    # Only what the voucher adds beyond what its lanes have redeemed already is newly owed.
    balance_delta = sv.amount - (redeemed_from_others + lane.redeemed)
    new_send_balance = st.to_send + balance_delta
    if new_send_balance < 0:
        raise illegal_argument("voucher would leave channel balance negative")
    if new_send_balance > rt.current_balance():
        raise illegal_argument("not enough funds in channel to cover voucher")

    settling_at, min_settle_height = st.settling_at, st.min_settle_height
    if sv.min_settle_height != 0:
        if settling_at != 0 and settling_at < sv.min_settle_height:
            settling_at = sv.min_settle_height
        min_settle_height = max(min_settle_height, sv.min_settle_height)
    lanes.set(sv.lane, LaneState(sv.amount, sv.nonce).to_cbor())
    rt.set_state(
        replace(
            st,
            to_send=new_send_balance,
            settling_at=settling_at,
            min_settle_height=min_settle_height,
            lane_states=lanes.flush(),
        )
    )


@exports(PaychMethod.Settle)
def settle(rt: Runtime) -> None:
    """Start the settling period: vouchers are accepted until it ends, then Collect pays out."""
    st = rt.state(PaychState)
    rt.validate_immediate_caller_is(st.from_, st.to)
    if st.settling_at != 0:
        raise illegal_state("channel already settling")
    settling_at = max(rt.curr_epoch + rt.policy.paych_settle_delay, st.min_settle_height)
    rt.set_state(replace(st, settling_at=settling_at))


@exports(PaychMethod.Collect)
def collect(rt: Runtime) -> None:
    """After settling: pay ToSend to `to`, then delete the channel, returning the rest to `from`."""
    st = rt.state(PaychState)
    rt.validate_immediate_caller_is(st.from_, st.to)
    if st.settling_at == 0 or rt.curr_epoch < st.settling_at:
        raise forbidden("payment channel not settling or settled")
    send_or_abort(rt, st.to, METHOD_SEND, None, st.to_send, "payment to the channel's recipient")
    rt.delete_actor(st.from_)


# -- helpers ------------------------------------------------------------------------------------------


def _resolve_account(rt: Runtime, address: Address) -> Address:
    resolved = resolve_to_actor_id(rt, address)
    code = rt.get_actor_code_cid(resolved)
    if code is None:
        raise illegal_argument(f"no code for address {resolved}")
    if code != builtin.ACCOUNT_ACTOR_CODE:
        raise forbidden(f"actor {address} must be an account, was {code}")
    return resolved


def _check_condition(rt: Runtime, extra: ModVerifyParams, proof: bytes | None) -> None:
    """Call the voucher's condition; its failure fails the redemption with the callee's exit code."""
    params = extra.data if proof is None else PaymentVerifyParams(extra.data, proof).to_bytes()
    result = rt.send(extra.actor, extra.method, params, 0)
    if not result.ok:
        raise ActorError(
            result.exit_code, f"spend voucher verification failed: exit code {int(result.exit_code)}"
        )


def _load_lanes(rt: Runtime, st: PaychState) -> Amt:
    with reading("lane states"):
        return Amt.load(rt.store, st.lane_states, LANE_STATES_AMT_BITWIDTH)


def _find_lane(lanes: Amt, lane_id: int) -> LaneState | None:
    if lane_id > MAX_LANE:
        raise illegal_argument("maximum lane ID is 2^63-1")
    raw = lanes.get(lane_id)
    if raw is None:
        return None
    with reading(f"lane {lane_id}"):
        return LaneState.from_cbor(raw)


ACTOR = ActorDef.of(builtin.PAYCH_ACTOR_CODE, "paymentchannel", PaychState, exported(PaychMethod, globals()))
