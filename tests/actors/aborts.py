"""Expecting an actor to abort."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from chain.vm.exitcode import ActorError, ExitCode


@contextmanager
def aborts(code: ExitCode) -> Iterator[pytest.ExceptionInfo[ActorError]]:
    """The block raises ActorError with exit code `code` (the error is in the info after the block)."""
    with pytest.raises(ActorError) as err:
        yield err
    assert err.value.exit_code == code, err.value
