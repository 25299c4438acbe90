"""Issue 9's bad input against a running `filpy devnet` (a child process, `--block-delay 1`, a free port of
127.0.0.1, stopped by its PID): invalid JSON, wrong param counts and types, a message with a bad
signature, a nonce gap beyond the pool's limit, too little balance, an oversized message, a read token
calling sign methods, a request body of 50 MB (with a Content-Length and chunked), and over WebSocket an
unreadable frame and a 50 MB frame. Each is answered with
a JSON-RPC error that says what was wrong; meanwhile the node keeps mining (the head advances during and
after the barrage), none of the refused messages enters the pool, a good message still lands, and the
node logged no internal error. tests/rpc/test_method_bad_input.py has the same cases against an
in-process node."""

import base64
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import orjson
import pytest
import trio
import trio_websocket

from chain.mpool.config import MpoolConfig
from chain.params import DEVNET
from chain.types.address import Address
from chain.types.message import Message, SignedMessage, sign_message
from node.config import ApiConfig
from node.devnet import account_key
from rpc.client import HttpClient, RpcCallError
from rpc.errors import GENERIC_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR
from tests.e2e.devnet_process import DevnetProcess

T: Final = "t"
SENDER, FORGER, RECIPIENT = 4, 5, 6
HUGE: Final = 50 << 20  # the 50 MB request body
CHUNK: Final = 1 << 20
WAIT: Final = 40.0
GAS_LIMIT: Final = 10_000_000
BIG_GAS_LIMIT: Final = 3_000_000_000  # enough to store a message of about 1 MiB


@pytest.fixture
def devnet(tmp_path: Path) -> Iterator[tuple[DevnetProcess, str]]:
    proc = DevnetProcess(tmp_path / "repo", "--block-delay", "1")
    try:
        yield proc, proc.wait_ready()
    finally:
        proc.kill()


def address(index: int) -> Address:
    return Address.of_key(account_key(index))


async def height(api: HttpClient) -> int:
    h: int = (await api.call("ChainHead"))["Height"]
    return h


async def wait_height(api: HttpClient, target: int) -> None:
    with trio.fail_after(WAIT):
        while await height(api) < target:
            await trio.sleep(0.1)


async def refused(api: HttpClient, code: int, match: str, method: str, *params: object) -> None:
    with pytest.raises(RpcCallError, match=match) as err:
        await api.call(method, *params)
    assert err.value.code == code


async def raw(api: HttpClient, body: bytes, status: int, code: int, match: str) -> None:
    got, answer = await api.post(body)
    assert got == status, answer
    assert answer["jsonrpc"] == "2.0" and answer["id"] is None
    assert answer["error"]["code"] == code
    assert match in answer["error"]["message"], answer["error"]["message"]


async def connect(url: str) -> trio.SocketStream:
    host, port = url.split("/")[2].split(":")
    return await trio.open_tcp_stream(host, int(port))


async def send_until_answered(
    stream: trio.SocketStream, body: Iterator[bytes], answered: Callable[[bytes], bool]
) -> tuple[bytes, int]:
    """Send the body's pieces on stream while reading it; stop sending once `answered(what was read)`
    holds or the server closes: what was read, and how many body bytes were sent before that."""
    sent = 0
    answer = bytearray()

    async def send_body() -> None:
        nonlocal sent
        try:
            for piece in body:
                await stream.send_all(piece)
                sent += len(piece)
        except trio.BrokenResourceError:
            pass  # the server closed the connection after answering: what we want

    async def read_answer(cancel: trio.CancelScope) -> None:
        while not answered(bytes(answer)):
            try:
                data = await stream.receive_some(1 << 16)
            except trio.BrokenResourceError:
                data = b""
            if not data:
                break
            answer.extend(data)
        cancel.cancel()

    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_body)
            nursery.start_soon(read_answer, nursery.cancel_scope)
    return bytes(answer), sent


def huge_pieces(start: bytes, frame: Callable[[bytes], bytes] = lambda data: data) -> Iterator[bytes]:
    """50 MB in pieces of 1 MiB, the first beginning with start, each framed by `frame`."""
    yield frame(start + b"x" * (CHUNK - len(start)))
    for _ in range(1, HUGE // CHUNK):
        yield frame(b"x" * CHUNK)


def http_answered(answer: bytes) -> bool:
    end = answer.find(b"\r\n\r\n")
    if end < 0 or b"content-length:" not in answer[:end].lower():
        return False
    length = int(answer[:end].lower().split(b"content-length:")[1].split(b"\r\n")[0])
    return len(answer) >= end + 4 + length


async def huge_body(url: str, chunked: bool) -> tuple[int, dict[str, Any], int]:
    """POST a 50 MB body (a JSON string, so the start is a well-formed request) and stop sending once the
    answer comes: its status, its JSON body, and how many bytes were sent before it."""
    hostport = url.split("/")[2]
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % HUGE
    head = b"POST /rpc/v1 HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n%s\r\n\r\n" % (
        hostport.encode(),
        framing,
    )
    start = b'{"jsonrpc":"2.0","id":1,"method":"Filecoin.ChainHead","params":["'
    pieces = huge_pieces(start, (lambda d: b"%x\r\n%s\r\n" % (len(d), d)) if chunked else (lambda d: d))
    async with await connect(url) as stream:
        await stream.send_all(head)
        answer, sent = await send_until_answered(stream, pieces, http_answered)
    head_end = answer.index(b"\r\n\r\n")
    status = int(answer[:head_end].split(b" ")[1])
    assert b"connection: close" in answer[:head_end].lower()
    return status, orjson.loads(answer[head_end + 4 :]), sent


def ws_close_code(frames: bytes) -> int | None:
    """The code of the server's close frame (unmasked, opcode 8) among frames, if it came."""
    at = 0
    while at + 2 <= len(frames):
        opcode, length = frames[at] & 0x0F, frames[at + 1] & 0x7F
        header = 2 + {126: 2, 127: 8}.get(length, 0)
        if length >= 126:
            length = int.from_bytes(frames[at + 2 : at + header], "big")
        if at + header + length > len(frames):
            return None
        if opcode == 8:
            return int.from_bytes(frames[at + header : at + header + 2], "big")
        at += header + length
    return None


async def websocket_frames(url: str) -> None:
    """Over WebSocket: an unreadable frame is answered with -32700 and the socket goes on answering;
    a 50 MB frame gets a close frame with 1009 (message too big) long before its end, as the HTTP
    body limit."""
    ws_url = url.replace("http://", "ws://", 1)
    with trio.fail_after(WAIT):
        async with trio_websocket.open_websocket_url(ws_url) as ws:
            await ws.send_message('{"jsonrpc":"2.0","id":1,"method":')
            answer = orjson.loads(await ws.get_message())
            assert answer["id"] is None and answer["error"]["code"] == PARSE_ERROR
            await ws.send_message('{"jsonrpc":"2.0","id":2,"method":"Filecoin.ChainHead"}')
            assert "Height" in orjson.loads(await ws.get_message())["result"]
    # One text frame declaring 50 MB (masked with a zero key, so the payload goes as it is), sent by
    # hand after the handshake: a WebSocket library would send it whole before reading the server's
    # close.
    hostport = url.split("/")[2]
    upgrade = (
        b"GET /rpc/v1 HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
        % (hostport.encode(), base64.b64encode(bytes(16)))
    )
    frame_head = b"\x81\xff" + HUGE.to_bytes(8, "big") + bytes(4)
    async with await connect(url) as stream:
        await stream.send_all(upgrade)
        accepted = b""
        with trio.fail_after(WAIT):
            while b"\r\n\r\n" not in accepted:
                accepted += await stream.receive_some(1 << 16)
        assert accepted.startswith(b"HTTP/1.1 101 "), accepted
        await stream.send_all(frame_head)
        start = b'{"jsonrpc":"2.0","id":1,"method":"Filecoin.ChainHead","params":["'
        frames, sent = await send_until_answered(
            stream, huge_pieces(start), lambda frames: ws_close_code(frames) is not None
        )
    assert ws_close_code(accepted.split(b"\r\n\r\n", 1)[1] + frames) == 1009  # message too big
    assert sent < HUGE


def transfer(nonce: int, value: int, *, fee_cap: int, params: bytes = b"") -> Message:
    return Message(
        to=address(RECIPIENT),
        from_=address(SENDER),
        nonce=nonce,
        value=value,
        gas_limit=BIG_GAS_LIMIT if params else GAS_LIMIT,
        gas_fee_cap=fee_cap,
        gas_premium=fee_cap // 2,
        method=0,
        params=params,
    )


def of_size(msg: Message, size: int) -> SignedMessage:
    """msg signed, its params padded so that the signed message is exactly `size` bytes."""
    params_len = size - len(sign_message(msg, account_key(SENDER)).to_bytes())
    for _ in range(4):  # the params' CBOR header grows with their length
        signed = sign_message(replace(msg, params=bytes(params_len)), account_key(SENDER))
        params_len += size - len(signed.to_bytes())
    assert len(signed.to_bytes()) == size
    return signed


async def test_bad_input_is_refused_clearly_while_the_node_mines(devnet: tuple[DevnetProcess, str]) -> None:
    proc, url = devnet
    sender = address(SENDER).to_string(T)
    async with proc.client(url) as admin:
        await wait_height(admin, 2)  # mining
        start = await height(admin)
        read_token = base64.b64decode(await admin.call("AuthNew", ["read"])).decode()  # []byte: base64
        nonce = await admin.call("MpoolGetNonce", sender)
        balance = int(await admin.call("WalletBalance", sender))
        fee_cap = 2 * int((await admin.call("ChainHead"))["Blocks"][0]["ParentBaseFee"])
        good = sign_message(transfer(nonce, 10**18, fee_cap=fee_cap), account_key(SENDER))

        # -- unreadable requests
        await raw(
            admin,
            b'{"jsonrpc":"2.0","id":1,"method":"Filecoin.ChainHead","params":[',
            500,
            PARSE_ERROR,
            "Parse error",
        )
        await raw(admin, b"\xff\xfe not json", 500, PARSE_ERROR, "Parse error")
        await raw(admin, b"42", 500, INVALID_REQUEST, "invalid request")
        await raw(admin, b"[]", 500, INVALID_REQUEST, "empty batch")
        _, answer = await admin.post(b'{"jsonrpc":"2.0","id":3,"method":"Filecoin.NoSuchMethod","params":[]}')
        assert answer["error"] == {
            "code": METHOD_NOT_FOUND,
            "message": "method 'Filecoin.NoSuchMethod' not found",
        }

        # -- wrong param counts and types
        await refused(
            admin, INVALID_PARAMS, r"wrong param count \(method 'Filecoin.MpoolPush'\): 0 != 1", "MpoolPush"
        )
        await refused(
            admin,
            INVALID_PARAMS,
            r"wrong param count \(method 'Filecoin.StateWaitMsg'\): 2 != 4",
            "StateWaitMsg",
            {"/": str(good.cid())},
            1,
        )
        await refused(
            admin,
            INVALID_PARAMS,
            r"decoding param 1 of 'Filecoin.ChainGetTipSetByHeight' \(Int64\)",
            "ChainGetTipSetByHeight",
            "ten",
            None,
        )
        await refused(
            admin,
            INVALID_PARAMS,
            r"decoding param 1 of 'Filecoin.WalletBalance' \(Address\)",
            "WalletBalance",
            123,
        )
        as_json = good.to_json(T)
        await refused(
            admin,
            INVALID_PARAMS,
            r"message.Message.Value: expected a decimal string, got int",
            "MpoolPush",
            {**as_json, "Message": {**as_json["Message"], "Value": 12}},
        )

        # -- messages the pool refuses
        forged = sign_message(good.message, account_key(FORGER))
        await refused(admin, GENERIC_ERROR, "signature verification failed", "MpoolPush", forged.to_json(T))
        gap = nonce + MpoolConfig().max_nonce_gap + 1
        gapped = sign_message(transfer(gap, 1, fee_cap=fee_cap), account_key(SENDER))
        await refused(
            admin,
            GENERIC_ERROR,
            r"nonce has too big a gap.*unfulfilled nonce gap",
            "MpoolPush",
            gapped.to_json(T),
        )
        rich = sign_message(transfer(nonce, balance + 1, fee_cap=fee_cap), account_key(SENDER))
        await refused(admin, GENERIC_ERROR, "not enough funds", "MpoolPush", rich.to_json(T))
        limit = DEVNET.max_message_size
        over = of_size(transfer(nonce, 1, fee_cap=fee_cap, params=b"\0"), limit + 1)
        await refused(
            admin,
            GENERIC_ERROR,
            rf"message too large \({limit + 1}B, limit {limit}B\)",
            "MpoolPush",
            over.to_json(T),
        )

        # -- a read token (and no token at all) calling sign methods
        async with HttpClient(url, token=read_token) as reader, HttpClient(url) as anonymous:
            assert await reader.call("AuthVerify", read_token) == ["read"]
            for api in (reader, anonymous):
                await refused(
                    api,
                    GENERIC_ERROR,
                    r"missing permission to invoke 'WalletSign' \(need 'sign'\)",
                    "WalletSign",
                    sender,
                    "aGk=",
                )
                await refused(
                    api,
                    GENERIC_ERROR,
                    r"missing permission to invoke 'MpoolPushMessage' \(need 'sign'\)",
                    "MpoolPushMessage",
                    good.message.to_json(T),
                    None,
                )
                await refused(
                    api,
                    GENERIC_ERROR,
                    r"missing permission to invoke 'MpoolPush' \(need 'write'\)",
                    "MpoolPush",
                    good.to_json(T),
                )

        # -- 50 MB bodies: refused from the Content-Length before reading, and while reading a chunked one
        for chunked in (False, True):
            status, answer, sent = await huge_body(url, chunked)
            assert status == 413 and answer["error"] == {
                "code": PARSE_ERROR,
                "message": f"request bigger than maximum {ApiConfig().max_request_bytes} allowed",
            }
            assert sent < HUGE  # the server answered long before the body's end
        await websocket_frames(url)

        # Nothing refused entered the pool; the node mined all along, and goes on.
        pending = await admin.call("MpoolPending", [])
        assert all(m["Message"]["From"] != sender for m in pending)
        assert await admin.call("MpoolGetNonce", sender) == nonce
        after = await height(admin)
        assert after >= start
        await wait_height(admin, after + 2)
        assert await admin.call("MpoolPush", good.to_json(T)) == {"/": str(good.cid())}
        with trio.fail_after(WAIT):
            landed = await admin.call("StateWaitMsg", {"/": str(good.cid())}, 1, -1, True)
        assert landed["Receipt"]["ExitCode"] == 0

    failures = [e for e in proc.log_events() if e.get("level") in ("error", "critical")]
    assert failures == []
