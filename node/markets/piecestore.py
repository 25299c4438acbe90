"""The pieces a provider stores and serves: each a CAR (the deal's payload as the client sent it), the
piece commitment over it, and an index of where each block sits in it.

    store = PieceStore.open(repo.path / "pieces")
    piece = store.add_car(path, piece_cid=deal_piece_cid)   # reads and verifies the CAR; PieceMismatch
    store.get_block(cid)                                    # bytes from the first piece holding cid
    with store.open_piece(piece.piece_cid) as reader: reader.read(offset, n)   # the raw piece data

What `/piece/<cid>` serves is the unpadded piece: the CAR bytes followed by zeros up to 127/128 of the
padded piece size (what unsealing the piece from a sector gives, and what Boost and Curio serve); its
CommP is the piece CID. Blocks are served from their offsets in the CAR, never by loading a piece.

Each piece's record (`<piece cid>.json`) and block index (`<piece cid>.idx`) are written atomically,
index first, so a crash leaves a piece either whole or absent. The CAR file is the caller's: the store
records its path and reads it; `remove` forgets the piece (the deals code deletes the data when a deal
expires, or keeps it for another deal). Every method is synchronous (file I/O): trio callers use
`trio.to_thread.run_sync`. The index of every piece is held in memory (about 100 bytes a block).
"""

import io
import json
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Final, Self

import structlog

from chain.encoding.cid import CID
from chain.encoding.commcid import commitment_of_v1, piece_cid_v1
from chain.encoding.errors import DecodeError
from chain.encoding.schema import CborMap, TokenAmount, Uint64
from chain.encoding.varint import decode_uvarint, encode_uvarint
from chain.store.car import CarReader
from node.atomic import write_atomic
from proofs.commp import CommPWriter, PieceError, unpadded_piece_size

_log = structlog.get_logger(__name__)

RECORD_SUFFIX: Final = ".json"
INDEX_SUFFIX: Final = ".idx"
_ZEROS: Final = bytes(1 << 20)


class RetrievalAsk(CborMap):
    """A provider's retrieval terms (go-fil-markets retrievalmarket.Ask, map-encoded): price per byte
    sent, the price of unsealing, and how many bytes it sends before it waits for a payment (the
    interval grows by the increase after each payment)."""

    price_per_byte: TokenAmount = 0
    unseal_price: TokenAmount = 0
    payment_interval: Uint64 = 1 << 20
    payment_interval_increase: Uint64 = 1 << 20

    @property
    def free(self) -> bool:
        return self.price_per_byte == 0 and self.unseal_price == 0


FREE_ASK: Final = RetrievalAsk()


class PieceStoreError(Exception):
    """A piece that cannot be stored or read; the message says why."""


class PieceMismatch(PieceStoreError):
    """The data does not have the piece CID it was registered under."""


def normalize(cid: CID) -> CID:
    """CIDv0 and CIDv1 dag-pb name the same block: index and look up by the v1 form."""
    return cid.to_v1() if cid.version == 0 else cid


@dataclass(frozen=True, slots=True)
class StoredPiece:
    piece_cid: CID
    padded_size: int
    car_path: Path
    car_size: int
    roots: tuple[CID, ...]
    blocks: int
    ask: RetrievalAsk | None = None  # None: the provider's ask applies

    @property
    def unpadded_size(self) -> int:
        return unpadded_piece_size(self.padded_size)

    def to_json(self) -> dict[str, Any]:
        return {
            "PieceCID": str(self.piece_cid),
            "PaddedSize": self.padded_size,
            "CarPath": str(self.car_path),
            "CarSize": self.car_size,
            "Roots": [str(root) for root in self.roots],
            "Blocks": self.blocks,
            "Ask": None if self.ask is None else self.ask.to_json(),
        }

    @classmethod
    def from_json(cls, raw: Any) -> "StoredPiece":
        try:
            ask = raw["Ask"]
            return cls(
                CID.parse(raw["PieceCID"]),
                int(raw["PaddedSize"]),
                Path(raw["CarPath"]),
                int(raw["CarSize"]),
                tuple(CID.parse(text) for text in raw["Roots"]),
                int(raw["Blocks"]),
                None if ask is None else RetrievalAsk.from_json(ask),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DecodeError(f"piece record: {exc}") from None


@dataclass(frozen=True, slots=True)
class BlockLocation:
    piece_cid: CID
    offset: int  # of the block's bytes in the CAR
    length: int


class _TeeReader:
    """A file read for the CAR reader whose bytes also go to CommP."""

    def __init__(self, source: BinaryIO, commp: CommPWriter) -> None:
        self.source, self.commp = source, commp
        self.offset = 0

    def read(self, size: int, /) -> bytes:
        data = self.source.read(size)
        if data:
            self.commp.write(data)
            self.offset += len(data)
        return data


class _Closing(ABC):
    """Closed when its `with` block ends."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class PieceReader(_Closing):
    """Random access to one piece's data: the CAR, then zeros up to the unpadded piece size."""

    def __init__(self, piece: StoredPiece) -> None:
        self.piece = piece
        self.size = piece.unpadded_size
        try:
            self._fd: int | None = os.open(piece.car_path, os.O_RDONLY)
        except OSError as exc:
            raise PieceStoreError(
                f"piece {piece.piece_cid}: cannot open {piece.car_path}: {exc.strerror}"
            ) from None

    def read(self, offset: int, length: int) -> bytes:
        """Up to length bytes at offset (fewer only past the end of the piece)."""
        if self._fd is None:
            raise PieceStoreError("the piece reader is closed")
        end = min(offset + length, self.size)
        if offset >= end:
            return b""
        car_size = self.piece.car_size
        parts: list[bytes] = []
        if offset < car_size:
            want = min(end, car_size) - offset
            data = os.pread(self._fd, want, offset)
            if len(data) != want:
                raise PieceStoreError(
                    f"piece {self.piece.piece_cid}: {self.piece.car_path} is shorter than "
                    f"the {car_size} bytes recorded"
                )
            parts.append(data)
            offset += want
        while offset < end:
            n = min(end - offset, len(_ZEROS))
            parts.append(_ZEROS[:n])
            offset += n
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _encode_index(entries: list[tuple[CID, int, int]]) -> bytes:
    out = io.BytesIO()
    for cid, offset, length in entries:
        raw = cid.bytes
        out.write(encode_uvarint(len(raw)) + raw + encode_uvarint(offset) + encode_uvarint(length))
    return out.getvalue()


def _decode_index(data: bytes, what: str) -> Iterator[tuple[CID, int, int]]:
    pos = 0
    while pos < len(data):
        size, pos = decode_uvarint(data, pos)
        cid = CID.decode(data[pos : pos + size])
        pos += size
        offset, pos = decode_uvarint(data, pos)
        length, pos = decode_uvarint(data, pos)
        yield cid, offset, length
    if pos != len(data):
        raise DecodeError(f"{what}: truncated")


class PieceStore:
    """The pieces this node stores; see the module's docstring."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._pieces: dict[CID, StoredPiece] = {}
        self._blocks: dict[CID, list[BlockLocation]] = {}
        self._roots: dict[CID, list[CID]] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, directory: Path) -> "PieceStore":
        store = cls(directory)
        store.directory.mkdir(parents=True, exist_ok=True)
        for record in sorted(store.directory.glob(f"*{RECORD_SUFFIX}")):
            try:
                piece = StoredPiece.from_json(json.loads(record.read_bytes()))
                index = (store.directory / f"{piece.piece_cid}{INDEX_SUFFIX}").read_bytes()
                entries = list(_decode_index(index, f"index of {piece.piece_cid}"))
            except (OSError, ValueError) as exc:
                _log.warning("pieces.unreadable_record", path=str(record), error=str(exc))
                continue
            store._add(piece, entries)
        for index_file in store.directory.glob(f"*{INDEX_SUFFIX}"):
            if not index_file.with_suffix(RECORD_SUFFIX).exists():
                index_file.unlink(missing_ok=True)  # a crash between the index and the record
        return store

    def _add(self, piece: StoredPiece, entries: list[tuple[CID, int, int]]) -> None:
        with self._lock:
            self._pieces[piece.piece_cid] = piece
            for cid, offset, length in entries:
                self._blocks.setdefault(normalize(cid), []).append(
                    BlockLocation(piece.piece_cid, offset, length)
                )
            for root in piece.roots:
                self._roots.setdefault(normalize(root), []).append(piece.piece_cid)

    # -- adding and removing ----------------------------------------------------------------------
    def add_car(
        self, car_path: Path, *, piece_cid: CID | None = None, ask: RetrievalAsk | None = None
    ) -> StoredPiece:
        """Register the CAR at car_path as a piece: every block is read and checked against its CID,
        its offset indexed, and CommP computed over the CAR's bytes; PieceMismatch if piece_cid is given
        and differs. Registering a piece again replaces its record."""
        car_path = Path(car_path).absolute()
        if piece_cid is not None:
            try:
                commitment_of_v1(piece_cid)
            except DecodeError as exc:
                raise PieceStoreError(f"{piece_cid} is not a piece CID: {exc}") from None
        entries: list[tuple[CID, int, int]] = []
        try:
            with car_path.open("rb") as source, CommPWriter(threads=2) as commp:
                tee = _TeeReader(source, commp)
                reader = CarReader(tee)
                for cid, data in reader:
                    entries.append((cid, tee.offset - len(data), len(data)))
                car_size = tee.offset
                piece = commp.finish()
        except OSError as exc:
            raise PieceStoreError(f"cannot read {car_path}: {exc.strerror or exc}") from None
        except DecodeError as exc:
            raise PieceStoreError(f"{car_path} is not a valid CAR: {exc}") from None
        except PieceError as exc:
            raise PieceStoreError(f"{car_path}: {exc}") from None
        computed = piece_cid_v1(piece.commitment)
        if piece_cid is not None and computed != piece_cid:
            raise PieceMismatch(f"{car_path} has piece CID {computed}, not {piece_cid}")
        stored = StoredPiece(computed, piece.padded_size, car_path, car_size, reader.roots, len(entries), ask)
        write_atomic(self.directory / f"{computed}{INDEX_SUFFIX}", _encode_index(entries))
        write_atomic(self.directory / f"{computed}{RECORD_SUFFIX}", json.dumps(stored.to_json()).encode())
        if computed in self._pieces:
            self._forget(computed)
        self._add(stored, entries)
        _log.info("pieces.added", piece=str(computed), car=str(car_path), blocks=len(entries), size=car_size)
        return stored

    def _forget(self, piece_cid: CID) -> StoredPiece | None:
        with self._lock:
            piece = self._pieces.pop(piece_cid, None)
            if piece is None:
                return None
            for cid in list(self._blocks):
                kept = [loc for loc in self._blocks[cid] if loc.piece_cid != piece_cid]
                if kept:
                    self._blocks[cid] = kept
                else:
                    del self._blocks[cid]
            for root in piece.roots:
                left = [p for p in self._roots.get(normalize(root), []) if p != piece_cid]
                if left:
                    self._roots[normalize(root)] = left
                else:
                    self._roots.pop(normalize(root), None)
            return piece

    def remove(self, piece_cid: CID) -> bool:
        """Stop serving a piece (its CAR stays where it is); False if it was not stored."""
        if self._forget(piece_cid) is None:
            return False
        (self.directory / f"{piece_cid}{RECORD_SUFFIX}").unlink(missing_ok=True)
        (self.directory / f"{piece_cid}{INDEX_SUFFIX}").unlink(missing_ok=True)
        _log.info("pieces.removed", piece=str(piece_cid))
        return True

    # -- reading --------------------------------------------------------------------------------------
    def get(self, piece_cid: CID) -> StoredPiece | None:
        return self._pieces.get(piece_cid)

    def pieces(self) -> list[StoredPiece]:
        return list(self._pieces.values())

    def locate(self, cid: CID) -> list[BlockLocation]:
        return list(self._blocks.get(normalize(cid), ()))

    def pieces_with(self, cid: CID) -> list[StoredPiece]:
        """The pieces holding the block cid (a payload root or any block inside it)."""
        found = [self._pieces.get(loc.piece_cid) for loc in self.locate(cid)]
        return [piece for piece in dict.fromkeys(found) if piece is not None]

    def has_block(self, cid: CID) -> bool:
        return normalize(cid) in self._blocks

    def get_block(self, cid: CID) -> bytes | None:
        """The block's bytes, read from the first piece holding it; None if no piece does."""
        for loc in self.locate(cid):
            piece = self._pieces.get(loc.piece_cid)
            if piece is None:
                continue
            try:
                with piece.car_path.open("rb") as source:
                    source.seek(loc.offset)
                    data = source.read(loc.length)
            except OSError as exc:
                _log.warning("pieces.unreadable_block", piece=str(piece.piece_cid), error=str(exc))
                continue
            if len(data) == loc.length:
                return data
        return None

    def open_piece(self, piece_cid: CID) -> PieceReader:
        piece = self._pieces.get(piece_cid)
        if piece is None:
            raise PieceStoreError(f"no piece {piece_cid} is stored here")
        return PieceReader(piece)


class BlockSource(_Closing):
    """Reads blocks for one walk from the piece store, keeping the CAR files it opened (a DAG's blocks
    sit in one CAR, so a walk opens it once instead of once a block)."""

    def __init__(self, store: PieceStore) -> None:
        self.store = store
        self._fds: dict[Path, int] = {}

    def __call__(self, cid: CID) -> bytes | None:
        for loc in self.store.locate(cid):
            piece = self.store.get(loc.piece_cid)
            if piece is None:
                continue
            fd = self._fds.get(piece.car_path)
            try:
                if fd is None:
                    fd = self._fds[piece.car_path] = os.open(piece.car_path, os.O_RDONLY)
                data = os.pread(fd, loc.length, loc.offset)
            except OSError:
                continue
            if len(data) == loc.length:
                return data
        return None

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
