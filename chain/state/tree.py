"""The state tree: every actor's code, state head, nonce and balance, keyed by ID address.

Layout (Lotus state tree version 5, lotus chain/types/state.go and actor.go):
- StateRoot = [Version, Actors, Info]: Version 5, Actors the root of a HAMT (bitwidth 5, sha256 keys)
  from ID-address bytes to Actor, Info the CID of the empty StateInfo0 (the CBOR empty array).
- Actor (ActorV5) = [Code, Head, Nonce, Balance, DelegatedAddress]; Balance is a Filecoin big integer,
  DelegatedAddress the actor's f4 address or null.

Non-ID addresses resolve to IDs through the init actor's AddressMap (chain/state/init_state.py).

In memory: actors read from the HAMT are cached decoded; changes go to a dirty overlay that `flush`
writes to the HAMT (which itself re-encodes only changed nodes). Snapshots make changes revertible:
while one is open, every change to the overlay (and to the address-resolution cache) is journalled,
`revert` undoes the journal of the innermost snapshot and `clear_snapshot` keeps its changes,
merging them into the enclosing snapshot's journal.
"""

from collections.abc import Iterator
from typing import Any, Final

from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.schema import CborTuple, TokenAmount, Uint64
from chain.state.hamt import Hamt
from chain.state.init_state import InitState
from chain.store.blockstore import BlockNotFound, Blockstore, get_decoded, put_cbor
from chain.types.address import Address, Protocol

STATE_TREE_VERSION: Final = 5
ACTORS_HAMT_BITWIDTH: Final = 5
# CBOR empty array: the head of a just-created actor (Lotus EmptyObjectCid) and the StateInfo0 block.
EMPTY_ARRAY_BYTES: Final = b"\x80"
EMPTY_OBJECT_CID: Final = CID.hash_of(EMPTY_ARRAY_BYTES)
INIT_ACTOR_ID_ADDRESS: Final = Address.new_id(1)

_MISSING: Final = object()


class StateTreeError(Exception):
    """The state is inconsistent (a missing or malformed init actor, an unresolvable write)."""


class Actor(CborTuple):
    code: CID
    head: CID
    nonce: Uint64
    balance: TokenAmount
    delegated_address: Address | None = None

    def with_balance(self, balance: int) -> "Actor":
        return Actor(self.code, self.head, self.nonce, balance, self.delegated_address)

    def with_head(self, head: CID) -> "Actor":
        return Actor(self.code, head, self.nonce, self.balance, self.delegated_address)


class StateRoot(CborTuple):
    version: Uint64
    actors: CID
    info: CID


def _decode_actor(raw: Any, address: Address) -> Actor:
    # Formatting the address (base32 and checksum) costs more than the decode itself, so the
    # error context is built only when the decode fails: decoding again with it raises the same
    # error, now naming the actor.
    try:
        return Actor.from_cbor(raw)
    except DecodeError:
        return Actor.from_cbor(raw, f"Actor {address}")


# A journal entry: (the dict changed, the key, the value before the change or _MISSING).
_Change = tuple[dict[Address, Any], Address, Any]


class StateTree:
    """Actors by address over a blockstore; see the module doc. Not thread-safe."""

    __slots__ = (
        "_clean",
        "_dirty",
        "_hamt",
        "_ids",
        "_info",
        "_init_cache",
        "_journal",
        "_root",
        "_store",
    )

    def __init__(self, store: Blockstore, hamt: Hamt, info: CID, root: CID | None) -> None:
        """Use StateTree.new or StateTree.load."""
        self._store = store
        self._hamt = hamt
        self._info = info
        self._root = root  # the flushed root while nothing is dirty
        self._clean: dict[Address, Actor] = {}
        self._dirty: dict[Address, Actor | None] = {}
        self._ids: dict[Address, Address] = {}  # non-ID address -> ID address
        self._journal: list[list[_Change]] = []
        self._init_cache: tuple[CID, InitState, Hamt] | None = None

    @classmethod
    def new(cls, store: Blockstore) -> "StateTree":
        info = put_cbor(store, [])
        return cls(store, Hamt.new(store, ACTORS_HAMT_BITWIDTH), info, None)

    @classmethod
    def load(cls, store: Blockstore, root: CID) -> "StateTree":
        """Open the state at root; raises BlockNotFound or DecodeError for a missing or bad root."""
        state_root = get_decoded(store, root, StateRoot.from_cbor)
        if state_root.version != STATE_TREE_VERSION:
            raise DecodeError(f"state root {root}: unsupported state tree version {state_root.version}")
        hamt = Hamt.load(store, state_root.actors, ACTORS_HAMT_BITWIDTH)
        return cls(store, hamt, state_root.info, root)

    @property
    def store(self) -> Blockstore:
        return self._store

    @property
    def root(self) -> CID | None:
        """The root CID of the state as it is, when nothing was changed since it was loaded or flushed
        (None otherwise): what values derived from the whole state are keyed by."""
        return self._root if not self._dirty else None

    # -- reading -------------------------------------------------------------------------------------
    def get_actor(self, address: Address) -> Actor | None:
        """The actor at address (any protocol), or None if there is none."""
        if address.protocol != Protocol.ID:
            resolved = self.lookup_id(address)
            if resolved is None:
                return None
            address = resolved
        actor = self._dirty.get(address, _MISSING)
        if actor is not _MISSING:
            return actor  # type: ignore[return-value]
        cached = self._clean.get(address)
        if cached is not None:
            return cached
        raw = self._hamt.get(address.to_bytes())
        if raw is None:
            return None
        loaded = _decode_actor(raw, address)
        self._clean[address] = loaded
        return loaded

    def lookup_id(self, address: Address) -> Address | None:
        """The ID address of address, resolved through the init actor; None if it has none."""
        if address.protocol == Protocol.ID:
            return address
        found = self._ids.get(address)
        if found is not None:
            return found
        actor_id = self._address_map().get(address.to_bytes())
        if actor_id is None:
            return None
        if type(actor_id) is not int or actor_id < 0:
            raise StateTreeError(f"init actor maps {address} to {actor_id!r}, not an actor ID")
        found = Address.new_id(actor_id)
        self._remember_id(address, found)
        return found

    def _init_state(self) -> tuple[CID, InitState, Hamt]:
        init = self.get_actor(INIT_ACTOR_ID_ADDRESS)
        if init is None:
            raise StateTreeError("the state has no init actor to resolve addresses with")
        cache = self._init_cache
        if cache is not None and cache[0] == init.head:
            return cache
        try:
            state = get_decoded(self._store, init.head, InitState.from_cbor)
            address_map = state.load_map(self._store)
        except (DecodeError, BlockNotFound) as exc:
            raise StateTreeError(f"cannot read the init actor's state: {exc}") from exc
        cache = (init.head, state, address_map)
        self._init_cache = cache
        return cache

    def _address_map(self) -> Hamt:
        return self._init_state()[2]

    def actors(self) -> Iterator[tuple[Address, Actor]]:
        """Every actor by ID address, in no particular order (reads the whole HAMT)."""
        seen = set()
        for address, actor in self._dirty.items():
            seen.add(address)
            if actor is not None:
                yield address, actor
        for key, raw in self._hamt.items():
            address = Address.from_bytes(key)
            if address not in seen:
                yield address, self._clean.get(address) or _decode_actor(raw, address)

    # -- writing -------------------------------------------------------------------------------------
    def _record(self, target: dict[Address, Any], key: Address) -> None:
        self._journal[-1].append((target, key, target.get(key, _MISSING)))

    def _remember_id(self, address: Address, id_address: Address) -> None:
        if self._journal:
            self._record(self._ids, address)
        self._ids[address] = id_address

    def set_actor(self, address: Address, actor: Actor) -> None:
        """Write the actor at address; a non-ID address must already resolve to an ID."""
        if address.protocol != Protocol.ID:
            resolved = self.lookup_id(address)
            if resolved is None:
                raise StateTreeError(f"cannot set actor {address}: the address has no ID")
            address = resolved
        if self._journal:
            self._record(self._dirty, address)
        self._dirty[address] = actor
        self._root = None

    def delete_actor(self, address: Address) -> bool:
        """Remove the actor at address; True if there was one."""
        resolved = self.lookup_id(address)
        if resolved is None or self.get_actor(resolved) is None:
            return False
        if self._journal:
            self._record(self._dirty, resolved)
        self._dirty[resolved] = None
        self._root = None
        return True

    def register_new_address(self, address: Address) -> Address:
        """Give address the init actor's next ID (changing the init actor's state); return that ID.

        Raises chain.state.init_state.AddressAlreadyMapped if the address has an ID already.
        """
        _, state, _ = self._init_state()
        new_state, id_address = state.map_address_to_new_id(self._store, address)
        init = self.get_actor(INIT_ACTOR_ID_ADDRESS)
        assert init is not None  # _init_state found it
        head = put_cbor(self._store, new_state.to_cbor())
        self.set_actor(INIT_ACTOR_ID_ADDRESS, init.with_head(head))
        self._remember_id(address, id_address)
        return id_address

    # -- snapshots -----------------------------------------------------------------------------------
    def snapshot(self) -> None:
        """Open a snapshot: changes from now on can be undone by revert()."""
        self._journal.append([])

    def revert(self) -> None:
        """Undo every change since the innermost open snapshot and close it."""
        if not self._journal:
            raise StateTreeError("revert without a snapshot")
        changes = self._journal.pop()
        for target, key, previous in reversed(changes):
            if previous is _MISSING:
                target.pop(key, None)
            else:
                target[key] = previous
        self._root = None

    def clear_snapshot(self) -> None:
        """Close the innermost snapshot keeping its changes (revertible by an enclosing snapshot)."""
        if not self._journal:
            raise StateTreeError("clear_snapshot without a snapshot")
        changes = self._journal.pop()
        if self._journal:
            self._journal[-1].extend(changes)

    @property
    def snapshot_depth(self) -> int:
        return len(self._journal)

    # -- persisting ----------------------------------------------------------------------------------
    def flush(self) -> CID:
        """Write the changed actors and the state root; return the root's CID."""
        if self._journal:
            raise StateTreeError("cannot flush with a snapshot open")
        if self._root is not None and not self._dirty:
            return self._root
        hamt = self._hamt
        clean = self._clean
        for address, actor in self._dirty.items():
            key = address.to_bytes()
            if actor is None:
                hamt.delete(key)
                clean.pop(address, None)
            else:
                hamt.set(key, actor.to_cbor())
                clean[address] = actor
        self._dirty.clear()
        root = StateRoot(STATE_TREE_VERSION, hamt.flush(), self._info)
        data = dagcbor.encode(root.to_cbor())
        cid = CID.hash_of(data)
        self._store.put(cid, data)
        self._root = cid
        return cid
