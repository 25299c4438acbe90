"""The account actor: the on-chain identity of a secp256k1 or BLS key.

State (builtin-actors account State, tuple): [Address], the key address. Methods (builtin-actors
actors/account/src/lib.rs): Constructor (1), PubkeyAddress (2), AuthenticateMessage (FRC-42 number of
"AuthenticateMessage") and UniversalReceiverHook (FRC-42 number of "Receive").
"""

from dataclasses import dataclass
from typing import Any, Final

from actors import builtin
from actors.dispatch import METHOD_CONSTRUCTOR, ActorDef, MethodDef
from chain.crypto.signature import Signature, SigType
from chain.encoding.errors import DecodeError
from chain.encoding.expect import expect_bytes, expect_tuple, expect_uint
from chain.types.address import Address, Protocol
from chain.vm.exitcode import ActorError, ExitCode
from chain.vm.runtime import Runtime

METHOD_PUBKEY_ADDRESS: Final = 2
METHOD_AUTHENTICATE_MESSAGE: Final = 2643134072  # frc42 method_hash("AuthenticateMessage")
METHOD_UNIVERSAL_RECEIVER_HOOK: Final = 3726118371  # frc42 method_hash("Receive")

# cbor-gen's ByteArrayMaxLen, the longest byte string a params field may hold.
_MAX_BYTES: Final = 2 << 20
_UINT32_MAX: Final = (1 << 32) - 1


@dataclass(frozen=True, slots=True)
class AccountState:
    address: Address

    def to_cbor(self) -> list[Any]:
        return [self.address.to_bytes()]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "AccountState") -> "AccountState":
        (address,) = expect_tuple(raw, 1, what)
        return cls(Address.from_cbor(address, f"{what}.Address"))


@dataclass(frozen=True, slots=True)
class AuthenticateMessageParams:
    signature: bytes  # the signature's bytes without the type byte
    message: bytes

    def to_cbor(self) -> list[Any]:
        return [self.signature, self.message]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "AuthenticateMessageParams") -> "AuthenticateMessageParams":
        signature, message = expect_tuple(raw, 2, what)
        return cls(
            expect_bytes(signature, f"{what}.Signature", max_len=_MAX_BYTES),
            expect_bytes(message, f"{what}.Message", max_len=_MAX_BYTES),
        )


@dataclass(frozen=True, slots=True)
class UniversalReceiverParams:
    type: int  # a uint32 naming what kind of asset is received
    payload: bytes

    def to_cbor(self) -> list[Any]:
        return [self.type, self.payload]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "UniversalReceiverParams") -> "UniversalReceiverParams":
        type_, payload = expect_tuple(raw, 2, what)
        kind = expect_uint(type_, f"{what}.Type")
        if kind > _UINT32_MAX:
            raise DecodeError(f"{what}.Type {kind} does not fit in 32 bits")
        return cls(kind, expect_bytes(payload, f"{what}.Payload", max_len=_MAX_BYTES))


def _key_address(raw: Any) -> Address:
    return Address.from_cbor(raw, "account address")


def constructor(rt: Runtime, address: Address) -> None:
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    if address.protocol not in (Protocol.SECP256K1, Protocol.BLS):
        raise ActorError(
            ExitCode.ErrIllegalArgument,
            f"address must use BLS or SECP protocol, got {address.protocol.name}",
        )
    rt.set_state(AccountState(address))


def pubkey_address(rt: Runtime) -> Address:
    rt.validate_immediate_caller_accept_any()
    return rt.state(AccountState).address


def authenticate_message(rt: Runtime, params: AuthenticateMessageParams) -> bool:
    """Check that the account's key signed params.message; ErrIllegalArgument if not."""
    rt.validate_immediate_caller_accept_any()
    address = rt.state(AccountState).address
    if address.protocol == Protocol.SECP256K1:
        sig_type = SigType.SECP256K1
    elif address.protocol == Protocol.BLS:
        sig_type = SigType.BLS
    else:
        raise ActorError(
            ExitCode.ErrIllegalState, f"account address must use BLS or SECP protocol, got {address}"
        )
    try:
        signature = Signature(sig_type, params.signature)
    except ValueError as exc:
        raise ActorError(ExitCode.ErrIllegalArgument, f"malformed signature: {exc}") from None
    if not rt.verify_signature(signature, address, params.message):
        raise ActorError(ExitCode.ErrIllegalArgument, "failed to authenticate message, signature invalid")
    return True


def universal_receiver_hook(rt: Runtime, params: UniversalReceiverParams) -> None:
    """Accept any asset sent to the account."""
    rt.validate_immediate_caller_accept_any()


ACTOR = ActorDef(
    code=builtin.ACCOUNT_ACTOR_CODE,
    name="account",
    state_type=AccountState,
    methods=(
        MethodDef(METHOD_CONSTRUCTOR, "Constructor", constructor, _key_address),
        MethodDef(METHOD_PUBKEY_ADDRESS, "PubkeyAddress", pubkey_address),
        MethodDef(
            METHOD_AUTHENTICATE_MESSAGE,
            "AuthenticateMessage",
            authenticate_message,
            AuthenticateMessageParams.from_cbor,
        ),
        MethodDef(
            METHOD_UNIVERSAL_RECEIVER_HOOK,
            "UniversalReceiverHook",
            universal_receiver_hook,
            UniversalReceiverParams.from_cbor,
        ),
    ),
)
