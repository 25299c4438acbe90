"""chain/sync's ChainExchange over the chain exchange client of node/p2p: the announcing peers are
asked first, then every other peer that serves the protocol (best first, as the client ranks them)."""

from collections.abc import Sequence

from chain.consensus.fullblock import FullBlock
from chain.sync.exchange import ExchangeError, Peer
from chain.types.block import BlockHeader
from chain.types.tipset import TipSet, TipSetKey
from node.p2p.chainxchg import ChainExchangeClient, ChainExchangeError, Options, Request
from node.p2p.protocols import PeerID


class XchgExchange:
    def __init__(self, client: ChainExchangeClient) -> None:
        self.client = client

    def _peers(self, prefer: Sequence[Peer]) -> list[PeerID]:
        first = [p for p in prefer if isinstance(p, PeerID)]
        return first + [p for p in self.client.candidates() if p not in first]

    async def headers(self, head: TipSetKey, count: int, *, prefer: Sequence[Peer]) -> list[TipSet]:
        try:
            return await self.client.get_blocks(head, count, peers=self._peers(prefer))
        except ChainExchangeError as exc:
            raise ExchangeError(str(exc)) from None

    async def messages(
        self, tipsets: Sequence[TipSet], *, prefer: Sequence[Peer]
    ) -> list[tuple[FullBlock, ...]]:
        try:
            answer = await self.client.get_chain_messages(tipsets, peers=self._peers(prefer))
        except ChainExchangeError as exc:
            raise ExchangeError(str(exc)) from None
        return [
            tuple(FullBlock(h, m.bls, m.secpk) for h, m in zip(ts.blocks, per_block, strict=True))
            for ts, per_block in zip(tipsets, answer, strict=False)
        ]

    async def full_tipset(self, key: TipSetKey, *, prefer: Sequence[Peer]) -> tuple[FullBlock, ...]:
        """One tipset with its messages (a hello's head, a gossiped block whose messages we lack)."""
        request = Request(key.cids, 1, Options.HEADERS | Options.MESSAGES)
        try:
            segment = await self.client.fetch(request, peers=self._peers(prefer))
        except ChainExchangeError as exc:
            raise ExchangeError(str(exc)) from None
        ts, messages = segment.tipsets[0], segment.messages[0]
        return tuple(FullBlock(h, m.bls, m.secpk) for h, m in zip(ts.blocks, messages, strict=True))

    async def block(self, header: BlockHeader, *, prefer: Sequence[Peer]) -> FullBlock:
        """A block's messages, asking for the one-block tipset of it."""
        (block,) = await self.full_tipset(TipSetKey((header.cid(),)), prefer=prefer)
        return block
