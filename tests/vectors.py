"""Loading the interop vectors: the directory comes from FILPY_VECTORS (default ../shared/vectors).

Outside CI a missing directory skips the tests that need it (a developer without the vectors can
still run the rest). Under CI (`CI=true`, as `.ci/run` and CI services set it) it fails the run,
saying where it looked: a CI whose vectors are not where it thinks must not pass green on skips.
"""

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from tests.paths import ROOT


def vectors_dir() -> Path:
    configured = os.environ.get("FILPY_VECTORS")
    return Path(configured) if configured else (ROOT / ".." / "shared" / "vectors").resolve()


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing_vectors_problem() -> str | None:
    """Why the run must fail for want of vectors (CI and no directory), or None."""
    directory = vectors_dir()
    if not under_ci() or directory.is_dir():
        return None
    source = "FILPY_VECTORS" if os.environ.get("FILPY_VECTORS") else "the default ../shared/vectors"
    return (
        f"CI=true but the interop vectors directory {directory} (from {source}) does not exist: "
        "set FILPY_VECTORS to the vectors directory; under CI missing vectors fail instead of skipping"
    )


def _check_directory() -> None:
    problem = missing_vectors_problem()
    if problem is not None:
        pytest.fail(problem, pytrace=False)


def load(name: str) -> Any:
    """Load one vectors file (e.g. 'cids.json' or 'ref/hamt.json'); None if the set lacks it."""
    _check_directory()
    path = vectors_dir() / name
    if not path.exists():
        return None
    return json.loads(path.read_text())


def require(name: str) -> Any:
    """Load one vectors file, skipping the calling test (with the reason) if the set lacks it."""
    data = load(name)
    if data is None:
        pytest.skip(f"{name} not in {vectors_dir()}")
    return data


def cases(name: str, key: str = "cases") -> list[Any]:
    """One pytest param per case of a vectors file, with the id 'file:index'."""
    data = load(name)
    if data is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{name} not in {vectors_dir()}"))]
    return [
        pytest.param(case, id=f"{name}:{key}:{i}" if key != "cases" else f"{name}:{i}")
        for i, case in enumerate(data[key])
    ]


def nested_cases(name: str, key: str, items: Callable[[Any], Iterable[tuple[object, Any]]]) -> list[Any]:
    """One pytest param per (id, case) that items finds in a vectors file's data[key], with the id
    'file:key:id' (for cases not listed directly under key); skipped as `cases` when the set lacks it."""
    data = load(name)
    if data is None:
        return cases(name, key)
    return [pytest.param(case, id=f"{name}:{key}:{sub}") for sub, case in items(data[key])]


CaseCheck = Callable[[dict[str, Any]], None]


class CaseChecks:
    """The checks of a vectors file's cases, each registered with `@checks.on(name, ...)` under the case
    names it handles, so that a check stands next to the cases it covers; `checks.run(case)` picks it by
    case[key]. With by_prefix a registered name matches every case name it begins (the vectors name
    their cases as the Go and Rust tests they come from do), the longest such name winning."""

    def __init__(self, what: str, *, key: str = "name", by_prefix: bool = False) -> None:
        self._what = what
        self._key = key
        self._by_prefix = by_prefix
        self._checks: dict[str, CaseCheck] = {}

    def on(self, *names: str) -> Callable[[CaseCheck], CaseCheck]:
        def register(check: CaseCheck) -> CaseCheck:
            for name in names:
                assert name not in self._checks, f"{self._what} case {name!r} has two checks"
                self._checks[name] = check
            return check

        return register

    def run(self, case: dict[str, Any]) -> None:
        name = case[self._key]
        if self._by_prefix:
            found = max((n for n in self._checks if name.startswith(n)), key=len, default=None)
        else:
            found = name if name in self._checks else None
        assert found is not None, f"no check for {self._what} case {name!r}"
        self._checks[found](case)
