"""Building small states for VM tests: the singleton actors, accounts with keys, test-only actors.

The singletons are made as a genesis would: an actor entry with the empty head, then its constructor
run by an implicit message from the system actor. The reward actor here is a stand-in (FAKE_REWARD) that
pays the gas reward to the block's miner, until tests use the real one.
"""

from dataclasses import dataclass, field
from typing import Any

from actors import builtin
from actors.account import AccountState
from actors.cron import CronEntry
from actors.dispatch import ActorDef, MethodDef
from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.randomness import DeterministicRandomness
from chain.crypto.signature import Signature
from chain.encoding import dagcbor
from chain.encoding.bigint import encode_bigint
from chain.encoding.cid import CID, RAW
from chain.encoding.expect import expect_bigint, expect_bytes, expect_int, expect_tuple, expect_uint
from chain.encoding.multihash import IDENTITY, Multihash
from chain.params import DEVNET, Policy
from chain.state.tree import EMPTY_OBJECT_CID, Actor, StateTree
from chain.store.blockstore import MemoryBlockstore, put_cbor
from chain.types.address import Address
from chain.types.message import Message, SignedMessage, sign_message
from chain.vm.exitcode import ActorError, ExitCode
from chain.vm.invoker import DEFAULT_INVOKER, Invoker
from chain.vm.runtime import Runtime
from chain.vm.vm import VM

FIL = 10**18
BASE_FEE = 100
NETWORK = "testnet"


def test_code(name: str) -> CID:
    return CID.v1(RAW, Multihash.digest_of(IDENTITY, f"filpy/test/{name}".encode()))


# -- a stand-in reward actor ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FakeRewardState:
    awards: int  # how many AwardBlockReward calls it has seen
    penalties: int  # the sum of their penalties
    wins: int  # the sum of their win counts

    def to_cbor(self) -> list[Any]:
        return [self.awards, encode_bigint(self.penalties), self.wins]

    @classmethod
    def from_cbor(cls, raw: Any) -> "FakeRewardState":
        awards, penalties, wins = expect_tuple(raw, 3, "FakeRewardState")
        return cls(
            expect_uint(awards, "awards"), expect_bigint(penalties, "penalties"), expect_uint(wins, "wins")
        )


@dataclass(frozen=True, slots=True)
class AwardParams:
    miner: Address
    penalty: int
    gas_reward: int
    win_count: int

    @classmethod
    def from_cbor(cls, raw: Any) -> "AwardParams":
        miner, penalty, gas_reward, win_count = expect_tuple(raw, 4, "AwardBlockRewardParams")
        return cls(
            Address.from_cbor(miner),
            expect_bigint(penalty, "Penalty"),
            expect_bigint(gas_reward, "GasReward"),
            expect_int(win_count, "WinCount"),
        )


def _fake_reward_constructor(rt: Runtime) -> None:
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    rt.set_state(FakeRewardState(0, 0, 0))


def _fake_award(rt: Runtime, params: AwardParams) -> None:
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    state = rt.state(FakeRewardState)
    rt.set_state(
        FakeRewardState(state.awards + 1, state.penalties + params.penalty, state.wins + params.win_count)
    )
    if params.gas_reward:
        result = rt.send(params.miner, 0, b"", params.gas_reward)
        if not result.ok:
            raise ActorError(result.exit_code, "paying the gas reward failed")


FAKE_REWARD = ActorDef(
    code=builtin.REWARD_ACTOR_CODE,
    name="fake-reward",
    state_type=FakeRewardState,
    methods=(
        MethodDef(1, "Constructor", _fake_reward_constructor),
        MethodDef(2, "AwardBlockReward", _fake_award, AwardParams.from_cbor),
    ),
)


# -- a probe actor for nested sends, failures and gas -----------------------------------------------------

PROBE_CODE = test_code("probe")


@dataclass(frozen=True, slots=True)
class ProbeState:
    value: int

    def to_cbor(self) -> list[Any]:
        return [self.value]

    @classmethod
    def from_cbor(cls, raw: Any) -> "ProbeState":
        (value,) = expect_tuple(raw, 1, "ProbeState")
        return cls(expect_int(value, "value"))


@dataclass(frozen=True, slots=True)
class RelayParams:
    to: Address
    method: int
    params: bytes
    value: int

    def to_cbor(self) -> list[Any]:
        return [self.to.to_bytes(), self.method, self.params, encode_bigint(self.value)]

    @classmethod
    def from_cbor(cls, raw: Any) -> "RelayParams":
        to, method, params, value = expect_tuple(raw, 4, "RelayParams")
        return cls(
            Address.from_cbor(to),
            expect_uint(method, "method"),
            expect_bytes(params, "params"),
            expect_bigint(value, "value"),
        )


def _probe_constructor(rt: Runtime) -> None:
    rt.validate_immediate_caller_accept_any()
    rt.set_state(ProbeState(0))


def _probe_relay(rt: Runtime, params: RelayParams) -> list[Any]:
    """Send as told; return [exit code, return bytes] of the send."""
    rt.validate_immediate_caller_accept_any()
    result = rt.send(params.to, params.method, params.params, params.value)
    return [int(result.exit_code), result.return_data]


def _probe_set_and_fail(rt: Runtime, args: list[Any]) -> None:
    """Write state [value], then abort with exit code `code` (0: do not abort)."""
    rt.validate_immediate_caller_accept_any()
    value, code = args
    rt.set_state(ProbeState(value))
    if code:
        raise ActorError(code, "told to fail")


def _probe_recurse(rt: Runtime, remaining: int) -> int:
    """Call itself `remaining` more times; return the exit code of the deepest failing send (or 0)."""
    rt.validate_immediate_caller_accept_any()
    if remaining == 0:
        return 0
    result = rt.send(rt.receiver, 4, dagcbor.encode(remaining - 1), 0)
    if not result.ok:
        return int(result.exit_code)
    code: int = dagcbor.decode(result.return_data)
    return code


def _probe_boom(rt: Runtime) -> None:
    rt.validate_immediate_caller_accept_any()
    rt.set_state(ProbeState(666))
    raise ZeroDivisionError("probe went boom")


def _probe_no_validate(rt: Runtime) -> None:
    return None


def _probe_burn(rt: Runtime, amount: int) -> None:
    rt.validate_immediate_caller_accept_any()
    rt.charge_gas("burn", amount)


def _probe_returns(rt: Runtime, size: int) -> bytes:
    rt.validate_immediate_caller_accept_any()
    return b"\x01" * size


def _probe_tick(rt: Runtime) -> None:
    """A cron entry: append the epoch to the state's value as two more decimal digits."""
    rt.validate_immediate_caller_is(builtin.CRON_ACTOR_ADDR)
    state = rt.state(ProbeState)
    rt.set_state(ProbeState(state.value * 100 + rt.curr_epoch))


def _probe_exhaust_memory(rt: Runtime) -> None:
    """Write state, then ask for more memory than any machine has (a real MemoryError, at once)."""
    rt.validate_immediate_caller_accept_any()
    rt.set_state(ProbeState(777))
    bytearray(1 << 62)


def _probe_recurse_in_python(rt: Runtime) -> None:
    """Write state, then recurse in Python until the interpreter's limit stops it (a RecursionError)."""
    rt.validate_immediate_caller_accept_any()
    rt.set_state(ProbeState(888))

    def down(n: int) -> int:
        return down(n + 1) + 1

    down(0)


def _probe_read_state(rt: Runtime) -> int:
    """Read the probe's own state through the runtime: its value."""
    rt.validate_immediate_caller_accept_any()
    return rt.state(ProbeState).value


def _probe_verify_signature(rt: Runtime, args: list[Any]) -> bool:
    """rt.verify_signature(signature, signer, data) for args [signer bytes, signature bytes, data]."""
    rt.validate_immediate_caller_accept_any()
    signer, signature, data = args
    return rt.verify_signature(Signature.from_bytes(signature), Address.from_bytes(signer), data)


def _int_list(raw: Any) -> list[Any]:
    value, code = expect_tuple(raw, 2, "args")
    return [expect_int(value, "value"), expect_uint(code, "code")]


PROBE = ActorDef(
    code=PROBE_CODE,
    name="probe",
    state_type=ProbeState,
    methods=(
        MethodDef(1, "Constructor", _probe_constructor),
        MethodDef(2, "Relay", _probe_relay, RelayParams.from_cbor),
        MethodDef(3, "SetAndFail", _probe_set_and_fail, _int_list),
        MethodDef(4, "Recurse", _probe_recurse, lambda raw: expect_uint(raw, "remaining")),
        MethodDef(5, "Boom", _probe_boom),
        MethodDef(6, "NoValidate", _probe_no_validate),
        MethodDef(7, "Burn", _probe_burn, lambda raw: expect_uint(raw, "amount")),
        MethodDef(8, "Returns", _probe_returns, lambda raw: expect_uint(raw, "size")),
        MethodDef(9, "Tick", _probe_tick),
        MethodDef(10, "ExhaustMemory", _probe_exhaust_memory),
        MethodDef(11, "RecurseInPython", _probe_recurse_in_python),
        MethodDef(12, "ReadState", _probe_read_state),
        MethodDef(13, "VerifySignature", _probe_verify_signature, lambda raw: expect_tuple(raw, 3, "args")),
    ),
)

TEST_INVOKER = DEFAULT_INVOKER.with_actors(FAKE_REWARD, PROBE)


# -- a small world -------------------------------------------------------------------------------------


@dataclass
class World:
    """A state with the singletons and some funded secp256k1 accounts, and a VM factory."""

    store: MemoryBlockstore
    tree: StateTree
    keys: list[PrivateKey]
    addresses: list[Address]
    ids: list[Address]
    policy: Policy = DEVNET
    invoker: Invoker = TEST_INVOKER
    randomness: DeterministicRandomness = field(default_factory=DeterministicRandomness)
    probes: int = 0

    def vm(self, epoch: int = 1, base_fee: int = BASE_FEE) -> VM:
        return VM(
            self.tree,
            epoch=epoch,
            base_fee=base_fee,
            randomness=self.randomness,
            policy=self.policy,
            invoker=self.invoker,
        )

    def balance(self, address: Address) -> int:
        actor = self.tree.get_actor(address)
        assert actor is not None, f"no actor at {address}"
        return actor.balance

    def nonce(self, address: Address) -> int:
        actor = self.tree.get_actor(address)
        assert actor is not None
        return actor.nonce

    def add_probe(self, balance: int = 0) -> Address:
        """A probe actor with an ID of its own (as if made by init.Exec)."""
        self.probes += 1
        robust = Address.new_actor(f"probe-{self.probes}".encode())
        id_address = self.tree.register_new_address(robust)
        head = put_cbor(self.tree.store, ProbeState(0).to_cbor())
        self.tree.set_actor(id_address, Actor(PROBE_CODE, head, 0, balance))
        return id_address

    def message(
        self,
        sender: int,
        to: Address,
        *,
        value: int = 0,
        method: int = 0,
        params: bytes = b"",
        nonce: int | None = None,
        gas_limit: int = 10_000_000,
        fee_cap: int = 1_000,
        premium: int = 100,
    ) -> SignedMessage:
        msg = Message(
            to=to,
            from_=self.addresses[sender],
            nonce=self.nonce(self.addresses[sender]) if nonce is None else nonce,
            value=value,
            gas_limit=gas_limit,
            gas_fee_cap=fee_cap,
            gas_premium=premium,
            method=method,
            params=params,
        )
        return sign_message(msg, self.keys[sender])


def install_singleton(vm: VM, address: Address, code: CID, params: bytes = b"", balance: int = 0) -> None:
    """Create a singleton actor entry and run its constructor from the system actor."""
    vm.tree.set_actor(address, Actor(code, EMPTY_OBJECT_CID, 0, balance))
    ret = vm.apply_implicit_message(
        Message(
            to=address,
            from_=builtin.SYSTEM_ACTOR_ADDR,
            nonce=0,
            value=0,
            gas_limit=1 << 40,
            gas_fee_cap=0,
            gas_premium=0,
            method=1,
            params=params,
        )
    )
    assert ret.exit_code == 0, ret.error


def make_world(
    accounts: int = 3,
    balance: int = 1_000 * FIL,
    cron_entries: tuple[CronEntry, ...] = (),
    invoker: Invoker = TEST_INVOKER,
    policy: Policy = DEVNET,
    key_type: KeyType = KeyType.SECP256K1,
    reward_params: bytes = b"",
    reward_balance: int = 0,
) -> World:
    store = MemoryBlockstore()
    tree = StateTree.new(store)
    randomness = DeterministicRandomness()
    vm = VM(tree, epoch=0, base_fee=BASE_FEE, randomness=randomness, policy=policy, invoker=invoker)
    # The system actor first: it sends every constructor (and validates that it called itself).
    install_singleton(vm, builtin.SYSTEM_ACTOR_ADDR, builtin.SYSTEM_ACTOR_CODE)
    install_singleton(vm, builtin.INIT_ACTOR_ADDR, builtin.INIT_ACTOR_CODE, dagcbor.encode([NETWORK]))
    install_singleton(
        vm, builtin.REWARD_ACTOR_ADDR, builtin.REWARD_ACTOR_CODE, reward_params, balance=reward_balance
    )
    entries = [entry.to_cbor() for entry in cron_entries]
    install_singleton(vm, builtin.CRON_ACTOR_ADDR, builtin.CRON_ACTOR_CODE, dagcbor.encode([entries]))
    # The burnt-funds actor is an account whose state names its own ID address, as Lotus's genesis.
    burnt_head = put_cbor(store, AccountState(builtin.BURNT_FUNDS_ACTOR_ADDR).to_cbor())
    tree.set_actor(builtin.BURNT_FUNDS_ACTOR_ADDR, Actor(builtin.ACCOUNT_ACTOR_CODE, burnt_head, 0, 0))
    keys = [PrivateKey.derive(key_type, f"vm-account-{i}".encode()) for i in range(accounts)]
    addresses = [Address.of_key(key) for key in keys]
    ids = []
    for address in addresses:
        id_address = tree.register_new_address(address)
        head = put_cbor(store, AccountState(address).to_cbor())
        tree.set_actor(id_address, Actor(builtin.ACCOUNT_ACTOR_CODE, head, 0, balance))
        ids.append(id_address)
    tree.flush()
    return World(store, tree, keys, addresses, ids, policy, invoker, randomness)


def total_balance(tree: StateTree) -> int:
    return sum(actor.balance for _, actor in tree.actors())


def expect_exit(code: int, expected: ExitCode) -> None:
    name = ExitCode(code).name if code in ExitCode._value2member_map_ else str(code)
    assert code == expected, f"exit code {code} ({name}), expected {expected.name}"
