"""CAR v1 archives: a DAG (or several) as one stream, for chain snapshots and block transfer.

Layout (ipld.io/specs/transport/car/carv1): varint(len) || DAG-CBOR header {"roots": [CID...],
"version": 1}, then sections varint(len) || CID bytes || block bytes until the end of the stream.

Export walks links depth-first from the roots in the order they appear inside each block, writing each
block once, so the same DAG always gives the same bytes. Import reads one section at a time, checks that
each block hashes to its CID and names the first problem it meets in a DecodeError.
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from chain.encoding import dagcbor
from chain.encoding.cid import CID, DAG_CBOR, FIL_COMMITMENT_SEALED, FIL_COMMITMENT_UNSEALED
from chain.encoding.errors import DecodeError
from chain.encoding.expect import expect_cid, expect_list
from chain.encoding.multihash import BLAKE2B_256, IDENTITY, NAMES, SHA2_256, Multihash
from chain.encoding.varint import MAX_VARINT_BYTES, decode_uvarint, encode_uvarint
from chain.store.blockstore import BatchingBlockstore, BlockNotFound, Blockstore

CAR_VERSION: Final = 1
# The limits go-car applies by default; a header or section claiming more is refused before reading it.
MAX_HEADER_SIZE: Final = 32 << 20
MAX_SECTION_SIZE: Final = 8 << 20

# Piece and sector commitments are CIDs of data that is never a block in a store; walks stop at them.
_NOT_BLOCKS: Final = frozenset({FIL_COMMITMENT_UNSEALED, FIL_COMMITMENT_SEALED})
_VERIFIABLE: Final = frozenset({BLAKE2B_256, SHA2_256, IDENTITY})


class ByteSource(Protocol):
    def read(self, size: int, /) -> bytes: ...


class ByteSink(Protocol):
    def write(self, data: bytes, /) -> object: ...


@dataclass(frozen=True, slots=True)
class CarHeader:
    roots: tuple[CID, ...]

    def to_cbor(self) -> dict[str, object]:
        return {"roots": list(self.roots), "version": CAR_VERSION}

    @classmethod
    def from_cbor(cls, raw: object) -> "CarHeader":
        if type(raw) is not dict:
            kind = "null" if raw is None else type(raw).__name__
            raise DecodeError(f"CAR header must be a map, got {kind}")
        extra = sorted(set(raw) - {"roots", "version"})
        if extra:
            raise DecodeError(f"CAR header has unknown key {extra[0]!r}")
        if "version" not in raw:
            raise DecodeError("CAR header has no version")
        version = raw["version"]
        if type(version) is not int:
            raise DecodeError(f"CAR header version must be an integer, got {type(version).__name__}")
        if version == 2:
            raise DecodeError("CAR version 2 is not supported (CARv1 only)")
        if version != CAR_VERSION:
            raise DecodeError(f"CAR header version must be 1, got {version}")
        if "roots" not in raw:
            raise DecodeError("CAR header has no roots")
        roots = expect_list(raw["roots"], "CAR header roots")
        return cls(tuple(expect_cid(root, f"CAR header roots[{i}]") for i, root in enumerate(roots)))


@dataclass(frozen=True, slots=True)
class CarImport:
    """What import_car read: the header's roots and the number of sections stored."""

    roots: tuple[CID, ...]
    blocks: int


# writing ------------------------------------------------------------------------------------------


def encode_header(roots: Sequence[CID]) -> bytes:
    body = dagcbor.encode(CarHeader(tuple(roots)).to_cbor())
    return encode_uvarint(len(body)) + body


def encode_section(cid: CID, data: bytes) -> bytes:
    raw = cid.bytes
    return encode_uvarint(len(raw) + len(data)) + raw + data


def write_car(out: ByteSink, roots: Sequence[CID], blocks: Iterable[tuple[CID, bytes]]) -> int:
    """Write a CAR of the given blocks in the given order; return the number of sections."""
    out.write(encode_header(roots))
    count = 0
    for cid, data in blocks:
        out.write(encode_section(cid, data))
        count += 1
    return count


def links_of(cid: CID, data: bytes) -> list[CID]:
    """The CIDs a block links to, in encoding order (map values in canonical key order).

    Only dag-cbor blocks are parsed; raw blocks and other codecs count as leaves.
    """
    if cid.codec != DAG_CBOR:
        return []
    try:
        value = dagcbor.decode(data)
    except DecodeError as exc:
        raise DecodeError(f"block {cid}: {exc}") from None
    found: list[CID] = []
    # An explicit stack of iterators keeps the encoding order without recursion; decode bounds its depth.
    stack: list[Iterator[Any]] = [iter((value,))]
    while stack:
        for item in stack[-1]:
            kind = type(item)
            if kind is CID:
                found.append(item)
            elif kind is list:
                stack.append(iter(item))
                break
            elif kind is dict:
                stack.append(iter(item.values()))
                break
        else:
            stack.pop()
    return found


def _load(store: Blockstore, cid: CID) -> bytes:
    data = store.get(cid)
    if data is not None:
        return data
    mh = cid.multihash
    if mh.code == IDENTITY:
        return mh.digest
    raise BlockNotFound(cid)


def walk_dag(
    store: Blockstore, roots: Sequence[CID], follow: Callable[[CID], bool] | None = None
) -> Iterator[tuple[CID, bytes]]:
    """Each block reachable from roots once, in depth-first pre-order.

    follow(cid) returning False leaves that block (and whatever is reachable only through it) out.
    Links to piece/sector commitments are not blocks and are skipped; a missing block raises
    BlockNotFound.
    """
    seen: set[CID] = set()
    stack = list(reversed(roots))
    while stack:
        cid = stack.pop()
        if cid in seen:
            continue
        seen.add(cid)
        if cid.codec in _NOT_BLOCKS or (follow is not None and not follow(cid)):
            continue
        data = _load(store, cid)
        yield cid, data
        stack.extend(reversed(links_of(cid, data)))


def export_car(
    store: Blockstore,
    roots: Sequence[CID],
    out: ByteSink,
    *,
    follow: Callable[[CID], bool] | None = None,
) -> int:
    """Write the DAG under roots to out as a CAR v1; return the number of blocks written."""
    if not roots:
        raise ValueError("a CAR export needs at least one root")
    return write_car(out, roots, walk_dag(store, roots, follow))


# reading ------------------------------------------------------------------------------------------


def verify_block(cid: CID, data: bytes) -> None:
    """Raise DecodeError unless data hashes to cid's multihash."""
    mh = cid.multihash
    if mh.code not in _VERIFIABLE:
        name = NAMES.get(mh.code, f"0x{mh.code:x}")
        raise DecodeError(f"cannot verify block {cid}: unsupported multihash {name}")
    # Identity "hashes" are the data itself, bounded by Multihash.read, so compare rather than re-hash.
    expected = data if mh.code == IDENTITY else Multihash.digest_of(mh.code, data).digest
    if expected != mh.digest:
        raise DecodeError(f"block bytes do not hash to its CID {cid}")


class CarReader:
    """A single pass over a CAR v1 stream: the header is read on construction, sections on iteration.

    Iterating yields (cid, block bytes) with each block checked against its CID (unless verify=False),
    holding one section in memory at a time.
    """

    def __init__(
        self,
        stream: ByteSource,
        *,
        verify: bool = True,
        max_header_size: int = MAX_HEADER_SIZE,
        max_section_size: int = MAX_SECTION_SIZE,
    ) -> None:
        self._stream = stream
        self._verify = verify
        self._max_section = max_section_size
        self._offset = 0
        self._started = False
        length = self._read_varint("CAR header length")
        if length is None:
            raise DecodeError("CAR is empty: no header")
        if length == 0:
            raise DecodeError("CAR header has zero length")
        if length > max_header_size:
            raise DecodeError(f"CAR header length {length} exceeds the limit of {max_header_size} bytes")
        body = self._read_exact(length, f"CAR header at offset {self._offset}")
        try:
            raw = dagcbor.decode(body)
        except DecodeError as exc:
            raise DecodeError(f"CAR header is not valid DAG-CBOR: {exc}") from None
        self.header = CarHeader.from_cbor(raw)

    @property
    def roots(self) -> tuple[CID, ...]:
        return self.header.roots

    def _read_exact(self, n: int, what: str) -> bytes:
        chunks: list[bytes] = []
        need = n
        # Each pass either shrinks need or hits the end of the stream, so the loop is bounded by n.
        while need > 0:
            chunk = self._stream.read(need)
            if not chunk:
                raise DecodeError(f"{what} is truncated: needs {n} bytes, got {n - need}")
            chunks.append(chunk)
            need -= len(chunk)
            self._offset += len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _read_varint(self, what: str) -> int | None:
        """A varint from the stream, or None at a clean end of stream before its first byte."""
        start = self._offset
        raw = bytearray()
        for _ in range(MAX_VARINT_BYTES):
            byte = self._stream.read(1)
            if not byte:
                if not raw:
                    return None
                raise DecodeError(f"{what} at offset {start} is truncated (varint cut short)")
            raw += byte
            self._offset += 1
            if byte[0] < 0x80:
                break
        try:
            value, _ = decode_uvarint(bytes(raw))
        except DecodeError as exc:
            raise DecodeError(f"{what} at offset {start}: {exc}") from None
        return value

    def __iter__(self) -> Iterator[tuple[CID, bytes]]:
        if self._started:
            raise RuntimeError("a CarReader can be iterated once")
        self._started = True
        return self._sections()

    def _sections(self) -> Iterator[tuple[CID, bytes]]:
        index = 0
        while True:
            start = self._offset
            where = f"CAR section {index} at offset {start}"
            length = self._read_varint(f"{where}: length")
            if length is None:
                return
            if length == 0:
                raise DecodeError(f"{where} has zero length")
            if length > self._max_section:
                raise DecodeError(f"{where}: length {length} exceeds the limit of {self._max_section} bytes")
            section = self._read_exact(length, where)
            try:
                cid, end = CID.read(section, 0)
            except DecodeError as exc:
                raise DecodeError(f"{where}: invalid CID: {exc}") from None
            data = section[end:]
            if self._verify:
                try:
                    verify_block(cid, data)
                except DecodeError as exc:
                    raise DecodeError(f"{where}: {exc}") from None
            yield cid, data
            index += 1


def read_car(
    stream: ByteSource, *, max_section_size: int = MAX_SECTION_SIZE
) -> tuple[tuple[CID, ...], list[tuple[CID, bytes]]]:
    """Read a whole (small) CAR into memory, verified: its roots and its sections in order."""
    reader = CarReader(stream, max_section_size=max_section_size)
    return reader.roots, list(reader)


def import_car(
    store: Blockstore,
    stream: ByteSource,
    *,
    max_header_size: int = MAX_HEADER_SIZE,
    max_section_size: int = MAX_SECTION_SIZE,
) -> CarImport:
    """Store every block of a CAR after checking it against its CID.

    With a batching store the whole import is one atomic batch: a bad section anywhere leaves the store
    as it was. Other stores get the blocks one by one, up to the bad section.
    """
    reader = CarReader(stream, max_header_size=max_header_size, max_section_size=max_section_size)
    count = 0
    if isinstance(store, BatchingBlockstore):
        with store.batch() as batch:
            for cid, data in reader:
                batch.put(cid, data)
                count += 1
    else:
        for cid, data in reader:
            store.put(cid, data)
            count += 1
    return CarImport(reader.roots, count)
