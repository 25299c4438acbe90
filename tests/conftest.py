"""Session checks shared by the whole suite."""

import pytest

from tests.vectors import missing_vectors_problem


def pytest_sessionstart(session: pytest.Session) -> None:
    # Before collection, so a CI without its vectors stops with one message instead of one
    # collection error per vectors file.
    problem = missing_vectors_problem()
    if problem is not None:
        pytest.exit(problem, returncode=pytest.ExitCode.USAGE_ERROR)
