"""A toy RPC server on 127.0.0.1 (port 0) per test, stopped when the test ends."""

from collections.abc import AsyncIterator

import pytest
import trio

from rpc.auth import create_token, perms_up_to
from rpc.client import HttpClient
from rpc.server import BoundAddress, RpcServer
from rpc.subscriptions import SessionLimits
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
