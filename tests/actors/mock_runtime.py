"""A mock Runtime for actor unit tests, after builtin-actors' MockRuntime.

A test sets the message context (caller, value, epoch, balance), declares what the method is expected
to do (validate its caller, send, create actors, call syscalls) with canned results, calls the method
through the actor's ActorDef, and finally checks that every expectation was met. Unexpected calls fail
the test at once with a message saying what was called.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any, TypeVar

from actors import builtin
from actors.dispatch import ActorDef, encode_params
from chain.crypto.signature import is_valid as signature_is_valid
from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.params import DEVNET, Policy
from chain.store.blockstore import MemoryBlockstore, get_cbor, put_cbor
from chain.types.address import Address, Protocol
from chain.vm.exitcode import ActorError, ExitCode
from chain.vm.runtime import SendResult, StateType

S = TypeVar("S")

# The canned result of expect_verify_signature_checked: verify the signature for real.
_CHECK_SIGNATURE: Any = object()


class MockFailure(AssertionError):
    """The code under test did something the test did not expect."""


@dataclass
class _Expected:
    kind: str
    args: tuple[Any, ...]
    result: Any = None
    exit_code: ExitCode = ExitCode.Ok


@dataclass
class MockRuntime:
    receiver: Address
    caller: Address = field(default_factory=lambda: builtin.SYSTEM_ACTOR_ADDR)
    caller_code: CID = field(default_factory=lambda: builtin.SYSTEM_ACTOR_CODE)
    origin: Address = field(default_factory=lambda: builtin.SYSTEM_ACTOR_ADDR)
    value_received: int = 0
    curr_epoch: int = 0
    network_version: int = 21
    policy: Policy = field(default_factory=lambda: DEVNET)
    balance: int = 0
    circulating_supply: int = 0
    store: MemoryBlockstore = field(default_factory=MemoryBlockstore)
    head: CID | None = None
    # address -> ID address, and ID address -> code, for resolve_address / get_actor_code_cid
    id_addresses: dict[Address, Address] = field(default_factory=dict)
    actor_codes: dict[Address, CID] = field(default_factory=dict)
    next_actor_nonce: int = 0
    # ID address -> key address, for signatures checked for real (expect_verify_signature_checked)
    key_addresses: dict[Address, Address] = field(default_factory=dict)
    gas_charged: list[tuple[str, int]] = field(default_factory=list)

    _expectations: deque[_Expected] = field(default_factory=deque)
    _caller_validated: bool = False
    _in_call: bool = False

    # -- test setup -----------------------------------------------------------------------------------
    def set_caller(self, code: CID, address: Address) -> None:
        self.caller = address
        self.caller_code = code
        self.actor_codes[address] = code

    def add_id_address(self, robust: Address, id_address: Address) -> None:
        self.id_addresses[robust] = id_address

    def set_actor_code(self, address: Address, code: CID) -> None:
        self.actor_codes[address] = code

    def _expect(self, kind: str, *args: Any, result: Any = None, exit_code: ExitCode = ExitCode.Ok) -> None:
        self._expectations.append(_Expected(kind, args, result, exit_code))

    def expect_validate_caller_any(self) -> None:
        self._expect("validate_any")

    def expect_validate_caller_addr(self, *addresses: Address) -> None:
        self._expect("validate_addr", *addresses)

    def expect_validate_caller_type(self, *codes: CID) -> None:
        self._expect("validate_type", *codes)

    def expect_send(
        self,
        to: Address,
        method: int,
        params: Any,
        value: int,
        return_value: Any = None,
        exit_code: ExitCode = ExitCode.Ok,
    ) -> None:
        """Expect rt.send(to, method, params, value); params and return_value as for encode_params."""
        self._expect(
            "send",
            to,
            method,
            encode_params(params),
            value,
            result=encode_params(return_value),
            exit_code=exit_code,
        )

    def expect_send_raw(
        self,
        to: Address,
        method: int,
        params: bytes,
        value: int,
        return_data: bytes = b"",
        exit_code: ExitCode = ExitCode.Ok,
    ) -> None:
        """Expect rt.send with these exact params bytes (e.g. a multisig forwarding opaque params)."""
        self._expect("send", to, method, params, value, result=return_data, exit_code=exit_code)

    def expect_create_actor(self, code: CID, address: Address) -> None:
        self._expect("create_actor", code, address)

    def expect_delete_actor(self, beneficiary: Address) -> None:
        self._expect("delete_actor", beneficiary)

    def expect_verify_signature(
        self, signature: Any, signer: Address, data: bytes, result: bool = True
    ) -> None:
        self._expect("verify_signature", signature, signer, data, result=result)

    def expect_verify_signature_checked(self, signature: Any, signer: Address, data: bytes) -> None:
        """Expect rt.verify_signature and answer it by verifying the signature for real, against the
        signer's key address (an ID signer is looked up in key_addresses, as the VM resolves it)."""
        self._expect("verify_signature", signature, signer, data, result=_CHECK_SIGNATURE)

    def expect_compute_unsealed_sector_cid(self, seal_proof: int, pieces: list[Any], result: CID) -> None:
        self._expect("compute_unsealed_sector_cid", seal_proof, pieces, result=result)

    def expect_verify_seal(self, info: Any, result: bool = True) -> None:
        self._expect("verify_seal", info, result=result)

    def expect_verify_post(self, info: Any, result: bool = True) -> None:
        self._expect("verify_post", info, result=result)

    def expect_verify_piece_inclusion(self, info: Any, result: bool = True) -> None:
        self._expect("verify_piece_inclusion", info, result=result)

    def expect_verify_consensus_fault(self, h1: bytes, h2: bytes, extra: bytes, result: Any) -> None:
        self._expect("verify_consensus_fault", h1, h2, extra, result=result)

    def expect_get_randomness_from_tickets(self, tag: int, epoch: int, entropy: bytes, result: bytes) -> None:
        self._expect("randomness_tickets", tag, epoch, entropy, result=result)

    def expect_get_randomness_from_beacon(self, tag: int, epoch: int, entropy: bytes, result: bytes) -> None:
        self._expect("randomness_beacon", tag, epoch, entropy, result=result)

    def _take(self, kind: str, *args: Any) -> _Expected:
        if not self._expectations:
            raise MockFailure(f"unexpected {kind}{args!r}: nothing more was expected")
        expected = self._expectations.popleft()
        if expected.kind != kind or expected.args != args:
            raise MockFailure(f"unexpected {kind}{args!r}; expected {expected.kind}{expected.args!r}")
        return expected

    def verify(self) -> None:
        """Every expectation was met."""
        if self._expectations:
            pending = ", ".join(f"{e.kind}{e.args!r}" for e in self._expectations)
            raise MockFailure(f"expectations not met: {pending}")

    def reset(self) -> None:
        self._expectations.clear()

    # -- calling a method -----------------------------------------------------------------------------
    def call(self, actor: ActorDef, method: int, params: Any = None) -> bytes:
        """Invoke a method as the VM would; return its CBOR return bytes. ActorError propagates."""
        if self._in_call:
            raise MockFailure("re-entrant call")
        self._caller_validated = False
        self._in_call = True
        try:
            result = actor.invoke(self, method, encode_params(params))
        finally:
            self._in_call = False
        if not self._caller_validated:
            raise MockFailure(f"{actor.name} method {method} did not validate its caller")
        return result

    def call_raw(self, actor: ActorDef, method: int, params: bytes) -> bytes:
        """Invoke a method with raw CBOR params bytes (e.g. a null, which `call` cannot express)."""
        if self._in_call:
            raise MockFailure("re-entrant call")
        self._caller_validated = False
        self._in_call = True
        try:
            result = actor.invoke(self, method, params)
        finally:
            self._in_call = False
        if not self._caller_validated:
            raise MockFailure(f"{actor.name} method {method} did not validate its caller")
        return result

    def call_decoded(self, actor: ActorDef, method: int, params: Any = None) -> Any:
        """Invoke a method and return its decoded CBOR return value (None for an empty return)."""
        result = self.call(actor, method, params)
        return dagcbor.decode(result) if result else None

    # -- Runtime: caller validation -------------------------------------------------------------------
    def _validated(self) -> None:
        if self._caller_validated:
            raise MockFailure("caller validated twice")
        self._caller_validated = True

    def validate_immediate_caller_accept_any(self) -> None:
        self._take("validate_any")
        self._validated()

    def validate_immediate_caller_is(self, *addresses: Address) -> None:
        self._take("validate_addr", *addresses)
        self._validated()
        if self.caller not in addresses:
            raise ActorError(ExitCode.SysErrForbidden, f"caller {self.caller} is not one of {addresses}")

    def validate_immediate_caller_type(self, *codes: CID) -> None:
        self._take("validate_type", *codes)
        self._validated()
        if self.caller_code not in codes:
            raise ActorError(ExitCode.SysErrForbidden, f"caller type {self.caller_code} is not allowed")

    # -- Runtime: balances and addresses --------------------------------------------------------------
    def current_balance(self) -> int:
        return self.balance

    def resolve_address(self, address: Address) -> Address | None:
        if address.protocol == Protocol.ID:
            return address
        return self.id_addresses.get(address)

    def get_actor_code_cid(self, address: Address) -> CID | None:
        resolved = self.resolve_address(address)
        return None if resolved is None else self.actor_codes.get(resolved)

    def total_fil_circ_supply(self) -> int:
        return self.circulating_supply

    # -- Runtime: randomness --------------------------------------------------------------------------
    def get_randomness_from_tickets(self, tag: int, epoch: int, entropy: bytes) -> bytes:
        result: bytes = self._take("randomness_tickets", tag, epoch, entropy).result
        return result

    def get_randomness_from_beacon(self, tag: int, epoch: int, entropy: bytes) -> bytes:
        result: bytes = self._take("randomness_beacon", tag, epoch, entropy).result
        return result

    # -- Runtime: state -------------------------------------------------------------------------------
    def state(self, state_type: type[S]) -> S:
        if self.head is None:
            raise ActorError(ExitCode.ErrIllegalState, "actor has no state")
        decoded: S = state_type.from_cbor(get_cbor(self.store, self.head))  # type: ignore[attr-defined]
        return decoded

    def set_state(self, state: StateType) -> None:
        self.head = put_cbor(self.store, state.to_cbor())

    # -- Runtime: calls -------------------------------------------------------------------------------
    def send(self, to: Address, method: int, params: bytes, value: int) -> SendResult:
        expected = self._take("send", to, method, params, value)
        if expected.exit_code == ExitCode.Ok:
            if value > self.balance:
                raise ActorError(
                    ExitCode.SysErrInsufficientFunds, f"send of {value} exceeds balance {self.balance}"
                )
            self.balance -= value
        return SendResult(expected.exit_code, expected.result)

    def new_actor_address(self) -> Address:
        data = self.origin.to_bytes() + self.next_actor_nonce.to_bytes(8, "big")
        self.next_actor_nonce += 1
        return Address.new_actor(data)

    def create_actor(self, code: CID, address: Address) -> None:
        self._take("create_actor", code, address)
        self.actor_codes[address] = code

    def delete_actor(self, beneficiary: Address) -> None:
        self._take("delete_actor", beneficiary)

    def charge_gas(self, name: str, amount: int) -> None:
        self.gas_charged.append((name, amount))

    # -- Runtime: syscalls ----------------------------------------------------------------------------
    def verify_signature(self, signature: Any, signer: Address, data: bytes) -> bool:
        result = self._take("verify_signature", signature, signer, data).result
        if result is _CHECK_SIGNATURE:
            key = self.key_addresses.get(signer, signer)
            return signature_is_valid(signature, key, data)
        checked: bool = result
        return checked

    def hash_blake2b(self, data: bytes) -> bytes:
        return hashlib.blake2b(data, digest_size=32).digest()

    def compute_unsealed_sector_cid(self, seal_proof: int, pieces: list[Any]) -> CID:
        result: CID = self._take("compute_unsealed_sector_cid", seal_proof, pieces).result
        return result

    def verify_seal(self, info: Any) -> bool:
        result: bool = self._take("verify_seal", info).result
        return result

    def verify_post(self, info: Any) -> bool:
        result: bool = self._take("verify_post", info).result
        return result

    def verify_piece_inclusion(self, info: Any) -> bool:
        result: bool = self._take("verify_piece_inclusion", info).result
        return result

    def verify_consensus_fault(self, header1: bytes, header2: bytes, extra: bytes) -> Any:
        return self._take("verify_consensus_fault", header1, header2, extra).result
