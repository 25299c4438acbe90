"""Fixtures of the actor tests."""

import pytest

from tests.actors.miner_harness import Harness


@pytest.fixture
def h() -> Harness:
    """A miner constructed on the mock runtime (tests/actors/miner_harness.py)."""
    harness = Harness()
    harness.construct()
    return harness
