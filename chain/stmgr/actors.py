"""Actor-level queries on a state tree: actors, ID and key addresses, decoded actor state.

These are the building blocks of the StateManager's queries at a tipset (Lotus StateGetActor,
StateLookupID, StateAccountKey, StateLookupRobustAddress, StateReadState, StateListActors,
StateNetworkName); each takes the StateTree of the state asked about.
"""

from typing import Any

from actors import builtin
from actors.account.types import AccountState
from chain.encoding.errors import DecodeError
from chain.state.init_state import InitState
from chain.state.tree import INIT_ACTOR_ID_ADDRESS, Actor, StateTree
from chain.store.blockstore import BlockNotFound, get_decoded
from chain.types.address import Address, Protocol
from chain.vm.invoker import DEFAULT_INVOKER, Invoker


class ActorNotFound(LookupError):
    """No actor at the address in the state asked about (Lotus: "actor not found")."""

    def __init__(self, address: Address, detail: str = "") -> None:
        super().__init__(f"actor not found: {address}{': ' + detail if detail else ''}")
        self.address = address

    def __str__(self) -> str:
        return str(self.args[0])


class StateQueryError(ValueError):
    """The state does not answer the question: wrong kind of actor, unreadable actor state."""


def get_actor(tree: StateTree, address: Address) -> Actor:
    actor = tree.get_actor(address)
    if actor is None:
        raise ActorNotFound(address)
    return actor


def lookup_id(tree: StateTree, address: Address) -> Address:
    """The ID address of address; ActorNotFound if it has none."""
    found = tree.lookup_id(address)
    if found is None:
        raise ActorNotFound(address, "the address has no ID")
    return found


def read_actor_state(tree: StateTree, address: Address, state_type: type) -> Any:
    """The actor's state decoded as state_type (a declared class: frozen, shared through the store's
    block cache with every reader of the same state)."""
    actor = get_actor(tree, address)
    try:
        return get_decoded(tree.store, actor.head, state_type.from_cbor)  # type: ignore[attr-defined]
    except (BlockNotFound, DecodeError) as exc:
        raise StateQueryError(f"cannot read the state of {address}: {exc}") from None


def resolve_to_key(tree: StateTree, address: Address) -> Address:
    """The key address (secp256k1 or BLS) behind address: the address itself if it is one, else the
    address held by the account actor at it (Lotus ResolveToDeterministicAddress)."""
    if address.protocol in (Protocol.SECP256K1, Protocol.BLS, Protocol.DELEGATED):
        return address
    actor = get_actor(tree, address)
    if actor.code != builtin.ACCOUNT_ACTOR_CODE:
        raise StateQueryError(f"{address} is not an account actor, it has no key address")
    state: AccountState = read_actor_state(tree, address, AccountState)
    return state.address


def init_state(tree: StateTree) -> InitState:
    state: InitState = read_actor_state(tree, INIT_ACTOR_ID_ADDRESS, InitState)
    return state


def lookup_robust_address(tree: StateTree, address: Address) -> Address:
    """The robust (non-ID) address that the init actor mapped to this ID (Lotus
    StateLookupRobustAddress); scans the address map, as Lotus does."""
    if address.protocol != Protocol.ID:
        return address
    wanted = address.id
    for key, value in init_state(tree).load_map(tree.store).items():
        if value == wanted:
            return Address.from_bytes(key)
    raise ActorNotFound(address, "no robust address maps to this ID")


def read_state(tree: StateTree, address: Address, invoker: Invoker = DEFAULT_INVOKER) -> tuple[Actor, Any]:
    """The actor and its state decoded with its actor type's state class (Lotus StateReadState)."""
    actor = get_actor(tree, address)
    definition = invoker.actor(actor.code)
    if definition is None:
        raise StateQueryError(f"no actor type implements code {actor.code} of {address}")
    return actor, read_actor_state(tree, address, definition.state_type)


def list_actors(tree: StateTree) -> list[Address]:
    """Every actor's ID address, in ID order."""
    return sorted((address for address, _ in tree.actors()), key=lambda a: a.id)


def network_name(tree: StateTree) -> str:
    return init_state(tree).network_name
