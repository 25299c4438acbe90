"""Running one send: the Runtime an actor method sees, and the send itself.

`call` is a send from one actor to another: charge the invocation, find (or, for a new key address,
create) the receiver, move the value, run the method. An actor's abort is an ActorError and travels
up as one; any other exception raised inside an actor method is a bug in that actor: it is logged and
becomes SysErrIllegalInstruction, as a trap in a Wasm actor does on the FVM. A failure of the machine
rather than of the actor (memory, recursion, the store: chain/vm/abort.py) becomes ExecutionAborted
and passes through every frame untouched. The state changes of a failed send are undone by whoever
opened the snapshot (Invocation.send, or the VM for a message).

Everything a message's sends share (the state tree, the gas tracker, the origin and the count of actors
created) lives in one MessageContext; each method call gets its own Invocation (the Runtime).
"""

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeVar

import structlog

from actors import builtin
from actors.dispatch import METHOD_CONSTRUCTOR, METHOD_SEND
from chain.crypto.randomness import RandomnessSource, draw_randomness_from_digest
from chain.crypto.signature import Signature
from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.schema import CborTuple
from chain.params import Policy
from chain.state.init_state import AddressAlreadyMapped
from chain.state.tree import EMPTY_OBJECT_CID, Actor, StateTree
from chain.store.blockcache import BlockCache, cache_of
from chain.store.blockstore import Blockstore, put_cbor, put_declared
from chain.types.address import Address, Protocol
from chain.types.message import ZERO_ADDRESS
from chain.types.sector import (
    ConsensusFault,
    PieceInclusionVerifyInfo,
    PieceInfo,
    SealVerifyInfo,
    WindowPoStVerifyInfo,
)
from chain.vm import syscalls
from chain.vm.abort import ExecutionAborted, MissingBlock, StoreFailed, describe, machine_failure
from chain.vm.exitcode import ActorError, ExitCode
from chain.vm.gas import GasTracker, PriceList
from chain.vm.invoker import Invoker, is_singleton
from chain.vm.runtime import SendResult, StateType

if TYPE_CHECKING:
    from chain.vm.runtime import Runtime

S = TypeVar("S")

_UINT32_MAX: Final = (1 << 32) - 1
_NONCES: Final = struct.Struct(">QQ")

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Environment:
    """What every message of one VM (one epoch) runs against."""

    tree: StateTree
    epoch: int
    network_version: int
    policy: Policy
    prices: PriceList
    invoker: Invoker
    randomness: RandomnessSource
    circulating_supply: int
    account_code: CID
    # The chain's lookback states, for the worker key of consensus-fault blocks; None: no chain.
    lookback_state: syscalls.LookbackState | None = None


class MessageContext:
    """The state one top-level (or implicit) message's sends share."""

    __slots__ = ("actors_created", "env", "gas", "origin", "origin_nonce")

    def __init__(self, env: Environment, gas: GasTracker, origin: Address, origin_nonce: int) -> None:
        self.env = env
        self.gas = gas
        self.origin = origin  # an ID address
        self.origin_nonce = origin_nonce
        self.actors_created = 0


# -- the send -----------------------------------------------------------------------------------------


def transfer(tree: StateTree, source: Address, destination: Address, value: int) -> None:
    """Move value between two existing actors (ID addresses); ActorError if the source lacks it."""
    if value < 0:
        raise ActorError(ExitCode.SysErrForbidden, f"attempted to transfer negative value {value}")
    sender = tree.get_actor(source)
    if sender is None:
        raise ActorError(ExitCode.SysErrSenderInvalid, f"transfer from {source}, which does not exist")
    if sender.balance < value:
        raise ActorError(
            ExitCode.SysErrInsufficientFunds,
            f"transfer of {value} from {source} exceeds its balance {sender.balance}",
        )
    if source == destination or value == 0:
        return
    receiver = tree.get_actor(destination)
    if receiver is None:
        raise ActorError(ExitCode.SysErrInvalidReceiver, f"transfer to {destination}, which does not exist")
    tree.set_actor(source, sender.with_balance(sender.balance - value))
    tree.set_actor(destination, receiver.with_balance(receiver.balance + value))


def _create_account(ctx: MessageContext, address: Address, depth: int) -> tuple[Address, Actor]:
    """Make an account actor for a key address that has none yet (Lotus TryCreateAccountActor)."""
    env = ctx.env
    ctx.gas.charge(env.prices.on_create_actor(), "OnCreateActor")
    if address.protocol not in (Protocol.SECP256K1, Protocol.BLS):
        raise ActorError(ExitCode.SysErrInvalidReceiver, f"no actor at {address}")
    if address == ZERO_ADDRESS:
        raise ActorError(ExitCode.ErrIllegalArgument, "cannot create the zero BLS address's actor")
    tree = env.tree
    try:
        id_address = tree.register_new_address(address)
    except AddressAlreadyMapped:
        raise ActorError(ExitCode.SysErrInvalidReceiver, f"{address} has an ID but no actor") from None
    tree.set_actor(id_address, Actor(env.account_code, EMPTY_OBJECT_CID, 0, 0))
    params = dagcbor.encode(address.to_bytes())
    call(ctx, builtin.SYSTEM_ACTOR_ADDR, id_address, METHOD_CONSTRUCTOR, params, 0, depth + 1)
    actor = tree.get_actor(id_address)
    assert actor is not None  # just created
    return id_address, actor


def call(
    ctx: MessageContext, caller: Address, to: Address, method: int, params: bytes, value: int, depth: int
) -> bytes:
    """One send from caller (an ID address) to `to`; returns the method's CBOR return bytes.

    Raises ActorError with the exit code of whatever failed; the caller of `call` reverts state.
    """
    env = ctx.env
    if depth > env.policy.max_call_depth:
        raise ActorError(ExitCode.SysErrForbidden, f"call depth {depth} exceeds {env.policy.max_call_depth}")
    ctx.gas.charge(env.prices.on_method_invocation(value, method), "OnMethodInvocation")
    tree = env.tree
    receiver = tree.lookup_id(to)
    actor = None if receiver is None else tree.get_actor(receiver)
    if receiver is None or actor is None:
        receiver, actor = _create_account(ctx, to, depth)
    if value:
        transfer(tree, caller, receiver, value)
    if method == METHOD_SEND:
        return b""
    definition = env.invoker.actor(actor.code)
    if definition is None:
        raise ActorError(
            ExitCode.SysErrInvalidReceiver, f"no actor implements code {actor.code} of {receiver}"
        )
    rt = Invocation(ctx, caller, receiver, actor.code, value, method, depth)
    try:
        result = definition.invoke(rt, method, params)
    except ActorError as err:
        code = int(err.exit_code)
        if not 0 < code <= _UINT32_MAX:
            raise ActorError(
                ExitCode.SysErrIllegalExitCode,
                f"{definition.name} aborted with exit code {code}: {err.message}",
            ) from None
        raise
    except ExecutionAborted:
        raise
    except Exception as exc:
        failure = machine_failure(exc)
        if failure is not None:
            # No logging here: the frame may be near the recursion limit or out of memory. The VM
            # logs the abort once, with the message it stopped.
            raise ExecutionAborted(f"{definition.name} method {method}: {describe(failure)}") from failure
        _log.error(
            "actor raised an unexpected exception",
            actor=definition.name,
            receiver=str(receiver),
            method=method,
            epoch=env.epoch,
            error=f"{type(exc).__name__}: {exc}",
            exc_info=exc,
        )
        raise ActorError(
            ExitCode.SysErrIllegalInstruction,
            f"{definition.name} method {method} failed: {type(exc).__name__}: {exc}",
        ) from None
    if not rt.validated:
        raise ActorError(
            ExitCode.ErrAssertionFailed, f"{definition.name} method {method} did not validate its caller"
        )
    return result


# -- the runtime --------------------------------------------------------------------------------------


class ChargingStore:
    """The blockstore as actors see it: every read and write costs gas (Lotus gasChargingBlocks), and
    a store that fails or lacks a block aborts execution (chain/vm/abort.py) instead of failing the
    actor."""

    __slots__ = ("_gas", "_prices", "_store")

    def __init__(self, store: Blockstore, gas: GasTracker, prices: PriceList) -> None:
        self._store = store
        self._gas = gas
        self._prices = prices

    @property
    def block_cache(self) -> BlockCache | None:
        """The underlying store's cache of decoded blocks (chain/store/blockcache.py): every read still
        goes through get, so it is charged and checked as before; only decoding the same bytes again
        is skipped."""
        return cache_of(self._store)

    def get(self, cid: CID) -> bytes:
        """The block's bytes. Actors only read blocks their state references, so a missing one is
        this node's store failing (MissingBlock), never None."""
        self._gas.charge(self._prices.on_ipld_get(), "OnIpldGet")
        try:
            data = self._store.get(cid)
        except Exception as exc:
            raise StoreFailed(f"reading block {cid}: {describe(exc)}") from exc
        if data is None:
            raise MissingBlock(cid)
        return data

    def has(self, cid: CID) -> bool:
        self._gas.charge(self._prices.on_ipld_get(), "OnIpldGet")
        try:
            return self._store.has(cid)
        except Exception as exc:
            raise StoreFailed(f"looking up block {cid}: {describe(exc)}") from exc

    def put(self, cid: CID, data: bytes) -> None:
        self._gas.charge(self._prices.on_ipld_put(len(data)), "OnIpldPut")
        try:
            self._store.put(cid, data)
        except Exception as exc:
            raise StoreFailed(f"writing block {cid}: {describe(exc)}") from exc

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        for cid, data in blocks:
            self.put(cid, data)

    def delete(self, cid: CID) -> None:
        # Blocks may be shared with other states: actors only ever add.
        raise ActorError(ExitCode.ErrForbidden, "actors cannot delete blocks")


@dataclass(slots=True, eq=False)
class Invocation:
    """The Runtime of one method call (see chain/vm/runtime.py for what each method means)."""

    ctx: MessageContext
    caller: Address
    receiver: Address
    receiver_code: CID
    value_received: int
    method: int
    depth: int
    validated: bool = field(default=False, init=False)
    _store: ChargingStore | None = field(default=None, init=False)

    # -- message context ----------------------------------------------------------------------------
    @property
    def origin(self) -> Address:
        return self.ctx.origin

    @property
    def curr_epoch(self) -> int:
        return self.ctx.env.epoch

    @property
    def network_version(self) -> int:
        return self.ctx.env.network_version

    @property
    def policy(self) -> Policy:
        return self.ctx.env.policy

    # -- caller validation --------------------------------------------------------------------------
    def _validate_once(self) -> None:
        if self.validated:
            raise ActorError(ExitCode.ErrAssertionFailed, "caller validated twice")
        self.validated = True

    def validate_immediate_caller_accept_any(self) -> None:
        self._validate_once()

    def validate_immediate_caller_is(self, *addresses: Address) -> None:
        self._validate_once()
        if self.caller not in addresses:
            raise ActorError(ExitCode.SysErrForbidden, f"caller {self.caller} is not one of {addresses}")

    def validate_immediate_caller_type(self, *codes: CID) -> None:
        self._validate_once()
        actor = self.ctx.env.tree.get_actor(self.caller)
        if actor is None or actor.code not in codes:
            raise ActorError(ExitCode.SysErrForbidden, f"caller {self.caller} is not of an allowed type")

    # -- balances and addresses ---------------------------------------------------------------------
    def _self_actor(self) -> Actor:
        actor = self.ctx.env.tree.get_actor(self.receiver)
        if actor is None:
            raise ActorError(ExitCode.ErrIllegalState, f"actor {self.receiver} was deleted")
        return actor

    def current_balance(self) -> int:
        return self._self_actor().balance

    def resolve_address(self, address: Address) -> Address | None:
        return self.ctx.env.tree.lookup_id(address)

    def get_actor_code_cid(self, address: Address) -> CID | None:
        actor = self.ctx.env.tree.get_actor(address)
        return None if actor is None else actor.code

    def total_fil_circ_supply(self) -> int:
        return self.ctx.env.circulating_supply

    # -- randomness ---------------------------------------------------------------------------------
    def _draw(self, digest_of: str, tag: int, epoch: int, entropy: bytes) -> bytes:
        env = self.ctx.env
        if epoch > env.epoch:
            raise ActorError(
                ExitCode.ErrIllegalArgument,
                f"randomness epoch {epoch} is after the current epoch {env.epoch}",
            )
        try:
            source = env.randomness
            digest = source.chain_digest(epoch) if digest_of == "chain" else source.beacon_digest(epoch)
        except ValueError as exc:
            raise ActorError(ExitCode.ErrIllegalArgument, f"no randomness for epoch {epoch}: {exc}") from None
        return draw_randomness_from_digest(digest, tag, epoch, entropy)

    def get_randomness_from_tickets(self, tag: int, epoch: int, entropy: bytes) -> bytes:
        return self._draw("chain", tag, epoch, entropy)

    def get_randomness_from_beacon(self, tag: int, epoch: int, entropy: bytes) -> bytes:
        return self._draw("beacon", tag, epoch, entropy)

    # -- state --------------------------------------------------------------------------------------
    @property
    def store(self) -> ChargingStore:
        store = self._store
        if store is None:
            env = self.ctx.env
            store = self._store = ChargingStore(env.tree.store, self.ctx.gas, env.prices)
        return store

    def state(self, state_type: type[S]) -> S:
        head = self._self_actor().head
        store = self.store
        data = store.get(head)
        # Keyed as chain.store.blockstore.get_decoded keys it, so the state manager's reads share it.
        decode = state_type.from_cbor  # type: ignore[attr-defined]
        cache = store.block_cache
        if cache is not None:
            found: S | None = cache.get(decode, head, data)
            if found is not None:
                return found
        try:
            decoded: S = decode(dagcbor.decode(data))
        except DecodeError as exc:
            raise ActorError(
                ExitCode.ErrIllegalState, f"cannot decode {state_type.__name__} of {self.receiver}: {exc}"
            ) from None
        if cache is not None:
            cache.put(decode, head, data, decoded)
        return decoded

    def set_state(self, state: StateType) -> None:
        if isinstance(state, CborTuple):
            cid = put_declared(self.store, state)  # the next read of it (next epoch's...) skips decoding
        else:
            cid = put_cbor(self.store, state.to_cbor())
        self.ctx.env.tree.set_actor(self.receiver, self._self_actor().with_head(cid))

    # -- calls and actor lifecycle ------------------------------------------------------------------
    def send(self, to: Address, method: int, params: bytes, value: int) -> SendResult:
        if value < 0:
            raise ActorError(ExitCode.SysErrForbidden, f"attempted to send negative value {value}")
        balance = self.current_balance()
        if value > balance:
            raise ActorError(
                ExitCode.SysErrInsufficientFunds,
                f"send of {value} exceeds the balance {balance} of {self.receiver}",
            )
        ctx = self.ctx
        tree = ctx.env.tree
        tree.snapshot()
        try:
            result = call(ctx, self.receiver, to, method, params, value, self.depth + 1)
        except ActorError as err:
            tree.revert()
            if err.exit_code == ExitCode.SysErrOutOfGas and ctx.gas.exhausted:
                raise  # the message is out of gas: nothing the caller does can go on
            return SendResult(ExitCode(err.exit_code), b"")
        tree.clear_snapshot()
        return SendResult(ExitCode.Ok, result)

    def new_actor_address(self) -> Address:
        ctx = self.ctx
        origin = syscalls.resolve_key_address(ctx.env.tree, ctx.origin) or ctx.origin
        data = dagcbor.encode(origin.to_bytes()) + _NONCES.pack(ctx.origin_nonce, ctx.actors_created)
        ctx.actors_created += 1
        return Address.new_actor(data)

    def create_actor(self, code: CID, address: Address) -> None:
        env = self.ctx.env
        if self.receiver != builtin.INIT_ACTOR_ADDR:
            raise ActorError(ExitCode.ErrForbidden, "only the init actor may create actors")
        if address.protocol != Protocol.ID:
            raise ActorError(ExitCode.ErrIllegalArgument, f"new actors get ID addresses, not {address}")
        if env.invoker.actor(code) is None or is_singleton(code):
            raise ActorError(ExitCode.ErrIllegalArgument, f"cannot create an actor of code {code}")
        if env.tree.get_actor(address) is not None:
            raise ActorError(ExitCode.ErrForbidden, f"actor {address} already exists")
        self.ctx.gas.charge(env.prices.on_create_actor(), "OnCreateActor")
        env.tree.set_actor(address, Actor(code, EMPTY_OBJECT_CID, 0, 0))

    def delete_actor(self, beneficiary: Address) -> None:
        env = self.ctx.env
        tree = env.tree
        self.ctx.gas.charge(env.prices.on_delete_actor(), "OnDeleteActor")
        actor = self._self_actor()
        if actor.balance:
            target = tree.lookup_id(beneficiary)
            if target is None or tree.get_actor(target) is None:
                raise ActorError(ExitCode.ErrIllegalArgument, f"beneficiary {beneficiary} does not exist")
            if target == self.receiver:
                raise ActorError(ExitCode.ErrIllegalArgument, "an actor cannot be its own beneficiary")
            transfer(tree, self.receiver, target, actor.balance)
        tree.delete_actor(self.receiver)

    def charge_gas(self, name: str, amount: int) -> None:
        self.ctx.gas.charge(amount, name)

    # -- syscalls -----------------------------------------------------------------------------------
    def verify_signature(self, signature: Signature, signer: Address, data: bytes) -> bool:
        env = self.ctx.env
        self.ctx.gas.charge(env.prices.on_verify_signature(signature.type), "OnVerifySignature")
        try:
            return syscalls.verify_signature(env.tree, signature, signer, data)
        except syscalls.SyscallError as exc:
            raise ActorError(ExitCode.ErrIllegalArgument, str(exc)) from None

    def hash_blake2b(self, data: bytes) -> bytes:
        self.ctx.gas.charge(self.ctx.env.prices.on_hashing(), "OnHashing")
        return hashlib.blake2b(data, digest_size=32).digest()

    def compute_unsealed_sector_cid(self, seal_proof: int, pieces: list[PieceInfo]) -> CID:
        self.ctx.gas.charge(
            self.ctx.env.prices.on_compute_unsealed_sector_cid(), "OnComputeUnsealedSectorCid"
        )
        try:
            return syscalls.compute_unsealed_sector_cid(seal_proof, pieces)
        except syscalls.SyscallError as exc:
            raise ActorError(ExitCode.ErrIllegalArgument, f"cannot compute unsealed CID: {exc}") from None

    def verify_seal(self, info: SealVerifyInfo) -> bool:
        self.ctx.gas.charge(self.ctx.env.prices.on_verify_seal(), "OnVerifySeal")
        return syscalls.verify_seal(info)

    def verify_post(self, info: WindowPoStVerifyInfo) -> bool:
        prices = self.ctx.env.prices
        self.ctx.gas.charge(prices.on_verify_post(len(info.challenged_sectors)), "OnVerifyPost")
        return syscalls.verify_window_post(info)

    def verify_piece_inclusion(self, info: PieceInclusionVerifyInfo) -> bool:
        self.ctx.gas.charge(self.ctx.env.prices.on_verify_piece_inclusion(), "OnVerifyPieceInclusion")
        return syscalls.verify_piece_inclusion(info)

    def verify_consensus_fault(self, header1: bytes, header2: bytes, extra: bytes) -> ConsensusFault | None:
        env = self.ctx.env
        self.ctx.gas.charge(env.prices.on_verify_consensus_fault(), "OnVerifyConsensusFault")
        return syscalls.verify_consensus_fault(
            env.tree,
            env.lookback_state,
            self.receiver,
            env.epoch,
            env.policy.chain_finality,
            header1,
            header2,
            extra,
        )


def _runtime_check(rt: Invocation) -> "Runtime":
    """Invocation implements the Runtime protocol (checked by mypy here)."""
    return rt
