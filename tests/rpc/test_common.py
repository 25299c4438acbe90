"""The methods that need no chain: Version, ID, Session, StartTime, Shutdown, Log*, Discover."""

import logging
import uuid
from datetime import UTC, datetime

import pytest

from rpc.client import HttpClient, RpcCallError
from rpc.jsontypes import TIME_KIND
from rpc.methods.common import FULL_API_VERSION_V0, FULL_API_VERSION_V1, api_version
from rpc.server import BoundAddress
from tests.rpc.conftest import token
from tests.rpc.toy import FakeNode


def test_api_versions_are_lotus_numbers() -> None:
    assert FULL_API_VERSION_V1 == api_version(2, 3, 0) == 131840
    assert FULL_API_VERSION_V0 == api_version(1, 5, 0) == 66816


async def test_version(v1: HttpClient, v0: HttpClient, node: FakeNode) -> None:
    got = await v1.call("Version")
    assert set(got) == {"Version", "APIVersion", "BlockDelay", "Agent"}
    assert got["APIVersion"] == 131840 and got["BlockDelay"] == node.policy.block_delay_secs
    assert got["Version"].endswith("+devnet") and got["Agent"].startswith("filpy-")
    assert (await v0.call("Version"))["APIVersion"] == 66816


async def test_id_session_start_time(v1: HttpClient, node: FakeNode) -> None:
    assert await v1.call("ID") == node.peer_id
    session = await v1.call("Session")
    assert uuid.UUID(session) and await v1.call("Session") == session
    assert await v1.call("StartTime") == "2024-05-06T07:08:09.123456Z"


def test_go_time_json() -> None:
    assert TIME_KIND.to_json(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "t") == "2024-01-02T03:04:05Z"
    assert (
        TIME_KIND.to_json(datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=UTC), "t") == "2024-01-02T03:04:05.12Z"
    )
    parsed = TIME_KIND.from_json("2024-01-02T03:04:05.123456789+02:00", "t")
    assert parsed.microsecond == 123456 and parsed.utcoffset() is not None
    assert TIME_KIND.from_json("2024-01-02T03:04:05Z", "t") == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


async def test_shutdown_is_admin_and_asks_the_node(server: BoundAddress, node: FakeNode) -> None:
    async with HttpClient(server.url(), token=token("sign")) as client:
        with pytest.raises(RpcCallError, match="need 'admin'"):
            await client.call("Shutdown")
    assert node.shutdowns == 0
    async with HttpClient(server.url(), token=token("admin")) as client:
        assert await client.call("Shutdown") is None
    assert node.shutdowns == 1


async def test_log_list_and_set_level(server: BoundAddress) -> None:
    logger = logging.getLogger("filpy.test.rpc")
    logger.setLevel(logging.INFO)
    async with HttpClient(server.url(), token=token("write")) as client:
        names = await client.call("LogList")
        assert "filpy.test.rpc" in names and names == sorted(names)
        assert await client.call("LogSetLevel", "filpy.test.rpc", "debug") is None
        assert logger.level == logging.DEBUG
        await client.call("LogSetLevel", "filpy.test.rpc", "warn")
        assert logger.level == logging.WARNING
        with pytest.raises(RpcCallError, match="no such logger: 'nope'"):
            await client.call("LogSetLevel", "nope", "info")
        with pytest.raises(RpcCallError, match="unrecognized level: 'loud'"):
            await client.call("LogSetLevel", "filpy.test.rpc", "loud")
    async with HttpClient(server.url()) as reader:
        with pytest.raises(RpcCallError, match="missing permission to invoke 'LogList' \\(need 'write'\\)"):
            await reader.call("LogList")


async def test_discover_and_its_alias(v1: HttpClient, v0: HttpClient) -> None:
    doc = await v1.call("Filecoin.Discover")
    assert doc == await v1.call("rpc.discover")
    assert doc["openrpc"] == "1.2.6"
    names = {m["name"] for m in doc["methods"]}
    assert "Filecoin.ToyShape" in names and "Filecoin.ToyOnlyV0" not in names
    doc0 = await v0.call("rpc.discover")
    assert "Filecoin.ToyOnlyV0" in {m["name"] for m in doc0["methods"]}
