from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mining.vm_node import VMNode


@pytest.fixture
def node(tmp_path: Path) -> Iterator[VMNode]:
    """A VM-executed devnet chain whose miner t01000 holds six pre-sealed sectors (deadlines 0-2)."""
    yield VMNode.new(tmp_path / "sectors", sectors=6)
