"""Expecting an actor to abort."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from chain.vm.exitcode import ActorError, ExitCode


@contextmanager
def aborts(code: ExitCode) -> Iterator[pytest.ExceptionInfo[ActorError]]:
    """The block raises ActorError with exit code `code` (the error is in the info after the block)."""
    with pytest.raises(ActorError) as err:
        yield err
    assert err.value.exit_code == code, err.value


def abort_code(call: Callable[[], object]) -> int:
    """call() raises ActorError; its exit code, as a plain int."""
    with pytest.raises(ActorError) as err:
        call()
    return int(err.value.exit_code)
