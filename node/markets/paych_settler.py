"""The settler: redeems our best vouchers of a channel that pays us once it starts settling (lotus
paychmgr/settler).

When a channel settles, only the vouchers redeemed before its settle height count; vouchers kept for
later are lost. After every head change the settler looks at the inbound channels this node tracks, and
for each one settling on chain whose settle height is still ahead, it submits the best spendable voucher
of every lane that has one not yet submitted (with the proof stored for its condition). Lotus reacts to
the Settle message; reading the channel's state instead also catches a settle height moved by a
voucher's MinSettleHeight, and vouchers that arrive after the settle began.
"""

from typing import Final

import structlog
import trio

from chain.encoding.cid import CID
from chain.types.tipset import TipSet
from node.daemon import TaskStatus
from node.markets.paych import PaychManager
from node.markets.paych_types import PaychError
from node.pulse import Pulse

_log = structlog.get_logger(__name__)

SUBSCRIPTION_BUFFER: Final = 16


class PaychSettler:
    """A node service (`run`); `check(head)` is one pass, which `run` makes after each head change."""

    name = "paych-settler"

    def __init__(self, manager: PaychManager) -> None:
        self.manager = manager
        self.submitted: list[CID] = []  # every UpdateChannelState message this settler sent
        self._processed = -1  # the height of the last head checked
        self._progress = Pulse()

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        chain = self.manager.node.chain
        changes = chain.subscribe(SUBSCRIPTION_BUFFER)
        task_status.started()
        while True:
            try:
                await changes.receive()
            except trio.EndOfChannel:
                # The store dropped us for lagging: take a new subscription and look at the head.
                changes = chain.subscribe(SUBSCRIPTION_BUFFER)
                continue
            await self.check(chain.head())

    async def check(self, head: TipSet) -> list[CID]:
        """Submit what settling channels need now; the messages sent."""
        sent = []
        for channel, settling_at in await self.manager.settling_inbound():
            try:
                best = await self.manager.best_spendable_by_lane(channel)
            except PaychError as exc:
                _log.error("paych settler cannot read vouchers", channel=str(channel), error=str(exc))
                continue
            for lane, voucher in sorted(best.items()):
                try:
                    cid = await self.manager.submit_voucher(channel, voucher, b"", b"")
                except PaychError as exc:
                    _log.error("paych settler submit failed", channel=str(channel), lane=lane, error=str(exc))
                    continue
                _log.info(
                    "paych settler submitted voucher",
                    channel=str(channel),
                    lane=lane,
                    amount=voucher.amount,
                    settling_at=settling_at,
                    message=str(cid),
                )
                sent.append(cid)
        self.submitted.extend(sent)
        self._processed = max(self._processed, head.height)
        self._progress.fire()
        return sent

    async def wait_processed(self, ts: TipSet) -> None:
        """Return once a pass has looked at a head at least as high as ts."""
        while self._processed < ts.height:
            await self._progress.next.wait()
