"""What the state manager and the consensus rules need of the chain store, as a protocol.

chain/chainstore/store.py's ChainStore implements it as it is (`_conforms` below has mypy check that);
keeping the list here says exactly what the state manager depends on. Tipsets are looked up by key and
by height along the chain that ends at an anchor tipset, with Lotus's rule for null rounds
(ChainStore.GetTipsetByHeight): a height without a tipset yields the last tipset below it, or with
prev=False the first one above it. Which messages a tipset applies (each sender's nonce sequence,
Lotus BlockMsgsForTipset) is the chain store's rule.
"""

from collections.abc import Sequence
from typing import Final, Protocol

from chain.chainstore.store import BlockMessages, ChainStore, TipSetNotFound
from chain.encoding.cid import CID
from chain.store.blockstore import Blockstore
from chain.types.block import BlockHeader
from chain.types.message import Message, SignedMessage
from chain.types.tipset import TipSet, TipSetKey

ChainMessage = Message | SignedMessage

# search_msg's limit meaning "search back to the genesis" (lotus api.LookbackNoLimit).
LOOKBACK_NO_LIMIT: Final = -1

__all__ = ["LOOKBACK_NO_LIMIT", "BlockMessages", "ChainMessage", "ChainReader", "TipSetNotFound"]


class ChainReader(Protocol):
    @property
    def blockstore(self) -> Blockstore:
        """Where headers, messages and states live."""
        ...

    def load_tipset(self, key: TipSetKey) -> TipSet:
        """The tipset of exactly these blocks; TipSetNotFound if one is missing."""
        ...

    def get_tipset_by_height(self, height: int, anchor: TipSet | None = None, prev: bool = True) -> TipSet:
        """The tipset at height on the chain ending at anchor (anchor itself at its own height); over a
        null round the last tipset below it, or the first above it with prev=False."""
        ...

    def messages_for_block(self, header: BlockHeader) -> tuple[list[Message], list[SignedMessage]]:
        """The block's BLS messages (unsigned) and secp256k1 messages, in block order."""
        ...

    def block_messages_for_tipset(self, ts: TipSet) -> list[BlockMessages]:
        """Per block, the messages ts applies (each sender's nonce sequence, each message once)."""
        ...

    def messages_for_tipset(self, ts: TipSet) -> list[ChainMessage]:
        """The messages ts applies, in order: its receipts match them one to one."""
        ...

    def get_message(self, cid: CID) -> ChainMessage:
        """A message by the CID Lotus knows it by (BlockNotFound, DecodeError)."""
        ...

    def put_messages(self, bls: Sequence[Message | SignedMessage], secpk: Sequence[SignedMessage]) -> CID:
        """Store a block's messages and their MsgMeta; the MsgMeta's CID (a header's Messages)."""
        ...


def _conforms(store: ChainStore) -> ChainReader:
    """ChainStore implements ChainReader (checked by mypy here)."""
    return store
