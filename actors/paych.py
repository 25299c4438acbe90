"""The payment channel actor (builtin-actors v9): a one-way channel from `from` to `to`, paid out by
signed vouchers on lanes, settled after a delay and then collected.

A voucher may carry a condition, `Extra` (ModVerifyParams {Actor, Method, Data}): redeeming it calls
that actor method, and the voucher counts only if the call succeeds. v9 sends Data as the call's
params. filpy also accepts the older UpdateChannelState form with a third field, Proof, supplied by
the redeemer; the call's params are then PaymentVerifyParams {Data, Proof}. This is how a storage
provider redeems a voucher by proving a piece is stored: the miner actor's VerifyPieceInclusion
checks the piece inclusion proof against the sector's CommD (docs/actors.md).
"""

from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any, Final

from actors import builtin
from actors.dispatch import METHOD_SEND, ActorDef, MethodDef
from actors.sends import send_or_abort
from actors.util.resolve import resolve_to_actor_id
from chain.crypto.signature import Signature
from chain.encoding import dagcbor
from chain.encoding.bigint import encode_bigint
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.expect import (
    expect_bigint,
    expect_bytes,
    expect_cid,
    expect_int,
    expect_list,
    expect_nonneg_bigint,
    expect_tuple,
    expect_uint,
)
from chain.state.amt import Amt
from chain.store.blockstore import BlockNotFound
from chain.types.address import Address
from chain.vm.exitcode import ActorError, forbidden, illegal_argument, illegal_state
from chain.vm.runtime import Runtime


class PaychMethod(IntEnum):
    Constructor = 1
    UpdateChannelState = 2
    Settle = 3
    Collect = 4


ERR_CHANNEL_STATE_UPDATE_AFTER_SETTLED: Final = 32
LANE_STATES_AMT_BITWIDTH: Final = 3
MAX_LANE: Final = (1 << 63) - 1
MAX_SECRET_SIZE: Final = 256
MAX_MERGES: Final = 1024  # bounds decoding; a message is far smaller than this allows
MAX_PROOF_BYTES: Final = 1 << 20


# -- data ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConstructorParams:
    from_: Address  # payer
    to: Address  # payee

    def to_cbor(self) -> list[Any]:
        return [self.from_.to_cbor(), self.to.to_cbor()]

    @classmethod
    def from_cbor(cls, raw: Any) -> "ConstructorParams":
        from_, to = expect_tuple(raw, 2, "ConstructorParams")
        return cls(
            Address.from_cbor(from_, "ConstructorParams.From"), Address.from_cbor(to, "ConstructorParams.To")
        )


@dataclass(frozen=True, slots=True)
class LaneState:
    redeemed: int = 0
    nonce: int = 0

    def to_cbor(self) -> list[Any]:
        return [encode_bigint(self.redeemed), self.nonce]

    @classmethod
    def from_cbor(cls, raw: Any) -> "LaneState":
        redeemed, nonce = expect_tuple(raw, 2, "LaneState")
        return cls(expect_bigint(redeemed, "LaneState.Redeemed"), expect_uint(nonce, "LaneState.Nonce"))


@dataclass(frozen=True, slots=True)
class Merge:
    lane: int
    nonce: int

    def to_cbor(self) -> list[Any]:
        return [self.lane, self.nonce]

    @classmethod
    def from_cbor(cls, raw: Any) -> "Merge":
        lane, nonce = expect_tuple(raw, 2, "Merge")
        return cls(expect_uint(lane, "Merge.Lane"), expect_uint(nonce, "Merge.Nonce"))


@dataclass(frozen=True, slots=True)
class ModVerifyParams:
    """A voucher's condition: call Actor's Method; the voucher is good only if the call succeeds."""

    actor: Address
    method: int
    data: bytes

    def to_cbor(self) -> list[Any]:
        return [self.actor.to_cbor(), self.method, self.data]

    @classmethod
    def from_cbor(cls, raw: Any) -> "ModVerifyParams":
        actor, method, data = expect_tuple(raw, 3, "ModVerifyParams")
        return cls(
            Address.from_cbor(actor, "ModVerifyParams.Actor"),
            expect_uint(method, "ModVerifyParams.Method"),
            expect_bytes(data, "ModVerifyParams.Data"),
        )


@dataclass(frozen=True, slots=True)
class PaymentVerifyParams:
    """The params of a condition call made with a redeemer's proof (specs-actors' PaymentVerifyParams)."""

    extra: bytes  # the voucher's ModVerifyParams.Data
    proof: bytes

    def to_cbor(self) -> list[Any]:
        return [self.extra, self.proof]

    @classmethod
    def from_cbor(cls, raw: Any) -> "PaymentVerifyParams":
        extra, proof = expect_tuple(raw, 2, "PaymentVerifyParams")
        return cls(
            expect_bytes(extra, "PaymentVerifyParams.Extra"),
            expect_bytes(proof, "PaymentVerifyParams.Proof", max_len=MAX_PROOF_BYTES),
        )


@dataclass(frozen=True, slots=True)
class SignedVoucher:
    channel_addr: Address
    time_lock_min: int
    time_lock_max: int  # 0: no limit
    secret_hash: bytes  # blake2b-256 of the secret that must accompany the voucher (empty: none)
    extra: ModVerifyParams | None
    lane: int
    nonce: int
    amount: int
    min_settle_height: int
    merges: tuple[Merge, ...] = ()
    signature: Signature | None = None

    def to_cbor(self) -> list[Any]:
        return [
            self.channel_addr.to_cbor(),
            self.time_lock_min,
            self.time_lock_max,
            self.secret_hash,
            None if self.extra is None else self.extra.to_cbor(),
            self.lane,
            self.nonce,
            encode_bigint(self.amount),
            self.min_settle_height,
            [m.to_cbor() for m in self.merges],
            None if self.signature is None else self.signature.to_cbor(),
        ]

    def signing_bytes(self) -> bytes:
        """What `from` signs: the voucher's CBOR with Signature null (Lotus SignedVoucher.SigningBytes)."""
        return dagcbor.encode(replace(self, signature=None).to_cbor())

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "SignedVoucher") -> "SignedVoucher":
        (addr, tmin, tmax, secret, extra, lane, nonce, amount, min_settle, merges, signature) = expect_tuple(
            raw, 11, what
        )
        return cls(
            Address.from_cbor(addr, f"{what}.ChannelAddr"),
            expect_int(tmin, f"{what}.TimeLockMin"),
            expect_int(tmax, f"{what}.TimeLockMax"),
            expect_bytes(secret, f"{what}.SecretHash"),
            None if extra is None else ModVerifyParams.from_cbor(extra),
            expect_uint(lane, f"{what}.Lane"),
            expect_uint(nonce, f"{what}.Nonce"),
            expect_bigint(amount, f"{what}.Amount"),
            expect_int(min_settle, f"{what}.MinSettleHeight"),
            tuple(Merge.from_cbor(m) for m in expect_list(merges, f"{what}.Merges", MAX_MERGES)),
            None if signature is None else Signature.from_cbor(signature, f"{what}.Signature"),
        )


@dataclass(frozen=True, slots=True)
class UpdateChannelStateParams:
    """v9's {Sv, Secret}; with proof set, the older {Sv, Secret, Proof} (see the module doc)."""

    sv: SignedVoucher
    secret: bytes = b""
    proof: bytes | None = None

    def to_cbor(self) -> list[Any]:
        fields: list[Any] = [self.sv.to_cbor(), self.secret]
        if self.proof is not None:
            fields.append(self.proof)
        return fields

    @classmethod
    def from_cbor(cls, raw: Any) -> "UpdateChannelStateParams":
        what = "UpdateChannelStateParams"
        if type(raw) is list and len(raw) == 3:
            sv, secret, proof = raw
            return cls(
                SignedVoucher.from_cbor(sv, f"{what}.Sv"),
                expect_bytes(secret, f"{what}.Secret"),
                expect_bytes(proof, f"{what}.Proof", max_len=MAX_PROOF_BYTES),
            )
        sv, secret = expect_tuple(raw, 2, what)
        return cls(SignedVoucher.from_cbor(sv, f"{what}.Sv"), expect_bytes(secret, f"{what}.Secret"))


@dataclass(frozen=True, slots=True)
class PaychState:
    from_: Address
    to: Address
    to_send: int  # redeemed so far, paid to `to` on Collect
    settling_at: int  # 0 until Settle
    min_settle_height: int
    lane_states: CID  # AMT (bitwidth 3) of LaneState by lane ID

    def to_cbor(self) -> list[Any]:
        return [
            self.from_.to_cbor(),
            self.to.to_cbor(),
            encode_bigint(self.to_send),
            self.settling_at,
            self.min_settle_height,
            self.lane_states,
        ]

    @classmethod
    def from_cbor(cls, raw: Any) -> "PaychState":
        from_, to, to_send, settling_at, min_settle, lanes = expect_tuple(raw, 6, "PaychState")
        return cls(
            Address.from_cbor(from_, "PaychState.From"),
            Address.from_cbor(to, "PaychState.To"),
            expect_nonneg_bigint(to_send, "PaychState.ToSend"),
            expect_int(settling_at, "PaychState.SettlingAt"),
            expect_int(min_settle, "PaychState.MinSettleHeight"),
            expect_cid(lanes, "PaychState.LaneStates"),
        )


# -- methods ------------------------------------------------------------------------------------------


def constructor(rt: Runtime, params: ConstructorParams) -> None:
    # Only the init actor creates channels, on behalf of the payer.
    rt.validate_immediate_caller_type(builtin.INIT_ACTOR_CODE)
    # Both parties must be able to sign vouchers.
    to = _resolve_account(rt, params.to)
    from_ = _resolve_account(rt, params.from_)
    lanes = Amt.new(rt.store, LANE_STATES_AMT_BITWIDTH).flush()
    rt.set_state(PaychState(from_, to, 0, 0, 0, lanes))


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


def settle(rt: Runtime) -> None:
    """Start the settling period: vouchers are accepted until it ends, then Collect pays out."""
    st = rt.state(PaychState)
    rt.validate_immediate_caller_is(st.from_, st.to)
    if st.settling_at != 0:
        raise illegal_state("channel already settling")
    settling_at = max(rt.curr_epoch + rt.policy.paych_settle_delay, st.min_settle_height)
    rt.set_state(replace(st, settling_at=settling_at))


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
    params = extra.data if proof is None else dagcbor.encode(PaymentVerifyParams(extra.data, proof).to_cbor())
    result = rt.send(extra.actor, extra.method, params, 0)
    if not result.ok:
        raise ActorError(
            result.exit_code, f"spend voucher verification failed: exit code {int(result.exit_code)}"
        )


def _load_lanes(rt: Runtime, st: PaychState) -> Amt:
    try:
        return Amt.load(rt.store, st.lane_states, LANE_STATES_AMT_BITWIDTH)
    except (DecodeError, BlockNotFound) as exc:
        raise illegal_state(f"failed to load lane states: {exc}") from None


def _find_lane(lanes: Amt, lane_id: int) -> LaneState | None:
    if lane_id > MAX_LANE:
        raise illegal_argument("maximum lane ID is 2^63-1")
    raw = lanes.get(lane_id)
    if raw is None:
        return None
    try:
        return LaneState.from_cbor(raw)
    except DecodeError as exc:
        raise illegal_state(f"lane {lane_id} is corrupt: {exc}") from None


ACTOR = ActorDef(
    code=builtin.PAYCH_ACTOR_CODE,
    name="paymentchannel",
    state_type=PaychState,
    methods=(
        MethodDef(PaychMethod.Constructor, "Constructor", constructor, ConstructorParams.from_cbor),
        MethodDef(
            PaychMethod.UpdateChannelState,
            "UpdateChannelState",
            update_channel_state,
            UpdateChannelStateParams.from_cbor,
        ),
        MethodDef(PaychMethod.Settle, "Settle", settle),
        MethodDef(PaychMethod.Collect, "Collect", collect),
    ),
)
