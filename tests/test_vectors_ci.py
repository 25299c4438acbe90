"""Missing interop vectors skip on a developer's machine and fail the run under CI."""

import os
from pathlib import Path

import pytest

from tests import vectors
from tests.processes import run_python


def test_missing_vectors_skip_outside_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FILPY_VECTORS", str(tmp_path / "nowhere"))
    monkeypatch.delenv("CI", raising=False)
    assert vectors.load("cids.json") is None
    with pytest.raises(pytest.skip.Exception):
        vectors.require("cids.json")


def test_missing_vectors_fail_under_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nowhere = tmp_path / "nowhere"
    monkeypatch.setenv("FILPY_VECTORS", str(nowhere))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=str(nowhere)):
        vectors.load("cids.json")
    with pytest.raises(pytest.fail.Exception, match="FILPY_VECTORS"):
        vectors.cases("cids.json")


def test_a_ci_run_without_vectors_fails_and_says_where_it_looked(tmp_path: Path) -> None:
    nowhere = tmp_path / "nowhere"
    env = {**os.environ, "CI": "true", "FILPY_VECTORS": str(nowhere)}
    proc = run_python("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/interop/test_cids.py", env=env)
    assert proc.returncode != 0
    assert str(nowhere) in proc.stdout + proc.stderr
    assert "passed" not in proc.stdout and "skipped" not in proc.stdout
