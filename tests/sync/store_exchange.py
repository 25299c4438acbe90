"""chain/sync's ChainExchange answered from another node's chain store in the same process: what a
peer's chain exchange server would send (node/p2p/chainxchg.py serve), without the network, and a
record of what was asked."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from chain.chainstore.store import ChainStore, TipSetNotFound
from chain.consensus.fullblock import FullBlock
from chain.sync.exchange import ExchangeError, Peer
from chain.types.tipset import TipSet, TipSetKey


@dataclass
class StoreExchange:
    source: ChainStore
    online: bool = True
    header_requests: list[int] = field(default_factory=list)  # counts asked for
    message_requests: list[int] = field(default_factory=list)  # tipsets per request
    preferred: list[Sequence[Peer]] = field(default_factory=list)

    async def headers(self, head: TipSetKey, count: int, *, prefer: Sequence[Peer]) -> list[TipSet]:
        self.header_requests.append(count)
        self.preferred.append(prefer)
        if not self.online:
            raise ExchangeError("peer: connection refused")
        out: list[TipSet] = []
        key = head
        while len(out) < count:
            try:
                ts = self.source.load_tipset(key)
            except TipSetNotFound as exc:
                if not out:
                    raise ExchangeError(f"peer: NOT_FOUND {exc}") from None
                break
            out.append(ts)
            if ts.height == 0:
                break
            key = ts.parents
        return out

    async def messages(
        self, tipsets: Sequence[TipSet], *, prefer: Sequence[Peer]
    ) -> list[tuple[FullBlock, ...]]:
        self.message_requests.append(len(tipsets))
        if not self.online:
            raise ExchangeError("peer: connection refused")
        out = []
        for ts in tipsets:
            blocks = []
            for header in ts.blocks:
                bls, secpk = self.source.messages_for_block(header)
                blocks.append(FullBlock(header, tuple(bls), tuple(secpk)))
            out.append(tuple(blocks))
        return out
