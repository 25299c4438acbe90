"""The account actor on the mock runtime (cases of builtin-actors' account_actor_test.rs)."""

import pytest

from actors import builtin
from actors.account import types as account
from actors.account.actor import ACTOR
from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.signature import Signature, SigType
from chain.encoding import dagcbor
from chain.types.address import Address
from chain.vm.exitcode import ExitCode
from tests.actors.aborts import aborts
from tests.actors.mock_runtime import MockRuntime

ME = Address.new_id(100)
SECP = Address.of_key(PrivateKey.derive(KeyType.SECP256K1, b"acct"))
BLS = Address.of_key(PrivateKey.derive(KeyType.BLS, b"acct"))


def constructed(address: Address) -> MockRuntime:
    rt = MockRuntime(receiver=ME)
    rt.expect_validate_caller_addr(builtin.SYSTEM_ACTOR_ADDR)
    rt.call(ACTOR, 1, address)
    rt.verify()
    return rt


@pytest.mark.parametrize("address", [SECP, BLS], ids=["secp256k1", "bls"])
def test_construct_and_pubkey_address(address: Address) -> None:
    rt = constructed(address)
    assert rt.state(account.AccountState).address == address
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, Address.new_id(1000))
    rt.expect_validate_caller_any()
    assert Address.from_cbor(rt.call_decoded(ACTOR, account.AccountMethod.PubkeyAddress)) == address
    rt.verify()


@pytest.mark.parametrize(
    "address", [Address.new_id(1), Address.new_actor(b"\x01\x02\x03")], ids=["id", "actor"]
)
def test_constructor_refuses_non_key_addresses(address: Address) -> None:
    rt = MockRuntime(receiver=ME)
    rt.expect_validate_caller_addr(builtin.SYSTEM_ACTOR_ADDR)
    with aborts(ExitCode.ErrIllegalArgument):
        rt.call(ACTOR, 1, address)


def test_constructor_only_from_system_and_needs_an_address() -> None:
    rt = MockRuntime(receiver=ME, caller=Address.new_id(5))
    rt.expect_validate_caller_addr(builtin.SYSTEM_ACTOR_ADDR)
    with aborts(ExitCode.SysErrForbidden):
        rt.call(ACTOR, 1, SECP)
    with aborts(ExitCode.ErrSerialization):
        ACTOR.invoke(rt, 1, dagcbor.encode(5))


def test_authenticate_message() -> None:
    rt = constructed(SECP)
    params = account.AuthenticateMessageParams(b"\x01" * 65, b"payload")
    expected_sig = Signature(SigType.SECP256K1, b"\x01" * 65)
    rt.expect_validate_caller_any()
    rt.expect_verify_signature(expected_sig, SECP, b"payload", result=True)
    assert rt.call_decoded(ACTOR, account.AccountMethod.AuthenticateMessage, params) is True
    rt.verify()
    rt.expect_validate_caller_any()
    rt.expect_verify_signature(expected_sig, SECP, b"payload", result=False)
    with aborts(ExitCode.ErrIllegalArgument):
        rt.call(ACTOR, account.AccountMethod.AuthenticateMessage, params)
    rt.verify()


def test_authenticate_message_with_bls_key_and_bad_state() -> None:
    rt = constructed(BLS)
    params = account.AuthenticateMessageParams(b"\x02" * 96, b"m")
    rt.expect_validate_caller_any()
    rt.expect_verify_signature(Signature(SigType.BLS, b"\x02" * 96), BLS, b"m", result=True)
    rt.call(ACTOR, account.AccountMethod.AuthenticateMessage, params)
    rt.verify()
    # A state holding a non-key address (as the burnt-funds actor's does) cannot authenticate.
    rt.set_state(account.AccountState(builtin.BURNT_FUNDS_ACTOR_ADDR))
    rt.expect_validate_caller_any()
    with aborts(ExitCode.ErrIllegalState):
        rt.call(ACTOR, account.AccountMethod.AuthenticateMessage, params)
    # A signature too long to be one is the caller's error.
    rt.set_state(account.AccountState(BLS))
    rt.expect_validate_caller_any()
    with aborts(ExitCode.ErrIllegalArgument):
        rt.call(
            ACTOR,
            account.AccountMethod.AuthenticateMessage,
            account.AuthenticateMessageParams(bytes(300), b""),
        )


def test_universal_receiver_hook_accepts_anything() -> None:
    rt = constructed(SECP)
    rt.set_caller(builtin.MULTISIG_ACTOR_CODE, Address.new_id(1000))
    rt.expect_validate_caller_any()
    assert (
        rt.call(
            ACTOR,
            account.AccountMethod.UniversalReceiverHook,
            account.UniversalReceiverParams(7, b"\x01\x02"),
        )
        == b""
    )
    rt.verify()
    with aborts(ExitCode.ErrSerialization):
        ACTOR.invoke(rt, account.AccountMethod.UniversalReceiverHook, dagcbor.encode([1 << 32, b""]))


def test_unknown_method() -> None:
    rt = constructed(SECP)
    with aborts(ExitCode.ErrUnhandledMessage):
        ACTOR.invoke(rt, 3, b"")
