"""Piece commitments (CommP) and sector data commitments (CommD), bit-exact with Filecoin.

CommP of a payload: zero-pad it to the smallest 127 * 2^k bytes (k >= 0), fr32-pad that to 128 * 2^k bytes,
and take the root of the sha256-trunc254 binary tree whose leaves are the 32-byte field elements. The
padded piece size is 128 * 2^k.

CommD of a sector: the same tree over the whole sector, computed from the ordered piece commitments alone.
Each piece sits at the next offset aligned to its own size; gaps and the tail are zero, and the root of an
all-zero subtree (a zero commitment) is computed by hashing the level below it with itself.

Heights count 32-byte leaves: a node of height h covers 32 * 2^h padded bytes (a 128-byte piece is a tree
of height 2, a 32 GiB sector one of height 30).

Streaming (CommPWriter) keeps memory constant: data is consumed in chunks of 127 * 2^15 bytes, each chunk's
subtree root is pushed on a stack of pending left siblings (at most one per height), and the tail is
closed with zero commitments. Chunks may be hashed on several threads; the native extension releases the GIL.
"""

import bisect
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from proofs import fr32
from proofs.merkle import NODE_SIZE, hash_level_python, hash_node
from proofs.native import native_function

MIN_PIECE_SIZE = 128
MAX_HEIGHT = 64  # 32 * 2^64 bytes: far beyond any sector, and it bounds every loop over heights
_LEAVES_PER_BLOCK_HEIGHT = 2  # one 127-byte block pads to 4 leaves, a subtree of height 2
CHUNK_BLOCKS = 1 << 15
CHUNK_SIZE = fr32.UNPADDED_BLOCK * CHUNK_BLOCKS  # 4 MiB once padded


Buffer = bytes | bytearray | memoryview


class PieceError(ValueError):
    """A piece, piece size, sector size or layout that Filecoin would reject; the message says why."""


# sizes -------------------------------------------------------------------------------------------------


def is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def check_piece_size(padded_size: int) -> int:
    """Return padded_size if it is a valid padded piece size (a power of two >= 128), else raise."""
    if not isinstance(padded_size, int) or padded_size < MIN_PIECE_SIZE or not is_power_of_two(padded_size):
        raise PieceError(f"a padded piece size must be a power of two >= 128, got {padded_size!r}")
    if padded_size > NODE_SIZE << MAX_HEIGHT:
        raise PieceError(f"padded piece size {padded_size} exceeds 32 * 2^{MAX_HEIGHT}")
    return padded_size


def height_of(padded_size: int) -> int:
    """Tree height of a padded piece or sector: log2(padded_size / 32)."""
    check_piece_size(padded_size)
    return padded_size.bit_length() - 1 - (NODE_SIZE.bit_length() - 1)


def padded_piece_size(payload_size: int) -> int:
    """Padded size of the piece made from payload_size bytes: 128 * 2^k for the smallest 127 * 2^k >= it."""
    if payload_size < 0:
        raise PieceError(f"a payload size cannot be negative, got {payload_size}")
    blocks = max(1, -(-payload_size // fr32.UNPADDED_BLOCK))
    return fr32.PADDED_BLOCK << (blocks - 1).bit_length()


def unpadded_piece_size(padded_size: int) -> int:
    """Data bytes a padded piece holds (127/128 of it): what Lotus calls the UnpaddedPieceSize."""
    return fr32.unpadded_size(check_piece_size(padded_size))


# zero commitments --------------------------------------------------------------------------------------


def _zero_commitments() -> tuple[bytes, ...]:
    nodes = [bytes(NODE_SIZE)]
    for _ in range(MAX_HEIGHT):
        nodes.append(hash_node(nodes[-1], nodes[-1]))
    return tuple(nodes)


# Built once at import (65 hashes) rather than lazily, so threads never race to extend it.
_ZERO_BY_HEIGHT = _zero_commitments()


def zero_commitment(height: int) -> bytes:
    """Root of an all-zero subtree of the given height (height 0 is a zero leaf)."""
    if not 0 <= height <= MAX_HEIGHT:
        raise PieceError(f"tree height must be within 0..{MAX_HEIGHT}, got {height}")
    return _ZERO_BY_HEIGHT[height]


def zero_piece_commitment(padded_size: int) -> bytes:
    """CommP of a piece of padded_size zero bytes (the go-commp-utils zerocomm table, computed)."""
    return zero_commitment(height_of(padded_size))


def zero_pad_commitment(commitment: bytes, padded_size: int, to_padded_size: int) -> bytes:
    """CommP of a piece grown from padded_size to to_padded_size with zeros (ZeroPadPieceCommitment)."""
    _check_commitment(commitment)
    height, target = height_of(padded_size), height_of(to_padded_size)
    if target < height:
        raise PieceError(f"cannot zero-pad a {padded_size}-byte piece down to {to_padded_size} bytes")
    node = commitment
    for h in range(height, target):
        node = hash_node(node, zero_commitment(h))
    return node


def _check_commitment(commitment: bytes) -> None:
    if not isinstance(commitment, bytes) or len(commitment) != NODE_SIZE:
        raise PieceError(f"a commitment is 32 bytes, got {commitment!r:.80}")


# subtrees of fr32-padded data --------------------------------------------------------------------------


def subtree_root_python(data: Buffer) -> bytes:
    """Root over fr32(data), len(data) = 127 * 2^k; the pure-Python reference for the native call."""
    _check_subtree_input(data)
    level = fr32.pad_python(bytes(data))
    while len(level) > NODE_SIZE:
        level = hash_level_python(level)
    return level


def _check_subtree_input(data: Buffer) -> None:
    blocks, rest = divmod(len(data), fr32.UNPADDED_BLOCK)
    if rest or not is_power_of_two(blocks):
        raise PieceError(f"a piece subtree needs 127 * 2^k bytes, got {len(data)}")


_native_subtree_root: Callable[[Buffer], bytes] | None = native_function("fr32_subtree_root")


def native_available() -> bool:
    return _native_subtree_root is not None


def subtree_root(data: Buffer) -> bytes:
    """Root over fr32(data), len(data) = 127 * 2^k, on the native path when it was built."""
    if _native_subtree_root is None:
        return subtree_root_python(data)
    _check_subtree_input(data)
    return _native_subtree_root(data)


# streaming CommP ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PieceCommitment:
    """CommP of a payload, with the sizes a piece CID (v1 or v2) and a deal need."""

    commitment: bytes
    padded_size: int
    payload_size: int

    @property
    def unpadded_size(self) -> int:
        return unpadded_piece_size(self.padded_size)

    @property
    def padding(self) -> int:
        """Zero bytes appended to the payload (FRC-0069's padding)."""
        return self.unpadded_size - self.payload_size

    @property
    def height(self) -> int:
        return height_of(self.padded_size)

    def piece_info(self) -> "PieceInfo":
        return PieceInfo(self.padded_size, self.commitment)


class _TreeStack:
    """Pending left siblings of a tree being built left to right, strictly decreasing in height."""

    __slots__ = ("_nodes",)

    def __init__(self) -> None:
        self._nodes: list[tuple[int, bytes]] = []

    def push(self, height: int, node: bytes) -> None:
        while self._nodes and self._nodes[-1][0] == height:
            _, left = self._nodes.pop()
            node = hash_node(left, node)
            height += 1
        self._nodes.append((height, node))

    def close(self, height: int) -> bytes:
        """Fill everything right of the pushed nodes with zeros up to a root of the given height."""
        if not self._nodes:
            return zero_commitment(height)
        # The last pending node is always a left child: everything before it spans a multiple of its size
        # twice over, so padding it with a zero sibling of its height is what the zero tail contributes.
        while len(self._nodes) > 1 or self._nodes[0][0] < height:
            h, node = self._nodes.pop()
            self.push(h + 1, hash_node(node, zero_commitment(h)))
        top_height, root = self._nodes[0]
        if top_height != height:
            raise PieceError(f"the data fills a tree of height {top_height}, more than {height}")
        return root


class CommPWriter:
    """Streaming CommP: write() the payload in pieces of any size, then finish().

    Memory stays bounded by a few chunks whatever the payload size. With threads > 1, full chunks are
    hashed on a thread pool (in order of submission, at most 2 * threads in flight).
    """

    def __init__(self, *, threads: int = 1, native: bool | None = None, chunk_size: int = CHUNK_SIZE) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        use_native = native_available() if native is None else native
        if use_native and _native_subtree_root is None:
            raise RuntimeError("the native extension proofs._native is not built (run `make ext`)")
        self._subtree: Callable[[Buffer], bytes] = (
            _native_subtree_root if use_native and _native_subtree_root else subtree_root_python
        )
        blocks, rest = divmod(chunk_size, fr32.UNPADDED_BLOCK)
        if rest or not is_power_of_two(blocks):
            raise PieceError(f"the chunk size must be 127 * 2^k bytes, got {chunk_size}")
        self._chunk = chunk_size
        self._chunk_height = (blocks.bit_length() - 1) + _LEAVES_PER_BLOCK_HEIGHT
        self._buffer = bytearray()
        self._stack = _TreeStack()
        self._size = 0
        self._threads = threads
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="commp") if threads > 1 else None
        self._pending: deque[Future[bytes]] = deque()
        self._result: PieceCommitment | None = None

    @property
    def size(self) -> int:
        """Payload bytes written so far."""
        return self._size

    def write(self, data: Buffer) -> int:
        if self._result is not None:
            raise ValueError("write() after finish()")
        view = memoryview(data).cast("B")
        # bytes never change under us, so its slices can go to worker threads without a copy.
        immutable = isinstance(data, bytes)
        count = len(view)
        self._size += count
        if self._buffer:
            take = min(self._chunk - len(self._buffer), len(view))
            self._buffer += view[:take]
            view = view[take:]
            if len(self._buffer) == self._chunk:
                self._submit(bytes(self._buffer))
                self._buffer.clear()
        while len(view) >= self._chunk:
            piece = view[: self._chunk]
            self._submit(piece if immutable or self._pool is None else bytes(piece))
            view = view[self._chunk :]
        self._buffer += view
        return count

    def _submit(self, chunk: Buffer) -> None:
        if self._pool is None:
            self._stack.push(self._chunk_height, self._subtree(chunk))
            return
        self._pending.append(self._pool.submit(self._subtree, chunk))
        while len(self._pending) > 2 * self._threads:
            self._stack.push(self._chunk_height, self._pending.popleft().result())

    def finish(self) -> PieceCommitment:
        """Close the tree (zero padding to 127 * 2^k) and return the commitment; idempotent."""
        if self._result is not None:
            return self._result
        try:
            while self._pending:
                self._stack.push(self._chunk_height, self._pending.popleft().result())
            if self._buffer:
                tail = len(self._buffer)
                blocks = 1 << (-(-tail // fr32.UNPADDED_BLOCK) - 1).bit_length()
                self._buffer += bytes(blocks * fr32.UNPADDED_BLOCK - tail)
                root = self._subtree(bytes(self._buffer))
                self._stack.push((blocks.bit_length() - 1) + _LEAVES_PER_BLOCK_HEIGHT, root)
                self._buffer.clear()
            padded = padded_piece_size(self._size)
            self._result = PieceCommitment(self._stack.close(height_of(padded)), padded, self._size)
            return self._result
        finally:
            self.close()

    def close(self) -> None:
        """Release the worker threads (finish() does it too)."""
        if self._pool is not None:
            for future in self._pending:
                future.cancel()
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> "CommPWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def commp_of_bytes(data: bytes, *, native: bool | None = None) -> PieceCommitment:
    writer = CommPWriter(native=native)
    writer.write(data)
    return writer.finish()


def commp_of_stream(
    stream: Readable,
    *,
    size: int | None = None,
    threads: int = 1,
    native: bool | None = None,
    progress: Callable[[int], None] | None = None,
) -> PieceCommitment:
    """CommP of everything read from stream, or of exactly `size` bytes of it.

    Raises PieceError if the stream ends before `size` bytes. progress(n) is called with each count of
    bytes consumed.
    """
    if size is not None and size < 0:
        raise PieceError(f"a payload size cannot be negative, got {size}")
    with CommPWriter(threads=threads, native=native) as writer:
        remaining = size
        while remaining is None or remaining > 0:
            want = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
            block = stream.read(want)
            if not block:
                break
            writer.write(block)
            if remaining is not None:
                remaining -= len(block)
            if progress is not None:
                progress(len(block))
        if remaining:
            raise PieceError(f"the stream ended after {writer.size} of the {size} bytes declared")
        return writer.finish()


def commp_of_chunks(chunks: Iterable[bytes], *, threads: int = 1) -> PieceCommitment:
    """CommP of the concatenation of chunks (e.g. a generator), streaming."""
    with CommPWriter(threads=threads) as writer:
        for chunk in chunks:
            writer.write(chunk)
        return writer.finish()


# sectors: CommD from ordered pieces --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PieceInfo:
    """A piece as a sector holds it: padded size and commitment (abi.PieceInfo)."""

    padded_size: int
    commitment: bytes

    def __post_init__(self) -> None:
        check_piece_size(self.padded_size)
        _check_commitment(self.commitment)


@dataclass(frozen=True, slots=True)
class PlacedPiece:
    """A piece and the padded byte offset where a sector's layout puts it."""

    offset: int
    piece: PieceInfo

    @property
    def end(self) -> int:
        return self.offset + self.piece.padded_size


def place_pieces(pieces: Sequence[PieceInfo], sector_size: int) -> list[PlacedPiece]:
    """Lay pieces out in order, each at the next offset aligned to its own size (zeros fill the gaps)."""
    check_piece_size(sector_size)
    placed: list[PlacedPiece] = []
    offset = 0
    for index, piece in enumerate(pieces):
        size = piece.padded_size
        offset = -(-offset // size) * size
        if offset + size > sector_size:
            raise PieceError(
                f"piece {index} ({size} bytes) does not fit: it would end at {offset + size}, "
                f"past the {sector_size}-byte sector"
            )
        placed.append(PlacedPiece(offset, piece))
        offset += size
    return placed


def layout_commitment(placed: Sequence[PlacedPiece], offset: int, size: int) -> bytes:
    """Root of the subtree covering [offset, offset + size) of a laid-out sector."""
    check_piece_size(size)
    if offset < 0 or offset % size:
        raise PieceError(f"a subtree of {size} bytes must start at a multiple of its size, got {offset}")
    starts = [p.offset for p in placed]
    at = bisect.bisect_left(starts, offset)
    # Pieces are aligned to their sizes, so a piece larger than the range either starts before it and
    # runs into it, or starts with it.
    covering = at > 0 and placed[at - 1].end > offset
    starting = at < len(placed) and placed[at].offset == offset and placed[at].piece.padded_size > size
    if covering or starting:
        raise PieceError(f"the range at {offset} of {size} bytes lies inside a piece, not above it")
    return _layout_node(placed, starts, offset, size)


def _layout_node(placed: Sequence[PlacedPiece], starts: list[int], offset: int, size: int) -> bytes:
    lo = bisect.bisect_left(starts, offset)
    hi = bisect.bisect_left(starts, offset + size, lo)
    if lo == hi:
        return zero_commitment(height_of(size))
    first = placed[lo]
    if hi - lo == 1 and first.offset == offset and first.piece.padded_size == size:
        return first.piece.commitment
    half = size // 2
    return hash_node(
        _layout_node(placed, starts, offset, half), _layout_node(placed, starts, offset + half, half)
    )


def comm_d(pieces: Sequence[PieceInfo], sector_size: int) -> bytes:
    """CommD of a sector holding pieces in order (GenerateUnsealedCID); no pieces gives the zero CommD."""
    return layout_commitment(place_pieces(pieces, sector_size), 0, sector_size)
