"""Killing a writer in the middle of its writes: the crash an atomic file write must survive."""

import time

from tests.processes import python_child


def kill_while_writing(script: str, argument: str, delay: float) -> None:
    """Run `python -c script argument`, wait for the "ready" line it prints before its write loop, let it
    write for `delay` seconds, then SIGKILL it."""
    with python_child(script, argument, ready=b"ready"):
        time.sleep(delay)
