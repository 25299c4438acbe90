"""The durable records of storage deals: the client's and the provider's, one CBOR record per deal.

Records live in a `MetadataStore` (a namespace of the repo's LevelDB, `MemoryMetadata` for an in-memory
node): the client's under `client/<proposal CID>`, the provider's under `provider/<deal UUID>`. Every
state change writes the whole record with one put (LevelDB applies it whole or not at all), after the
work it records is done, so a crash leaves each deal in the state of its last change and a restart
resumes it from there.

Each record keeps its history (`DealEvent`: the state entered, the chain epoch, the time, a message),
which DealInfo's DealStages and `filpy client get-deal` show; failures keep their reason in `message`.
"""

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Annotated, Any, Final, Generic, TypeVar

import structlog

from actors.market.types import ClientDealProposal
from chain.chainstore.metadata import MetadataStore
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.schema import (
    CborMap,
    ChainEpoch,
    Int64,
    MaxLen,
    Name,
    TokenAmount,
    Uint64,
)
from chain.types.address import Address
from node.markets.deal_states import StorageDealStatus, check_transition
from node.markets.storage_types import MAX_INCLUSION_PROOF, DealUUID, Transfer

_log = structlog.get_logger(__name__)

MAX_EVENTS: Final = 256
CLIENT_PREFIX: Final = b"client/"
PROVIDER_PREFIX: Final = b"provider/"


class DealEvent(CborMap):
    """One step of a deal's life: the state entered, at which epoch and time (Unix ms), and why."""

    state: StorageDealStatus
    epoch: ChainEpoch
    time: Int64
    message: str = ""


class _DealUUID:
    """A deal's UUID, which both sides' records keep as its 16 bytes."""

    deal_uuid: bytes

    @property
    def uuid(self) -> uuid.UUID:
        return uuid.UUID(bytes=self.deal_uuid)


class ClientDealRecord(_DealUUID, CborMap, kw_only=True):
    """What the client keeps of a deal it proposed."""

    proposal_cid: CID  # the signed proposal's CID (sha2-256): ClientStartDeal's answer
    deal_uuid: DealUUID
    state: StorageDealStatus
    message: str = ""
    client_deal_proposal: ClientDealProposal
    wallet: Address  # the wallet address the client signed with (the proposal's Client may be its ID)
    root: CID
    transfer_type: str  # "http" or "manual"
    provider_peer: str  # base58 peer ID
    car_path: str = ""  # the CAR the provider pulls ("" for an offline deal)
    car_size: Uint64 = 0
    token: str = ""  # the transfer's one-time token; cleared once the provider has the data
    fast_retrieval: bool = True
    funds_cid: CID | None = None  # the MarketAddBalance message, if the escrow needed one
    reserved: TokenAmount = 0  # escrow counted for this deal until it is published
    publish_cid: CID | None = None
    deal_id: Annotated[Uint64 | None, Name("DealID")] = None
    sector_number: Uint64 | None = None
    piece_offset: Uint64 | None = None
    inclusion_proof: Annotated[bytes, MaxLen(MAX_INCLUSION_PROOF)] = b""
    proof_verified: bool = False  # the PIP checked against the sector's CommD on chain
    bytes_sent: Uint64 = 0  # as the provider reports it
    status_failures: Uint64 = 0  # status requests in a row that got no answer
    created: Int64  # Unix ms
    events: Annotated[tuple[DealEvent, ...], MaxLen(MAX_EVENTS)] = ()

    @property
    def key(self) -> bytes:
        return self.proposal_cid.bytes


class ProviderDealRecord(_DealUUID, CborMap, kw_only=True):
    """What the provider keeps of a deal it was offered."""

    deal_uuid: DealUUID
    state: StorageDealStatus
    message: str = ""
    client_deal_proposal: ClientDealProposal
    signed_proposal_cid: CID
    deal_data_root: CID
    client_peer: str
    is_offline: bool
    transfer: Transfer
    bytes_received: Uint64 = 0
    car_path: str = ""  # the deal's data once it is here (in the piece store)
    funds_cid: CID | None = None  # an AddBalance the provider sent for this deal's collateral
    publish_cid: CID | None = None
    deal_id: Annotated[Uint64 | None, Name("DealID")] = None
    sector_number: Uint64 | None = None
    piece_offset: Uint64 | None = None
    inclusion_proof: Annotated[bytes, MaxLen(MAX_INCLUSION_PROOF)] = b""
    sealing_state: str = ""
    created: Int64
    events: Annotated[tuple[DealEvent, ...], MaxLen(MAX_EVENTS)] = ()

    @property
    def key(self) -> bytes:
        return self.deal_uuid


R = TypeVar("R", ClientDealRecord, ProviderDealRecord)


def _replace(record: R, **changes: Any) -> R:
    return replace(record, **changes)


def now_ms() -> int:
    return int(time.time() * 1000)


class DealStore(Generic[R]):
    """The deals of one side, by key, kept in memory and written through to the metadata store.
    Methods are synchronous and thread-safe (callers on trio use a worker thread for writes)."""

    def __init__(
        self,
        meta: MetadataStore,
        record_type: type[R],
        prefix: bytes,
        transitions: dict[StorageDealStatus, frozenset[StorageDealStatus]],
    ) -> None:
        self._meta = meta
        self._type: type[R] = record_type
        self._prefix = prefix
        self._transitions = transitions
        self._lock = threading.Lock()
        self._deals: dict[bytes, R] = {}
        for key, raw in meta.items(prefix):
            try:
                record = record_type.from_bytes(raw)
            except DecodeError as exc:
                # A record we cannot read is left where it is (for an operator to look at), not lost.
                _log.error("deals.unreadable_record", key=key.hex(), error=str(exc))
                continue
            self._deals[record.key] = record

    def get(self, key: bytes) -> R | None:
        return self._deals.get(key)

    def all(self) -> list[R]:
        return sorted(self._deals.values(), key=lambda r: r.created)

    def __iter__(self) -> Iterator[R]:
        return iter(self.all())

    def add(self, record: R, epoch: int, message: str = "") -> R:
        """Keep a new deal (its first event is its state)."""
        with self._lock:
            if record.key in self._deals:
                raise ValueError(f"deal {record.key.hex()} is already recorded")
            event = DealEvent(record.state, epoch, now_ms(), message)
            stored = _replace(record, events=(event,), message=message)
            self._write(stored)
            return stored

    def update(self, record: R, **changes: Any) -> R:
        """Change fields of a deal without a state change (sector, bytes received, ...)."""
        with self._lock:
            current = self._current(record)
            stored = _replace(current, **changes)
            self._write(stored)
            return stored

    def move(self, record: R, state: StorageDealStatus, epoch: int, message: str = "", **changes: Any) -> R:
        """Move a deal to state (checked against the side's transitions), with the other changes, in one
        write."""
        with self._lock:
            current = self._current(record)
            if current.state != state:
                check_transition(self._transitions, current.state, state)
            event = DealEvent(state, epoch, now_ms(), message)
            history: tuple[DealEvent, ...] = current.events
            events = (*history, event)[-MAX_EVENTS:]
            stored = _replace(current, state=state, message=message, events=events, **changes)
            self._write(stored)
            return stored

    def _current(self, record: R) -> R:
        current: R | None = self._deals.get(record.key)
        if current is None:
            raise KeyError(f"deal {record.key.hex()} is not recorded")
        return current

    def _write(self, record: R) -> None:
        self._meta.put(self._prefix + record.key, record.to_bytes())
        self._deals[record.key] = record
