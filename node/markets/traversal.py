"""Walking a DAG in the trustless gateway's CAR order, and checking such a walk as it arrives.

`dfs_blocks` is the provider's side: the blocks under a root in depth-first pre-order (links in the
order they appear in each block), limited by a `dag-scope`, with duplicates sent once (`dups=n`) or at
every occurrence (`dups=y`); identity CIDs are never sent (their data is in the CID).

`DagVerifier` is the client's side: it knows the root and checks each arriving block against the walk
it expects. A block must hash to its CID (a tampered block is refused) and must be the next block of
the walk (a block that is out of order or not part of the DAG is refused), so a client holds nothing it
has not verified as part of the DAG. Duplicates may be sent again or not: when the expected block was
seen before and the stream goes on with something else, the verifier takes it as sent once. `finish`
fails if the stream ended before the walk did (an interrupted transfer). With a `FileOutput` it also
writes the UnixFS file the DAG holds, checking each node's sizes as its subtree completes.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import BinaryIO, Final

from chain.encoding import dagpb
from chain.encoding.cid import CID, DAG_CBOR, DAG_PB, FIL_COMMITMENT_SEALED, FIL_COMMITMENT_UNSEALED, RAW
from chain.encoding.errors import DecodeError
from chain.encoding.multihash import IDENTITY
from chain.store.blockstore import BlockNotFound
from chain.store.car import links_of as cbor_links_of
from chain.store.car import verify_block
from node.markets.unixfs import DataType, UnixFSData, file_data

# Trustless gateway clients limit blocks to 2 MiB (the ecosystem's bitswap limit).
MAX_BLOCK_SIZE: Final = 2 << 20
_NOT_BLOCKS: Final = frozenset({FIL_COMMITMENT_UNSEALED, FIL_COMMITMENT_SEALED})


class DagScope(StrEnum):
    """The trustless gateway's `dag-scope`."""

    ALL = "all"
    ENTITY = "entity"
    BLOCK = "block"


class VerificationError(Exception):
    """Blocks that do not form the DAG asked for; the message says which block and why."""


class TamperedBlock(VerificationError):
    """A block whose bytes do not hash to its CID."""


class UnexpectedBlock(VerificationError):
    """A block that is not the next one of the walk (out of order, or not part of the DAG)."""


class IncompleteDag(VerificationError):
    """The stream ended before every block of the walk arrived."""


def is_identity(cid: CID) -> bool:
    return cid.multihash.code == IDENTITY


def _hamt_shard_links(node: dagpb.PBNode, fanout: int | None) -> list[CID]:
    # A HAMT shard's links to sub-shards are named by the bucket's hex prefix alone; entries add the
    # entry's name after the prefix.
    width = len(f"{max((fanout or 256) - 1, 1):X}")
    return [link.hash for link in node.links if link.name is not None and len(link.name) == width]


def links_in_scope(cid: CID, data: bytes, scope: DagScope) -> list[CID]:
    """The links the walk follows from this block: all of them for `all`; for `entity`, those that make
    up the same UnixFS entity (a file's chunks, a sharded directory's sub-shards), none for `block`."""
    if scope is DagScope.BLOCK or cid.codec == RAW:
        return []
    if cid.codec == DAG_PB:
        node = dagpb.decode(data)
        if scope is DagScope.ALL:
            return [link.hash for link in node.links]
        if node.data is None:
            return []
        try:
            meta = UnixFSData.decode(node.data)
        except DecodeError:
            return []  # DAG-PB that is not UnixFS: its entity is the block
        if meta.type in (DataType.File, DataType.Raw):
            return [link.hash for link in node.links]
        if meta.type is DataType.HAMTShard:
            return _hamt_shard_links(node, meta.fanout)
        return []
    if cid.codec == DAG_CBOR and scope is DagScope.ALL:
        return [link for link in cbor_links_of(cid, data) if link.codec not in _NOT_BLOCKS]
    return []


BlockGetter = Callable[[CID], bytes | None]


def dfs_blocks(
    get: BlockGetter, root: CID, scope: DagScope = DagScope.ALL, *, dups: bool = False
) -> Iterator[tuple[CID, bytes]]:
    """(cid, block) of the walk from root; BlockNotFound when a block of it is missing."""
    seen: set[CID] = set()
    stack = [root]
    while stack:
        cid = stack.pop()
        if cid.codec in _NOT_BLOCKS:
            continue
        if is_identity(cid):
            data = cid.multihash.digest
        else:
            if not dups and cid in seen:
                continue
            seen.add(cid)
            found = get(cid)
            if found is None:
                raise BlockNotFound(cid)
            data = found
            yield cid, data
        stack.extend(reversed(links_in_scope(cid, data, scope)))


# the client's side ------------------------------------------------------------------------------


class FileOutput:
    """Where a verified UnixFS file is written: a file opened for reading and writing (duplicate chunks
    that are not sent again are copied from what was already written)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.size = 0

    def write(self, data: bytes) -> None:
        self.out.write(data)
        self.size += len(data)

    def copy(self, offset: int, length: int) -> None:
        out = self.out
        end = out.tell()
        done = 0
        while done < length:
            out.seek(offset + done)
            part = out.read(min(length - done, 1 << 20))
            if not part:
                raise VerificationError(f"cannot re-read {length} bytes at {offset} of the output")
            out.seek(end)
            self.write(part)
            end += len(part)
            done += len(part)


@dataclass(frozen=True, slots=True)
class _End:
    """Marks where a UnixFS node's subtree ends: its output must then span `length` bytes from start."""

    cid: CID
    start: int
    length: int


@dataclass(frozen=True, slots=True)
class VerifiedDag:
    root: CID
    blocks: int  # blocks received and verified (duplicates included)
    block_bytes: int  # their total size
    file_size: int | None  # bytes of file written, with a FileOutput


class DagVerifier:
    """Checks a stream of blocks against the walk from root (see the module's docstring).

    feed(cid, data) for each block in arrival order, then finish(). Raises a VerificationError subclass
    at the first problem; nothing after it is accepted.
    """

    def __init__(
        self,
        root: CID,
        scope: DagScope = DagScope.ALL,
        *,
        output: FileOutput | None = None,
        max_block_size: int = MAX_BLOCK_SIZE,
    ) -> None:
        if output is not None and scope is DagScope.BLOCK:
            raise ValueError("a file cannot be written from dag-scope=block")
        self.root = root
        self.scope = scope
        self.output = output
        self.max_block_size = max_block_size
        self._stack: list[CID | _End] = [root]
        # For a file: where each completed node's bytes are in the output; otherwise just membership.
        self._seen: dict[CID, tuple[int, int] | None] = {}
        self.blocks = 0
        self.block_bytes = 0
        self._failed: VerificationError | None = None

    @property
    def done(self) -> bool:
        return not self._stack

    def is_new(self, cid: CID) -> bool:
        """Whether cid has not been accepted before (what a CAR writer should store)."""
        return cid not in self._seen

    def feed(self, cid: CID, data: bytes) -> None:
        if self._failed is not None:
            raise self._failed
        try:
            self._feed(cid, data)
        except VerificationError as exc:
            self._failed = exc
            raise

    def _feed(self, cid: CID, data: bytes) -> None:
        if len(data) > self.max_block_size:
            raise UnexpectedBlock(
                f"block {cid} has {len(data)} bytes, more than the {self.max_block_size} allowed"
            )
        try:
            verify_block(cid, data)
        except DecodeError as exc:
            raise TamperedBlock(str(exc)) from None
        while True:
            if not self._stack:
                raise UnexpectedBlock(f"block {cid} arrived after the DAG under {self.root} was complete")
            top = self._stack[-1]
            if isinstance(top, _End):
                self._stack.pop()
                self._end(top)
                continue
            if is_identity(top) or top.codec in _NOT_BLOCKS:
                self._stack.pop()
                self._take(top, top.multihash.digest)
                continue
            if top == cid:
                self._stack.pop()
                self.blocks += 1
                self.block_bytes += len(data)
                self._take(cid, data)
                return
            if top in self._seen:
                self._stack.pop()
                self._replay(top)
                continue
            raise UnexpectedBlock(
                f"block {cid} arrived where {top} was expected: it is out of order or not part of the DAG"
            )

    def finish(self) -> VerifiedDag:
        if self._failed is not None:
            raise self._failed
        while self._stack:
            top = self._stack[-1]
            if isinstance(top, _End):
                self._stack.pop()
                self._end(top)
            elif is_identity(top) or top.codec in _NOT_BLOCKS:
                self._stack.pop()
                self._take(top, top.multihash.digest)
            elif top in self._seen:
                self._stack.pop()
                self._replay(top)
            else:
                missing = sum(1 for item in self._stack if isinstance(item, CID) and item not in self._seen)
                self._failed = IncompleteDag(
                    f"the transfer ended before block {top} arrived ({missing} or more blocks of {self.root} "
                    f"missing after {self.blocks} received)"
                )
                raise self._failed
        size = self.output.size if self.output is not None else None
        return VerifiedDag(self.root, self.blocks, self.block_bytes, size)

    # -- the walk ---------------------------------------------------------------------------------
    def _take(self, cid: CID, data: bytes) -> None:
        if cid.codec in _NOT_BLOCKS:
            return
        if self.output is None:
            self._seen.setdefault(cid, None)
            try:
                children = links_in_scope(cid, data, self.scope)
            except DecodeError as exc:
                raise UnexpectedBlock(f"block {cid} cannot be read: {exc}") from None
            self._stack.extend(reversed(children))
            return
        output = self.output
        try:
            meta, node = file_data(cid, data)
        except DecodeError as exc:
            raise UnexpectedBlock(f"block {cid} is not part of a UnixFS file: {exc}") from None
        if meta is None or node is None:  # a raw leaf: its bytes are the file's
            start = output.size
            output.write(data)
            self._seen[cid] = (start, len(data))
            return
        if meta.type not in (DataType.File, DataType.Raw):
            raise UnexpectedBlock(f"{cid} is a UnixFS {meta.type.name}, not a file")
        if node.links and len(meta.blocksizes) != len(node.links):
            raise UnexpectedBlock(
                f"UnixFS node {cid} has {len(node.links)} links but {len(meta.blocksizes)} blocksizes"
            )
        length = meta.file_bytes()
        if meta.filesize is not None and meta.filesize != length:
            raise UnexpectedBlock(f"UnixFS node {cid} says filesize {meta.filesize} but holds {length} bytes")
        start = output.size
        if meta.data:
            output.write(meta.data)
        self._seen.setdefault(cid, None)
        self._stack.append(_End(cid, start, length))
        self._stack.extend(reversed([link.hash for link in node.links]))

    def _end(self, end: _End) -> None:
        assert self.output is not None
        got = self.output.size - end.start
        if got != end.length:
            raise UnexpectedBlock(
                f"UnixFS node {end.cid} promised {end.length} bytes of file, its blocks gave {got}"
            )
        self._seen[end.cid] = (end.start, end.length)

    def _replay(self, cid: CID) -> None:
        """cid was sent before and is not sent again: its subtree is known."""
        if self.output is None:
            return
        where = self._seen.get(cid)
        if where is None:
            raise UnexpectedBlock(f"block {cid} repeats inside its own subtree")
        self.output.copy(*where)


def export_file(
    get: BlockGetter, root: CID, out: BinaryIO, *, max_block_size: int = MAX_BLOCK_SIZE
) -> VerifiedDag:
    """Write the UnixFS file under root from a block store (any order of storage) into out (opened for
    reading and writing), verifying every block against its CID; BlockNotFound if one is missing."""
    verifier = DagVerifier(root, output=FileOutput(out), max_block_size=max_block_size)
    for cid, data in dfs_blocks(get, root, DagScope.ALL, dups=False):
        verifier.feed(cid, data)
    return verifier.finish()
