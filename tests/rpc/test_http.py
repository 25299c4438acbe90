"""JSON-RPC over HTTP POST: results, every error with its code and message, batches, paths."""

from typing import Any

import orjson
import pytest
import structlog
import trio

from rpc.client import HttpClient, RpcCallError
from rpc.errors import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    LotusCode,
)
from rpc.server import BoundAddress
from tests.rpc.conftest import MAX_BODY
from tests.rpc.toy import FakeNode

CID_JSON = {"/": "bafy2bzacecnamqgqmifpluoeldx7zzglxcljo6oja4vrmtj7432rphldpdmm2"}


def _call(method: str, params: list[Any] | None = None, request_id: Any = 1) -> bytes:
    req: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        req["params"] = params
    return orjson.dumps(req)


async def test_tipset_result_is_lotus_json(v1: HttpClient, node: FakeNode) -> None:
    head = await v1.call("Filecoin.ToyHead")
    assert node.head is not None
    assert head == node.head.to_json("t")
    assert head["Height"] == 100 and head["Blocks"][0]["Miner"].startswith("t0")


async def test_params_decode_with_the_declared_kinds(v1: HttpClient) -> None:
    out = await v1.call("ToyEcho", CID_JSON, "12345678901234567890", "f01234", [[CID_JSON], None])
    assert out == f"{CID_JSON['/']} 12345678901234567890 t01234 2"
    assert await v1.call("ToyEcho", CID_JSON, "0", None, None) == f"{CID_JSON['/']} 0 None 0"


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ([{"/": "nope"}, "1", None, []], "decoding param 1 of 'Filecoin.ToyEcho' (CID): cid:"),
        (
            [CID_JSON, 5, None, []],
            "decoding param 2 of 'Filecoin.ToyEcho' (BigInt): amount: expected a decimal string",
        ),
        ([CID_JSON, "1", "x99", []], "decoding param 3 of 'Filecoin.ToyEcho' (Address | null): to:"),
        (
            [CID_JSON, "1", None, [[{"/": 1}]]],
            "decoding param 4 of 'Filecoin.ToyEcho' (tuple[TipSetKey, ...]): keys[0][0]",
        ),
    ],
)
async def test_a_bad_param_is_named(v1: HttpClient, params: list[Any], fragment: str) -> None:
    status, answer = await v1.post(_call("Filecoin.ToyEcho", params))
    assert status == 500
    assert answer["error"]["code"] == INVALID_PARAMS
    assert fragment in answer["error"]["message"]


async def test_wrong_param_count_has_lotus_wording(v1: HttpClient) -> None:
    status, answer = await v1.post(_call("Filecoin.ToyShape", [CID_JSON, 1]))
    assert status == 500
    assert answer == {
        "jsonrpc": "2.0",
        "id": 1,
        "error": {
            "code": INVALID_PARAMS,
            "message": "wrong param count (method 'Filecoin.ToyShape'): 2 != 4",
        },
    }


async def test_params_may_be_omitted_or_null(v1: HttpClient) -> None:
    for body in (
        _call("Filecoin.Session"),
        _call("Filecoin.Session", None),
        b'{"id":1,"method":"Filecoin.Session","params":null}',
    ):
        status, answer = await v1.post(body)
        assert status == 200 and isinstance(answer["result"], str)
    status, answer = await v1.post(_call("Filecoin.ToySleep"))
    assert answer["error"]["message"] == "wrong param count (method 'Filecoin.ToySleep'): 0 != 1"


async def test_named_params_are_refused(v1: HttpClient) -> None:
    status, answer = await v1.post(
        b'{"jsonrpc":"2.0","id":1,"method":"Filecoin.ToySleep","params":{"seconds":1}}'
    )
    assert status == 500 and answer["error"]["code"] == INVALID_PARAMS
    assert "must be a JSON array (positional), got an object" in answer["error"]["message"]


async def test_unknown_method_is_named(v1: HttpClient) -> None:
    status, answer = await v1.post(_call("Filecoin.NoSuchThing", []))
    assert status == 500
    assert answer["error"] == {"code": METHOD_NOT_FOUND, "message": "method 'Filecoin.NoSuchThing' not found"}


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        (b'{"jsonrpc":"2.0","id":1,"method":', PARSE_ERROR, "Parse error"),
        (b"\xff\xfe", PARSE_ERROR, "Parse error"),
        (b"   ", INVALID_REQUEST, "empty body"),
        (b"[]", INVALID_REQUEST, "empty batch"),
        (b"42", INVALID_REQUEST, "expected a JSON object"),
        (b'{"jsonrpc":"2.0","id":1,"method":7}', INVALID_REQUEST, "'method' must be a string"),
        (b'{"jsonrpc":"1.0","id":1,"method":"Filecoin.Session"}', INVALID_REQUEST, "'jsonrpc' must be"),
        (b'{"jsonrpc":"2.0","id":[1],"method":"Filecoin.Session"}', INVALID_REQUEST, "'id' must be"),
    ],
)
async def test_unreadable_requests(v1: HttpClient, body: bytes, code: int, fragment: str) -> None:
    status, answer = await v1.post(body)
    assert status == 500
    assert answer["error"]["code"] == code and fragment in answer["error"]["message"]


async def test_ids_are_echoed(v1: HttpClient) -> None:
    for rid in ("abc", 7, 2**62):
        _, answer = await v1.post(_call("Filecoin.Session", [], rid))
        assert answer["id"] == rid
    _, answer = await v1.post(b'{"jsonrpc":"2.0","id":3.0,"method":"Filecoin.Session"}')
    assert answer["id"] == 3


async def test_notifications_get_no_answer(v1: HttpClient, node: FakeNode) -> None:
    status, answer = await v1.post(b'{"jsonrpc":"2.0","method":"Filecoin.ToyVoid"}')
    assert (status, answer) == (200, None)
    status, answer = await v1.post(b'{"jsonrpc":"2.0","method":"Filecoin.NoSuch"}')
    assert (status, answer) == (200, None)


async def test_void_result_is_null(server: BoundAddress) -> None:
    from tests.rpc.conftest import token

    async with HttpClient(server.url(), token=token("write")) as client:
        status, answer = await client.post(_call("Filecoin.ToyVoid", []))
    assert status == 200 and "result" in answer and answer["result"] is None


async def test_empty_list_result_is_an_array(v1: HttpClient) -> None:
    _, answer = await v1.post(_call("Filecoin.ToyEmptyList", []))
    assert answer["result"] == []


async def test_lotus_error_codes(v1: HttpClient) -> None:
    status, answer = await v1.post(_call("Filecoin.ToyActorNotFound", []))
    assert status == 200
    assert answer["error"] == {"code": LotusCode.ACTOR_NOT_FOUND, "message": "actor not found"}
    with pytest.raises(RpcCallError) as err:
        await v1.call("ToyNullRound", 42)
    assert (err.value.code, err.value.message, err.value.data) == (
        12,
        "requested epoch was a null round (42)",
        42,
    )
    with pytest.raises(RpcCallError) as err:
        await v1.call("ToyRefuse")
    assert (err.value.code, err.value.message) == (1, "refused for a reason")


async def test_internal_errors_are_logged_not_leaked(v1: HttpClient) -> None:
    with structlog.testing.capture_logs() as logs:
        status, answer = await v1.post(_call("Filecoin.ToyCrash", []))
    assert status == 500
    assert answer["error"]["code"] == INTERNAL_ERROR
    assert "secret internals" not in answer["error"]["message"]
    assert answer["error"]["message"] == "internal error in 'Filecoin.ToyCrash' (see the node's log)"
    (entry,) = [e for e in logs if e["event"] == "rpc call failed"]
    assert entry["method"] == "Filecoin.ToyCrash" and "secret internals" in entry["traceback"]
    assert "RuntimeError" in entry["traceback"] and entry["log_level"] == "error"


async def test_batch_answers_in_order_without_notifications(v1: HttpClient) -> None:
    body = orjson.dumps(
        [
            {"jsonrpc": "2.0", "id": "a", "method": "Filecoin.ToyShape", "params": [CID_JSON, 1, None, True]},
            {"jsonrpc": "2.0", "method": "Filecoin.Session"},
            {"jsonrpc": "2.0", "id": "b", "method": "Filecoin.NoSuch"},
            17,
            {"jsonrpc": "2.0", "id": "c", "method": "Filecoin.ToyShape", "params": []},
            {"jsonrpc": "2.0", "id": "d", "method": "Filecoin.ToyActorNotFound"},
        ]
    )
    status, answer = await v1.post(body)
    assert status == 200
    assert [a["id"] for a in answer] == ["a", "b", None, "c", "d"]
    assert answer[0]["result"] == "v1 1 None True"
    codes = [a["error"]["code"] for a in answer[1:]]
    assert codes == [METHOD_NOT_FOUND, INVALID_REQUEST, INVALID_PARAMS, LotusCode.ACTOR_NOT_FOUND]
    results = await v1.batch([("Session", []), ("ToyRefuse", []), ("Version", [])])
    assert (
        isinstance(results[0], str)
        and isinstance(results[1], RpcCallError)
        and results[2]["APIVersion"] == 131840
    )


async def test_v0_and_v1_shapes(v0: HttpClient, v1: HttpClient) -> None:
    assert await v1.call("ToyShape", CID_JSON, 5, None, False) == "v1 5 None False"
    assert await v1.call("ToyShape", CID_JSON, 5, 10, True) == "v1 5 10 True"
    assert await v0.call("ToyShape", CID_JSON, 5) == "v0 5"
    with pytest.raises(RpcCallError, match=r"wrong param count \(method 'Filecoin.ToyShape'\): 4 != 2"):
        await v0.call("ToyShape", CID_JSON, 5, None, False)
    assert await v0.call("ToyOnlyV0") == "v0 only"
    with pytest.raises(RpcCallError, match=r"method 'Filecoin\.ToyOnlyV0' not found"):
        await v1.call("ToyOnlyV0")
    assert (await v1.call("Version"))["APIVersion"] == 131840
    assert (await v0.call("Version"))["APIVersion"] == 66816


async def test_channel_methods_need_a_websocket(v1: HttpClient) -> None:
    status, answer = await v1.post(_call("Filecoin.ToyTicks", [3]))
    assert status == 500 and answer["error"]["code"] == METHOD_NOT_FOUND
    assert "not supported in this mode" in answer["error"]["message"]
    assert "WebSocket" in answer["error"]["message"]


async def test_other_paths_and_methods(server: BoundAddress) -> None:
    import httpx

    async with httpx.AsyncClient() as http:
        assert (await http.get(server.url("/rpc/v1"))).status_code == 405
        assert (await http.post(server.url("/rpc/v2"), content=b"{}")).status_code == 404
        missing = await http.get(server.url("/piece/bafk"))
        assert missing.status_code == 404 and "no such path: /piece/bafk" in missing.text


async def test_a_declared_body_over_the_limit_is_refused_unread(v1: HttpClient, server: BoundAddress) -> None:
    # 50 MB announced; the server answers from the headers and the connection is closed.
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    head = (
        "POST /rpc/v1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {50 << 20}\r\n\r\n"
    ).encode()
    await stream.send_all(head + b" " * 65536)
    answer = await _read_response(stream)
    await stream.aclose()
    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"code":-32700' in answer and f"request bigger than maximum {MAX_BODY} allowed".encode() in answer
    assert await v1.call("Session")  # still serving


async def test_a_chunked_body_over_the_limit_is_refused_while_read(
    v1: HttpClient, server: BoundAddress
) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    await stream.send_all(b"POST /rpc/v1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b" " * (256 << 10)
    sent = 0
    with trio.move_on_after(10):
        async with trio.open_nursery() as nursery:
            result: list[bytes] = []

            async def read() -> None:
                result.append(await _read_response(stream))
                nursery.cancel_scope.cancel()

            nursery.start_soon(read)
            try:
                while sent < (50 << 20):
                    await stream.send_all(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                    sent += len(chunk)
            except trio.BrokenResourceError:
                pass  # the server closed the connection after answering
            await trio.sleep(5)
    await stream.aclose()
    assert result and result[0].startswith(b"HTTP/1.1 413")
    assert sent < (50 << 20)
    assert await v1.call("Session")


async def test_a_body_within_the_limit_is_served(v1: HttpClient) -> None:
    padding = " " * (MAX_BODY - 200)
    status, answer = await v1.post(_call("Filecoin.Session", []) + padding.encode())
    assert status == 200 and "result" in answer


async def _read_response(stream: trio.SocketStream) -> bytes:
    data = b""
    with trio.fail_after(10):
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            data += chunk
    return data


async def test_answers_carry_a_content_length(server: BoundAddress) -> None:
    import httpx

    async with httpx.AsyncClient() as http:
        for url, body in ((server.url(), _call("Filecoin.ToyHead", [])), (server.url("/nope"), b"")):
            resp = await http.post(url, content=body)
            assert resp.headers["content-length"] == str(len(resp.content))
            assert "transfer-encoding" not in resp.headers
