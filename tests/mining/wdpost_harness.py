"""The Window PoSt scheduler as its tests run it: over tests/mining/vm_node.py's chain executed by the VM,
whose devnet genesis gives miner t01000 pre-sealed 2 KiB sectors two per deadline from deadline 0 (devnet
profile: 12 deadlines of 10 epochs, challenge 2 epochs before a deadline opens, fault cutoff 5 epochs
before; this genesis's first period starts at -62, so deadline d opens at 58 + 10 d and again 120
epochs later).

The scheduler runs as the node runs it, a trio service; the test mines one tipset at a time and waits
until the scheduler has handled it, so every message it pushes can make the next block.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import trio

from actors.miner.types import MinerMethod, SubmitWindowedPoStParams
from chain.encoding import dagcbor
from chain.types.message import SignedMessage
from chain.types.tipset import TipSet
from chain.vm.exitcode import ExitCode
from node.mining.wdpost import WindowPoStScheduler
from tests.mining.vm_node import VMNode

SECTOR: Final = 2048
WAIT: Final = 60  # seconds any one wait may take before the test fails


def deadline_open(index: int, period: int = 0) -> int:
    return 58 + 10 * index + 120 * period


class Running:
    """A scheduler under the test's nursery, which the test may stop and replace."""

    def __init__(self, node: VMNode, nursery: trio.Nursery, **options: Any) -> None:
        self.node = node
        self.nursery = nursery
        self.options = options
        self.scheduler: WindowPoStScheduler | None = None
        self.scope: trio.CancelScope | None = None

    async def start(self) -> WindowPoStScheduler:
        scheduler = WindowPoStScheduler(
            self.node.miner,
            chain=self.node,
            state=self.node,
            pusher=self.node,
            sectors=self.node.sectors,
            policy=self.node.policy,
            pending=self.node,
            search=self.node,
            **self.options,
        )

        async def serve(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            with trio.CancelScope() as scope:
                self.scope = scope
                await scheduler.run(task_status=task_status)

        with trio.fail_after(WAIT):
            await self.nursery.start(serve)
            await scheduler.wait_processed(self.node.head)
        self.scheduler = scheduler
        return scheduler

    def stop(self) -> None:
        assert self.scope is not None
        self.scope.cancel()
        self.scheduler = None

    async def tipset(self, ts: TipSet | None = None) -> TipSet:
        """The next tipset (or ts, made the head), then wait for the scheduler to handle it."""
        if ts is None:
            ts = self.node.advance()
        else:
            self.node.set_head(ts)
        if self.scheduler is not None:
            with trio.fail_after(WAIT):
                await self.scheduler.wait_processed(ts)
        return ts

    async def advance_to(self, height: int) -> None:
        while self.node.head.height < height:
            await self.tipset()


@asynccontextmanager
async def running(node: VMNode, **options: Any) -> AsyncIterator[Running]:
    async with trio.open_nursery() as nursery:
        harness = Running(node, nursery, **options)
        await harness.start()
        yield harness
        nursery.cancel_scope.cancel()


def posts(node: VMNode) -> list[tuple[SignedMessage, SubmitWindowedPoStParams]]:
    out = []
    for signed in node.pushed:
        if signed.message.method != MinerMethod.SubmitWindowedPoSt:
            continue
        out.append((signed, SubmitWindowedPoStParams.from_cbor(dagcbor.decode(signed.message.params))))
    return out


def landed_ok(node: VMNode, signed: SignedMessage) -> int:
    """The height a message executed at on the head's chain, which it must have done successfully."""
    found = node.landed(signed.cid())
    assert found is not None, f"{signed.cid()} is not on chain"
    assert found.ret.exit_code == ExitCode.Ok, found.ret.error
    return found.tipset.height
