"""Loading the interop vectors: the directory comes from FILPY_VECTORS (default ../shared/vectors)."""

import json
import os
from pathlib import Path
from typing import Any

import pytest

_REPO = Path(__file__).resolve().parent.parent


def vectors_dir() -> Path:
    configured = os.environ.get("FILPY_VECTORS")
    return Path(configured) if configured else (_REPO / ".." / "shared" / "vectors").resolve()


def load(name: str) -> Any:
    """Load one vectors file (e.g. 'cids.json' or 'ref/hamt.json'); None if the set lacks it."""
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
