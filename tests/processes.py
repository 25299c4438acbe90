"""Child processes of tests: killed by their PIDs when the test ends, and the JSON lines one writes on a
pipe read with a deadline."""

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, Any, Final, Self, TypeVar

from tests.paths import ROOT

KILL_WAIT: Final = 30.0  # seconds a SIGKILLed process may take to be reaped

T = TypeVar("T")


def kill_by_pid(proc: subprocess.Popen[Any]) -> None:
    """Stop proc by its PID if it still runs (a test's finally)."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(KILL_WAIT)


def killed_at_end(kill: Callable[[T], None]) -> Iterator[list[T]]:
    """A fixture's body: the list a test appends what it starts to, each killed when the test ends,
    passed or not."""
    started: list[T] = []
    try:
        yield started
    finally:
        for each in started:
            kill(each)


def run_python(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 120.0, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """`python <args>` run to its end in the checkout (bounded by timeout), its output captured as text."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


@contextmanager
def python_child(script: str, *args: str, ready: bytes) -> Iterator[subprocess.Popen[bytes]]:
    """`python -c script args` run in the checkout, once it printed the line `ready`; killed by its PID
    when the block ends."""
    proc = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline() == ready + b"\n"
        yield proc
    finally:
        kill_by_pid(proc)
        proc.stdout.close()


class JsonLinesChild:
    """A child process (run in the checkout's root) that writes JSON lines on stdout or stderr; the
    lines read so far are `records`, more read only within a deadline. The other stream is discarded."""

    def __init__(self, command: Sequence[str], *, on_stderr: bool) -> None:
        out, err = (
            (subprocess.DEVNULL, subprocess.PIPE) if on_stderr else (subprocess.PIPE, subprocess.DEVNULL)
        )
        self.proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err)
        stream = self.proc.stderr if on_stderr else self.proc.stdout
        assert stream is not None
        self._stream: IO[bytes] = stream
        self.records: list[dict[str, Any]] = []
        self._buffer = b""

    def read(self, timeout: float) -> bool:
        """Read what the child wrote within timeout; False at end of output."""
        with selectors.DefaultSelector() as selector:
            selector.register(self._stream, selectors.EVENT_READ)
            if not selector.select(timeout):
                return True
        chunk = os.read(self._stream.fileno(), 65536)
        if not chunk:
            return False
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        self.records.extend(json.loads(line) for line in lines if line.strip())
        return True

    def first(self, match: Callable[[dict[str, Any]], bool], timeout: float, what: str) -> dict[str, Any]:
        """The first record that matches, waiting for it up to timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in self.records:
                if match(record):
                    return record
            if not self.read(max(0.0, deadline - time.monotonic())):
                break
        raise AssertionError(f"no {what} within {timeout} s; got {self.records}")

    def finish(self, timeout: float = 30.0) -> int:
        """Wait for the exit, reading the rest of the output; the exit code."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.read(max(0.0, deadline - time.monotonic())):
            pass
        return self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))

    def kill(self: Self) -> None:  # Self: killed_at_end(Sub.kill) keeps the subclass's type
        kill_by_pid(self.proc)
        self._stream.close()
