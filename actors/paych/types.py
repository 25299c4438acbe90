"""The payment channel actor's methods, state and params (builtin-actors v9 actors/paych).

A voucher may carry a condition, `Extra` (ModVerifyParams {Actor, Method, Data}): redeeming it calls
that actor method, and the voucher counts only if the call succeeds. v9 sends Data as the call's
params. filpy also accepts the older UpdateChannelState form with a third field, Proof, supplied by
the redeemer; the call's params are then PaymentVerifyParams {Extra, Proof}. This is how a storage
provider redeems a voucher by proving a piece is stored: the miner actor's VerifyPieceInclusion
checks the piece inclusion proof against the sector's CommD (docs/actors.md).
"""

import base64
from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated, Any, Final

from chain.crypto.signature import Signature
from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.schema import (
    DEFAULT_NETWORK,
    BigInt,
    Bytes,
    BytesKind,
    CborTuple,
    ChainEpoch,
    MaxLen,
    TokenAmount,
    Uint64,
    bytes_to_json,
    fields,
    json_object,
    kind_name,
)
from chain.types.address import Address


class PaychMethod(IntEnum):
    Constructor = 1
    UpdateChannelState = 2
    Settle = 3
    Collect = 4


ERR_CHANNEL_STATE_UPDATE_AFTER_SETTLED: Final = 32
MAX_MERGES: Final = 1024  # bounds decoding; a message is far smaller than this allows
MAX_PROOF_BYTES: Final = 1 << 20
RedeemerProof = Annotated[bytes, BytesKind(max_len=MAX_PROOF_BYTES)]


class ConstructorParams(CborTuple):
    from_: Address  # payer
    to: Address  # payee


class LaneState(CborTuple):
    redeemed: BigInt = 0
    nonce: Uint64 = 0


class Merge(CborTuple):
    lane: Uint64
    nonce: Uint64


class ModVerifyParams(CborTuple):
    """A voucher's condition: call Actor's Method; the voucher is good only if the call succeeds."""

    actor: Address
    method: Uint64
    data: Bytes


class PaymentVerifyParams(CborTuple):
    """The params of a condition call made with a redeemer's proof (specs-actors' PaymentVerifyParams)."""

    extra: Bytes  # the voucher's ModVerifyParams.Data
    proof: RedeemerProof


class SignedVoucher(CborTuple):
    channel_addr: Address
    time_lock_min: ChainEpoch
    time_lock_max: ChainEpoch  # 0: no limit
    secret_hash: Bytes  # blake2b-256 of the secret that must accompany the voucher (empty: none)
    extra: ModVerifyParams | None
    lane: Uint64
    nonce: Uint64
    amount: BigInt
    min_settle_height: ChainEpoch
    merges: Annotated[tuple[Merge, ...], MaxLen(MAX_MERGES)] = ()
    signature: Signature | None = None

    def signing_bytes(self) -> bytes:
        """What `from` signs: the voucher's CBOR with Signature null (Lotus SignedVoucher.SigningBytes)."""
        raw = self.to_cbor()
        raw[_SIGNATURE_INDEX] = None
        return dagcbor.encode(raw)


_SIGNATURE_INDEX: Final = [f.name for f in fields(SignedVoucher)].index("signature")


@dataclass(frozen=True, slots=True)
class UpdateChannelStateParams:
    """v9's {Sv, Secret}; with proof set, the older {Sv, Secret, Proof} (see the module doc).

    Written by hand: the CBOR array has two or three fields, which a declared tuple cannot say."""

    sv: SignedVoucher
    secret: bytes = b""
    proof: bytes | None = None

    def to_cbor(self) -> list[Any]:
        out: list[Any] = [self.sv.to_cbor(), self.secret]
        if self.proof is not None:
            out.append(self.proof)
        return out

    def to_bytes(self) -> bytes:
        return dagcbor.encode(self.to_cbor())

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "UpdateChannelStateParams") -> "UpdateChannelStateParams":
        if type(raw) is not list or len(raw) not in (2, 3):
            count = f"{len(raw)} fields" if type(raw) is list else kind_name(raw)
            raise DecodeError(f"{what}: expected an array of 2 or 3 fields, got {count}")
        proof = _REDEEMER_PROOF.decode(raw[2], f"{what}.Proof") if len(raw) == 3 else None
        return cls(
            SignedVoucher.from_cbor(raw[0], f"{what}.Sv"), _SECRET.decode(raw[1], f"{what}.Secret"), proof
        )

    def to_json(self, network: str = DEFAULT_NETWORK) -> dict[str, Any]:
        out = {"Sv": self.sv.to_json(network), "Secret": bytes_to_json(self.secret)}
        if self.proof is not None:
            # Written even when empty ("" rather than null), so that the three-field form survives.
            out["Proof"] = base64.b64encode(self.proof).decode("ascii")
        return out

    @classmethod
    def from_json(cls, raw: Any, what: str = "UpdateChannelStateParams") -> "UpdateChannelStateParams":
        obj = json_object(raw, what)
        if "Sv" not in obj:
            raise DecodeError(f"{what}: missing field 'Sv'")
        proof = obj.get("Proof")
        return cls(
            SignedVoucher.from_json(obj["Sv"], f"{what}.Sv"),
            _SECRET.from_json(obj.get("Secret"), f"{what}.Secret"),
            None if proof is None else _REDEEMER_PROOF.from_json(proof, f"{what}.Proof"),
        )


_SECRET: Final = BytesKind()
_REDEEMER_PROOF: Final = BytesKind(max_len=MAX_PROOF_BYTES)


class PaychState(CborTuple):
    from_: Address
    to: Address
    to_send: TokenAmount  # redeemed so far, paid to `to` on Collect
    settling_at: ChainEpoch  # 0 until Settle
    min_settle_height: ChainEpoch
    lane_states: CID  # AMT (bitwidth 3) of LaneState by lane ID
