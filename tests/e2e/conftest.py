from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.devnet_process import DevnetProcess, kill_all, running_devnets


@pytest.fixture
def processes() -> Iterator[list[DevnetProcess]]:
    yield from running_devnets()


@pytest.fixture
def testnet_dir(tmp_path: Path) -> Iterator[Path]:
    """A `filpy testnet` directory; its daemons are killed by their PIDs when the test ends."""
    directory = tmp_path / "testnet"
    try:
        yield directory
    finally:
        kill_all(directory)
