"""The chain store: block headers, messages and tipsets, the heaviest head, and who hears of it changing.

Over a repo's datastore (lotus chain/store/store.go, index.go, messages.go): headers, messages and
MsgMeta live in the blockstore (content-addressed, with the state); the metadata store beside it keeps
the head (its tipset key and weight), the genesis, the weights the caller gave, and an index height ->
tipset key of the heaviest chain.

Crash safety comes from the order of writes. Blocks (headers, the tipset key block) are written first;
`set_head` then writes the head, its weight and every change to the height index in one metadata batch.
A crash before that batch leaves the old head and its index intact (the new blocks are merely unused);
the batch itself lands whole or not at all. Restarting reads the stored head.

Every method is synchronous and may block on LevelDB: callers on the trio loop run them with
`trio.to_thread.run_sync`. A lock orders head changes, so several threads may call set_head.
Subscribers (`subscribe`) are told of each head change without the store ever waiting for them
(chain.chainstore.fanout); callbacks (`on_head_change`) run synchronously, in order, for the parts of the
node that must not miss one (the message pool).
"""

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import structlog
import trio

from chain.chainstore.export import walk_snapshot
from chain.chainstore.fanout import Fanout
from chain.chainstore.metadata import LevelDBMetadata, MemoryMetadata, MetadataStore
from chain.chainstore.msgmeta import msg_meta_blocks
from chain.chainstore.reorg import CURRENT, HeadChange, head_changes, reorg_ops
from chain.crypto.signature import SigType
from chain.encoding import dagcbor
from chain.encoding.bigint import decode_bigint, encode_bigint
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.expect import expect_bytes, expect_tuple
from chain.state.amt import amt_v0_to_list
from chain.state.tree import StateTree
from chain.store.blockcache import cache_of
from chain.store.blockstore import BlockNotFound, Blockstore, LevelDBBlockstore, MemoryBlockstore, get_bytes
from chain.store.car import ByteSink, write_car
from chain.store.lru import Lru
from chain.types.address import Address, Protocol
from chain.types.block import BlockHeader, MsgMeta
from chain.types.message import Message, SignedMessage
from chain.types.receipt import MessageReceipt
from chain.types.tipset import TipSet, TipSetKey, wins_weight_tie

ChainMessage = Message | SignedMessage
M = TypeVar("M", Message, SignedMessage)
# A message block as stored: its CID and its bytes.
MessageBlock = tuple[CID, bytes]

# Metadata keys.
_HEAD: Final = b"head"
_GENESIS: Final = b"genesis"
_HEIGHT: Final = b"height/"  # + 8-byte big-endian height -> tipset key bytes (heaviest chain only)
_WEIGHT: Final = b"weight/"  # + tipset key CID bytes -> weight (Filecoin big int bytes)

# Lotus keeps 16 head changes for a subscriber before dropping it (SubHeadChanges).
SUBSCRIBER_BUFFER: Final = 16
# How far back set_head walks the old head's chain looking for the new head's: a reorg deeper than
# this is refused rather than walking the whole chain (Lotus refuses forks longer than finality).
DEFAULT_MAX_REORG: Final = 900
_TIPSET_CACHE: Final = 8192
_MSG_META_CACHE: Final = 4096
# The first byte of a message block: a 10-field array (Message) or a 2-field one (SignedMessage).
_MESSAGE_HEADER: Final = 0x8A
_SIGNED_HEADER: Final = 0x82


def _decode_message(data: bytes) -> ChainMessage:
    """A message block: a SignedMessage (an array of 2) or a Message; also the block cache's kind for
    decoded messages."""
    if data[:1] == bytes([_SIGNED_HEADER]):
        return SignedMessage.from_bytes(data)
    return Message.from_bytes(data)


_log = structlog.get_logger(__name__)


class ChainStoreError(Exception):
    """The chain store cannot do what was asked; the message says why."""


class TipSetNotFound(ChainStoreError, LookupError):
    """A tipset (or one of its blocks) is not in the store."""


@dataclass(frozen=True, slots=True)
class BlockMessages:
    """A block's messages as a tipset applies them (lotus store.BlockMessages): messages that an
    earlier block of the tipset already carries, or that are out of their sender's nonce sequence, are
    left out."""

    miner: Address
    bls_messages: tuple[Message, ...]
    secpk_messages: tuple[SignedMessage, ...]


def _of_kind(kind: type[M], cid: CID, msg: ChainMessage) -> M:
    if not isinstance(msg, kind):
        raise DecodeError(f"message {cid} is not a {kind.__name__}")
    return msg


def _height_key(height: int) -> bytes:
    return _HEIGHT + height.to_bytes(8, "big")


def _weight_key(key: TipSetKey) -> bytes:
    return _WEIGHT + key.cid().bytes


def _decode_head(raw: bytes) -> tuple[TipSetKey, int]:
    try:
        key_bytes, weight = expect_tuple(dagcbor.decode(raw), 2, "stored head")
        return TipSetKey.from_bytes(expect_bytes(key_bytes, "stored head key")), decode_bigint(
            expect_bytes(weight, "stored head weight")
        )
    except DecodeError as exc:
        raise ChainStoreError(f"the stored head is corrupt: {exc}") from None


class ChainStore:
    def __init__(
        self, blocks: Blockstore, meta: MetadataStore, *, max_reorg: int = DEFAULT_MAX_REORG
    ) -> None:
        self.blockstore = blocks
        self._meta = meta
        self._max_reorg = max_reorg
        self._lock = threading.RLock()
        self._tipsets: Lru[TipSetKey, TipSet] = Lru(_TIPSET_CACHE)
        self._msg_meta: Lru[CID, tuple[tuple[CID, ...], tuple[CID, ...]]] = Lru(_MSG_META_CACHE)
        self._fanout: Fanout[list[HeadChange]] = Fanout("head changes")
        self._callbacks: list[Callable[[list[TipSet], list[TipSet]], None]] = []
        self._closer: Callable[[], None] | None = None
        self._head: TipSet | None = None
        self._head_weight = 0
        raw = meta.get(_HEAD)
        if raw is not None:
            key, weight = _decode_head(raw)
            self._head = self.load_tipset(key)
            self._head_weight = weight

    # -- opening ------------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        sync: bool = False,
        max_reorg: int = DEFAULT_MAX_REORG,
        options: Mapping[str, Any] | None = None,
    ) -> "ChainStore":
        """The chain store of a repo's LevelDB datastore; close() closes the database. options: plyvel's
        tuning keywords (node/config.py DatastoreConfig.leveldb_options)."""
        blocks = LevelDBBlockstore(path, sync=sync, options=options)
        try:
            store = cls(blocks, LevelDBMetadata(blocks.db, sync=sync), max_reorg=max_reorg)
        except BaseException:
            blocks.close()
            raise
        store._closer = blocks.close
        return store

    @classmethod
    def in_memory(cls, *, max_reorg: int = DEFAULT_MAX_REORG) -> "ChainStore":
        return cls(MemoryBlockstore(), MemoryMetadata(), max_reorg=max_reorg)

    def close(self) -> None:
        if self._closer is not None:
            self._closer()
            self._closer = None

    def __enter__(self) -> "ChainStore":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- genesis and head ---------------------------------------------------------------------------
    def set_genesis(self, header: BlockHeader, weight: int = 0) -> TipSet:
        """Store the genesis block; with no head yet, the genesis tipset becomes the head."""
        if header.height != 0:
            raise ChainStoreError(f"a genesis block is at height 0, not {header.height}")
        ts = TipSet((header,))
        known = self._meta.get(_GENESIS)
        if known is not None and CID.decode(known) != header.cid():
            raise ChainStoreError(f"this store's genesis is {CID.decode(known)}, not {header.cid()}")
        self.put_tipset(ts)
        with self._lock:
            with self._meta.batch() as batch:
                batch.put(_GENESIS, header.cid().bytes)
            if self._head is None:
                self.set_head(ts, weight)
        return ts

    def genesis(self) -> BlockHeader:
        raw = self._meta.get(_GENESIS)
        if raw is None:
            raise ChainStoreError("the chain store has no genesis")
        return self.get_block(CID.decode(raw))

    def head(self) -> TipSet:
        head = self._head
        if head is None:
            raise ChainStoreError("the chain store has no head (no genesis yet)")
        return head

    def head_weight(self) -> int:
        return self._head_weight

    def has_head(self) -> bool:
        return self._head is not None

    def set_head(self, ts: TipSet, weight: int) -> list[HeadChange]:
        """Make ts the head, with the weight the caller computed (chain.consensus.expected).

        The head, its weight and the height index move in one batch; subscribers then get the
        reverts and applies of the path from the old head (none for the first head). Returns them.
        """
        if weight < 0:
            raise ValueError(f"a tipset weight cannot be negative, got {weight}")
        self.put_tipset(ts)
        with self._lock:
            old = self._head
            if old is not None and old.key == ts.key:
                if weight != self._head_weight:
                    with self._meta.batch() as batch:
                        batch.put(_HEAD, dagcbor.encode([ts.key.to_bytes(), encode_bigint(weight)]))
                        batch.put(_weight_key(ts.key), encode_bigint(weight))
                    self._head_weight = weight
                return []
            if old is None:
                revert: list[TipSet] = []
                apply = self._chain_to_genesis(ts)
            else:
                revert, apply = reorg_ops(self.load_tipset, old, ts, max_revert=self._max_reorg)
            with self._meta.batch() as batch:
                for gone in revert:
                    batch.delete(_height_key(gone.height))
                for added in apply:
                    batch.put(_height_key(added.height), added.key.to_bytes())
                batch.put(_weight_key(ts.key), encode_bigint(weight))
                batch.put(_HEAD, dagcbor.encode([ts.key.to_bytes(), encode_bigint(weight)]))
            self._head = ts
            self._head_weight = weight
            _log.info(
                "new head",
                height=ts.height,
                tipset=str(ts.key),
                weight=weight,
                reverted=len(revert),
                applied=len(apply),
            )
            changes = head_changes(revert, apply)
            self._fanout.publish(changes)
            for callback in list(self._callbacks):
                try:
                    callback(revert, apply)
                except Exception as exc:
                    _log.error("head change callback failed", error=f"{type(exc).__name__}: {exc}")
            return changes

    def take_heavier(self, ts: TipSet, weight: int) -> bool:
        """Make ts the head if it is heavier than the head, or as heavy and wins the ticket tie-break
        (lotus MaybeTakeHeavierTipSet); whether it did."""
        with self._lock:
            head = self._head
            if head is not None:
                if weight < self._head_weight or head.key == ts.key:
                    return False
                if weight == self._head_weight and not wins_weight_tie(ts, head):
                    return False
            self.set_head(ts, weight)
            return True

    def _chain_to_genesis(self, ts: TipSet) -> list[TipSet]:
        chain = [ts]
        while chain[-1].height > 0:
            chain.append(self.load_tipset(chain[-1].parents))
        chain.reverse()
        return chain

    # -- subscribers ----------------------------------------------------------------------------------
    def subscribe(self, buffer: int = SUBSCRIBER_BUFFER) -> trio.MemoryReceiveChannel[list[HeadChange]]:
        """Head changes from now on, after a first [HeadChange("current", head)] (Lotus ChainNotify).

        Call from a trio task. The channel ends if the subscriber falls `buffer` changes behind.
        """
        with self._lock:
            return self._fanout.subscribe(buffer, [HeadChange(CURRENT, self.head())])

    def on_head_change(self, callback: Callable[[list[TipSet], list[TipSet]], None]) -> None:
        """Call callback(reverted newest first, applied oldest first) after each head change, in the
        thread that changed the head, before set_head returns. Exceptions are logged, not raised."""
        with self._lock:
            self._callbacks.append(callback)

    # -- blocks and tipsets ---------------------------------------------------------------------------
    def put_block(self, header: BlockHeader) -> CID:
        cid = header.cid()
        self.blockstore.put(cid, header.to_bytes())
        return cid

    def put_tipset(self, ts: TipSet, weight: int | None = None) -> None:
        """Store ts's headers and its key block (so get_tipset_by_cid finds it), and its weight if
        given."""
        key_bytes = dagcbor.encode(ts.key.to_bytes())
        self.blockstore.put_many([*((b.cid(), b.to_bytes()) for b in ts.blocks), (ts.key.cid(), key_bytes)])
        self._tipsets.put(ts.key, ts)
        if weight is not None:
            self._meta.put(_weight_key(ts.key), encode_bigint(weight))

    def has_block(self, cid: CID) -> bool:
        return self.blockstore.has(cid)

    def get_block(self, cid: CID) -> BlockHeader:
        data = get_bytes(self.blockstore, cid)
        try:
            return BlockHeader.from_bytes(data)
        except DecodeError as exc:
            # Most often another kind of object (a message's CID given for a block's): say so first.
            raise DecodeError(f"{cid} is not a block header: {exc}") from None

    def load_tipset(self, key: TipSetKey) -> TipSet:
        """The tipset of exactly these blocks; TipSetNotFound if one is missing."""
        cached = self._tipsets.get(key)
        if cached is not None:
            return cached
        if key.is_empty():
            raise TipSetNotFound("the empty tipset key names no tipset")
        try:
            ts = TipSet(tuple(self.get_block(cid) for cid in key.cids))
        except BlockNotFound as exc:
            raise TipSetNotFound(f"tipset {key}: {exc}") from None
        if ts.key != key:
            raise TipSetNotFound(f"tipset {key}: its blocks are not in canonical order")
        self._tipsets.put(key, ts)
        return ts

    def get_tipset(self, key: TipSetKey) -> TipSet:
        """As load_tipset, but the empty key is the head (Lotus GetTipSetFromKey, for API calls)."""
        return self.head() if key.is_empty() else self.load_tipset(key)

    def get_tipset_by_cid(self, key_cid: CID) -> TipSet:
        """The tipset whose key hashes to key_cid (Lotus GetTipSetByCid)."""
        data = self.blockstore.get(key_cid)
        if data is None:
            raise TipSetNotFound(f"no tipset key block {key_cid}")
        return self.load_tipset(TipSetKey.from_cbor(dagcbor.decode(data)))

    def tipset_weight(self, ts: TipSet) -> int | None:
        """The weight recorded for ts (by set_head or put_tipset), or None if none was."""
        head = self._head
        if head is not None and head.key == ts.key:
            return self._head_weight
        raw = self._meta.get(_weight_key(ts.key))
        return None if raw is None else decode_bigint(raw)

    def is_on_heaviest_chain(self, ts: TipSet) -> bool:
        head = self._head
        if head is None or ts.height > head.height:
            return False
        return self._meta.get(_height_key(ts.height)) == ts.key.to_bytes()

    def get_tipset_by_height(self, height: int, anchor: TipSet | None = None, prev: bool = True) -> TipSet:
        """The tipset at height on the chain ending at anchor (default: the head).

        A null round has no tipset: then prev=True gives the tipset below it (Lotus
        ChainGetTipSetByHeight), prev=False the first one above it (ChainGetTipSetAfterHeight).
        """
        if height < 0:
            raise ChainStoreError(f"height {height} is negative")
        ts = self.head() if anchor is None else anchor
        if height > ts.height:
            raise ChainStoreError(
                f"looking for tipset with height greater than start point, req: {height}, head: {ts.height}"
            )
        # Off the heaviest chain, walk back until the anchor's chain joins it (or reaches height).
        child: TipSet | None = None
        while True:
            while ts.height > height and not self.is_on_heaviest_chain(ts):
                child, ts = ts, self.load_tipset(ts.parents)
            if ts.height == height:
                return ts
            if ts.height < height:  # height is a null round just below child
                assert child is not None
                return ts if prev else child
            with self._lock:  # the index moves with the head: read it as of one head
                if self.is_on_heaviest_chain(ts):
                    return self._indexed_tipset(height, ts, prev)
            # A reorg took ts off the heaviest chain meanwhile: keep walking.

    def _indexed_tipset(self, height: int, ts: TipSet, prev: bool) -> TipSet:
        found = self._meta.floor(_HEIGHT, _height_key(height))
        if found is not None and int.from_bytes(found[0][len(_HEIGHT) :], "big") == height:
            return self.load_tipset(TipSetKey.from_bytes(found[1]))
        if prev:
            if found is None:
                raise ChainStoreError(f"the height index has nothing at or below {height}")
            return self.load_tipset(TipSetKey.from_bytes(found[1]))
        above = self._meta.ceiling(_HEIGHT, _height_key(height))
        if above is None or int.from_bytes(above[0][len(_HEIGHT) :], "big") > ts.height:
            raise ChainStoreError(f"the height index has nothing between {height} and {ts.height}")
        return self.load_tipset(TipSetKey.from_bytes(above[1]))

    def chain_path(self, from_key: TipSetKey, to_key: TipSetKey) -> list[HeadChange]:
        """The reverts then applies that lead from one tipset to another (Lotus ChainGetPath)."""
        old = self.get_tipset(from_key)
        new = self.get_tipset(to_key)
        return head_changes(*reorg_ops(self.load_tipset, old, new))

    # -- messages -------------------------------------------------------------------------------------
    def put_message(self, msg: ChainMessage) -> CID:
        """Store a message block: a secp256k1 message signed, a BLS message without its signature (the
        block's aggregate stands for it). Returns the CID blocks list it under."""
        if isinstance(msg, SignedMessage) and msg.signature.type == SigType.BLS:
            msg = msg.message
        cid = msg.cid()
        data = msg.to_bytes()
        self.blockstore.put(cid, data)
        cache = cache_of(self.blockstore)
        if cache is not None:
            # Executing the block reads it back (get_message): a declared type's constructor
            # normalises as strict decoding does, so msg is what decoding these bytes gives.
            cache.put(_decode_message, cid, data, msg)
        return cid

    def put_messages(self, bls: Sequence[Message | SignedMessage], secpk: Sequence[SignedMessage]) -> CID:
        """Store a block's messages, their AMTs and its MsgMeta; return the MsgMeta CID (the header's
        Messages field). BLS messages may be given signed; their signatures are not stored."""
        bls_cids = [self.put_message(m) for m in bls]
        secpk_cids = [self.put_message(m) for m in secpk]
        return self.put_msg_meta(bls_cids, secpk_cids)

    def put_msg_meta(self, bls_cids: Sequence[CID], secpk_cids: Sequence[CID]) -> CID:
        """The MsgMeta of these message CIDs: two legacy AMTs (the layout Lotus writes for blocks)."""
        cid, blocks = msg_meta_blocks(bls_cids, secpk_cids)
        self.blockstore.put_many(blocks)
        self._msg_meta.put(cid, (tuple(bls_cids), tuple(secpk_cids)))
        return cid

    def read_msg_meta(self, meta_cid: CID) -> tuple[tuple[CID, ...], tuple[CID, ...]]:
        """(BLS message CIDs, secp256k1 message CIDs) of a MsgMeta."""
        cached = self._msg_meta.get(meta_cid)
        if cached is not None:
            return cached
        meta = MsgMeta.from_bytes(get_bytes(self.blockstore, meta_cid))
        found = (self._cid_list(meta.bls_messages), self._cid_list(meta.secpk_messages))
        self._msg_meta.put(meta_cid, found)
        return found

    def _cid_list(self, root: CID) -> tuple[CID, ...]:
        out = []
        for i, value in enumerate(amt_v0_to_list(self.blockstore, root)):
            if type(value) is not CID:
                raise DecodeError(f"message list {root}: entry {i} is not a CID")
            out.append(value)
        return tuple(out)

    def get_message(self, cid: CID) -> ChainMessage:
        """The message block cid: a Message (BLS, or unsigned) or a SignedMessage (Lotus GetCMessage)."""
        return self._message(cid, get_bytes(self.blockstore, cid))

    def _message(self, cid: CID, data: bytes) -> ChainMessage:
        """The message block cid whose bytes are data, decoded once while the block cache holds it."""
        cache = cache_of(self.blockstore)
        if cache is not None:
            found: ChainMessage | None = cache.get(_decode_message, cid, data)
            if found is not None:
                return found
        try:
            msg = _decode_message(data)
        except DecodeError as exc:
            raise DecodeError(f"message {cid}: {exc}") from None
        if cache is not None:
            cache.put(_decode_message, cid, data, msg)
        return msg

    def message_blocks(self, header: BlockHeader) -> tuple[list[MessageBlock], list[MessageBlock]]:
        """A block's BLS and secp256k1 message blocks as stored, (CID, bytes) in block order, not
        decoded: what chain exchange serves as it is. Only each block's kind is checked, by its first
        byte as get_message tells them apart (an unsigned message is a 10-field array, a signed one a
        2-field array); BlockNotFound if one is missing."""
        bls_cids, secpk_cids = self.read_msg_meta(header.messages)
        return self._message_blocks(bls_cids, False), self._message_blocks(secpk_cids, True)

    def _message_blocks(self, cids: Iterable[CID], signed: bool) -> list[MessageBlock]:
        first = _SIGNED_HEADER if signed else _MESSAGE_HEADER
        out = []
        for cid in cids:
            data = get_bytes(self.blockstore, cid)
            if data[:1] != bytes([first]):
                raise DecodeError(f"message {cid} is not {'a signed' if signed else 'an unsigned'} message")
            out.append((cid, data))
        return out

    def messages_for_block(self, header: BlockHeader) -> tuple[list[Message], list[SignedMessage]]:
        """A block's BLS messages (unsigned) and secp256k1 messages, in block order."""
        bls, secpk = self.message_blocks(header)
        return (
            [_of_kind(Message, cid, self._message(cid, data)) for cid, data in bls],
            [_of_kind(SignedMessage, cid, self._message(cid, data)) for cid, data in secpk],
        )

    def block_messages_for_tipset(self, ts: TipSet) -> list[BlockMessages]:
        """Each block's messages as ts applies them (lotus BlockMsgsForTipset): a sender's messages are
        taken in nonce sequence from its first one in the tipset; a repeat or an out-of-sequence
        message (usually the same message in two blocks) is left out. Senders are compared by ID
        address in ts's parent state once an ID sender appears, as Lotus does."""
        next_nonce: dict[Address, int] = {}
        tree: StateTree | None = None

        def sender_key(sender: Address) -> Address:
            nonlocal tree
            if tree is None:
                if sender.protocol != Protocol.ID:
                    return sender
                tree = StateTree.load(self.blockstore, ts.parent_state_root)
                # From now on every sender is compared by ID: re-key what was seen by robust address.
                for robust in list(next_nonce):
                    resolved = tree.lookup_id(robust)
                    if resolved is not None:
                        next_nonce[resolved] = next_nonce.pop(robust)
            resolved = tree.lookup_id(sender)
            return sender if resolved is None else resolved

        def take(msg: Message) -> bool:
            key = sender_key(msg.from_)
            expected = next_nonce.setdefault(key, msg.nonce)
            if expected != msg.nonce:
                return False
            next_nonce[key] = expected + 1
            return True

        out = []
        for block in ts.blocks:
            bls, secpk = self.messages_for_block(block)
            out.append(
                BlockMessages(
                    miner=block.miner,
                    bls_messages=tuple(m for m in bls if take(m)),
                    secpk_messages=tuple(m for m in secpk if take(m.message)),
                )
            )
        return out

    def messages_for_tipset(self, ts: TipSet) -> list[ChainMessage]:
        """ts's messages in execution order, each once (lotus MessagesForTipset)."""
        out: list[ChainMessage] = []
        for block in self.block_messages_for_tipset(ts):
            out.extend(block.bls_messages)
            out.extend(block.secpk_messages)
        return out

    def read_receipts(self, root: CID) -> list[MessageReceipt]:
        """The receipts under a ParentMessageReceipts root, in message order."""
        return [
            MessageReceipt.from_cbor(raw, f"receipt {i}")
            for i, raw in enumerate(amt_v0_to_list(self.blockstore, root))
        ]

    # -- export ---------------------------------------------------------------------------------------
    def export(self, ts: TipSet, out: ByteSink, *, recent_roots: int, skip_old_messages: bool = False) -> int:
        """Write the chain ending at ts as a CAR (Lotus ChainExport); return the number of blocks.

        Every header down to the genesis goes in, with its messages (only those of the last
        recent_roots epochs with skip_old_messages), the state roots and receipts of the last
        recent_roots epochs, and the genesis state. The CAR's roots are ts's blocks.
        """
        if recent_roots < 0:
            raise ValueError(f"recent_roots cannot be negative, got {recent_roots}")
        blocks = walk_snapshot(
            self.blockstore, ts, recent_roots=recent_roots, skip_old_messages=skip_old_messages
        )
        return write_car(out, ts.cids, blocks)
