"""RLE+ bitfields: the set-of-integers chain type (go-bitfield) that actors use for sector numbers,
partitions and deal indexes.

`BitField` is an immutable set of integers in [0, 2^64 - 1), held as sorted, disjoint, non-adjacent
half-open ranges so that dense sets (millions of consecutive sector numbers) stay small and every set
operation costs O(number of runs), not O(number of bits).

Wire form (go-bitfield / fvm_ipld_bitfield): bits are packed least-significant-bit first. The stream
is a 2-bit version (00), one bit giving the value of the first run, then one block per run:
``1`` for a run of 1, ``01`` + 4 bits for a run of 2..15, ``00`` + unsigned LEB128 varint for a run of
16 or more. Trailing zero bits are not written, so the last byte is never 0. The CBOR form is a byte
string holding these bytes, at most 32 KiB.

Decoding applies fvm_ipld_bitfield's rules, which run on chain today (builtin actors execute in the
FVM). They are stricter than go-bitfield's lazy reader in three places; see docs/state.md.

The codec is written by hand rather than declared (chain/encoding/schema.py): the CBOR form is one
byte string of RLE+ bits and the Lotus JSON form is go-bitfield's list of run lengths, neither a
struct. `to_cbor`/`from_cbor`/`to_json`/`from_json` let declared types hold a BitField as a field.
"""

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from heapq import merge
from typing import Any, Final

from chain.encoding.errors import DecodeError

MAX_ENCODED_SIZE: Final = 32 << 10
"""Largest RLE+ encoding accepted or produced in CBOR (go-bitfield MaxEncodedSize)."""

MAX_BIT: Final = (1 << 64) - 2
"""Largest bit a bitfield can hold: run lengths add up to at most 2^64 - 1."""

_TOTAL_LIMIT: Final = (1 << 64) - 1
_VARINT_MAX_BYTES: Final = 10
_PADDING: Final = "0" * 96  # reads past the end see zeros; a block never reads more than 82 bits

Range = tuple[int, int]


class NoBitsSet(ValueError):
    """first()/last() of an empty bitfield."""


# codec ----------------------------------------------------------------------------------------------


def _varint_bits(n: int) -> str:
    out = []
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(format(byte | 0x80, "08b")[::-1])
        else:
            out.append(format(byte, "08b")[::-1])
            return "".join(out)


# Bit strings below are written least-significant bit first, the order RLE+ packs them in.
_SHORT_BLOCKS: Final = ["", "1"] + ["01" + format(n, "04b")[::-1] for n in range(2, 16)]


def _block(length: int) -> str:
    if length < 16:
        return _SHORT_BLOCKS[length]
    return "00" + _varint_bits(length)


def _pack(bits: str) -> bytes:
    """Pack an LSB-first bit string into bytes, dropping trailing zero bits."""
    value = int(bits[::-1], 2)
    return value.to_bytes((value.bit_length() + 7) // 8, "little")


def encode_ranges(ranges: Iterable[Range]) -> bytes:
    """RLE+ bytes of normalised ranges (sorted, disjoint, non-adjacent, non-empty)."""
    parts = []
    prev_end = -1
    for start, end in ranges:
        if prev_end < 0:
            parts.append("00")
            if start == 0:
                parts.append("1")
            else:
                parts.append("0")
                parts.append(_block(start))
        else:
            parts.append(_block(start - prev_end))
        parts.append(_block(end - start))
        prev_end = end
    if not parts:
        return b""
    return _pack("".join(parts))


def encode_runs(runs: Iterable[tuple[bool, int]]) -> bytes:
    """RLE+ bytes of alternating runs (value, length), as go-bitfield's EncodeRuns.

    A final run of zeros is dropped; two consecutive runs with the same value or a zero-length run
    raise ValueError (go-bitfield: ErrSameValRuns). Lengths are not limited here: the decoder is
    what refuses runs adding up to more than 2^64 - 1.
    """
    items = list(runs)
    if items and not items[-1][0]:
        items.pop()
    if not items:
        return b""
    parts = ["00", "1" if items[0][0] else "0"]
    previous: bool | None = None
    for value, length in items:
        if value == previous:
            raise ValueError("two consecutive runs with the same value")
        if type(length) is not int or length <= 0:
            raise ValueError(f"run length must be a positive integer, got {length!r}")
        parts.append(_block(length))
        previous = value
    return _pack("".join(parts))


def decode_ranges(data: bytes) -> list[Range]:
    """Decode RLE+ bytes into ranges, rejecting every non-canonical or invalid encoding."""
    if not data:
        return []
    if data[-1] == 0:
        raise DecodeError("RLE+: last byte is zero (not minimally encoded)")
    bits = bin(int.from_bytes(data, "little"))[:1:-1]  # LSB first; ends at the last set bit
    end = len(bits)
    bits += _PADDING
    if bits[0] != "0" or bits[1] != "0":
        raise DecodeError("RLE+: unsupported version (first two bits must be 00)")
    value = bits[2] == "1"
    pos = 3
    total = 0
    ranges: list[Range] = []
    while pos < end:  # blocks continue while any set bit remains
        if bits[pos] == "1":
            length = 1
            pos += 1
        elif bits[pos + 1] == "1":
            length = int(bits[pos + 5 : pos + 1 : -1], 2)
            pos += 6
            if length < 2:
                raise DecodeError(f"RLE+: short block of length {length} at bit {pos - 6} (not minimal)")
        else:
            at = pos
            pos += 2
            length = 0
            for i in range(_VARINT_MAX_BYTES):
                byte = int(bits[pos + 7 : pos - 1 : -1], 2)
                pos += 8
                length |= (byte & 0x7F) << (7 * i)
                if not byte & 0x80:
                    if (i == 9 and byte > 1) or (byte == 0 and i != 0):
                        raise DecodeError(f"RLE+: invalid varint at bit {at} (overlong or not minimal)")
                    break
            else:
                raise DecodeError(f"RLE+: varint at bit {at} is longer than {_VARINT_MAX_BYTES} bytes")
            if length < 16:
                raise DecodeError(f"RLE+: long block of length {length} at bit {at} (not minimal)")
        start = total
        total += length
        if total > _TOTAL_LIMIT:
            raise DecodeError("RLE+: runs add up to more than 2^64 - 1 bits")
        if value:
            ranges.append((start, total))
        value = not value
    if value:
        # The next run would be ones: the stream ended on a run of zeros (or had no runs at all).
        raise DecodeError("RLE+: ends with a run of zeros (not minimally encoded)")
    return ranges


# range algebra ---------------------------------------------------------------------------------------


def _normalise(ranges: Iterable[Range]) -> tuple[Range, ...]:
    """Sort, drop empty ranges and merge overlapping or adjacent ones."""
    out: list[list[int]] = []
    for start, end in sorted(ranges):
        if start >= end:
            continue
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1][1] = end
        else:
            out.append([start, end])
    return tuple((s, e) for s, e in out)


def _coalesce(sorted_ranges: Iterable[Range]) -> tuple[Range, ...]:
    """Merge already start-sorted ranges that overlap or touch."""
    out: list[Range] = []
    for start, end in sorted_ranges:
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return tuple(out)


def _intersect(a: tuple[Range, ...], b: tuple[Range, ...]) -> tuple[Range, ...]:
    out: list[Range] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start = max(a[i][0], b[j][0])
        end = min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _subtract(a: tuple[Range, ...], b: tuple[Range, ...]) -> tuple[Range, ...]:
    out: list[Range] = []
    j = 0
    for start, end in a:
        while j < len(b) and b[j][1] <= start:
            j += 1
        k = j
        cur = start
        while k < len(b) and b[k][0] < end:
            if b[k][0] > cur:
                out.append((cur, b[k][0]))
            cur = max(cur, b[k][1])
            k += 1
        if cur < end:
            out.append((cur, end))
    return tuple(out)


def _check_range(start: int, end: int) -> None:
    if type(start) is not int or type(end) is not int:
        raise TypeError("bitfield ranges must be integers")
    if start < 0 or end > MAX_BIT + 1:
        raise ValueError(f"range [{start}, {end}) is outside [0, 2^64 - 1)")
    if start > end:
        raise ValueError(f"range [{start}, {end}) ends before it starts")


class BitField:
    """An immutable set of integers in [0, 2^64 - 1) with the RLE+ codec; see the module doc."""

    __slots__ = ("_count", "_ranges", "_rle", "_starts")

    _ranges: tuple[Range, ...]
    _starts: list[int] | None
    _rle: bytes | None
    _count: int | None

    def __init__(self, ranges: Iterable[Range] = ()) -> None:
        """A bitfield holding the union of the half-open ranges [start, end)."""
        items = list(ranges)
        for start, end in items:
            _check_range(start, end)
        self._set(_normalise(items))

    def _set(self, ranges: tuple[Range, ...]) -> None:
        self._ranges = ranges
        self._starts = None
        self._rle = None
        self._count = None

    @classmethod
    def _of(cls, ranges: tuple[Range, ...], rle: bytes | None = None) -> "BitField":
        """Wrap ranges already known to be normalised and in bounds."""
        bf = cls.__new__(cls)
        bf._set(ranges)
        bf._rle = rle
        return bf

    # construction ---------------------------------------------------------------------------------
    @classmethod
    def from_bits(cls, bits: Iterable[int]) -> "BitField":
        """The set of the given bit positions (any order, duplicates allowed)."""
        out: list[Range] = []
        for bit in sorted(set(bits)):
            if type(bit) is not int or bit < 0 or bit > MAX_BIT:
                raise ValueError(f"bit {bit!r} is outside [0, 2^64 - 1)")
            if out and out[-1][1] == bit:
                out[-1] = (out[-1][0], bit + 1)
            else:
                out.append((bit, bit + 1))
        return cls._of(tuple(out))

    @classmethod
    def from_range(cls, start: int, end: int) -> "BitField":
        """All bits in [start, end)."""
        _check_range(start, end)
        return cls._of(((start, end),) if start < end else ())

    @classmethod
    def from_runs(cls, runs: Iterable[tuple[bool, int]]) -> "BitField":
        """Build from alternating (value, length) runs, as go-bitfield's NewFromIter."""
        return cls.from_bytes(encode_runs(runs))

    @classmethod
    def from_bytes(cls, data: bytes) -> "BitField":
        """Decode RLE+ bytes; DecodeError names what is wrong with an invalid encoding."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise DecodeError(f"RLE+: expected bytes, got {type(data).__name__}")
        raw = bytes(data)
        return cls._of(tuple(decode_ranges(raw)), raw)

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "BitField") -> "BitField":
        """Decode the CBOR form (a byte string of at most 32 KiB holding RLE+ bytes)."""
        if type(raw) is not bytes:
            raise DecodeError(f"{what}: expected an RLE+ byte string, got {type(raw).__name__}")
        if len(raw) > MAX_ENCODED_SIZE:
            raise DecodeError(f"{what}: RLE+ encoding of {len(raw)} bytes exceeds {MAX_ENCODED_SIZE}")
        try:
            return cls.from_bytes(raw)
        except DecodeError as exc:
            raise DecodeError(f"{what}: {exc}") from None

    @classmethod
    def from_json(cls, raw: Any, what: str = "BitField") -> "BitField":
        """Read go-bitfield's JSON form: a list of run lengths starting with a run of zeros."""
        if type(raw) is not list:
            raise DecodeError(f"{what}: expected a list of run lengths, got {type(raw).__name__}")
        try:
            bits = cls.from_json_runs(raw)
        except DecodeError as exc:
            raise DecodeError(f"{what}: {exc}") from None
        if len(bits.to_bytes()) > MAX_ENCODED_SIZE:
            raise DecodeError(f"{what}: RLE+ encoding exceeds {MAX_ENCODED_SIZE} bytes")
        return bits

    @classmethod
    def from_json_runs(cls, runs: Iterable[int]) -> "BitField":
        """Parse the Lotus JSON form: run lengths starting with a run of zeros ([0] when empty)."""
        runs = list(runs)
        if len(runs) > MAX_ENCODED_SIZE * 8:
            raise DecodeError(f"bitfield JSON: {len(runs)} runs cannot fit in {MAX_ENCODED_SIZE} bytes")
        pairs = []
        value = False
        for i, length in enumerate(runs):
            if type(length) is not int or length < 0:
                raise DecodeError(f"bitfield JSON: run {i} is not a non-negative integer")
            if length == 0:
                if i != 0:
                    raise DecodeError(f"bitfield JSON: zero-length run at position {i}")
            else:
                pairs.append((value, length))
            value = not value
        try:
            return cls.from_runs(pairs)
        except ValueError as exc:
            raise DecodeError(f"bitfield JSON: {exc}") from None

    # encoding -------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The canonical RLE+ encoding (empty bytes for the empty set)."""
        if self._rle is None:
            self._rle = encode_ranges(self._ranges)
        return self._rle

    def to_cbor(self) -> bytes:
        """The CBOR form's Python value: the RLE+ bytes; ValueError if they exceed 32 KiB."""
        data = self.to_bytes()
        if len(data) > MAX_ENCODED_SIZE:
            raise ValueError(f"encoded bitfield of {len(data)} bytes exceeds {MAX_ENCODED_SIZE}")
        return data

    def to_json(self, network: str = "") -> list[int]:
        """go-bitfield's JSON form (see to_json_runs); the network prefix plays no part."""
        return self.to_json_runs()

    def to_json_runs(self) -> list[int]:
        """The Lotus JSON form: run lengths starting with a run of zeros."""
        out = []
        index = 0
        for start, end in self._ranges:
            out.append(start - index)
            out.append(end - start)
            index = end
        return out or [0]

    # queries ----------------------------------------------------------------------------------------
    def ranges(self) -> tuple[Range, ...]:
        """The set as sorted, disjoint, non-adjacent half-open ranges."""
        return self._ranges

    def runs(self) -> Iterator[tuple[bool, int]]:
        """Alternating (value, length) runs from bit 0, without a trailing run of zeros."""
        index = 0
        for start, end in self._ranges:
            if start > index:
                yield (False, start - index)
            yield (True, end - start)
            index = end

    def count(self) -> int:
        """Number of set bits."""
        if self._count is None:
            self._count = sum(end - start for start, end in self._ranges)
        return self._count

    def is_empty(self) -> bool:
        return not self._ranges

    def __bool__(self) -> bool:
        return bool(self._ranges)

    def contains(self, bit: int) -> bool:
        if self._starts is None:
            self._starts = [start for start, _ in self._ranges]
        i = bisect_right(self._starts, bit) - 1
        return i >= 0 and bit < self._ranges[i][1]

    def __contains__(self, bit: object) -> bool:
        return type(bit) is int and self.contains(bit)

    def first(self) -> int:
        if not self._ranges:
            raise NoBitsSet("bitfield has no set bits")
        return self._ranges[0][0]

    def last(self) -> int:
        if not self._ranges:
            raise NoBitsSet("bitfield has no set bits")
        return self._ranges[-1][1] - 1

    def __iter__(self) -> Iterator[int]:
        """Every set bit in increasing order (beware of huge dense sets)."""
        for start, end in self._ranges:
            yield from range(start, end)

    def to_list(self, max_count: int) -> list[int]:
        """All set bits, refusing sets larger than max_count (go-bitfield All)."""
        if self.count() > max_count:
            raise ValueError(f"bitfield has {self.count()} bits, more than the limit of {max_count}")
        return list(self)

    # set algebra --------------------------------------------------------------------------------------
    def union(self, *others: "BitField") -> "BitField":
        if not others:
            return self
        if len(others) == 1 and not self._ranges:
            return others[0]
        merged = merge(self._ranges, *(o._ranges for o in others))
        return BitField._of(_coalesce(merged))

    def intersection(self, other: "BitField") -> "BitField":
        return BitField._of(_intersect(self._ranges, other._ranges))

    def difference(self, other: "BitField") -> "BitField":
        """Bits of self not in other (go-bitfield SubtractBitField)."""
        if not other._ranges or not self._ranges:
            return self
        return BitField._of(_subtract(self._ranges, other._ranges))

    subtract = difference

    def __or__(self, other: "BitField") -> "BitField":
        return self.union(other)

    def __and__(self, other: "BitField") -> "BitField":
        return self.intersection(other)

    def __sub__(self, other: "BitField") -> "BitField":
        return self.difference(other)

    def issubset(self, other: "BitField") -> bool:
        return not _subtract(self._ranges, other._ranges)

    def isdisjoint(self, other: "BitField") -> bool:
        return not _intersect(self._ranges, other._ranges)

    def with_set(self, bit: int) -> "BitField":
        """A copy with bit set."""
        return self.union(BitField.from_range(bit, bit + 1))

    def with_unset(self, bit: int) -> "BitField":
        """A copy with bit cleared."""
        return self.difference(BitField.from_range(bit, bit + 1))

    def cut(self, other: "BitField") -> "BitField":
        """Remove other's bits from self and close the gaps: each remaining bit moves down by the
        number of other's bits below it (go-bitfield CutBitField)."""
        b = other._ranges
        pieces: list[Range] = []
        j = 0
        removed = 0  # bits of other entirely below b[j]
        for start, end in _subtract(self._ranges, b):
            while j < len(b) and b[j][1] <= start:
                removed += b[j][1] - b[j][0]
                j += 1
            pieces.append((start - removed, end - removed))
        return BitField._of(_coalesce(pieces))

    def slice(self, start: int, count: int) -> "BitField":
        """Skip the first start set bits and keep the next count (go-bitfield Slice); ValueError if
        fewer than start + count bits are set."""
        if start < 0 or count < 0:
            raise ValueError("slice start and count must be non-negative")
        out: list[Range] = []
        skip = start
        want = count
        for lo, hi in self._ranges:
            if want == 0:
                break
            size = hi - lo
            if skip >= size:
                skip -= size
                continue
            lo += skip
            skip = 0
            take = min(hi - lo, want)
            out.append((lo, lo + take))
            want -= take
        if want:
            raise ValueError("not enough bits set in field to satisfy slice count")
        return BitField._of(tuple(out))

    # value semantics ------------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return isinstance(other, BitField) and other._ranges == self._ranges

    def __hash__(self) -> int:
        return hash(self._ranges)

    def __repr__(self) -> str:
        shown = ", ".join(f"{s}" if e == s + 1 else f"{s}..{e - 1}" for s, e in self._ranges[:8])
        more = ", ..." if len(self._ranges) > 8 else ""
        return f"BitField({{{shown}{more}}})"
