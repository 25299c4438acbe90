"""WebSocket: calls, channels (values, close, cancel), back-pressure, and errors on the socket."""

import orjson
import pytest
import trio
import trio_websocket

from rpc.client import HttpClient, RpcCallError, WsClient
from rpc.errors import INVALID_PARAMS, PARSE_ERROR
from rpc.server import BoundAddress
from tests.rpc.toy import FakeNode


def ws_url(server: BoundAddress, api: str = "v1") -> str:
    return server.url(f"/rpc/{api}", scheme="ws")


async def test_calls_over_websocket(server: BoundAddress, node: FakeNode) -> None:
    async with WsClient.connect(ws_url(server)) as client:
        assert (await client.call("Version"))["APIVersion"] == 131840
        assert node.head is not None
        assert await client.call("ToyHead") == node.head.to_json("t")
        with pytest.raises(RpcCallError) as err:
            await client.call("ToyShape", {"/": "x"}, 1)
        assert err.value.code == INVALID_PARAMS
    async with WsClient.connect(ws_url(server, "v0")) as client:
        assert (await client.call("Version"))["APIVersion"] == 66816


async def test_raw_frames(server: BoundAddress) -> None:
    async with trio_websocket.open_websocket_url(ws_url(server)) as ws:
        await ws.send_message("{not json")
        answer = orjson.loads(await ws.get_message())
        assert answer["error"]["code"] == PARSE_ERROR and answer["id"] is None
        await ws.send_message('{"jsonrpc":"2.0","id":9,"method":"Filecoin.ToyTicks","params":[2]}')
        frames = [orjson.loads(await ws.get_message()) for _ in range(4)]
        assert frames == [
            {"jsonrpc": "2.0", "id": 9, "result": 1},
            {"jsonrpc": "2.0", "method": "xrpc.ch.val", "params": [1, 0]},
            {"jsonrpc": "2.0", "method": "xrpc.ch.val", "params": [1, 1]},
            {"jsonrpc": "2.0", "method": "xrpc.ch.close", "params": [1]},
        ]
        await ws.send_message(
            '[{"jsonrpc":"2.0","id":1,"method":"Filecoin.Session"},{"jsonrpc":"2.0","id":2,"method":"X"}]'
        )
        batch = orjson.loads(await ws.get_message())
        assert [b["id"] for b in batch] == [1, 2] and "result" in batch[0] and "error" in batch[1]
        # a second channel gets the next id
        await ws.send_message('{"jsonrpc":"2.0","id":10,"method":"Filecoin.ToyTicks","params":[0]}')
        assert orjson.loads(await ws.get_message()) == {"jsonrpc": "2.0", "id": 10, "result": 2}
        assert orjson.loads(await ws.get_message()) == {
            "jsonrpc": "2.0",
            "method": "xrpc.ch.close",
            "params": [2],
        }


async def test_channel_values_then_close(server: BoundAddress) -> None:
    async with WsClient.connect(ws_url(server)) as client:
        async with client.subscribe("ToyTicks", 5) as values:
            got = [v async for v in values]
        assert got == [0, 1, 2, 3, 4]
        assert await client.call("Session")  # the connection goes on


async def test_head_changes_as_lotus_shapes(server: BoundAddress, node: FakeNode) -> None:
    assert node.head is not None
    async with WsClient.connect(ws_url(server)) as client, client.subscribe("ToyNotify") as values:
        got = [v async for v in values]
    assert got[0] == [{"Type": "current", "Val": node.head.to_json("t")}]
    assert got[1][0]["Type"] == "apply" and got[1][0]["Val"]["Height"] == 101


async def test_a_channel_method_may_refuse_before_opening(server: BoundAddress) -> None:
    async with WsClient.connect(ws_url(server)) as client:
        with pytest.raises(RpcCallError, match="no channel for you"):
            async with client.subscribe("ToyRefusedChannel", False):
                pass
        async with client.subscribe("ToyRefusedChannel", True) as values:
            assert [v async for v in values] == [0, 1, 2]


async def test_cancel_ends_a_channel(server: BoundAddress, node: FakeNode) -> None:
    async with trio_websocket.open_websocket_url(ws_url(server)) as ws:
        await ws.send_message('{"jsonrpc":"2.0","id":"sub","method":"Filecoin.ToyForever","params":[3]}')
        assert orjson.loads(await ws.get_message()) == {"jsonrpc": "2.0", "id": "sub", "result": 1}
        await ws.send_message('{"jsonrpc":"2.0","method":"xrpc.cancel","params":["sub"]}')
        with trio.fail_after(10):
            while True:
                frame = orjson.loads(await ws.get_message())
                if frame["method"] == "xrpc.ch.close":
                    break
                assert frame == {"jsonrpc": "2.0", "method": "xrpc.ch.val", "params": [1, "xxx"]}
        assert frame["params"] == [1]
        with trio.fail_after(5):
            await node.channel_closed.wait()


async def test_client_leaving_a_subscription_cancels_it(server: BoundAddress, node: FakeNode) -> None:
    async with WsClient.connect(ws_url(server)) as client:
        async with client.subscribe("ToyForever", 1) as values:
            async for _ in values:
                break
        with trio.fail_after(5):
            await node.channel_closed.wait()
        assert await client.call("Session")


async def test_cancel_ends_a_long_call(server: BoundAddress) -> None:
    async with trio_websocket.open_websocket_url(ws_url(server)) as ws:
        await ws.send_message('{"jsonrpc":"2.0","id":1,"method":"Filecoin.ToySleep","params":[600]}')
        await ws.send_message('{"jsonrpc":"2.0","id":2,"method":"Filecoin.Session","params":[]}')
        # the long call does not hold up the next one
        with trio.fail_after(5):
            assert orjson.loads(await ws.get_message())["id"] == 2
        await ws.send_message('{"jsonrpc":"2.0","method":"xrpc.cancel","params":[1]}')
        await ws.send_message('{"jsonrpc":"2.0","id":3,"method":"Filecoin.ToySleep","params":[0]}')
        with trio.fail_after(5):
            assert orjson.loads(await ws.get_message()) == {"jsonrpc": "2.0", "id": 3, "result": "woke"}


async def test_disconnect_ends_channels(server: BoundAddress, node: FakeNode) -> None:
    async with trio_websocket.open_websocket_url(ws_url(server)) as ws:
        await ws.send_message('{"jsonrpc":"2.0","id":1,"method":"Filecoin.ToyForever","params":[1]}')
        assert orjson.loads(await ws.get_message())["result"] == 1
    with trio.fail_after(5):
        await node.channel_closed.wait()


async def test_a_client_that_does_not_read_is_disconnected(server: BoundAddress, node: FakeNode) -> None:
    """The producer is never blocked by a slow client: the server closes the connection instead."""
    async with trio_websocket.open_websocket_url(ws_url(server), max_message_size=1 << 20) as ws:
        await ws.send_message('{"jsonrpc":"2.0","id":1,"method":"Filecoin.ToyForever","params":[65536]}')
        with trio.fail_after(20):
            await node.channel_closed.wait()  # the server gave up on us and closed the channel
        with trio.fail_after(20), pytest.raises(trio_websocket.ConnectionClosed) as closed:
            while True:
                await ws.get_message()
        assert closed.value.reason is not None and closed.value.reason.code == 1008
        assert "client too slow" in (closed.value.reason.reason or "")
    # the node kept serving others meanwhile and still does
    async with HttpClient(server.url()) as client:
        assert await client.call("Session")


async def test_many_concurrent_calls_on_one_socket(server: BoundAddress) -> None:
    async with WsClient.connect(ws_url(server)) as client:
        results: list[str] = []

        async def one(i: int) -> None:
            results.append(
                await client.call(
                    "ToyShape",
                    {"/": "bafy2bzacecnamqgqmifpluoeldx7zzglxcljo6oja4vrmtj7432rphldpdmm2"},
                    i,
                    None,
                    False,
                )
            )

        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(one, i)
        assert sorted(results) == sorted(f"v1 {i} None False" for i in range(50))


async def test_channels_per_connection_are_bounded(nursery: trio.Nursery, node: FakeNode) -> None:
    from rpc.server import RpcServer
    from rpc.subscriptions import SessionLimits
    from tests.rpc.toy import SECRET, TOY

    server = RpcServer(TOY, node, secret=SECRET, port=0, limits=SessionLimits(channels=2))
    bound: BoundAddress = await nursery.start(server.run)
    async with WsClient.connect(ws_url(bound)) as client:
        async with client.subscribe("ToyQuiet"), client.subscribe("ToyQuiet"):
            with pytest.raises(
                RpcCallError, match=r"too many channels open on this connection \(at most 2\)"
            ):
                async with client.subscribe("ToyQuiet"):
                    pass
        # the two closed (xrpc.cancel): room again
        with trio.fail_after(5):
            while True:
                try:
                    async with client.subscribe("ToyQuiet"):
                        break
                except RpcCallError:
                    await trio.sleep(0.01)
