"""What the state manager needs of the chain store, as a protocol.

The chain store (chain/store/chainstore.py) implements it over LevelDB; tests use an in-memory one.
Tipsets are looked up by key and by height along the chain that ends at an anchor tipset, with Lotus's
rule for null rounds (ChainStore.GetTipsetByHeight): a height without a tipset yields the first tipset
above it, or with prev=True the last one below it.
"""

from typing import Final, Protocol

from chain.store.blockstore import Blockstore
from chain.types.block import BlockHeader
from chain.types.message import Message, SignedMessage
from chain.types.tipset import TipSet, TipSetKey

# search_msg's limit meaning "search back to the genesis" (lotus api.LookbackNoLimit).
LOOKBACK_NO_LIMIT: Final = -1


class TipsetNotFound(LookupError):
    """A tipset the caller asked for is not in the chain store."""


class ChainReader(Protocol):
    @property
    def blockstore(self) -> Blockstore:
        """Where headers, messages and states live."""
        ...

    def get_tipset(self, key: TipSetKey) -> TipSet:
        """The tipset of key; TipsetNotFound if any of its blocks is unknown."""
        ...

    def get_tipset_by_height(self, height: int, anchor: TipSet, prev: bool = False) -> TipSet:
        """The tipset at height on the chain ending at anchor (anchor itself at its own height); over a
        null round the first tipset above it, or the last below it when prev is True. ValueError if
        height is above anchor's or negative."""
        ...

    def block_messages(self, header: BlockHeader) -> tuple[tuple[Message, ...], tuple[SignedMessage, ...]]:
        """The block's BLS messages (unsigned) and secp256k1 messages, in block order."""
        ...
