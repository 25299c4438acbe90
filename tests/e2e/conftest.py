from collections.abc import Iterator

import pytest

from tests.e2e.devnet_process import DevnetProcess, running_devnets


@pytest.fixture
def processes() -> Iterator[list[DevnetProcess]]:
    yield from running_devnets()
