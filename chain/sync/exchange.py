"""What the syncer asks of the network: a Protocol the node's chain exchange client is adapted to
(node/chainsync/exchange.py), so that chain.sync imports nothing of the node."""

from collections.abc import Hashable, Sequence
from typing import Protocol

from chain.consensus.fullblock import FullBlock
from chain.types.tipset import TipSet, TipSetKey

# A peer, as the networking layer names it (a libp2p peer ID); the syncer only passes it back.
Peer = Hashable


class ExchangeError(Exception):
    """No peer gave a usable answer (the message says what each said)."""


class ChainExchange(Protocol):
    async def headers(self, head: TipSetKey, count: int, *, prefer: Sequence[Peer]) -> list[TipSet]:
        """Up to count tipsets from head back (head first, each the parent of the one before; fewer
        when the genesis is reached), asking the preferred peers first, then any other. Raises
        ExchangeError."""
        ...

    async def messages(
        self, tipsets: Sequence[TipSet], *, prefer: Sequence[Peer]
    ) -> list[tuple[FullBlock, ...]]:
        """The blocks of consecutive tipsets (head first, each the parent of the one before) with their
        messages, checked against the headers' Messages roots: one tuple per tipset in the same order,
        blocks in tipset order. May answer for a prefix only (a partial answer). Raises ExchangeError."""
        ...
