"""The init actor's state: the map from robust addresses to actor IDs, and the next ID to assign.

It lives below the actors because the state tree resolves addresses through it (as Lotus's state tree
does through its init-actor state adapter); actors/init.py owns the behaviour that changes it.

CBOR (builtin-actors init State, tuple): [AddressMap, NextID, NetworkName]. AddressMap is a HAMT
(bitwidth 5, sha256 keys) from address bytes to the actor ID as a CBOR unsigned integer.
"""

from typing import Annotated, Final

from chain.encoding.cid import CID
from chain.encoding.schema import CborTuple, Name, Uint64
from chain.state.hamt import Hamt
from chain.store.blockstore import Blockstore
from chain.types.address import Address, Protocol

HAMT_BITWIDTH: Final = 5
# The first ID the init actor assigns to a non-singleton actor (builtin-actors FIRST_NON_SINGLETON_ADDR).
FIRST_NON_SINGLETON_ID: Final = 100


class AddressAlreadyMapped(ValueError):
    """A robust address given to map_address_to_new_id already has an ID."""


class InitState(CborTuple):
    address_map: CID
    next_id: Annotated[Uint64, Name("NextID")]
    network_name: str

    @classmethod
    def new(cls, store: Blockstore, network_name: str) -> "InitState":
        """The state a freshly constructed init actor has: an empty map, IDs from 100."""
        empty = Hamt.new(store, HAMT_BITWIDTH).flush()
        return cls(empty, FIRST_NON_SINGLETON_ID, network_name)

    def load_map(self, store: Blockstore) -> Hamt:
        return Hamt.load(store, self.address_map, HAMT_BITWIDTH)

    def resolve(self, store: Blockstore, address: Address) -> Address | None:
        """The ID address of address (ID addresses pass through), or None if it has no ID."""
        if address.protocol == Protocol.ID:
            return address
        actor_id = self.load_map(store).get(address.to_bytes())
        return None if actor_id is None else Address.new_id(actor_id)

    def map_address_to_new_id(self, store: Blockstore, address: Address) -> tuple["InitState", Address]:
        """Assign the next ID to address; return the new state and the ID address.

        Raises AddressAlreadyMapped if address has an ID already (an ID is assigned once, even if the
        actor is later deleted).
        """
        address_map = self.load_map(store)
        actor_id = self.next_id
        if not address_map.set_if_absent(address.to_bytes(), actor_id):
            raise AddressAlreadyMapped(f"address {address} is already mapped to an actor ID")
        new_state = InitState(address_map.flush(), actor_id + 1, self.network_name)
        return new_state, Address.new_id(actor_id)
