"""The service runner, with toy services (tests/node/daemon_toys.py) in a child process: start in order,
SIGTERM and SIGINT stop everything in reverse order within 5 s, a service failing at start or while
running stops the others and the process exits non-zero with a message naming it, a stuck service ends
the process at the deadline. In-process tests cover request_stop (the Shutdown RPC's path)."""

import os
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from node.daemon import ServiceFailed, ServiceRunner, ServiceStartError, TaskStatus
from tests.node.daemon_toys import CrashesLater
from tests.polling import wait_until
from tests.processes import JsonLinesChild, killed_at_end


class Child(JsonLinesChild):
    """A toy node in a child process; its JSON log lines (stderr) read with a deadline."""

    def __init__(self, scenario: str, *args: str) -> None:
        super().__init__([sys.executable, "-m", "tests.node.daemon_toys", scenario, *args], on_stderr=True)

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.records

    def wait_for(self, event: str, service: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
        """The first log record of event (for service, if given), waiting for it up to timeout."""
        return self.first(
            lambda r: r["event"] == event and service in (None, r.get("service")), timeout, repr(event)
        )

    def logged(self, event: str) -> list[str]:
        return [r["service"] for r in self.events if r["event"] == event]


@pytest.fixture
def child() -> Iterator[list[Child]]:
    yield from killed_at_end(Child.kill)


def start(children: list[Child], scenario: str, *args: str) -> Child:
    children.append(Child(scenario, *args))
    return children[-1]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_every_service_in_reverse_order(child: list[Child], signum: int) -> None:
    node = start(child, "ok")
    running = node.wait_for("node running")
    order = ["chain", "mpool", "flusher", "workers", "rpc"]
    assert running["services"] == order
    assert node.logged("service starting") == order and node.logged("service started") == order
    began = time.monotonic()
    os.kill(node.proc.pid, signum)
    code = node.finish()
    elapsed = time.monotonic() - began
    assert code == 0
    assert elapsed < 5.0, elapsed
    assert node.wait_for("node stopping")["reason"] == signal.Signals(signum).name
    assert node.logged("service stopped") == order[::-1]
    events = [(r["event"], r.get("service")) for r in node.events]
    assert events.index(("flushed", None)) < events.index(("service stopped", "flusher"))
    assert node.events[-1]["event"] == "node stopped"


def test_a_service_failing_at_start_stops_those_started_and_exits_non_zero(child: list[Child]) -> None:
    node = start(child, "fail-start")
    code = node.finish()
    assert code == 1
    failed = node.wait_for("service failed to start")
    assert (failed["service"], failed["error"]) == ("broken", "OSError: [Errno 98] Address already in use")
    assert node.logged("service started") == ["chain", "mpool"]
    assert node.logged("service stopped") == ["mpool", "chain"]
    assert "rpc" not in node.logged("service starting")
    final = node.wait_for("node failed")
    assert final["error"] == "service broken failed to start: OSError: [Errno 98] Address already in use"


def test_a_service_crashing_while_running_stops_the_others(child: list[Child]) -> None:
    node = start(child, "crash")
    assert node.finish() == 1
    assert node.wait_for("service failed")["error"] == "RuntimeError: lost the database"
    assert node.logged("service stopped") == ["rpc", "chain"]
    assert node.wait_for("node failed")["error"] == "service crasher failed: RuntimeError: lost the database"


def test_a_service_returning_while_running_is_a_failure(child: list[Child]) -> None:
    node = start(child, "returns")
    assert node.finish() == 1
    assert (
        node.wait_for("node failed")["error"]
        == "service quitter stopped by itself while the node was running"
    )


def test_a_stuck_service_ends_the_process_at_the_deadline(child: list[Child]) -> None:
    node = start(child, "stuck", "1.0")
    node.wait_for("node running")
    began = time.monotonic()
    os.kill(node.proc.pid, signal.SIGTERM)
    code = node.finish()
    assert code == 2
    assert time.monotonic() - began < 5.0
    assert node.wait_for("service did not stop in time")["service"] == "stuck"
    assert node.wait_for("services did not stop in time")["services"] == ["stuck"]
    assert node.logged("service stopping") == ["rpc", "stuck", "chain"]
    assert node.logged("service stopped") == ["rpc", "chain"]


def test_a_signal_during_a_slow_start_stops_at_once(child: list[Child]) -> None:
    node = start(child, "slow-start")
    node.wait_for("service starting", service="sealer")
    began = time.monotonic()
    os.kill(node.proc.pid, signal.SIGINT)
    assert node.finish() == 0
    assert time.monotonic() - began < 5.0
    assert node.logged("service started") == ["chain"]
    assert node.logged("service stopped") == ["chain"]


# -- in process --------------------------------------------------------------------------------------


class Recorder:
    def __init__(self, name: str, journal: list[str]) -> None:
        self.name = name
        self.journal = journal

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        self.journal.append(f"start {self.name}")
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            self.journal.append(f"stop {self.name}")


class Refuses:
    """A service that fails to start with ValueError(reason)."""

    name = "refuser"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        raise ValueError(self.reason)


async def test_request_stop_stops_in_reverse_order() -> None:
    journal: list[str] = []
    runner = ServiceRunner([Recorder(n, journal) for n in ("a", "b", "c")], signals=())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(runner.run)
        await wait_until(lambda: len(journal) >= 3, what="the services starting")
        runner.request_stop("Shutdown")
        runner.request_stop("again")  # a second request changes nothing
    assert journal == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]
    assert runner.failure is None


async def test_start_failure_is_raised_with_the_service_name() -> None:
    journal: list[str] = []
    services = [Recorder("a", journal), Refuses("bad genesis"), Recorder("c", journal)]
    runner = ServiceRunner(services, signals=())
    with pytest.raises(
        ServiceStartError, match="service refuser failed to start: ValueError: bad genesis"
    ) as e:
        await runner.run()
    assert e.value.service == "refuser"
    assert journal == ["start a", "stop a"]


async def test_never_calling_started_is_a_start_failure() -> None:
    class Forgets:
        async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
            return None

    with pytest.raises(ServiceStartError, match="service Forgets failed to start: RuntimeError"):
        await ServiceRunner([Forgets()], signals=()).run()


async def test_failure_while_running_is_raised() -> None:
    journal: list[str] = []
    with pytest.raises(ServiceFailed, match="service fails failed: KeyError: 'x'"):
        await ServiceRunner(
            [Recorder("a", journal), CrashesLater("fails", 0.01, KeyError("x"))], signals=()
        ).run()
    assert journal == ["start a", "stop a"]


async def test_a_service_added_while_running_stops_with_the_others_in_reverse_order() -> None:
    journal: list[str] = []
    runner = ServiceRunner([Recorder(n, journal) for n in ("a", "b")], signals=())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(runner.run)
        await wait_until(lambda: len(journal) >= 2, what="the services starting")
        await runner.add(Recorder("c", journal))
        await runner.add(Recorder("d", journal))
        assert journal == ["start a", "start b", "start c", "start d"]
        runner.request_stop("Shutdown")
    assert journal[4:] == ["stop d", "stop c", "stop b", "stop a"]
    assert runner.failure is None


async def test_a_service_added_that_fails_to_start_is_raised_and_the_node_runs_on() -> None:
    journal: list[str] = []
    runner = ServiceRunner([Recorder("a", journal)], signals=())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(runner.run)
        await wait_until(lambda: len(journal) >= 1, what="the services starting")
        with pytest.raises(ServiceStartError, match="service refuser failed to start: ValueError: no key"):
            await runner.add(Refuses("no key"))
        assert journal == ["start a"]
        runner.request_stop("Shutdown")
    with pytest.raises(ServiceStartError, match="the node is not running"):
        await runner.add(Recorder("late", journal))
    assert journal == ["start a", "stop a"]
    assert runner.failure is None
