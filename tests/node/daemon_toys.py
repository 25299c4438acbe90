"""Toy services for tests/node/test_daemon.py, run in a child process:
`python -m tests.node.daemon_toys SCENARIO [STOP_TIMEOUT]`. Logs are JSON lines on stderr."""

import sys
import time
from typing import Any

import structlog
import trio

from node import logs
from node.daemon import TaskStatus, run_node

log = structlog.get_logger("toy")


class Idle:
    """Ready at once, then waits to be cancelled."""

    def __init__(self, name: str, start_delay: float = 0.0) -> None:
        self.name = name
        self.start_delay = start_delay

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        await trio.sleep(self.start_delay)
        task_status.started()
        await trio.sleep_forever()


class FailsAtStart:
    name = "broken"

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        await trio.sleep(0.05)
        raise OSError(98, "Address already in use")


class CrashesLater:
    """Ready at once, then fails with error after delay seconds."""

    def __init__(self, name: str, delay: float, error: Exception) -> None:
        self.name = name
        self.delay = delay
        self.error = error

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep(self.delay)
        raise self.error


class ReturnsLater:
    name = "quitter"

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep(0.3)


class SlowToStop:
    """Takes a while to clean up after it is cancelled (e.g. flushing a write batch)."""

    name = "flusher"

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(0.5)
                log.info("flushed")


class WithWorkers:
    """Runs its own nursery of workers, as a real service does."""

    name = "workers"

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(trio.sleep_forever)
            task_status.started()


class StuckInThread:
    """Blocked in a thread that cannot be abandoned: only the stop deadline ends the process."""

    name = "stuck"

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.to_thread.run_sync(time.sleep, 60)


SCENARIOS: dict[str, list[Any]] = {
    "ok": [Idle("chain", 0.05), Idle("mpool"), SlowToStop(), WithWorkers(), Idle("rpc", 0.05)],
    "fail-start": [Idle("chain"), Idle("mpool"), FailsAtStart(), Idle("rpc")],
    "crash": [Idle("chain"), CrashesLater("crasher", 0.3, RuntimeError("lost the database")), Idle("rpc")],
    "returns": [Idle("chain"), ReturnsLater(), Idle("rpc")],
    "stuck": [Idle("chain"), StuckInThread(), Idle("rpc")],
    "slow-start": [Idle("chain"), Idle("sealer", 30.0), Idle("rpc")],
}


def main() -> int:
    logs.configure(json=True, level="info")
    scenario = sys.argv[1]
    stop_timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    return run_node(SCENARIOS[scenario], stop_timeout=stop_timeout)


if __name__ == "__main__":
    sys.exit(main())
