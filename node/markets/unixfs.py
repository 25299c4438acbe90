"""UnixFS files as `ipfs add --cid-version=1` makes them, and a CAR of them for a storage deal.

The layout (kubo/boxo's defaults, and ipfs-unixfs-importer's with the same options, which the interop
tests compare byte for byte):

- the file is cut into fixed chunks of 256 KiB; each chunk is a raw leaf (CIDv1, codec raw, sha2-256);
- a file of one chunk (or none: the empty file) is that raw leaf itself;
- otherwise leaves are grouped 174 to a parent, parents 174 to a grandparent, and so on until one node
  is left (the balanced layout); a parent is a DAG-PB node (CIDv1, sha2-256) whose links have the name
  "" and Tsize = the child's cumulative size (block bytes plus its links' Tsizes), and whose Data is a
  UnixFS `Data{Type: File, filesize, blocksizes}` (blocksizes: each child's file bytes).

`import_to_car` reads the file twice with bounded memory. The first pass hashes the chunks and builds
the inner nodes (kept in memory: about 46 bytes per 256 KiB of file). The second pass writes the CAR v1
(roots = [root]) in depth-first pre-order, each block once (the order and duplicate status a trustless
gateway calls `order=dfs; dups=n`, so that `/ipfs/<root>?format=car` of the same DAG is the same bytes),
re-reading and re-hashing each chunk so that a file changed between the passes is refused rather than
written into a CAR whose blocks do not match their CIDs. The piece commitment (CommP over the CAR bytes,
as `lotus client commP` computes it on the CAR) is computed on the bytes as they are written.
"""

import hashlib
import io
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import BinaryIO, Final

from chain.encoding import dagpb
from chain.encoding.cid import CID, DAG_PB, RAW
from chain.encoding.commcid import piece_cid_v1
from chain.encoding.errors import DecodeError
from chain.encoding.multihash import SHA2_256, Multihash
from chain.encoding.varint import encode_uvarint, read_protobuf_varint
from chain.store.car import encode_header, encode_section
from proofs.commp import CommPWriter, PieceCommitment

CHUNK_SIZE: Final = 256 << 10
MAX_LINKS: Final = 174
_UINT64_MAX: Final = (1 << 64) - 1


class DataType(IntEnum):
    """UnixFS Data.Type (unixfs.proto)."""

    Raw = 0
    Directory = 1
    File = 2
    Metadata = 3
    Symlink = 4
    HAMTShard = 5


class FileImportError(Exception):
    """A file that could not be imported; the message says why (it changed, it cannot be read)."""


# the UnixFS Data message ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnixFSData:
    """unixfs.proto's Data: Type, Data, filesize, blocksizes, hashType, fanout, mode, mtime.

    mtime is kept as its undecoded message bytes: nothing here reads it, and it survives a round trip.
    """

    type: DataType
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple[int, ...] = ()
    hash_type: int | None = None
    fanout: int | None = None
    mode: int | None = None
    mtime: bytes | None = None

    def file_bytes(self) -> int:
        """Bytes of file this node stands for: its own Data plus its children's blocksizes."""
        return len(self.data or b"") + sum(self.blocksizes)

    def encode(self) -> bytes:
        out = bytearray()
        _field_varint(out, 1, int(self.type))
        if self.data is not None:
            _field_bytes(out, 2, self.data)
        if self.filesize is not None:
            _field_varint(out, 3, self.filesize)
        for size in self.blocksizes:  # proto2 `repeated uint64`: not packed, one field each
            _field_varint(out, 4, size)
        if self.hash_type is not None:
            _field_varint(out, 5, self.hash_type)
        if self.fanout is not None:
            _field_varint(out, 6, self.fanout)
        if self.mode is not None:
            _field_varint(out, 7, self.mode)
        if self.mtime is not None:
            _field_bytes(out, 8, self.mtime)
        return bytes(out)

    @classmethod
    def decode(cls, raw: bytes, what: str = "UnixFS Data") -> "UnixFSData":
        """Read a UnixFS Data message; blocksizes are accepted packed or not, as protobuf parsers do."""
        values: dict[int, object] = {}
        blocksizes: list[int] = []
        pos = 0
        while pos < len(raw):
            tag, pos = read_protobuf_varint(raw, pos, what)
            field, wire = tag >> 3, tag & 7
            if field == 4 and wire == 2:
                packed, pos = _length_delimited(raw, pos, what)
                at = 0
                while at < len(packed):
                    size, at = read_protobuf_varint(packed, at, f"{what}.blocksizes")
                    blocksizes.append(size)
                continue
            if field in (1, 3, 4, 5, 6, 7):
                if wire != 0:
                    raise DecodeError(f"{what}: field {field} has wire type {wire}, expected varint")
                value, pos = read_protobuf_varint(raw, pos, what)
                if field == 4:
                    blocksizes.append(value)
                    continue
            elif field in (2, 8):
                if wire != 2:
                    raise DecodeError(f"{what}: field {field} has wire type {wire}, expected bytes")
                value_bytes, pos = _length_delimited(raw, pos, what)
                values[field] = value_bytes
                continue
            else:
                raise DecodeError(f"{what}: unknown field {field}")
            values[field] = value
        if 1 not in values:
            raise DecodeError(f"{what}: no Type")
        type_number = values[1]
        assert isinstance(type_number, int)
        try:
            kind = DataType(type_number)
        except ValueError:
            raise DecodeError(f"{what}: unknown Type {type_number}") from None

        def opt_int(field: int) -> int | None:
            v = values.get(field)
            return v if isinstance(v, int) else None

        def opt_bytes(field: int) -> bytes | None:
            v = values.get(field)
            return v if isinstance(v, bytes) else None

        return cls(
            kind,
            opt_bytes(2),
            opt_int(3),
            tuple(blocksizes),
            opt_int(5),
            opt_int(6),
            opt_int(7),
            opt_bytes(8),
        )


def _field_varint(out: bytearray, field: int, value: int) -> None:
    out += encode_uvarint((field << 3) | 0)
    _put_varint64(out, value)


def _field_bytes(out: bytearray, field: int, value: bytes) -> None:
    out += encode_uvarint((field << 3) | 2)
    _put_varint64(out, len(value))
    out += value


def _put_varint64(out: bytearray, value: int) -> None:
    if not 0 <= value <= _UINT64_MAX:
        raise ValueError(f"{value} does not fit an unsigned 64-bit varint")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _length_delimited(raw: bytes, pos: int, what: str) -> tuple[bytes, int]:
    length, pos = read_protobuf_varint(raw, pos, what)
    if length > len(raw) - pos:
        raise DecodeError(f"{what} at offset {pos}: needs {length} bytes, {len(raw) - pos} remain")
    return raw[pos : pos + length], pos + length


# building the DAG -----------------------------------------------------------------------------------


def raw_leaf_cid(chunk: bytes) -> CID:
    return CID.v1(RAW, Multihash(SHA2_256, hashlib.sha256(chunk).digest()))


@dataclass(frozen=True, slots=True)
class DagEntry:
    """A node of the file's DAG as its parent sees it: CID, cumulative size (Tsize), file bytes."""

    cid: CID
    tsize: int
    file_bytes: int


@dataclass(frozen=True, slots=True)
class FileNode:
    """An inner node: its block and its children."""

    block: bytes
    children: tuple[DagEntry, ...]


def file_node(children: list[DagEntry]) -> tuple[DagEntry, FileNode]:
    """The parent of children: a DAG-PB node with UnixFS File data."""
    sizes = tuple(child.file_bytes for child in children)
    data = UnixFSData(DataType.File, filesize=sum(sizes), blocksizes=sizes).encode()
    links = tuple(dagpb.PBLink(child.cid, "", child.tsize) for child in children)
    block = dagpb.encode(dagpb.PBNode(links, data))
    cid = CID.v1(DAG_PB, Multihash(SHA2_256, hashlib.sha256(block).digest()))
    tsize = len(block) + sum(child.tsize for child in children)
    return DagEntry(cid, tsize, sum(sizes)), FileNode(block, tuple(children))


class BalancedBuilder:
    """The balanced layout built as chunks arrive: level k holds nodes not yet grouped under a parent.

    Each full group of `max_links` becomes a parent at once, so at most max_links entries wait per
    level; `finish` groups what is left bottom up, as the importer's batch-and-reduce does.
    """

    def __init__(self, max_links: int = MAX_LINKS) -> None:
        if max_links < 2:
            raise ValueError(f"a node needs room for at least 2 links, got {max_links}")
        self.max_links = max_links
        self.levels: list[list[DagEntry]] = [[]]
        self.made: list[int] = [0]  # entries ever added per level
        self.inner: dict[CID, FileNode] = {}

    def add_leaf(self, entry: DagEntry) -> None:
        self._add(0, entry)

    def _add(self, level: int, entry: DagEntry) -> None:
        while len(self.levels) <= level:
            self.levels.append([])
            self.made.append(0)
        pending = self.levels[level]
        pending.append(entry)
        self.made[level] += 1
        if len(pending) == self.max_links:
            self._reduce(level)

    def _reduce(self, level: int) -> None:
        children = self.levels[level]
        self.levels[level] = []
        parent, node = file_node(children)
        self.inner[parent.cid] = node
        self._add(level + 1, parent)

    def finish(self) -> DagEntry:
        """The root: a lone leaf stays itself (reduceSingleLeafToSelf); every other group gets a parent."""
        level = 0
        while True:
            pending = self.levels[level]
            top = level + 1 >= len(self.levels) or self.made[level + 1] == 0
            if top and self.made[level] == 1:
                return pending[0]
            if pending:
                self._reduce(level)
            level += 1


# the CAR and its piece ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportedCar:
    """What import_to_car made: the DAG's root, the file and CAR sizes, and the CAR's piece."""

    root: CID
    payload_size: int  # bytes of the file
    car_size: int
    blocks: int  # sections written (each block once)
    piece: PieceCommitment

    @property
    def piece_cid(self) -> CID:
        return piece_cid_v1(self.piece.commitment)

    @property
    def piece_size(self) -> int:
        """Padded piece size (a power of two), what a deal proposal's PieceSize says."""
        return self.piece.padded_size


def _read_chunk(stream: BinaryIO, size: int) -> bytes:
    """Up to size bytes: short only at the end of the file."""
    parts: list[bytes] = []
    need = size
    while need > 0:
        part = stream.read(need)
        if not part:
            break
        parts.append(part)
        need -= len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def build_dag(
    stream: BinaryIO, *, chunk_size: int = CHUNK_SIZE, max_links: int = MAX_LINKS
) -> BalancedBuilder:
    """First pass: hash every chunk and build the inner nodes; the builder's finish() gives the root."""
    builder = BalancedBuilder(max_links)
    first = True
    while True:
        chunk = _read_chunk(stream, chunk_size)
        if not chunk and not first:
            break
        first = False
        builder.add_leaf(DagEntry(raw_leaf_cid(chunk), len(chunk), len(chunk)))
        if len(chunk) < chunk_size:
            break
    return builder


class _CarOut:
    """Writes CAR bytes to the file and to the CommP writer together."""

    def __init__(self, out: BinaryIO, commp: CommPWriter) -> None:
        self.out, self.commp = out, commp
        self.size = 0

    def write(self, data: bytes) -> None:
        self.out.write(data)
        self.commp.write(data)
        self.size += len(data)


def write_car(
    source: BinaryIO,
    builder: BalancedBuilder,
    root: DagEntry,
    out: BinaryIO,
    *,
    chunk_size: int = CHUNK_SIZE,
    commp_threads: int = 1,
) -> tuple[int, int, PieceCommitment]:
    """Second pass: the CAR in DFS pre-order, each block once; source is read again from its start.

    Returns (CAR bytes, sections, CommP). FileImportError if the file no longer matches the first pass.
    The chunks are re-hashed on a worker thread while this one writes and feeds CommP (both release the
    GIL), a few chunks behind: a mismatch found late still fails the whole CAR, which the caller drops.
    """
    commp = CommPWriter(threads=commp_threads)
    checks: deque[Future[bool]] = deque()
    pool = ThreadPoolExecutor(1, thread_name_prefix="import-check")

    def settle(keep: int) -> None:
        while len(checks) > keep:
            if not checks.popleft().result():
                raise FileImportError("the file changed while it was being imported: import it again")

    try:
        car = _CarOut(out, commp)
        car.write(encode_header([root.cid]))
        written: set[CID] = set()
        stack: list[DagEntry] = [root]
        sections = 0
        while stack:
            entry = stack.pop()
            node = builder.inner.get(entry.cid)
            if node is not None:
                if entry.cid in written:
                    # The whole subtree is in the CAR already; step over its bytes in the file.
                    source.seek(entry.file_bytes, os.SEEK_CUR)
                    continue
                car.write(encode_section(entry.cid, node.block))
                written.add(entry.cid)
                sections += 1
                stack.extend(reversed(node.children))
                continue
            chunk = _read_chunk(source, entry.file_bytes)
            checks.append(pool.submit(_matches, chunk, entry.cid))
            settle(8)
            if entry.cid not in written:
                car.write(encode_section(entry.cid, chunk))
                written.add(entry.cid)
                sections += 1
        settle(0)
        if source.read(1):
            raise FileImportError("the file grew while it was being imported: import it again")
        return car.size, sections, commp.finish()
    finally:
        for check in checks:
            check.cancel()
        pool.shutdown(wait=True)
        commp.close()


def _matches(chunk: bytes, cid: CID) -> bool:
    return raw_leaf_cid(chunk) == cid


def import_to_car(
    path: Path,
    car_path: Path,
    *,
    chunk_size: int = CHUNK_SIZE,
    max_links: int = MAX_LINKS,
    commp_threads: int = 1,
    fsync: bool = True,
) -> ImportedCar:
    """Import the file at path into a CAR at car_path (written whole or not at all: a temporary file
    beside it is renamed into place); the root, sizes and piece."""
    path, car_path = Path(path), Path(car_path)
    try:
        source = path.open("rb")
    except OSError as exc:
        raise FileImportError(f"cannot read {path}: {exc.strerror or exc}") from None
    tmp = car_path.with_name(f".{car_path.name}.partial")
    with source:
        if not source.seekable():
            raise FileImportError(f"{path} is not a regular file: the importer reads it twice")
        builder = build_dag(source, chunk_size=chunk_size, max_links=max_links)
        root = builder.finish()
        payload = source.tell()
        source.seek(0)
        try:
            with tmp.open("wb") as out:
                car_size, sections, piece = write_car(
                    source, builder, root, out, chunk_size=chunk_size, commp_threads=commp_threads
                )
                out.flush()
                if fsync:
                    os.fsync(out.fileno())
            os.replace(tmp, car_path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return ImportedCar(root.cid, payload, car_size, sections, piece)


def import_bytes(data: bytes, *, chunk_size: int = CHUNK_SIZE, max_links: int = MAX_LINKS) -> CID:
    """The root CID of data (for small values and tests); no CAR is written."""
    builder = build_dag(io.BytesIO(data), chunk_size=chunk_size, max_links=max_links)
    return builder.finish().cid


# reading back -------------------------------------------------------------------------------------


BlockGetter = Callable[[CID], bytes | None]


def file_data(cid: CID, block: bytes) -> tuple[UnixFSData | None, dagpb.PBNode | None]:
    """The UnixFS view of a block: (None, None) for a raw leaf; DecodeError if a DAG-PB block is not
    UnixFS."""
    if cid.codec == RAW:
        return None, None
    if cid.codec != DAG_PB:
        raise DecodeError(f"{cid} is neither raw nor dag-pb (codec 0x{cid.codec:x}): not a UnixFS node")
    node = dagpb.decode(block)
    if node.data is None:
        raise DecodeError(f"dag-pb node {cid} has no Data: not a UnixFS node")
    return UnixFSData.decode(node.data, f"UnixFS Data of {cid}"), node
