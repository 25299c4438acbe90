"""`filpy devnet` in a child process, for end-to-end tests and the benchmark: started on a temp repo with
the RPC on a free port of 127.0.0.1 (`--api 127.0.0.1:0`, the port read back from the repo's `api` file),
reached only through its RPC endpoint and what it prints, stopped by PID."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Final

import trio

from rpc.client import HttpClient, endpoint_from_multiaddr
from tests.paths import ROOT
from tests.polling import wait_until
from tests.processes import kill_by_pid, killed_at_end

START_TIMEOUT: Final = 60.0
GENESIS: Final = re.compile(r"genesis\s+(bafy[a-z0-9]+)")
PHASE_WALL: Final = 240.0  # seconds one mine_until may take


class DevnetProcess:
    """One run of `filpy devnet`; its stdout and JSON log lines go to files in the run's directory."""

    def __init__(self, repo: Path, *args: str, logs: Path | None = None) -> None:
        self.repo = repo
        self.logs = logs or repo.parent
        self.logs.mkdir(parents=True, exist_ok=True)
        run = len(list(self.logs.glob("run-*.out")))
        self.stdout_path = self.logs / f"run-{run}.out"
        self.stderr_path = self.logs / f"run-{run}.log"
        command = [sys.executable, "-m", "cli", "--log-json", "devnet", "--repo", str(repo)]
        command += ["--api", "127.0.0.1:0", *args]
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.stderr_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                events.append(json.loads(line))
        return events

    def wait_ready(self, timeout: float = START_TIMEOUT) -> str:
        """The RPC URL once the node runs (its banner printed); fails if the process ends first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"filpy devnet exited with {self.proc.returncode}:\n{self._tail()}")
            api = self.repo / "api"
            if api.exists() and "Filpy.Faucet sends from" in self.output():
                return endpoint_from_multiaddr(api.read_text())
            time.sleep(0.05)
        raise AssertionError(f"filpy devnet not ready within {timeout} s:\n{self._tail()}")

    def genesis(self) -> str:
        found = GENESIS.search(self.output())
        assert found is not None, self.output()
        return found.group(1)

    def client(self, url: str) -> HttpClient:
        return HttpClient(url, token=(self.repo / "token").read_text().strip())

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> float:
        """Send sig and wait for the exit; the seconds it took."""
        began = time.monotonic()
        self.proc.send_signal(sig)
        self.proc.wait(timeout)
        return time.monotonic() - began

    def kill(self) -> None:
        """Stop it by its PID if it still runs (a test's finally)."""
        kill_by_pid(self.proc)

    def _tail(self) -> str:
        lines = self.stderr_path.read_text(errors="replace").splitlines()[-20:]
        return "\n".join([*lines, self.output()[-2000:]])


def running_devnets() -> Iterator[list[DevnetProcess]]:
    """The devnets a test starts (with start), each killed by its PID when the test ends, passed or not:
    the `processes` fixture of tests/e2e/conftest.py."""
    yield from killed_at_end(DevnetProcess.kill)


def start(processes: list[DevnetProcess], repo: Path, *args: str) -> tuple[DevnetProcess, str]:
    """`filpy devnet --repo repo <args>`, kept in processes to be stopped; it and its RPC URL once it runs."""
    proc = DevnetProcess(repo, *args)
    processes.append(proc)
    return proc, proc.wait_ready()


def events(proc: DevnetProcess, name: str) -> list[dict[str, Any]]:
    """The JSON log lines of proc whose event is name."""
    return [e for e in proc.log_events() if e.get("event") == name]


async def logged(proc: DevnetProcess, name: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The JSON log lines of proc whose event is name, once there is one (bounded): a service logs what
    it saw on chain after the chain shows it, so a test that watched the chain may be ahead of the log."""
    await wait_until(lambda: bool(events(proc, name)), timeout=timeout, what=f"the log line {name!r}")
    return events(proc, name)


async def height(api: HttpClient) -> int:
    return int((await api.call("ChainHead"))["Height"])


async def mine_until(api: HttpClient, done: Callable[[], Awaitable[bool]], epochs: int, what: str) -> int:
    """Filpy.MineTipset (on a `--block-delay 0` devnet) until `await done()` holds; the height then.
    Bounded in epochs and time."""
    first = await height(api)
    with trio.fail_after(PHASE_WALL):
        while not await done():
            now = await height(api)
            assert now - first <= epochs, f"{what}: not within {epochs} epochs (height {now})"
            await api.call("Filpy.MineTipset")  # null when every epoch tried was a null round
    return await height(api)


def kill_all(directory: Path) -> None:
    """Every daemon of a `filpy testnet` in directory whose pid file is there, killed by its PID (a
    test's finally)."""
    for pid_file in directory.glob("node*/pid"):
        try:
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGKILL)
        except (ValueError, OSError):
            pass
