"""Where the payment-channel manager keeps its channels, vouchers and messages (lotus paychmgr/store.go).

Records live in the repo's LevelDB under their own namespace (`/paych/`), or in a `MemoryMetadata` for
tests; every change the manager makes is one write batch, so a crash leaves each channel as it was
before the change or as it is after it, never half-written.

Keys (bytes, under the namespace):
- `c/<channel id>` -> ChannelRecord (one per channel; the ID is a UUID chosen when it is first stored)
- `a/<channel address bytes>` -> channel ID (written once the channel's address is known)
- `v/<channel id>/<lane u64 BE>/<nonce u64 BE>` -> VoucherRecord (a channel's vouchers, in lane and
  nonce order; a lane holds one voucher per nonce)
- `m/<message CID bytes>` -> MessageRecord (the create and add-funds messages, for PaychGetWaitReady)

Unlike Lotus, vouchers are stored beside their channel rather than inside its record, so that adding a
voucher writes one small record however many the channel holds.
"""

import struct
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, TypeVar

from actors.paych.types import RedeemerProof, SignedVoucher
from chain.chainstore.metadata import MemoryMetadata, MetaBatch, MetadataStore
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.schema import CborTuple, TokenAmount, Uint64
from chain.types.address import Address
from node.markets.paych_types import Direction, PaychError

PAYCH_NAMESPACE: Final = b"/paych/"
_CHANNEL: Final = b"c/"
_ADDRESS: Final = b"a/"
_VOUCHER: Final = b"v/"
_MESSAGE: Final = b"m/"
_LANE_NONCE: Final = struct.Struct(">QQ")

R = TypeVar("R", bound=CborTuple)


class PaychStoreError(PaychError):
    """A stored record that cannot be read back; the message names the key."""


class ChannelRecord(CborTuple, kw_only=True):
    """One channel as this node tracks it (lotus paychmgr.ChannelInfo, vouchers kept apart)."""

    channel_id: str
    channel: Address | None  # None while the create message is pending
    control: Address  # our address: From of an outbound channel, To of an inbound one
    target: Address  # the other party
    direction: Direction
    next_lane: Uint64 = 0  # the lane PaychAllocateLane gives next
    amount: TokenAmount = 0  # funds added to the channel and confirmed on chain
    available_amount: TokenAmount = 0  # part of amount not reserved by a PaychGet
    pending_amount: TokenAmount = 0  # funds of the create or add-funds message in flight
    pending_available_amount: TokenAmount = 0  # part of pending_amount that will not be reserved
    create_msg: CID | None = None
    add_funds_msg: CID | None = None
    settling: bool = False  # PaychSettle was sent from here

    @property
    def from_(self) -> Address:
        return self.control if self.direction == Direction.OUTBOUND else self.target

    @property
    def to(self) -> Address:
        return self.target if self.direction == Direction.OUTBOUND else self.control

    @property
    def wait_sentinel(self) -> CID | None:
        """The message the channel waits for, if any."""
        return self.create_msg if self.create_msg is not None else self.add_funds_msg


class VoucherRecord(CborTuple):
    """A voucher of a channel, the redeemer's proof for its condition (when it has one), and whether it
    was submitted to the chain (lotus paychmgr.VoucherInfo)."""

    voucher: SignedVoucher
    proof: RedeemerProof = b""
    submitted: bool = False


class MessageRecord(CborTuple):
    """A create or add-funds message and what became of it (lotus paychmgr.MsgInfo)."""

    channel_id: str
    message: CID
    received: bool = False
    error: str = ""  # why it failed, once received


def new_channel_id() -> str:
    return str(uuid.uuid4())


def _channel_key(channel_id: str) -> bytes:
    return _CHANNEL + channel_id.encode("ascii")


def _vouchers_prefix(channel_id: str) -> bytes:
    return _VOUCHER + channel_id.encode("ascii") + b"/"


def _voucher_key(channel_id: str, sv: SignedVoucher) -> bytes:
    return _vouchers_prefix(channel_id) + _LANE_NONCE.pack(sv.lane, sv.nonce)


class StoreChange:
    """The writes of one change, applied together when the store's `change()` block ends."""

    def __init__(self, store: "PaychStore", batch: MetaBatch) -> None:
        self._store = store
        self._batch = batch

    def put_channel(self, record: ChannelRecord) -> None:
        self._batch.put(_channel_key(record.channel_id), record.to_bytes())
        if record.channel is not None:
            self._batch.put(_ADDRESS + record.channel.to_bytes(), record.channel_id.encode("ascii"))

    def remove_channel(self, record: ChannelRecord) -> None:
        """The record, its address entry and its vouchers."""
        self._batch.delete(_channel_key(record.channel_id))
        if record.channel is not None:
            self._batch.delete(_ADDRESS + record.channel.to_bytes())
        for key, _ in self._store._meta.items(_vouchers_prefix(record.channel_id)):
            self._batch.delete(key)

    def put_voucher(self, channel_id: str, record: VoucherRecord) -> None:
        self._batch.put(_voucher_key(channel_id, record.voucher), record.to_bytes())

    def put_message(self, record: MessageRecord) -> None:
        self._batch.put(_MESSAGE + record.message.bytes, record.to_bytes())


class PaychStore:
    """Channel, voucher and message records over an ordered key-value store. Thread-safe: the manager
    reads and writes it from worker threads."""

    def __init__(self, meta: MetadataStore) -> None:
        self._meta = meta
        self._lock = threading.RLock()

    @classmethod
    def in_memory(cls) -> "PaychStore":
        return cls(MemoryMetadata())

    # -- reading --------------------------------------------------------------------------------------
    def channel(self, channel_id: str) -> ChannelRecord | None:
        key = _channel_key(channel_id)
        with self._lock:
            raw = self._meta.get(key)
        return None if raw is None else _decode(ChannelRecord, key, raw)

    def by_address(self, address: Address) -> ChannelRecord | None:
        with self._lock:
            channel_id = self._meta.get(_ADDRESS + address.to_bytes())
        return None if channel_id is None else self.channel(channel_id.decode("ascii"))

    def channels(self) -> list[ChannelRecord]:
        with self._lock:
            found = list(self._meta.items(_CHANNEL))
        return [_decode(ChannelRecord, key, raw) for key, raw in found]

    def vouchers(self, channel_id: str) -> list[VoucherRecord]:
        """The channel's vouchers in lane, then nonce, order."""
        with self._lock:
            found = list(self._meta.items(_vouchers_prefix(channel_id)))
        return [_decode(VoucherRecord, key, raw) for key, raw in found]

    def voucher(self, channel_id: str, sv: SignedVoucher) -> VoucherRecord | None:
        """The stored voucher at sv's lane and nonce (which may differ from sv)."""
        key = _voucher_key(channel_id, sv)
        with self._lock:
            raw = self._meta.get(key)
        return None if raw is None else _decode(VoucherRecord, key, raw)

    def message(self, cid: CID) -> MessageRecord | None:
        key = _MESSAGE + cid.bytes
        with self._lock:
            raw = self._meta.get(key)
        return None if raw is None else _decode(MessageRecord, key, raw)

    # -- writing --------------------------------------------------------------------------------------
    @contextmanager
    def change(self) -> Iterator[StoreChange]:
        """One write batch: everything staged in the block lands together, or nothing if it raises."""
        with self._lock, self._meta.batch() as batch:
            yield StoreChange(self, batch)


def _decode(cls: type[R], key: bytes, raw: bytes) -> R:
    try:
        return cls.from_bytes(raw)
    except DecodeError as exc:
        raise PaychStoreError(f"payment channel store: record {key!r} is unreadable: {exc}") from None
