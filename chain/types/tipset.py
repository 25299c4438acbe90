"""Tipsets and tipset keys (lotus chain/types/tipset.go, tipset_key.go).

A TipSetKey is the ordered list of block CIDs; its bytes are the CIDs' bytes concatenated, its CBOR
form is one byte string of those bytes, and its CID hashes that CBOR. A key keeps the order it is
given and does not deduplicate: keys with the same CIDs in another order are different keys.

Neither is declared with chain.encoding.schema: a key is one byte string in CBOR but an array of CIDs
in JSON, and a tipset is not a CBOR object at all (its JSON form has derived Cids and Height).

A TipSet is a non-empty set of blocks at one height with the same parents (same CIDs in the same
order), each with a ticket, held in canonical order: by blake2b-256 of the ticket's VRF proof, then by
block CID bytes when two tickets are equal. filpy also refuses a block listed twice, which lotus's
NewTipSet lets through but which no valid chain contains.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.expect import expect_bytes
from chain.encoding.schema import DEFAULT_NETWORK, cid_to_json, json_object, list_kind
from chain.types.block import BlockHeader
from chain.types.election import Ticket

# cbor-gen's ByteArrayMaxLen, the limit lotus applies when decoding a key's bytes.
MAX_KEY_BYTES: Final = 2 << 20


# JSON readers of the lists these types hold.
_CIDS: Final = list_kind(CID)
_BLOCKS: Final = list_kind(BlockHeader)


class InvalidTipSet(ValueError):
    """Blocks that cannot form a tipset."""


@dataclass(frozen=True, slots=True)
class TipSetKey:
    cids: tuple[CID, ...] = ()

    def __post_init__(self) -> None:
        if type(self.cids) is not tuple:
            object.__setattr__(self, "cids", tuple(self.cids))

    def to_bytes(self) -> bytes:
        return b"".join(cid.bytes for cid in self.cids)

    @classmethod
    def from_bytes(cls, data: bytes, what: str = "TipSetKey") -> "TipSetKey":
        cids = []
        pos = 0
        while pos < len(data):
            try:
                cid, pos = CID.read(data, pos)
            except DecodeError as exc:
                raise DecodeError(f"{what}: invalid CID at byte {pos}: {exc}") from None
            cids.append(cid)
        return cls(tuple(cids))

    def to_cbor(self) -> bytes:
        return self.to_bytes()

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "TipSetKey") -> "TipSetKey":
        return cls.from_bytes(expect_bytes(raw, what, max_len=MAX_KEY_BYTES), what)

    def cid(self) -> CID:
        return CID.hash_of(dagcbor.encode(self.to_bytes()))

    def to_json(self, network: str = DEFAULT_NETWORK) -> list[dict[str, str]]:
        """Lotus JSON: an array of CIDs (not the CBOR byte string)."""
        return [cid_to_json(cid) for cid in self.cids]

    @classmethod
    def from_json(cls, raw: Any, what: str = "TipSetKey") -> "TipSetKey":
        """A JSON array of CIDs; null is the empty key (Lotus: 'the heaviest tipset')."""
        return cls(_CIDS.from_json(raw, what))

    def is_empty(self) -> bool:
        return not self.cids

    def __str__(self) -> str:
        return "{" + ",".join(str(cid) for cid in self.cids) + "}"


EMPTY_TSK: Final = TipSetKey()


def _canonical_order(block: BlockHeader) -> tuple[bytes, bytes]:
    assert block.ticket is not None  # checked before sorting
    return (block.ticket.digest(), block.cid().bytes)


@dataclass(frozen=True, slots=True)
class TipSet:
    """Blocks of one epoch sharing parents; constructing one checks that and sorts the blocks."""

    blocks: tuple[BlockHeader, ...]
    _key: TipSetKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        blocks = tuple(self.blocks)
        if not blocks:
            raise InvalidTipSet("a tipset needs at least one block")
        for block in blocks:
            if block.ticket is None:
                raise InvalidTipSet(f"block {block.cid()} has no ticket")
        first = blocks[0]
        for block in blocks[1:]:
            if block.height != first.height:
                raise InvalidTipSet(
                    f"blocks at different heights: {block.cid()} at {block.height},"
                    f" {first.cid()} at {first.height}"
                )
            if block.parents != first.parents:
                raise InvalidTipSet(f"blocks with different parents: {block.cid()} and {first.cid()}")
        ordered = tuple(sorted(blocks, key=_canonical_order))
        cids = tuple(block.cid() for block in ordered)
        if len(set(cids)) != len(cids):
            raise InvalidTipSet("the same block appears twice")
        object.__setattr__(self, "blocks", ordered)
        object.__setattr__(self, "_key", TipSetKey(cids))

    @property
    def key(self) -> TipSetKey:
        return self._key

    @property
    def cids(self) -> tuple[CID, ...]:
        return self._key.cids

    @property
    def height(self) -> int:
        return self.blocks[0].height

    @property
    def parents(self) -> TipSetKey:
        return TipSetKey(self.blocks[0].parents)

    @property
    def parent_state_root(self) -> CID:
        return self.blocks[0].parent_state_root

    @property
    def parent_message_receipts(self) -> CID:
        return self.blocks[0].parent_message_receipts

    @property
    def parent_weight(self) -> int:
        return self.blocks[0].parent_weight

    def min_ticket_block(self) -> BlockHeader:
        # Blocks are sorted by ticket, so the first holds the smallest.
        return self.blocks[0]

    def min_ticket(self) -> Ticket:
        ticket = self.blocks[0].ticket
        assert ticket is not None  # every block of a tipset has one
        return ticket

    def min_timestamp(self) -> int:
        return min(block.timestamp for block in self.blocks)

    def contains(self, cid: CID) -> bool:
        return cid in self._key.cids

    def to_json(self, network: str = DEFAULT_NETWORK) -> dict[str, Any]:
        return {
            "Cids": self.key.to_json(network),
            "Blocks": [block.to_json(network) for block in self.blocks],
            "Height": self.height,
        }

    @classmethod
    def from_json(cls, raw: Any, what: str = "TipSet") -> "TipSet":
        """Read a tipset as Lotus does: from its Blocks (Cids and Height are derived, not trusted)."""
        obj = json_object(raw, what)
        if "Blocks" not in obj:
            raise DecodeError(f"{what}: missing field 'Blocks'")
        try:
            return cls(_BLOCKS.from_json(obj["Blocks"], f"{what}.Blocks"))
        except InvalidTipSet as exc:
            raise DecodeError(f"{what}: {exc}") from None

    def is_child_of(self, parent: "TipSet") -> bool:
        """Same test as lotus: parents name exactly the parent's blocks, and the height is greater."""
        parents = self.blocks[0].parents
        same_blocks = len(parents) == len(parent.cids) and set(parents) == set(parent.cids)
        return same_blocks and self.height > parent.height


def new_tipset(blocks: Iterable[BlockHeader]) -> TipSet:
    return TipSet(tuple(blocks))


def wins_weight_tie(a: TipSet, b: TipSet) -> bool:
    """Whether a beats b when both have the same weight (lotus store.breakWeightTie).

    Tickets are compared position by position in canonical order; the first smaller ticket wins. If no
    position differs, b is kept.
    """
    for block_a, block_b in zip(a.blocks, b.blocks, strict=False):
        ticket_a, ticket_b = block_a.ticket, block_b.ticket
        assert ticket_a is not None and ticket_b is not None
        if ticket_a.less(ticket_b):
            return True
        if ticket_b.less(ticket_a):
            return False
    return False
