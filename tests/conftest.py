"""Session checks shared by the whole suite."""

import multiprocessing
from collections.abc import Iterator

import pytest
from hypothesis import settings

from chain.consensus.verified import CHECK_WORKER_NAME
from tests.vectors import missing_vectors_problem

# No per-example deadline: it times each example, a timed test in disguise that fails on a loaded machine
# (speed targets live in bench/). A test that sets its own settings still gets this as its base.
settings.register_profile("filpy", deadline=None)
settings.load_profile("filpy")


def pytest_sessionstart(session: pytest.Session) -> None:
    # Before collection, so a CI without its vectors stops with one message instead of one
    # collection error per vectors file.
    problem = missing_vectors_problem()
    if problem is not None:
        pytest.exit(problem, returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture(autouse=True)
def _no_check_worker_outlives_a_test() -> Iterator[None]:
    """A sync's check worker process (chain/consensus/verified.py) is stopped with it: one still alive
    after a test is killed by its PID and fails the test."""
    yield
    left = [p for p in multiprocessing.active_children() if p.name == CHECK_WORKER_NAME]
    for process in left:
        process.kill()
        process.join(timeout=5)
    assert not left, f"check worker processes outlived the test: {[p.pid for p in left]}"
