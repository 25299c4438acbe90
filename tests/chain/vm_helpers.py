"""Building small states for VM tests: the singleton actors, accounts with keys, test-only actors.

The singletons are made as a genesis would: an actor entry with the empty head, then its constructor
run by an implicit message from the system actor. The reward actor here is a stand-in (FAKE_REWARD) that
pays the gas reward to the block's miner, until tests use the real one.
"""

from dataclasses import dataclass, field
from enum import IntEnum

from actors import builtin
from actors.account.types import AccountState
from actors.cron.types import CronEntry
from actors.dispatch import ActorDef, exported, exports
from actors.reward.types import AwardBlockRewardParams, RewardMethod
from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.randomness import DeterministicRandomness
from chain.crypto.signature import Signature
from chain.encoding import dagcbor
from chain.encoding.cid import CID, RAW
from chain.encoding.multihash import IDENTITY, Multihash
from chain.encoding.schema import BigInt, Bytes, CborTuple, Int64, Uint64
from chain.params import DEVNET, Policy
from chain.state.tree import EMPTY_OBJECT_CID, Actor, StateTree
from chain.store.blockstore import MemoryBlockstore, put_cbor
from chain.types.address import Address
from chain.types.message import Message, SignedMessage, sign_message
from chain.vm.exitcode import ActorError, ExitCode
from chain.vm.invoker import DEFAULT_INVOKER, Invoker
from chain.vm.runtime import Runtime
from chain.vm.tipset_apply import BlockMessages, TipsetResult, apply_tipset, implicit_message
from chain.vm.vm import VM

FIL = 10**18
BASE_FEE = 100
NETWORK = "testnet"


def test_code(name: str) -> CID:
    return CID.v1(RAW, Multihash.digest_of(IDENTITY, f"filpy/test/{name}".encode()))


# -- a stand-in reward actor ----------------------------------------------------------------------------


class FakeRewardState(CborTuple):
    awards: Uint64  # how many AwardBlockReward calls it has seen
    penalties: BigInt  # the sum of their penalties
    wins: Uint64  # the sum of their win counts


@exports(RewardMethod.Constructor)
def _fake_reward_constructor(rt: Runtime) -> None:
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    rt.set_state(FakeRewardState(0, 0, 0))


@exports(RewardMethod.AwardBlockReward)
def _fake_award(rt: Runtime, params: AwardBlockRewardParams) -> None:
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    state = rt.state(FakeRewardState)
    rt.set_state(
        FakeRewardState(state.awards + 1, state.penalties + params.penalty, state.wins + params.win_count)
    )
    if params.gas_reward:
        result = rt.send(params.miner, 0, b"", params.gas_reward)
        if not result.ok:
            raise ActorError(result.exit_code, "paying the gas reward failed")


FAKE_REWARD = ActorDef.of(
    builtin.REWARD_ACTOR_CODE, "fake-reward", FakeRewardState, exported(RewardMethod, globals())
)


# -- a probe actor for nested sends, failures and gas -----------------------------------------------------

PROBE_CODE = test_code("probe")


class ProbeMethod(IntEnum):
    Constructor = 1
    Relay = 2
    SetAndFail = 3
    Recurse = 4
    Boom = 5
    NoValidate = 6
    Burn = 7
    Returns = 8
    Tick = 9
    ExhaustMemory = 10
    RecurseInPython = 11
    ReadState = 12
    VerifySignature = 13


class ProbeState(CborTuple):
    value: Int64


class RelayParams(CborTuple):
    to: Address
    method: Uint64
    params: Bytes
    value: BigInt


class RelayReturn(CborTuple):
    """The exit code and return bytes of the relayed send."""

    exit_code: Int64
    ret: Bytes


class SetAndFailParams(CborTuple):
    value: Int64
    code: Uint64


@exports(ProbeMethod.Constructor)
def _probe_constructor(rt: Runtime) -> None:
    rt.validate_immediate_caller_accept_any()
    rt.set_state(ProbeState(0))


@exports(ProbeMethod.Relay)
def _probe_relay(rt: Runtime, params: RelayParams) -> RelayReturn:
    """Send as told; return the exit code and return bytes of the send."""
    rt.validate_immediate_caller_accept_any()
    result = rt.send(params.to, params.method, params.params, params.value)
    return RelayReturn(int(result.exit_code), result.return_data)


@exports(ProbeMethod.SetAndFail)
def _probe_set_and_fail(rt: Runtime, params: SetAndFailParams) -> None:
    """Write state [value], then abort with exit code `code` (0: do not abort)."""
    rt.validate_immediate_caller_accept_any()
    rt.set_state(ProbeState(params.value))
    if params.code:
        raise ActorError(params.code, "told to fail")


@exports(ProbeMethod.Recurse)
def _probe_recurse(rt: Runtime, remaining: Uint64) -> Uint64:
    """Call itself `remaining` more times; return the exit code of the deepest failing send (or 0)."""
    rt.validate_immediate_caller_accept_any()
    if remaining == 0:
        return 0
    result = rt.send(rt.receiver, ProbeMethod.Recurse, dagcbor.encode(remaining - 1), 0)
    if not result.ok:
        return int(result.exit_code)
    code: int = dagcbor.decode(result.return_data)
    return code


@exports(ProbeMethod.Boom)
def _probe_boom(rt: Runtime) -> None:
    rt.validate_immediate_caller_accept_any()
    rt.set_state(ProbeState(666))
    raise ZeroDivisionError("probe went boom")


@exports(ProbeMethod.NoValidate)
def _probe_no_validate(rt: Runtime) -> None:
    return None


@exports(ProbeMethod.Burn)
def _probe_burn(rt: Runtime, amount: Uint64) -> None:
    rt.validate_immediate_caller_accept_any()
    rt.charge_gas("burn", amount)


@exports(ProbeMethod.Returns)
def _probe_returns(rt: Runtime, size: Uint64) -> Bytes:
    rt.validate_immediate_caller_accept_any()
    return b"\x01" * size


@exports(ProbeMethod.Tick)
def _probe_tick(rt: Runtime) -> None:
    """A cron entry: append the epoch to the state's value as two more decimal digits."""
    rt.validate_immediate_caller_is(builtin.CRON_ACTOR_ADDR)
    state = rt.state(ProbeState)
    rt.set_state(ProbeState(state.value * 100 + rt.curr_epoch))


@exports(ProbeMethod.ExhaustMemory)
def _probe_exhaust_memory(rt: Runtime) -> None:
    """Write state, then ask for more memory than any machine has (a real MemoryError, at once)."""
    rt.validate_immediate_caller_accept_any()
    rt.set_state(ProbeState(777))
    bytearray(1 << 62)


@exports(ProbeMethod.RecurseInPython)
def _probe_recurse_in_python(rt: Runtime) -> None:
    """Write state, then recurse in Python until the interpreter's limit stops it (a RecursionError)."""
    rt.validate_immediate_caller_accept_any()
    rt.set_state(ProbeState(888))

    def down(n: int) -> int:
        return down(n + 1) + 1

    down(0)


@exports(ProbeMethod.ReadState)
def _probe_read_state(rt: Runtime) -> Int64:
    """Read the probe's own state through the runtime: its value."""
    rt.validate_immediate_caller_accept_any()
    return rt.state(ProbeState).value


class VerifySignatureArgs(CborTuple):
    signer: Bytes  # address bytes
    signature: Bytes  # type byte + signature
    data: Bytes


@exports(ProbeMethod.VerifySignature)
def _probe_verify_signature(rt: Runtime, args: VerifySignatureArgs) -> bool:
    """rt.verify_signature(signature, signer, data) for [signer bytes, signature bytes, data]."""
    rt.validate_immediate_caller_accept_any()
    signature = Signature.from_bytes(args.signature)
    return rt.verify_signature(signature, Address.from_bytes(args.signer), args.data)


PROBE = ActorDef.of(PROBE_CODE, "probe", ProbeState, exported(ProbeMethod, globals()))

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

    def apply_tipset(
        self, parent_epoch: int, epoch: int, blocks: list[BlockMessages], invoker: Invoker | None = None
    ) -> TipsetResult:
        """Apply a tipset's blocks on top of the world's state (flushed first), in its own tree."""
        return apply_tipset(
            self.store,
            self.tree.flush(),
            parent_epoch,
            epoch,
            blocks,
            base_fee=BASE_FEE,
            randomness=self.randomness,
            policy=self.policy,
            invoker=invoker or self.invoker,
            tree=self.tree,
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
    ret = vm.apply_implicit_message(implicit_message(address, 1, params, nonce=0, gas_limit=1 << 40))
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
