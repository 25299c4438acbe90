"""An in-memory chain store implementing chain/stmgr/chain.py's ChainReader, for tests, benchmarks and
scratch chains: tipsets by key, heights found by walking parents back from the anchor (Lotus's
null-round rule), messages read from the blockstore. The node uses the LevelDB chain store."""

from chain.stmgr.chain import TipsetNotFound
from chain.stmgr.messages import load_block_messages
from chain.store.blockstore import Blockstore
from chain.types.block import BlockHeader
from chain.types.message import Message, SignedMessage
from chain.types.tipset import TipSet, TipSetKey


class MemoryChain:
    def __init__(self, store: Blockstore, genesis: BlockHeader) -> None:
        self._store = store
        self._tipsets: dict[TipSetKey, TipSet] = {}
        self.genesis = TipSet((genesis,))
        self.put_tipset(self.genesis)
        self.head = self.genesis

    @property
    def blockstore(self) -> Blockstore:
        return self._store

    def put_tipset(self, ts: TipSet) -> None:
        for block in ts.blocks:
            self._store.put(block.cid(), block.to_bytes())
        self._tipsets[ts.key] = ts

    def get_tipset(self, key: TipSetKey) -> TipSet:
        try:
            return self._tipsets[key]
        except KeyError:
            raise TipsetNotFound(f"tipset {key} is not in the chain store") from None

    def get_tipset_by_height(self, height: int, anchor: TipSet, prev: bool = False) -> TipSet:
        if not 0 <= height <= anchor.height:
            raise ValueError(f"height {height} is not between 0 and the anchor's {anchor.height}")
        cur = anchor
        while cur.height > height:
            parent = self.get_tipset(cur.parents)
            if parent.height < height:
                return parent if prev else cur
            cur = parent
        return cur

    def block_messages(self, header: BlockHeader) -> tuple[tuple[Message, ...], tuple[SignedMessage, ...]]:
        return load_block_messages(self._store, header.messages)
