"""apply_message end to end: transfers, account creation, refusals, gas, nested sends and rollback."""

from dataclasses import replace
from enum import IntEnum
from typing import Any

import pytest

from actors import builtin
from actors.account.types import AccountMethod, AccountState, AuthenticateMessageParams
from actors.dispatch import ActorDef, exported, exports
from actors.init.types import ExecParams, ExecReturn, InitMethod
from chain.crypto.keys import KeyType, PrivateKey
from chain.encoding import dagcbor
from chain.encoding.schema import Bytes, CborTuple, Int64
from chain.state.init_state import InitState
from chain.store.blockstore import get_cbor
from chain.types.address import Address
from chain.vm.exitcode import ActorError, ExitCode
from chain.vm.gas import PRICES
from chain.vm.runtime import Runtime
from chain.vm.tipset_apply import implicit_message
from chain.vm.vm import ApplyRet
from tests.chain.vm_helpers import (
    BASE_FEE,
    FIL,
    TEST_INVOKER,
    RelayParams,
    World,
    expect_exit,
    make_world,
    total_balance,
)

BURNT = builtin.BURNT_FUNDS_ACTOR_ADDR
REWARD = builtin.REWARD_ACTOR_ADDR


@pytest.fixture
def world() -> World:
    return make_world()


def check_payout(
    world: World, before: dict[Address, int], sender: Address, ret: ApplyRet, value: int
) -> None:
    """The sender paid value (if the message succeeded) plus gas; burn and tip went where they belong;
    no attoFIL appeared or vanished."""
    out = ret.gas_costs
    paid = before[sender] - world.balance(sender)
    spent_value = value if ret.exit_code == 0 else 0
    assert paid == spent_value + out.base_fee_burn + out.over_estimation_burn + out.miner_tip
    assert world.balance(BURNT) - before[BURNT] == out.base_fee_burn + out.over_estimation_burn
    assert world.balance(REWARD) - before[REWARD] == out.miner_tip


def balances(world: World) -> dict[Address, int]:
    return {a: actor.balance for a, actor in world.tree.actors()}


def test_transfer_between_accounts(world: World) -> None:
    vm = world.vm()
    total = total_balance(world.tree)
    before = balances(world)
    smsg = world.message(0, world.addresses[1], value=5 * FIL)
    ret = vm.apply_message(smsg)
    assert ret.exit_code == 0 and ret.receipt.return_data == b""
    expected_gas = PRICES.on_chain_message(smsg.chain_length()) + PRICES.on_method_invocation(5 * FIL, 0)
    assert ret.receipt.gas_used == expected_gas
    assert world.balance(world.ids[1]) == before[world.ids[1]] + 5 * FIL
    assert world.nonce(world.ids[0]) == 1
    check_payout(world, before, world.ids[0], ret, 5 * FIL)
    assert ret.gas_costs.base_fee_burn == BASE_FEE * expected_gas
    assert ret.gas_costs.miner_tip == 100 * smsg.message.gas_limit
    assert total_balance(world.tree) == total


def test_send_to_a_new_key_address_creates_an_account(world: World) -> None:
    vm = world.vm()
    for key_type in (KeyType.SECP256K1, KeyType.BLS):
        new = Address.of_key(PrivateKey.derive(key_type, b"newcomer"))
        ret = vm.apply_message(world.message(0, new, value=FIL))
        assert ret.exit_code == 0, ret.error
        id_address = world.tree.lookup_id(new)
        assert id_address is not None and id_address.id >= 103
        actor = world.tree.get_actor(new)
        assert actor is not None and actor.code == builtin.ACCOUNT_ACTOR_CODE and actor.balance == FIL
        assert AccountState.from_cbor(get_cbor(world.store, actor.head)).address == new
        assert ret.receipt.gas_used > PRICES.on_create_actor()


@pytest.mark.parametrize(
    "to",
    [Address.new_id(5000), Address.new_actor(b"nobody")],
    ids=["unknown-id", "unknown-actor-address"],
)
def test_send_to_an_address_that_cannot_be_created(world: World, to: Address) -> None:
    vm = world.vm()
    before = balances(world)
    ret = vm.apply_message(world.message(0, to, value=FIL))
    expect_exit(ret.exit_code, ExitCode.SysErrInvalidReceiver)
    assert world.nonce(world.ids[0]) == 1  # a failed message still uses its nonce and pays gas
    check_payout(world, before, world.ids[0], ret, FIL)
    assert world.tree.get_actor(to) is None


def test_value_above_balance_fails_and_reverts(world: World) -> None:
    vm = world.vm()
    before = balances(world)
    ret = vm.apply_message(world.message(0, world.addresses[1], value=5_000 * FIL))
    expect_exit(ret.exit_code, ExitCode.SysErrInsufficientFunds)
    assert world.balance(world.ids[1]) == before[world.ids[1]]
    check_payout(world, before, world.ids[0], ret, 5_000 * FIL)


@pytest.mark.parametrize("nonce", [1, 5])
def test_wrong_nonce_is_refused_without_changes(world: World, nonce: int) -> None:
    vm = world.vm()
    root = world.tree.flush()
    smsg = world.message(0, world.addresses[1], value=FIL, nonce=nonce)
    ret = vm.apply_message(smsg)
    expect_exit(ret.exit_code, ExitCode.SysErrSenderStateInvalid)
    assert ret.receipt.gas_used == 0
    assert ret.gas_costs.miner_penalty == BASE_FEE * smsg.message.gas_limit
    assert "nonce" in (ret.error or "")
    assert world.tree.flush() == root


def test_balance_below_gas_cost_is_refused(world: World) -> None:
    vm = world.vm()
    root = world.tree.flush()
    ret = vm.apply_message(world.message(0, world.addresses[1], gas_limit=10_000_000, fee_cap=10**15))
    expect_exit(ret.exit_code, ExitCode.SysErrSenderStateInvalid)
    assert world.tree.flush() == root


def test_unknown_sender_and_non_account_sender(world: World) -> None:
    vm = world.vm()
    stranger = PrivateKey.derive(KeyType.SECP256K1, b"stranger")
    msg = replace(world.message(0, world.addresses[0], nonce=0).message, from_=Address.of_key(stranger))
    expect_exit(vm.apply_message(msg).exit_code, ExitCode.SysErrSenderInvalid)
    probe = world.add_probe(balance=10 * FIL)
    expect_exit(vm.apply_message(replace(msg, from_=probe)).exit_code, ExitCode.SysErrSenderInvalid)


def test_gas_limit_below_inclusion_cost(world: World) -> None:
    vm = world.vm()
    smsg = world.message(0, world.addresses[1], value=FIL, gas_limit=1000)
    ret = vm.apply_message(smsg)
    expect_exit(ret.exit_code, ExitCode.SysErrOutOfGas)
    assert ret.receipt.gas_used == 0
    assert ret.gas_costs.miner_penalty == BASE_FEE * PRICES.on_chain_message(smsg.chain_length())
    assert world.nonce(world.ids[0]) == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"premium": -1}, {"premium": 2000, "fee_cap": 1000}, {"fee_cap": -5, "premium": -6}],
    ids=["negative-premium", "premium-above-cap", "negative-cap"],
)
def test_malformed_messages_are_refused(world: World, kwargs: dict[str, int]) -> None:
    vm = world.vm()
    ret = vm.apply_message(world.message(0, world.addresses[1], **kwargs))
    expect_exit(ret.exit_code, ExitCode.SysErrSenderInvalid)
    assert world.nonce(world.ids[0]) == 0


def test_out_of_gas_during_execution(world: World) -> None:
    vm = world.vm()
    before = balances(world)
    smsg = world.message(0, world.addresses[1], value=FIL, gas_limit=400_000)
    assert PRICES.on_chain_message(smsg.chain_length()) < 400_000
    ret = vm.apply_message(smsg)
    expect_exit(ret.exit_code, ExitCode.SysErrOutOfGas)
    assert ret.receipt.gas_used == 400_000
    assert world.balance(world.ids[1]) == before[world.ids[1]]
    assert world.nonce(world.ids[0]) == 1
    check_payout(world, before, world.ids[0], ret, FIL)


def test_base_fee_above_fee_cap_penalises_the_miner(world: World) -> None:
    vm = world.vm(base_fee=2000)
    smsg = world.message(0, world.addresses[1], value=FIL, fee_cap=1500, premium=100)
    ret = vm.apply_message(smsg)
    assert ret.exit_code == 0
    used = ret.receipt.gas_used
    assert ret.gas_costs.miner_penalty >= (2000 - 1500) * used
    assert ret.gas_costs.miner_tip == 0
    assert ret.gas_costs.base_fee_burn == 1500 * used


def relay(
    world: World, sender: int, probe: Address, to: Address, method: int, params: bytes, value: int, **kw: Any
) -> ApplyRet:
    payload = RelayParams(to, method, params, value).to_cbor()
    return world.vm().apply_message(
        world.message(sender, probe, method=2, params=dagcbor.encode(payload), **kw)
    )


def test_nested_send_moves_value_from_the_calling_actor(world: World) -> None:
    probe = world.add_probe(balance=10 * FIL)
    target = world.ids[2]
    before = world.balance(target)
    ret = relay(world, 0, probe, target, 0, b"", 3 * FIL)
    assert ret.exit_code == 0, ret.error
    assert dagcbor.decode(ret.receipt.return_data) == [0, b""]
    assert world.balance(probe) == 7 * FIL
    assert world.balance(target) == before + 3 * FIL


def test_a_failing_callee_is_rolled_back_but_not_its_caller(world: World) -> None:
    probe, callee = world.add_probe(balance=10 * FIL), world.add_probe()
    ret = relay(world, 0, probe, callee, 3, dagcbor.encode([7, 20]), FIL)
    assert ret.exit_code == 0, ret.error
    assert dagcbor.decode(ret.receipt.return_data) == [20, b""]
    assert get_cbor(world.store, world.tree.get_actor(callee).head) == [0]  # type: ignore[union-attr]
    assert world.balance(callee) == 0 and world.balance(probe) == 10 * FIL
    # The same call succeeding keeps its state.
    ret = relay(world, 0, probe, callee, 3, dagcbor.encode([7, 0]), FIL)
    assert dagcbor.decode(ret.receipt.return_data) == [0, b""]
    assert get_cbor(world.store, world.tree.get_actor(callee).head) == [7]  # type: ignore[union-attr]


def test_a_failing_message_rolls_back_everything_it_did(world: World) -> None:
    probe = world.add_probe()
    before = balances(world)
    vm = world.vm()
    ret = vm.apply_message(world.message(0, probe, method=3, params=dagcbor.encode([5, 18]), value=FIL))
    expect_exit(ret.exit_code, ExitCode.ErrForbidden)
    assert get_cbor(world.store, world.tree.get_actor(probe).head) == [0]  # type: ignore[union-attr]
    assert world.balance(probe) == 0
    assert world.nonce(world.ids[0]) == 1
    check_payout(world, before, world.ids[0], ret, FIL)


def test_nested_send_that_runs_out_of_gas_fails_the_whole_message(world: World) -> None:
    probe, burner = world.add_probe(), world.add_probe()
    ret = relay(world, 0, probe, burner, 7, dagcbor.encode(10**12), 0, gas_limit=50_000_000)
    expect_exit(ret.exit_code, ExitCode.SysErrOutOfGas)
    assert ret.receipt.gas_used == 50_000_000


def test_call_depth_limit(world: World) -> None:
    probe = world.add_probe()
    world.policy = replace(world.policy, max_call_depth=10)
    vm = world.vm()
    # The message's own call is depth 0; ten nested sends below it are allowed, the eleventh is not.
    ret = vm.apply_message(world.message(0, probe, method=4, params=dagcbor.encode(10)))
    assert ret.exit_code == 0 and dagcbor.decode(ret.receipt.return_data) == 0
    ret = vm.apply_message(world.message(0, probe, method=4, params=dagcbor.encode(11)))
    assert ret.exit_code == 0
    assert dagcbor.decode(ret.receipt.return_data) == ExitCode.SysErrForbidden


def test_default_depth_limit_is_reached_without_exhausting_python(world: World) -> None:
    probe = world.add_probe()
    depth = world.policy.max_call_depth
    ret = world.vm().apply_message(
        world.message(0, probe, method=4, params=dagcbor.encode(depth + 5), gas_limit=5_000_000_000)
    )
    assert ret.exit_code == 0, ret.error
    assert dagcbor.decode(ret.receipt.return_data) == ExitCode.SysErrForbidden


def test_unexpected_exception_becomes_illegal_instruction_and_is_rolled_back(world: World) -> None:
    probe = world.add_probe()
    ret = world.vm().apply_message(world.message(0, probe, method=5))
    expect_exit(ret.exit_code, ExitCode.SysErrIllegalInstruction)
    assert "ZeroDivisionError" in (ret.error or "")
    assert get_cbor(world.store, world.tree.get_actor(probe).head) == [0]  # type: ignore[union-attr]


def test_method_without_caller_validation_and_unknown_method(world: World) -> None:
    probe = world.add_probe()
    vm = world.vm()
    expect_exit(vm.apply_message(world.message(0, probe, method=6)).exit_code, ExitCode.ErrAssertionFailed)
    expect_exit(vm.apply_message(world.message(0, probe, method=99)).exit_code, ExitCode.ErrUnhandledMessage)
    expect_exit(
        vm.apply_message(world.message(0, probe, method=7, params=b"\x40")).exit_code,
        ExitCode.ErrSerialization,
    )


def test_return_value_is_charged_per_byte(world: World) -> None:
    probe = world.add_probe()
    vm = world.vm()
    # Params of the same encoded size (2 bytes), returns of 26 and 257 bytes.
    small = vm.apply_message(world.message(0, probe, method=8, params=dagcbor.encode(24)))
    big = vm.apply_message(world.message(0, probe, method=8, params=dagcbor.encode(255)))
    assert big.receipt.return_data == dagcbor.encode(b"\x01" * 255)
    assert big.receipt.gas_used - small.receipt.gas_used == (255 - 24) * PRICES.storage_gas_multi
    tight = big.receipt.gas_used - 1
    ret = vm.apply_message(world.message(0, probe, method=8, params=dagcbor.encode(255), gas_limit=tight))
    expect_exit(ret.exit_code, ExitCode.SysErrOutOfGas)
    assert ret.receipt.return_data == b""


# -- init.Exec and the account actor through the VM ------------------------------------------------------


class _Signers(CborTuple):
    n: Int64


class _FakeMultisigMethod(IntEnum):
    Constructor = 1


@exports(_FakeMultisigMethod.Constructor)
def _fake_multisig_constructor(rt: Runtime, signers: tuple[Bytes, ...]) -> None:
    rt.validate_immediate_caller_is(builtin.INIT_ACTOR_ADDR)
    if not signers:
        raise ActorError(ExitCode.ErrIllegalArgument, "no signers")
    rt.set_state(_Signers(len(signers)))


FAKE_MULTISIG = ActorDef.of(
    builtin.MULTISIG_ACTOR_CODE, "fake-multisig", _Signers, exported(_FakeMultisigMethod, globals())
)


def exec_world() -> World:
    return make_world(invoker=TEST_INVOKER.with_actors(FAKE_MULTISIG))


def init_exec(world: World, params: object, value: int = 0) -> ApplyRet:
    """Account 0 asks the init actor to Exec (params: ExecParams as CBOR data, to_cbor())."""
    return world.vm().apply_message(
        world.message(
            0,
            builtin.INIT_ACTOR_ADDR,
            method=InitMethod.Exec,
            params=dagcbor.encode(params),
            value=value,
            gas_limit=100_000_000,
        )
    )


def test_init_exec_creates_an_actor_with_id_and_robust_address() -> None:
    world = exec_world()
    params = ExecParams(builtin.MULTISIG_ACTOR_CODE, dagcbor.encode([b"a", b"b"])).to_cbor()
    ret = init_exec(world, params, value=2 * FIL)
    assert ret.exit_code == 0, ret.error
    out = ExecReturn.from_cbor(dagcbor.decode(ret.receipt.return_data))
    assert out.id_address == Address.new_id(103)
    # The robust address: blake2b-160 of CBOR(origin key address) || origin nonce || actors created.
    expected = Address.new_actor(dagcbor.encode(world.addresses[0].to_bytes()) + (0).to_bytes(8, "big") * 2)
    assert out.robust_address == expected
    assert world.tree.lookup_id(out.robust_address) == out.id_address
    actor = world.tree.get_actor(out.id_address)
    assert actor is not None and actor.code == builtin.MULTISIG_ACTOR_CODE and actor.balance == 2 * FIL
    assert get_cbor(world.store, actor.head) == [2]


def test_init_exec_failures_roll_back() -> None:
    world = exec_world()
    init_before = world.tree.get_actor(builtin.INIT_ACTOR_ADDR)
    bad = ExecParams(builtin.MULTISIG_ACTOR_CODE, dagcbor.encode([])).to_cbor()
    ret = init_exec(world, bad)
    expect_exit(ret.exit_code, ExitCode.ErrIllegalArgument)  # the constructor's exit code
    assert world.tree.get_actor(builtin.INIT_ACTOR_ADDR) == init_before
    assert world.tree.get_actor(Address.new_id(103)) is None
    miner = ExecParams(builtin.MINER_ACTOR_CODE, b"").to_cbor()
    ret = init_exec(world, miner)
    expect_exit(ret.exit_code, ExitCode.ErrForbidden)
    state = InitState.from_cbor(get_cbor(world.store, world.tree.get_actor(builtin.INIT_ACTOR_ADDR).head))  # type: ignore[union-attr]
    assert state.next_id == 103


def test_authenticate_message_checks_the_accounts_key(world: World) -> None:
    data = b"some deal proposal"
    vm = world.vm()

    def authenticate(signature: bytes) -> ApplyRet:
        """AuthenticateMessage on account 1 with `signature` over data, sent by account 0."""
        params = dagcbor.encode(AuthenticateMessageParams(signature, data).to_cbor())
        message = world.message(
            0, world.ids[1], method=AccountMethod.AuthenticateMessage, params=params, gas_limit=100_000_000
        )
        return vm.apply_message(message)

    ret = authenticate(world.keys[1].sign(data).data)
    assert ret.exit_code == 0, ret.error
    assert dagcbor.decode(ret.receipt.return_data) is True
    assert ret.receipt.gas_used > PRICES.verify_signature_secp256k1
    forged = world.keys[2].sign(data).data
    expect_exit(authenticate(forged).exit_code, ExitCode.ErrIllegalArgument)


def test_implicit_message_from_the_system(world: World) -> None:
    probe = world.add_probe()
    vm = world.vm()
    msg = implicit_message(probe, 3, dagcbor.encode([42, 0]), nonce=1, gas_limit=1 << 30)
    ret = vm.apply_implicit_message(msg)
    assert ret.exit_code == 0 and ret.receipt.gas_used == 0
    assert get_cbor(world.store, world.tree.get_actor(probe).head) == [42]  # type: ignore[union-attr]
    ret = vm.apply_implicit_message(replace(msg, params=dagcbor.encode([43, 19])))
    expect_exit(ret.exit_code, ExitCode.ErrInsufficientFunds)
    assert get_cbor(world.store, world.tree.get_actor(probe).head) == [42]  # type: ignore[union-attr]
    assert world.nonce(builtin.SYSTEM_ACTOR_ADDR) == 0
