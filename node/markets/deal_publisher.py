"""Publishing deals in batches (Lotus markets/storageadapter DealPublisher).

Deals ready to publish wait up to `period` seconds for others to join them; then, or as soon as
`max_deals` are waiting, one PublishStorageDeals message carries them all, sent from the provider's
worker (MpoolPushMessage: gas estimated, signed by the node's wallet). `publish(deal)` returns the
message's CID once the message is in the pool, so the caller records it before anything else.

`published_ids(params, return)` reads what the market answered: `IDs` are the new deal IDs of the
valid deals in order, `ValidDeals` the indexes (in the params) of the deals it took; a deal left out
was refused by the market (its start epoch passed, the client's funds fell short, ...).
"""

import math
from dataclasses import KW_ONLY, dataclass, field
from typing import ClassVar, Final

import structlog
import trio

from actors import builtin
from actors.market.types import (
    ClientDealProposal,
    MarketMethod,
    PublishStorageDealsParams,
    PublishStorageDealsReturn,
)
from chain.encoding.cid import CID
from chain.mpool.errors import MpoolError
from chain.mpool.push import SendSpec, message_to_push
from chain.types.address import Address
from chain.types.message import Message
from node.daemon import TaskStatus
from node.fullnode import FullNode
from node.wallet import WalletError

_log = structlog.get_logger(__name__)

DEFAULT_PERIOD: Final = 1.0
DEFAULT_MAX_DEALS: Final = 8


class PublishFailed(Exception):
    """The publish message could not be sent; the message says why (the pool's or the wallet's words)."""


@dataclass(eq=False)
class _Waiting:
    deal: ClientDealProposal
    done: trio.Event = field(default_factory=trio.Event)
    cid: CID | None = None
    error: str = ""


def publish_message(sender: Address, deals: list[ClientDealProposal]) -> Message:
    return message_to_push(
        builtin.STORAGE_MARKET_ACTOR_ADDR,
        sender,
        method=MarketMethod.PublishStorageDeals,
        params=PublishStorageDealsParams(tuple(deals)),
    )


def published_ids(params: PublishStorageDealsParams, result: PublishStorageDealsReturn) -> list[int | None]:
    """For each deal of the params, its new deal ID, or None if the market left it out."""
    valid = sorted(result.valid_deals)
    if len(valid) != len(result.ids) or any(i >= len(params.deals) for i in valid):
        raise ValueError(
            f"the market's answer does not fit the message: {len(result.ids)} IDs for valid deals {valid} "
            f"of {len(params.deals)}"
        )
    ids: list[int | None] = [None] * len(params.deals)
    for index, deal_id in zip(valid, result.ids, strict=True):
        ids[index] = deal_id
    return ids


@dataclass(eq=False, repr=False)
class DealPublisher:
    """Batches deals into PublishStorageDeals messages (a service: `run`)."""

    name: ClassVar[str] = "deal-publisher"

    node: FullNode
    sender: Address
    _: KW_ONLY
    period: float = DEFAULT_PERIOD
    max_deals: int = DEFAULT_MAX_DEALS
    spec: SendSpec | None = None

    def __post_init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[_Waiting](math.inf)

    async def publish(self, deal: ClientDealProposal) -> CID:
        """Queue the deal for the next batch; the CID of the message carrying it, once it is in the pool."""
        waiting = _Waiting(deal)
        self._send.send_nowait(waiting)
        await waiting.done.wait()
        if waiting.cid is None:
            raise PublishFailed(waiting.error)
        return waiting.cid

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            batch = [await self._receive.receive()]
            with trio.move_on_after(self.period):
                while len(batch) < self.max_deals:
                    batch.append(await self._receive.receive())
            await self._send_batch(batch)

    async def _send_batch(self, batch: list[_Waiting]) -> None:
        message = publish_message(self.sender, [w.deal for w in batch])

        def push() -> CID:
            return self.node.pusher.push_message(message, self.spec).cid()

        try:
            cid = await self.node.run_sync(push)
        except (MpoolError, WalletError) as exc:
            _log.warning("deals.publish_refused", deals=len(batch), error=str(exc))
            for waiting in batch:
                waiting.error = f"the publish message was refused: {exc}"
                waiting.done.set()
            return
        _log.info("deals.publish_sent", message=str(cid), deals=len(batch))
        for waiting in batch:
            waiting.cid = cid
            waiting.done.set()
