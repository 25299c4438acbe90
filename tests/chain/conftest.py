"""Fixtures the chain tests share."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.store.blockstore import BatchingBlockstore, LevelDBBlockstore, MemoryBlockstore


@pytest.fixture(params=["memory", "leveldb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BatchingBlockstore]:
    """Each blockstore in turn: the test runs against the memory and the LevelDB one."""
    if request.param == "memory":
        yield MemoryBlockstore()
        return
    with LevelDBBlockstore(tmp_path / "db") as db:
        yield db
