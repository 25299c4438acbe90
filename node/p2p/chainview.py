"""What the networking layer reads of the chain: the `ChainView` that chain/chainstore's ChainStore is.

Hello announces the head and the genesis; the chain exchange server walks tipsets back from a key and
gathers their messages. The methods are plain (not async): they read memory or LevelDB, and the server
calls them from a worker thread. A missing tipset or message raises LookupError (the store's
TipSetNotFound and BlockNotFound are such); any other exception is an internal error of the node,
answered as such.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from chain.encoding.cid import CID
from chain.types.block import BlockHeader
from chain.types.message import Message, SignedMessage
from chain.types.tipset import TipSet, TipSetKey


@dataclass(frozen=True, slots=True)
class IncludedMessages:
    """The messages a block includes, in block order: BLS ones without signatures, secp256k1 ones
    signed. (Not the store's IncludedMessages, which are what a tipset applies, duplicates left out.)"""

    bls: tuple[Message, ...] = ()
    secpk: tuple[SignedMessage, ...] = ()


# A message block as a store holds it: its CID and its bytes.
MessageBlock = tuple[CID, bytes]


class ChainView(Protocol):
    def genesis(self) -> BlockHeader:
        """The genesis block (hello's GenesisHash is its CID)."""

    def head(self) -> TipSet:
        """The heaviest tipset."""

    def head_weight(self) -> int:
        """The heaviest tipset's weight."""

    def load_tipset(self, key: TipSetKey) -> TipSet:
        """The tipset of exactly these blocks; LookupError if it is not stored."""

    def message_blocks(self, header: BlockHeader) -> tuple[Sequence[MessageBlock], Sequence[MessageBlock]]:
        """A stored block's BLS (unsigned) and secp256k1 (signed) message blocks in block order, each its
        CID and the bytes stored under it (canonical: strict decoding would accept them; they are
        served as they are); LookupError if one is missing."""
