"""Waiting in a trio test until a condition holds, every wait bounded."""

from collections.abc import Callable
from typing import Final

import trio

WAIT: Final = 60.0  # the longest a wait lasts unless told
POLL: Final = 0.02


async def wait_until(
    condition: Callable[[], bool], *, timeout: float = WAIT, what: str = "condition"
) -> None:
    """Poll condition every 20 ms; fail the test (AssertionError) after timeout seconds."""
    try:
        with trio.fail_after(timeout):
            while not condition():
                await trio.sleep(POLL)
    except trio.TooSlowError:
        raise AssertionError(f"{what} did not happen within {timeout} s") from None
