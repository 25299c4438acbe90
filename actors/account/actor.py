"""The account actor: the on-chain identity of a secp256k1 or BLS key."""

from actors import builtin
from actors.account.types import (
    AccountMethod,
    AccountState,
    AuthenticateMessageParams,
    UniversalReceiverParams,
)
from actors.dispatch import ActorDef, exported, exports
from chain.crypto.signature import Signature, SigType
from chain.types.address import Address, Protocol
from chain.vm.exitcode import illegal_argument, illegal_state
from chain.vm.runtime import Runtime


@exports(AccountMethod.Constructor)
def constructor(rt: Runtime, address: Address) -> None:
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    if address.protocol not in (Protocol.SECP256K1, Protocol.BLS):
        raise illegal_argument(f"address must use BLS or SECP protocol, got {address.protocol.name}")
    rt.set_state(AccountState(address))


@exports(AccountMethod.PubkeyAddress)
def pubkey_address(rt: Runtime) -> Address:
    rt.validate_immediate_caller_accept_any()
    return rt.state(AccountState).address


@exports(AccountMethod.AuthenticateMessage)
def authenticate_message(rt: Runtime, params: AuthenticateMessageParams) -> bool:
    """Check that the account's key signed params.message; ErrIllegalArgument if not."""
    rt.validate_immediate_caller_accept_any()
    address = rt.state(AccountState).address
    if address.protocol == Protocol.SECP256K1:
        sig_type = SigType.SECP256K1
    elif address.protocol == Protocol.BLS:
        sig_type = SigType.BLS
    else:
        raise illegal_state(f"account address must use BLS or SECP protocol, got {address}")
    try:
        signature = Signature(sig_type, params.signature)
    except ValueError as exc:
        raise illegal_argument("malformed signature", exc) from None
    if not rt.verify_signature(signature, address, params.message):
        raise illegal_argument("failed to authenticate message, signature invalid")
    return True


@exports(AccountMethod.UniversalReceiverHook)
def universal_receiver_hook(rt: Runtime, params: UniversalReceiverParams) -> None:
    """Accept any asset sent to the account."""
    rt.validate_immediate_caller_accept_any()


ACTOR = ActorDef.of(builtin.ACCOUNT_ACTOR_CODE, "account", AccountState, exported(AccountMethod, globals()))
