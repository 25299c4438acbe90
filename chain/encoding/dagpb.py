"""DAG-PB (multicodec 0x70): the protobuf blocks UnixFS is carried in, strict as the IPLD spec says.

    message PBLink { optional bytes Hash = 1; optional string Name = 2; optional uint64 Tsize = 3; }
    message PBNode { repeated PBLink Links = 2; optional bytes Data = 1; }

The encoder writes the canonical form: every link (field 2) before the data (field 1), each link's
fields in field-number order, links sorted by their names' bytes (stable), minimal varints. The decoder
applies the spec's strictness rules (ipld/specs codecs/dag-pb "Protobuf Strictness"): link fields in
order and at most once, a link without a Hash or whose Hash is not a CID is refused, no unknown field or
wire type, no duplicate Data, and Links and Data each one contiguous group. It accepts Data before Links,
since the spec tells decoders to (IPFS data exists in both orders); `encode(decode(b)) == b` holds for
canonical blocks only. Decoding does not re-sort links: their order on the wire is the order traversals
follow. Every problem is a DecodeError naming the field and the byte offset.
"""

from dataclasses import dataclass
from typing import Final

from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.varint import leb128, read_protobuf_varint

CODEC: Final = 0x70

_VARINT: Final = 0
_BYTES: Final = 2
_UINT64_MAX: Final = (1 << 64) - 1
# Tags as written: (field number << 3) | wire type.
_TAG_NODE_DATA: Final = (1 << 3) | _BYTES
_TAG_NODE_LINK: Final = (2 << 3) | _BYTES
_TAG_LINK_HASH: Final = (1 << 3) | _BYTES
_TAG_LINK_NAME: Final = (2 << 3) | _BYTES
_TAG_LINK_TSIZE: Final = (3 << 3) | _VARINT


@dataclass(frozen=True, slots=True)
class PBLink:
    """A link: the target's CID, an optional name and an optional cumulative size (Tsize)."""

    hash: CID
    name: str | None = None
    tsize: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.hash, CID):
            raise TypeError(f"PBLink.Hash must be a CID, got {type(self.hash).__name__}")
        if self.name is not None and not isinstance(self.name, str):
            raise TypeError(f"PBLink.Name must be a string, got {type(self.name).__name__}")
        if self.tsize is not None and (
            not isinstance(self.tsize, int)
            or isinstance(self.tsize, bool)
            or not 0 <= self.tsize <= _UINT64_MAX
        ):
            raise ValueError(f"PBLink.Tsize must be an unsigned 64-bit integer, got {self.tsize!r}")


@dataclass(frozen=True, slots=True)
class PBNode:
    """A node: its links in order and its optional data."""

    links: tuple[PBLink, ...] = ()
    data: bytes | None = None

    def __post_init__(self) -> None:
        if self.data is not None and not isinstance(self.data, bytes):
            raise TypeError(f"PBNode.Data must be bytes, got {type(self.data).__name__}")


# length-delimited fields (varints: chain/encoding/varint.py) -----------------------------------------


def _read_bytes(data: bytes, pos: int, what: str) -> tuple[bytes, int]:
    length, pos = read_protobuf_varint(data, pos, f"{what} length")
    if length > len(data) - pos:
        raise DecodeError(f"{what} at offset {pos}: needs {length} bytes, {len(data) - pos} remain")
    return data[pos : pos + length], pos + length


# encoding ---------------------------------------------------------------------------------------------


def _name_key(link: PBLink) -> bytes:
    return (link.name or "").encode("utf-8")


def encode_link(link: PBLink) -> bytes:
    out = bytearray()
    raw = link.hash.bytes
    out.append(_TAG_LINK_HASH)
    out += leb128(len(raw))
    out += raw
    if link.name is not None:
        name = link.name.encode("utf-8")
        out.append(_TAG_LINK_NAME)
        out += leb128(len(name))
        out += name
    if link.tsize is not None:
        out.append(_TAG_LINK_TSIZE)
        out += leb128(link.tsize)
    return bytes(out)


def encode(node: PBNode) -> bytes:
    """The canonical bytes of node; ValueError if its links are not sorted by name (as the spec requires
    of new blocks: use `sort_links` first)."""
    out = bytearray()
    previous = b""
    for index, link in enumerate(node.links):
        key = _name_key(link)
        if key < previous:
            raise ValueError(
                f"PBNode.Links[{index}]: links must be sorted by name bytes ({key!r} < {previous!r})"
            )
        previous = key
        body = encode_link(link)
        out.append(_TAG_NODE_LINK)
        out += leb128(len(body))
        out += body
    if node.data is not None:
        out.append(_TAG_NODE_DATA)
        out += leb128(len(node.data))
        out += node.data
    return bytes(out)


def sort_links(links: tuple[PBLink, ...] | list[PBLink]) -> tuple[PBLink, ...]:
    """Links in the order the spec requires: by name bytes, stable (a missing name sorts as "")."""
    return tuple(sorted(links, key=_name_key))


# decoding ---------------------------------------------------------------------------------------------


def decode_link(data: bytes, what: str = "PBLink") -> PBLink:
    pos = 0
    end = len(data)
    cid: CID | None = None
    name: str | None = None
    tsize: int | None = None
    last_field = 0
    while pos < end:
        tag_at = pos
        tag, pos = read_protobuf_varint(data, pos, f"{what} tag")
        field, wire = tag >> 3, tag & 7
        if field not in (1, 2, 3):
            raise DecodeError(f"{what} at offset {tag_at}: unknown field {field}")
        if field <= last_field:
            problem = "duplicate" if field == last_field else "out of order"
            raise DecodeError(
                f"{what} at offset {tag_at}: {problem} field {('Hash', 'Name', 'Tsize')[field - 1]}"
            )
        last_field = field
        if field == 3:
            if wire != _VARINT:
                raise DecodeError(f"{what}.Tsize at offset {tag_at}: wire type {wire}, expected varint (0)")
            tsize, pos = read_protobuf_varint(data, pos, f"{what}.Tsize")
            continue
        if wire != _BYTES:
            label = "Hash" if field == 1 else "Name"
            raise DecodeError(f"{what}.{label} at offset {tag_at}: wire type {wire}, expected bytes (2)")
        if field == 1:
            raw, pos = _read_bytes(data, pos, f"{what}.Hash")
            try:
                cid = CID.decode(raw)
            except DecodeError as exc:
                raise DecodeError(f"{what}.Hash is not a CID: {exc}") from None
        else:
            text, pos = _read_bytes(data, pos, f"{what}.Name")
            try:
                name = text.decode("utf-8")
            except UnicodeDecodeError:
                raise DecodeError(f"{what}.Name is not UTF-8") from None
    if cid is None:
        raise DecodeError(f"{what} has no Hash")
    return PBLink(cid, name, tsize)


def decode(data: bytes) -> PBNode:
    """Decode a DAG-PB block; DecodeError names what is wrong and where."""
    data = bytes(data)
    pos = 0
    end = len(data)
    links: list[PBLink] = []
    body: bytes | None = None
    links_done = False  # a Links group ended (Data came after it)
    while pos < end:
        tag_at = pos
        tag, pos = read_protobuf_varint(data, pos, "PBNode tag")
        field, wire = tag >> 3, tag & 7
        if field == 1:
            if wire != _BYTES:
                raise DecodeError(f"PBNode.Data at offset {tag_at}: wire type {wire}, expected bytes (2)")
            if body is not None:
                raise DecodeError(f"PBNode at offset {tag_at}: duplicate Data")
            body, pos = _read_bytes(data, pos, "PBNode.Data")
            links_done = bool(links)
        elif field == 2:
            if wire != _BYTES:
                raise DecodeError(f"PBNode.Links at offset {tag_at}: wire type {wire}, expected bytes (2)")
            if links_done:
                raise DecodeError(f"PBNode at offset {tag_at}: Links interleaved with Data")
            raw, pos = _read_bytes(data, pos, f"PBNode.Links[{len(links)}]")
            links.append(decode_link(raw, f"PBNode.Links[{len(links)}]"))
        else:
            raise DecodeError(f"PBNode at offset {tag_at}: unknown field {field}")
    return PBNode(tuple(links), body)


def links_of(data: bytes) -> list[CID]:
    """The CIDs a DAG-PB block links to, in order."""
    return [link.hash for link in decode(data).links]
