"""Strict DAG-CBOR: the canonical encoder and a decoder that accepts canonical bytes only.

Values map to Python as: null -> None, booleans, int (-2^64 .. 2^64-1), float (float64, finite), bytes,
str, list (tuple accepted when encoding), dict with str keys, and CID (tag 42 over 0x00 || CID bytes).

Encoding is done here rather than by cbor2 because DAG-CBOR's canonical form is not one cbor2 offers:
floats always 64-bit, no bignum tags, only tag 42. `_encode_into` is the reference encoder; the C
extension chain/encoding/_dagcbor (`python -m chain.encoding.build_ext`) gives the same bytes and errors
several times faster and is used when built. Decoding uses cbor2's C decoder for speed, then
re-encodes and compares bytes, which rejects every non-canonical form (non-minimal integers and lengths,
unsorted keys, short floats). Only when input is rejected does `_explain` scan the bytes to name the
first thing wrong with them.
"""

import math
import struct
from typing import Any

import cbor2

from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError

MAX_DEPTH = 64
_CID_TAG = 42
_UINT64_LIMIT = 1 << 64

_pack_u8 = struct.Struct(">BB").pack
_pack_u16 = struct.Struct(">BH").pack
_pack_u32 = struct.Struct(">BI").pack
_pack_u64 = struct.Struct(">BQ").pack
_pack_f64 = struct.Struct(">Bd").pack
_ONE_BYTE = [bytes((i,)) for i in range(256)]


def _head(major: int, n: int) -> bytes:
    m = major << 5
    if n < 24:
        return _ONE_BYTE[m | n]
    if n < 0x100:
        return _pack_u8(m | 24, n)
    if n < 0x10000:
        return _pack_u16(m | 25, n)
    if n < 0x100000000:
        return _pack_u32(m | 26, n)
    return _pack_u64(m | 27, n)


def array_head(length: int) -> bytes:
    """The head of an array of length items: what precedes the items' own encodings (for writing an
    array of items already encoded)."""
    return _head(4, length)


def bytes_head(length: int) -> bytes:
    """The head of a byte string of length bytes: what precedes the bytes themselves."""
    return _head(2, length)


def _map_key(item: tuple[bytes, Any]) -> tuple[int, bytes]:
    return (len(item[0]), item[0])


def _encode_into(obj: Any, out: bytearray, depth: int, limit: int) -> None:
    t = type(obj)
    if t is bytes:
        out += _head(2, len(obj))
        out += obj
    elif t is int:
        if obj >= 0:
            if obj >= _UINT64_LIMIT:
                raise ValueError(f"integer {obj} does not fit in 64 bits (DAG-CBOR has no bignums)")
            out += _head(0, obj)
        else:
            if obj < -_UINT64_LIMIT:
                raise ValueError(f"integer {obj} does not fit in 64 bits (DAG-CBOR has no bignums)")
            out += _head(1, -1 - obj)
    elif t is list or t is tuple:
        if depth >= limit:
            raise ValueError(f"nesting deeper than {limit}")
        out += _head(4, len(obj))
        for item in obj:
            _encode_into(item, out, depth + 1, limit)
    elif t is CID:
        raw = obj.bytes
        out += b"\xd8\x2a"
        out += _head(2, len(raw) + 1)
        out += b"\x00"
        out += raw
    elif t is str:
        data = obj.encode("utf-8")
        out += _head(3, len(data))
        out += data
    elif obj is None:
        out += b"\xf6"
    elif obj is True:
        out += b"\xf5"
    elif obj is False:
        out += b"\xf4"
    elif t is dict:
        if depth >= limit:
            raise ValueError(f"nesting deeper than {limit}")
        items = []
        for key, value in obj.items():
            if type(key) is not str:
                raise ValueError(f"map key {key!r} is not a string")
            items.append((key.encode("utf-8"), value))
        items.sort(key=_map_key)
        out += _head(5, len(items))
        for key_bytes, value in items:
            out += _head(3, len(key_bytes))
            out += key_bytes
            _encode_into(value, out, depth + 1, limit)
    elif t is float:
        if not math.isfinite(obj):
            raise ValueError(f"float {obj} is not allowed in DAG-CBOR")
        out += _pack_f64(0xFB, obj)
    elif isinstance(obj, bytearray | memoryview):
        _encode_into(bytes(obj), out, depth, limit)
    elif isinstance(obj, int):  # IntEnum and friends
        _encode_into(int(obj), out, depth, limit)
    else:
        raise ValueError(f"cannot encode {t.__name__} as DAG-CBOR")


def encode_python(obj: Any, max_depth: int = MAX_DEPTH) -> bytes:
    """encode() by the pure-Python reference encoder (the fallback without the C extension)."""
    out = bytearray()
    _encode_into(obj, out, 0, max_depth)
    return bytes(out)


def _encode_native(obj: Any, max_depth: int = MAX_DEPTH) -> bytes:
    return _native_encode(obj, CID, max_depth)


try:
    from chain.encoding._dagcbor import encode as _native_encode
except ImportError:  # not built (no gcc): the reference encoder, same bytes
    NATIVE = False
    _encode_depth = encode_python
else:
    NATIVE = True
    _encode_depth = _encode_native


def encode(obj: Any) -> bytes:
    """Canonical DAG-CBOR bytes of obj; ValueError for a value DAG-CBOR cannot hold."""
    return _encode_depth(obj, MAX_DEPTH)


# decoding -----------------------------------------------------------------------------------------


class _Rejected(Exception):
    """Raised inside cbor2 callbacks; carries our message out through cbor2's wrapping."""


def _tag_hook(tag: cbor2.CBORTag, _immutable: bool) -> CID:
    if tag.tag != _CID_TAG:
        raise _Rejected(f"CBOR tag {tag.tag} is not allowed (only tag 42 for CIDs)")
    value = tag.value
    if type(value) is not bytes:
        raise _Rejected("tag 42 must wrap a byte string")
    if not value or value[0] != 0:
        raise _Rejected("tag 42 CID bytes must start with the 0x00 multibase prefix")
    try:
        return CID.decode(value[1:])
    except DecodeError as exc:
        raise _Rejected(f"invalid CID in tag 42: {exc}") from None


def _reject_builtin_tag(tag: int) -> Any:
    def reject(*_args: Any) -> Any:
        raise _Rejected(f"CBOR tag {tag} is not allowed (only tag 42 for CIDs)")

    return reject


# cbor2 decodes these tags itself and never shows them to tag_hook, so each is overridden.
_BUILTIN_TAGS = (0, 1, 2, 3, 4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261, 1004, 55799)
_SEMANTIC = {tag: _reject_builtin_tag(tag) for tag in _BUILTIN_TAGS}


def _find_rejection(exc: BaseException | None) -> _Rejected | None:
    while exc is not None:
        if isinstance(exc, _Rejected):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _load(data: bytes | bytearray | memoryview, max_depth: int) -> tuple[bytes, Any]:
    """The value cbor2 reads from data (tags and shapes refused as decode says), not yet proven canonical."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected bytes to decode, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise DecodeError("empty input: no CBOR value")
    try:
        value = cbor2.loads(
            data,
            tag_hook=_tag_hook,
            semantic_decoders=_SEMANTIC,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            # cbor2 counts a CID's tag as one more level; nesting itself is checked by the re-encode.
            max_depth=max_depth + 1,
        )
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        rejected = _find_rejection(exc)
        if rejected is not None:
            raise DecodeError(str(rejected)) from None
        raise DecodeError(_explain(data, max_depth) or f"invalid CBOR: {exc}") from None
    return data, value


def _not_canonical(data: bytes, max_depth: int, what: str) -> DecodeError:
    return DecodeError(_explain(data, max_depth) or what)


def decode(data: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Decode exactly one canonical DAG-CBOR value from data, or raise DecodeError saying why not."""
    data, value = _load(data, max_depth)
    try:
        canonical = _encode_depth(value, max_depth)
    except ValueError:
        raise _not_canonical(data, max_depth, "value is not representable in DAG-CBOR") from None
    if canonical != data:
        raise _not_canonical(data, max_depth, "bytes are not in canonical DAG-CBOR form")
    return value


class _Part:
    """The mark of a sub-value whose own bytes decode_parts hands back."""

    def __repr__(self) -> str:
        return "PART"


PART = _Part()
# Where the parts of a value are, for decode_parts: PART; a list of one shape (an array whose items all
# have that shape); a tuple of shapes (an array of exactly that many items); None (a value of no
# interest). A value that does not have the shape given is taken whole, without parts.
Shape = _Part | list["Shape"] | tuple["Shape", ...] | None


def decode_parts(data: bytes, shape: Shape, max_depth: int = MAX_DEPTH) -> tuple[Any, list[bytes]]:
    """decode(data), the same value and the same errors, with the bytes of each sub-value shape marks
    PART, in the order they come: its canonical encoding, equal to the slice of data it was read from.

    Rather than encoding the value whole to compare it with data, as decode does, the arrays above the
    parts are compared head by head and every other value encoded on its own and compared where it
    stands: a canonical array is its head followed by its items' canonical encodings, so the pieces
    cover data exactly when decode would accept it, and each part's encoding comes out of that."""
    data, value = _load(data, max_depth)
    split = _Split(data)
    try:
        split.walk(value, shape, max_depth)
    except ValueError:
        raise _not_canonical(data, max_depth, "value is not representable in DAG-CBOR") from None
    if not split.canonical or split.pos != len(data):
        raise _not_canonical(data, max_depth, "bytes are not in canonical DAG-CBOR form")
    return value, split.parts


class _Split:
    """decode_parts' walk: data compared piece by piece from the start, the parts' pieces kept."""

    __slots__ = ("canonical", "data", "parts", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.canonical = True
        self.parts: list[bytes] = []

    def _expect(self, piece: bytes) -> None:
        if self.canonical and self.data.startswith(piece, self.pos):
            self.pos += len(piece)
        else:
            self.canonical = False

    def walk(self, value: Any, shape: Shape, limit: int) -> None:
        # limit: the nesting the value may still have (the encoder's max_depth less the arrays above).
        if shape is PART:
            encoded = _encode_depth(value, limit)
            self._expect(encoded)
            self.parts.append(encoded)
            return
        if type(value) is list and limit > 0:
            if type(shape) is list:
                self._expect(_head(4, len(value)))
                for item in value:
                    self.walk(item, shape[0], limit - 1)
                return
            if type(shape) is tuple and len(shape) == len(value):
                self._expect(_head(4, len(value)))
                for item, sub in zip(value, shape, strict=True):
                    self.walk(item, sub, limit - 1)
                return
        self._expect(_encode_depth(value, limit))


# diagnosis of rejected input ------------------------------------------------------------------------


class _Scan:
    """A byte scanner that walks CBOR items and raises DecodeError at the first DAG-CBOR violation."""

    def __init__(self, data: bytes, max_depth: int) -> None:
        self.data = data
        self.pos = 0
        self.max_depth = max_depth

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise DecodeError(f"truncated input: {what} at offset {self.pos} needs {n} bytes")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def head(self) -> tuple[int, int, int, int]:
        """Return (major, additional info, argument, offset of the item)."""
        start = self.pos
        first = self.take(1, "item header")[0]
        major, info = first >> 5, first & 0x1F
        if info < 24:
            return major, info, info, start
        if info == 31:
            raise DecodeError(f"indefinite-length item at offset {start} is not allowed")
        if info > 27:
            raise DecodeError(f"reserved additional information {info} at offset {start}")
        size = 1 << (info - 24)
        arg = int.from_bytes(self.take(size, "item argument"), "big")
        if major != 7:
            minimal = 24 if size == 1 else 1 << (8 * (size // 2))
            if arg < minimal:
                what = "integer" if major in (0, 1) else "length"
                raise DecodeError(f"non-minimal {what} encoding at offset {start}")
        return major, info, arg, start

    def item(self, depth: int) -> tuple[int, bytes | None]:
        """Scan one item; return its major type and, for text strings, its UTF-8 bytes.

        depth counts enclosing arrays and maps only, as the encoder does: a CID adds no level.
        """
        major, info, arg, start = self.head()
        if (major == 4 or major == 5) and depth >= self.max_depth:
            raise DecodeError(f"nesting deeper than {self.max_depth} at offset {start}")
        if major in (0, 1):
            return major, None
        if major == 2:
            self.take(arg, "byte string")
            return major, None
        if major == 3:
            raw = self.take(arg, "text string")
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DecodeError(f"text string at offset {start} is not valid UTF-8") from None
            return major, raw
        if major == 4:
            for _ in range(arg):
                self.item(depth + 1)
            return major, None
        if major == 5:
            previous: bytes | None = None
            for _ in range(arg):
                key_at = self.pos
                key_major, key = self.item(depth + 1)
                if key_major != 3 or key is None:
                    raise DecodeError(f"map key at offset {key_at} is not a text string")
                if previous is not None:
                    if key == previous:
                        raise DecodeError(f"duplicate map key {key!r} at offset {key_at}")
                    if (len(key), key) < (len(previous), previous):
                        raise DecodeError(f"map keys not in length-first order at offset {key_at}")
                previous = key
                self.item(depth + 1)
            return major, None
        if major == 6:
            if arg != _CID_TAG:
                raise DecodeError(f"CBOR tag {arg} at offset {start} is not allowed (only tag 42)")
            # Checked before descending so that a chain of tags cannot recurse.
            if self.pos < len(self.data) and self.data[self.pos] >> 5 != 2:
                raise DecodeError(f"tag 42 at offset {start} must wrap a byte string")
            self.item(depth)
            return major, None
        # major 7: simple values and floats
        if info == 20 or info == 21 or info == 22:
            return major, None
        if info == 23:
            raise DecodeError(f"'undefined' at offset {start} is not allowed")
        if info == 25 or info == 26:
            width = 16 if info == 25 else 32
            raise DecodeError(f"float{width} at offset {start} is not allowed (DAG-CBOR floats are 64-bit)")
        if info == 27:
            value = struct.unpack(">d", arg.to_bytes(8, "big"))[0]
            if not math.isfinite(value):
                raise DecodeError(f"float {value} at offset {start} is not allowed")
            return major, None
        raise DecodeError(f"simple value {arg} at offset {start} is not allowed")

    def run(self) -> None:
        self.item(0)
        if self.pos != len(self.data):
            raise DecodeError(f"{len(self.data) - self.pos} trailing bytes after the CBOR value")


def _explain(data: bytes, max_depth: int) -> str | None:
    try:
        _Scan(data, max_depth).run()
    except DecodeError as exc:
        return str(exc)
    except RecursionError:
        return f"nesting deeper than {max_depth}"
    return None


def cid_of(obj: Any) -> CID:
    """The Filecoin CID (dag-cbor, blake2b-256) of a value's canonical encoding."""
    return CID.hash_of(encode(obj))
