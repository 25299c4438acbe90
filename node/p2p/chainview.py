"""What the networking layer reads of the chain: the `ChainView` the chain store offers.

Hello announces the head and the genesis; the chain exchange server walks tipsets back from a key and
gathers their messages. The methods are plain (not async): they read memory or LevelDB, and the server
calls them from a worker thread. A missing tipset or message list is `None`; any exception is an
internal error of the node, answered as such.
"""

from dataclasses import dataclass
from typing import Protocol

from chain.encoding.cid import CID
from chain.types.block import BlockHeader
from chain.types.message import Message, SignedMessage
from chain.types.tipset import TipSet, TipSetKey


@dataclass(frozen=True, slots=True)
class BlockMessages:
    """A block's messages in block order: BLS ones without signatures, secp256k1 ones signed."""

    bls: tuple[Message, ...] = ()
    secpk: tuple[SignedMessage, ...] = ()


class ChainView(Protocol):
    def genesis_cid(self) -> CID:
        """The CID of the genesis block (hello's GenesisHash)."""

    def head(self) -> TipSet:
        """The heaviest tipset."""

    def head_weight(self) -> int:
        """The heaviest tipset's weight."""

    def tipset(self, key: TipSetKey) -> TipSet | None:
        """The tipset with exactly these blocks, if stored."""

    def block_messages(self, header: BlockHeader) -> BlockMessages | None:
        """The messages of a stored block, or None if they are not all at hand."""
