"""RPC servers on 127.0.0.1 (port 0), stopped when the test ends: a toy one over a fake node (the
machinery), and the full node's methods over real in-memory nodes with mined blocks (chain_node.py)."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from rpc.auth import create_token, perms_up_to
from rpc.client import HttpClient
from rpc.server import BoundAddress, RpcServer
from rpc.subscriptions import SessionLimits
from tests.rpc.chain_node import (
    CAROL_ADDR,
    Scenario,
    Served,
    build_scenario,
    clients,
    mine_scenario,
    new_node,
    serving,
)
from tests.rpc.chain_node import SECRET as CHAIN_SECRET
from tests.rpc.toy import SECRET, TOY, FakeNode, sample_tipset

MAX_BODY = 1 << 20


@pytest.fixture
def node() -> FakeNode:
    return FakeNode(head=sample_tipset())


@pytest.fixture
async def server(nursery: trio.Nursery, node: FakeNode) -> AsyncIterator[BoundAddress]:
    srv = RpcServer(
        TOY, node, secret=SECRET, host="127.0.0.1", port=0, max_body=MAX_BODY, limits=SessionLimits(outbox=32)
    )
    bound: BoundAddress = await nursery.start(srv.run)
    yield bound


def token(perm: str) -> str:
    return create_token(SECRET, perms_up_to(perm))


@pytest.fixture
async def v1(server: BoundAddress) -> AsyncIterator[HttpClient]:
    async with HttpClient(server.url("/rpc/v1")) as client:
        yield client


@pytest.fixture
async def v0(server: BoundAddress) -> AsyncIterator[HttpClient]:
    async with HttpClient(server.url("/rpc/v0")) as client:
        yield client


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    """One devnet node, built once: a multisig, market funds and a deal, made through RPC (read-only
    tests share it; tests that push or mine build their own node)."""
    node = new_node(tmp_path_factory.mktemp("scenario") / "keystore")
    return trio.run(build_scenario, node)


@pytest.fixture
async def live(scenario: Scenario) -> AsyncIterator[tuple[HttpClient, HttpClient]]:
    """(v0, v1) clients, with an admin token, of a server over the scenario's node."""
    async with serving(scenario.node) as bound, clients(bound) as apis:
        yield apis


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """A node of its own with three mined tipsets (the first with secp256k1 and BLS transfers) whose
    wallet lacks CAROL's key (a funded account it cannot sign for), served with the server's default
    limits."""
    node = new_node(tmp_path / "keystore")
    node.wallet.delete(CAROL_ADDR)
    mined = mine_scenario(node)
    async with serving(node) as bound:
        yield Served(node, bound, mined)


def chain_token(perm: str) -> str:
    return create_token(CHAIN_SECRET, perms_up_to(perm))
