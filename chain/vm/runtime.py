"""The Runtime: everything an actor method may ask of the VM, as an interface.

Actors are written against this Protocol only (actors/ never imports the VM's implementation), so they
can be tested with a mock runtime and run on the real VM alike. The shape follows builtin-actors'
Runtime trait: message context, caller validation, state, sends, actor creation, randomness and the
syscalls (signatures, hashing, proofs, consensus faults). Anything that goes wrong inside raises
ActorError; the VM turns that into the receipt's exit code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from chain.crypto.signature import Signature
    from chain.encoding.cid import CID
    from chain.params import Policy
    from chain.store.blockstore import Blockstore
    from chain.types.address import Address
    from chain.types.sector import (
        ConsensusFault,
        PieceInclusionVerifyInfo,
        PieceInfo,
        SealVerifyInfo,
        WindowPoStVerifyInfo,
    )
    from chain.vm.exitcode import ExitCode


class StateType(Protocol):
    """An actor state: a frozen dataclass with a tuple CBOR form."""

    def to_cbor(self) -> Any: ...


S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class SendResult:
    """The outcome of rt.send: a failed callee does not abort the caller unless the caller says so."""

    exit_code: ExitCode
    return_data: bytes

    @property
    def ok(self) -> bool:
        return int(self.exit_code) == 0


class Runtime(Protocol):
    # -- the message being executed -------------------------------------------------------------------
    @property
    def caller(self) -> Address:
        """The immediate caller, as an ID address."""
        ...

    @property
    def receiver(self) -> Address:
        """The actor executing, as an ID address."""
        ...

    @property
    def origin(self) -> Address:
        """The account that signed the top-level message, as an ID address."""
        ...

    @property
    def value_received(self) -> int: ...

    @property
    def curr_epoch(self) -> int: ...

    @property
    def network_version(self) -> int: ...

    @property
    def policy(self) -> Policy:
        """The network's parameters (chain/params.py): proving periods, deposits, limits."""
        ...

    # -- caller validation (each method must call exactly one) ---------------------------------------
    def validate_immediate_caller_accept_any(self) -> None: ...

    def validate_immediate_caller_is(self, *addresses: Address) -> None: ...

    def validate_immediate_caller_type(self, *codes: CID) -> None: ...

    # -- balances and addresses ----------------------------------------------------------------------
    def current_balance(self) -> int: ...

    def resolve_address(self, address: Address) -> Address | None:
        """The ID address of address, or None if no such actor exists."""
        ...

    def get_actor_code_cid(self, address: Address) -> CID | None: ...

    def total_fil_circ_supply(self) -> int: ...

    # -- randomness (blake2b-256 draws, see chain/crypto/randomness.py) ------------------------------
    def get_randomness_from_tickets(self, tag: int, epoch: int, entropy: bytes) -> bytes: ...

    def get_randomness_from_beacon(self, tag: int, epoch: int, entropy: bytes) -> bytes: ...

    # -- state ---------------------------------------------------------------------------------------
    @property
    def store(self) -> Blockstore:
        """The blockstore, charging gas for reads and writes."""
        ...

    def state(self, state_type: type[S]) -> S:
        """Load and decode this actor's current state (state_type.from_cbor)."""
        ...

    def set_state(self, state: StateType) -> None:
        """Write a new state for this actor (also used by constructors to create the first one)."""
        ...

    # -- calls and actor lifecycle -------------------------------------------------------------------
    def send(self, to: Address, method: int, params: bytes, value: int) -> SendResult:
        """Call another actor with CBOR params; a callee's abort comes back as a non-zero exit code."""
        ...

    def new_actor_address(self) -> Address:
        """A fresh actor (protocol 2) address derived from the origin and its nonce."""
        ...

    def create_actor(self, code: CID, address: Address) -> None: ...

    def delete_actor(self, beneficiary: Address) -> None: ...

    def charge_gas(self, name: str, amount: int) -> None: ...

    # -- syscalls ------------------------------------------------------------------------------------
    def verify_signature(self, signature: Signature, signer: Address, data: bytes) -> bool: ...

    def hash_blake2b(self, data: bytes) -> bytes: ...

    def compute_unsealed_sector_cid(self, seal_proof: int, pieces: list[PieceInfo]) -> CID: ...

    def verify_seal(self, info: SealVerifyInfo) -> bool: ...

    def verify_post(self, info: WindowPoStVerifyInfo) -> bool: ...

    def verify_piece_inclusion(self, info: PieceInclusionVerifyInfo) -> bool:
        """Check a piece inclusion proof: info.piece sits at its position in the sector's CommD."""
        ...

    def verify_consensus_fault(self, header1: bytes, header2: bytes, extra: bytes) -> ConsensusFault | None:
        """The fault two (or three) block headers prove, or None if they prove none."""
        ...
