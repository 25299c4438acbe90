"""The service runner: every service of a node as a trio task under one nursery.

A service is an object with `async def run(self, *, task_status=trio.TASK_STATUS_IGNORED)` that calls
`task_status.started()` once it is ready and returns only when cancelled (python-trio's convention, as
`serve_listeners`). An optional `name` attribute names it in the logs (else its class name).

`ServiceRunner(services).run()`:
- starts the services in order, each only once the one before it has called started();
- stops them on SIGINT or SIGTERM (or `request_stop()`, e.g. from the Shutdown RPC method) in reverse
  order, each cancelled and waited for in turn, all within `stop_timeout` (5 s). A second signal while
  stopping, or the deadline passing, ends the process at once when `exit_on_stuck` is set (what the
  command line wants: a service stuck in a thread cannot be cancelled any other way);
- if a service fails to start (raises before started()), stops those already started and raises
  ServiceStartError naming it; if a service fails or returns while the node runs, stops the others and
  raises ServiceFailed;
- `await add(service)` starts one more service while the node runs (a miner created from it); it stops
  with the others, in reverse order of start.
Each start and stop is logged (structlog: `service starting`, `service started`, `service stopping`,
`service stopped`, with the service name and seconds taken).

`run_node(services)` is the synchronous entry point for the command line: it runs the runner under
trio.run and returns the process exit code (0 after a clean stop, 1 when a service failed);
`run_runner(runner)` does the same for a runner the caller made (to give its `request_stop` to the
Shutdown method, or an `on_running` callback that tells the user the node is up).
"""

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol, overload

import structlog
import trio

STOP_TIMEOUT: Final = 5.0
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_STUCK: Final = 2  # the services did not stop in time, or a second signal came
STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)

log = structlog.get_logger("daemon")


class TaskStatus(Protocol):
    """What a service's run() gets as task_status (trio's TaskStatus, as far as services use it)."""

    @overload
    def started(self) -> None: ...
    @overload
    def started(self, value: Any) -> None: ...


class Service(Protocol):
    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None: ...


def service_name(service: Service) -> str:
    name = getattr(service, "name", None)
    return name if isinstance(name, str) and name else type(service).__name__


class ServiceError(Exception):
    """A service that failed; the node stopped because of it."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.service = name


class ServiceStartError(ServiceError):
    pass


class ServiceFailed(ServiceError):
    pass


def describe_error(exc: BaseException) -> str:
    """An exception for a log line or a status: its type, and its message when it has one."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Status:
    """task_status for a service: forwards started() and remembers that it was called."""

    def __init__(self, inner: TaskStatus) -> None:
        self._inner = inner
        self.started_at: float | None = None

    def started(self, value: Any = None) -> None:
        self.started_at = time.monotonic()
        self._inner.started(value)


class _Running:
    """One service under the runner: its cancel scope and whether it has finished."""

    def __init__(self, service: Service, runner: "ServiceRunner") -> None:
        self.service = service
        self.name = service_name(service)
        self.runner = runner
        self.scope = trio.CancelScope()
        self.done = trio.Event()
        self.stop_requested_at: float | None = None

    def cancel(self) -> None:
        log.info("service stopping", service=self.name)
        self.stop_requested_at = time.monotonic()
        self.scope.cancel()

    # Any: the stubs libp2p brings (trio-typing) and trio itself type nursery.start's task_status
    # differently; services see the TaskStatus protocol above through _Status.
    async def run(self, *, task_status: Any) -> None:
        status = _Status(task_status)
        failed = False
        try:
            with self.scope:
                await self.service.run(task_status=status)
            if status.started_at is not None and not self.scope.cancel_called:
                failed = True
                log.error("service returned", service=self.name)
                message = f"service {self.name} stopped by itself while the node was running"
                self.runner.fail(ServiceFailed(self.name, message))
        except Exception as exc:
            if status.started_at is None:
                raise  # nursery.start() raises it in the runner
            failed = True
            log.error("service failed", service=self.name, error=describe_error(exc), exc_info=exc)
            self.runner.fail(ServiceFailed(self.name, f"service {self.name} failed: {describe_error(exc)}"))
        finally:
            self.done.set()
            if self.stop_requested_at is not None and not failed:
                seconds = round(time.monotonic() - self.stop_requested_at, 3)
                log.info("service stopped", service=self.name, seconds=seconds)


class ServiceRunner:
    """Runs services in one nursery (see the module docstring)."""

    def __init__(
        self,
        services: Sequence[Service],
        *,
        stop_timeout: float = STOP_TIMEOUT,
        signals: Sequence[signal.Signals] = STOP_SIGNALS,
        exit_on_stuck: bool = False,
        on_running: Callable[[], None] | None = None,
    ) -> None:
        self.services = tuple(services)
        self.on_running = on_running  # called once every service has started
        self.stop_timeout = stop_timeout
        self.signals = tuple(signals)
        self.exit_on_stuck = exit_on_stuck
        self.failure: ServiceError | None = None
        self._stop = trio.Event()
        self._starting = trio.CancelScope()
        self._running: list[_Running] = []
        self._nursery: trio.Nursery | None = None
        self._watchdog: threading.Timer | None = None

    # stopping -------------------------------------------------------------------------------------
    def request_stop(self, reason: str = "requested") -> None:
        """Stop every service (in reverse order). Safe to call more than once, from the trio thread."""
        if self._stop.is_set():
            return
        log.info("node stopping", reason=reason)
        self._stop.set()
        self._starting.cancel()
        self._watchdog = threading.Timer(self.stop_timeout + 0.5, self._stuck)
        self._watchdog.daemon = True
        self._watchdog.start()

    def fail(self, error: ServiceError) -> None:
        """Record the failure that stops the node (the first one counts) and stop."""
        if self.failure is None:
            self.failure = error
        self.request_stop(reason=str(error))

    def _stuck(self) -> None:
        # A timer thread: runs even when a service blocks the event loop itself.
        names = [r.name for r in self._running if not r.done.is_set()]
        log.error("services did not stop in time", services=names, timeout=self.stop_timeout)
        if self.exit_on_stuck:
            os._exit(EXIT_STUCK)

    async def _watch_signals(self, receiver: Any) -> None:
        async for signum in receiver:
            name = signal.Signals(signum).name
            if not self._stop.is_set():
                self.request_stop(reason=name)
            elif self.exit_on_stuck:
                log.error("second signal while stopping: exiting now", signal=name)
                os._exit(EXIT_STUCK)

    async def _stop_in_reverse(self) -> None:
        deadline = trio.current_time() + self.stop_timeout
        for running in reversed(self._running):
            if running.done.is_set():
                continue
            running.cancel()
            with trio.move_on_at(deadline):
                await running.done.wait()
            if not running.done.is_set():
                log.error("service did not stop in time", service=running.name, timeout=self.stop_timeout)
                # Past the deadline: no more waiting in turn; the rest are cancelled at once (and the
                # watchdog ends the process if they too do not finish).
                for rest in self._running:
                    if rest.stop_requested_at is None and not rest.done.is_set():
                        rest.cancel()
                return

    # running --------------------------------------------------------------------------------------
    @property
    def running(self) -> tuple[str, ...]:
        """The names of the services started and not finished, in order of start."""
        return tuple(r.name for r in self._running if not r.done.is_set())

    async def add(self, service: Service) -> None:
        """Start one more service under the running node (a miner created while it runs); it is
        stopped with the others, in reverse order of start. ServiceStartError if it fails to start or
        the node is not running (the node runs on either way)."""
        running = _Running(service, self)
        if self._nursery is None or self._stop.is_set():
            raise ServiceStartError(
                running.name, f"service {running.name} not started: the node is not running"
            )
        log.info("service starting", service=running.name)
        began = time.monotonic()
        try:
            await self._nursery.start(running.run)
        except Exception as exc:
            log.error("service failed to start", service=running.name, error=describe_error(exc))
            raise ServiceStartError(
                running.name, f"service {running.name} failed to start: {describe_error(exc)}"
            ) from exc
        self._running.append(running)
        log.info("service started", service=running.name, seconds=round(time.monotonic() - began, 3))
        if self._stop.is_set():  # the node began stopping while this one started: stop it too
            running.cancel()

    async def _start_all(self, nursery: trio.Nursery) -> None:
        with self._starting:
            for service in self.services:
                running = _Running(service, self)
                log.info("service starting", service=running.name)
                began = time.monotonic()
                try:
                    await nursery.start(running.run)
                except Exception as exc:
                    log.error("service failed to start", service=running.name, error=describe_error(exc))
                    message = f"service {running.name} failed to start: {describe_error(exc)}"
                    self.fail(ServiceStartError(running.name, message))
                    return
                self._running.append(running)
                log.info("service started", service=running.name, seconds=round(time.monotonic() - began, 3))
            log.info("node running", services=[r.name for r in self._running])
        if self.on_running is not None and not self._stop.is_set():
            try:
                self.on_running()
            except Exception as exc:  # telling the user failed (a closed stdout): the node still runs
                log.error("on_running callback failed", error=describe_error(exc))

    async def run(self) -> None:
        """Run until stopped; raise the ServiceError that stopped the node, if one did."""
        receiving = trio.open_signal_receiver(*self.signals) if self.signals else contextlib.nullcontext()
        try:
            with receiving as receiver:
                async with trio.open_nursery() as outer:
                    if self.signals:
                        outer.start_soon(self._watch_signals, receiver)
                    async with trio.open_nursery() as nursery:
                        self._nursery = nursery
                        await self._start_all(nursery)
                        await self._stop.wait()
                        await self._stop_in_reverse()
                        self._nursery = None
                    outer.cancel_scope.cancel()
        finally:
            if self._watchdog is not None:
                self._watchdog.cancel()
        log.info("node stopped")
        if self.failure is not None:
            raise self.failure


async def run_services(services: Sequence[Service], **options: Any) -> None:
    """ServiceRunner(services, **options).run()."""
    await ServiceRunner(services, **options).run()


def run_node(services: Sequence[Service], *, stop_timeout: float = STOP_TIMEOUT) -> int:
    """Run services until SIGINT/SIGTERM; the process exit code (see the module docstring). Must be
    called from the main thread (signal handlers)."""
    return run_runner(ServiceRunner(services, stop_timeout=stop_timeout, exit_on_stuck=True))


def run_runner(runner: ServiceRunner) -> int:
    """Run a runner until it stops; the process exit code, as run_node. Main thread only."""
    try:
        trio.run(runner.run)
    except ServiceError as exc:
        log.error("node failed", service=exc.service, error=str(exc))
        return EXIT_FAILED
    return EXIT_OK
