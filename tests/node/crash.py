"""Killing a writer in the middle of its writes: the crash an atomic file write must survive."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def kill_while_writing(script: str, argument: str, delay: float) -> None:
    """Run `python -c script argument`, wait for the "ready" line it prints before its write loop, let it
    write for `delay` seconds, then SIGKILL it."""
    proc = subprocess.Popen([sys.executable, "-c", script, argument], stdout=subprocess.PIPE, cwd=ROOT)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        time.sleep(delay)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()  # type: ignore[union-attr]
