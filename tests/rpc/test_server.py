"""The server as a service: real port for port 0, mounted routes, prompt stop; client endpoints."""

import contextlib
from typing import Any

import httpx
import pytest
import trio

from rpc.client import HttpClient, TransportError, endpoint_from_api_info, endpoint_from_multiaddr
from rpc.server import BoundAddress, RpcServer, parse_bind
from tests.rpc.toy import SECRET, TOY, FakeNode


async def test_port_zero_reports_the_real_port_and_stops_promptly() -> None:
    node = FakeNode()
    server = RpcServer(TOY, node, secret=SECRET, port=0)
    async with trio.open_nursery() as outer:
        with trio.CancelScope() as server_scope:
            async with trio.open_nursery() as nursery:
                bound: BoundAddress = await nursery.start(server.run)
                assert bound.host == "127.0.0.1" and bound.port > 0
                async with HttpClient(bound.url()) as client:
                    assert await client.call("Session")

                    # a call in flight and an idle WebSocket do not hold the server up
                    async def long_call() -> None:
                        async with HttpClient(bound.url()) as other:
                            with contextlib.suppress(TransportError):
                                await other.call("ToySleep", 600)

                    outer.start_soon(long_call)
                    await trio.sleep(0.2)
                    stopped_at = trio.current_time()
                    server_scope.cancel()
        assert trio.current_time() - stopped_at < 1.0
        with pytest.raises(httpx.ConnectError):
            async with httpx.AsyncClient() as http:
                await http.post(bound.url(), content=b"{}")
        outer.cancel_scope.cancel()


async def test_mounted_routes(nursery: trio.Nursery) -> None:
    server = RpcServer(TOY, FakeNode(), secret=SECRET, port=0)

    async def pieces(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    server.mount("/piece/", pieces)
    bound: BoundAddress = await nursery.start(server.run)
    async with httpx.AsyncClient() as http:
        assert (await http.get(bound.url("/piece/baga123"))).text == "/piece/baga123"
        assert (await http.get(bound.url("/ipfs/bafy"))).status_code == 404


def test_addresses() -> None:
    assert parse_bind("http://127.0.0.1:1234") == BoundAddress("127.0.0.1", 1234)
    assert parse_bind("http://[::1]:99") == BoundAddress("::1", 99)
    assert BoundAddress("127.0.0.1", 1234).multiaddr() == "/ip4/127.0.0.1/tcp/1234/http"
    assert BoundAddress("::1", 5).url("/rpc/v0", "ws") == "ws://[::1]:5/rpc/v0"
    assert BoundAddress("::1", 5).multiaddr() == "/ip6/::1/tcp/5/http"


def test_endpoints_from_lotus_api_info() -> None:
    assert endpoint_from_multiaddr("/ip4/127.0.0.1/tcp/1234/http") == "http://127.0.0.1:1234/rpc/v1"
    assert (
        endpoint_from_multiaddr("/dns/node.local/tcp/443/https", api="v0") == "https://node.local:443/rpc/v0"
    )
    assert endpoint_from_multiaddr("/ip6/::1/tcp/1/ws", websocket=True) == "ws://[::1]:1/rpc/v1"
    assert endpoint_from_api_info("tok.en.x:/ip4/127.0.0.1/tcp/1234/http") == (
        "http://127.0.0.1:1234/rpc/v1",
        "tok.en.x",
    )
    assert endpoint_from_api_info("/ip4/10.0.0.1/tcp/1/http", websocket=True) == (
        "ws://10.0.0.1:1/rpc/v1",
        None,
    )
    assert endpoint_from_api_info("t:http://h:1/rpc/v0") == ("http://h:1/rpc/v0", "t")
    with pytest.raises(ValueError, match="no host and TCP port"):
        endpoint_from_multiaddr("/ip4/127.0.0.1/http")
    with pytest.raises(ValueError, match="unsupported multiaddr component 'udp'"):
        endpoint_from_multiaddr("/ip4/127.0.0.1/udp/1/quic")


async def test_client_reports_an_unreachable_node() -> None:
    async with HttpClient("http://127.0.0.1:9/rpc/v1", timeout=5) as client:
        with pytest.raises(TransportError, match=r"127\.0\.0\.1:9"):
            await client.call("Version")
