"""A small JSON-RPC client for filpy's (and Lotus's) API, over HTTP or WebSocket, with a token.

    async with HttpClient("http://127.0.0.1:1234/rpc/v1", token=token) as api:
        head = await api.call("ChainHead")                 # "Filecoin." is added to bare names

    async with WsClient.connect("ws://127.0.0.1:1234/rpc/v1", token=token) as api:
        async with api.subscribe("ChainNotify") as changes:  # xrpc.cancel is sent on exit
            async for value in changes: ...

Results are returned as JSON values (decode them with the declared types' from_json); an error answer
raises RpcCallError with its code, message and data. `endpoint_from_api_info` reads Lotus's
`FULLNODE_API_INFO` form (`token:/ip4/127.0.0.1/tcp/1234/http`).
"""

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final, Self

import httpx
import orjson
import trio
import trio_websocket

DEFAULT_TIMEOUT: Final = 60.0
_CHANNEL_BUFFER: Final = 256


class RpcCallError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} (code {code})")
        self.code, self.message, self.data = code, message, data


class TransportError(Exception):
    """The node could not be reached, or answered something that is not JSON-RPC."""


def full_method_name(method: str) -> str:
    return method if "." in method else f"Filecoin.{method}"


def _result(resp: Any) -> Any:
    if not isinstance(resp, dict):
        raise TransportError(f"not a JSON-RPC answer: {str(resp)[:200]}")
    err = resp.get("error")
    if err is not None:
        if not isinstance(err, dict):
            raise TransportError(f"malformed error object: {str(err)[:200]}")
        raise RpcCallError(int(err.get("code", 0)), str(err.get("message", "")), err.get("data"))
    return resp.get("result")


def _auth_headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


class HttpClient:
    """Calls over HTTP POST on one keep-alive connection pool."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = url
        self._http = httpx.AsyncClient(
            headers={"Content-Type": "application/json", **_auth_headers(token)}, timeout=timeout
        )
        self._ids = itertools.count(1)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def post(self, body: bytes) -> tuple[int, Any]:
        """Send a raw body; the HTTP status and the parsed answer (None when the body is empty)."""
        try:
            resp = await self._http.post(self.url, content=body)
        except httpx.HTTPError as exc:
            raise TransportError(f"{self.url}: {exc}") from exc
        if resp.status_code in (401, 404, 405, 413) and not resp.headers.get("content-type", "").startswith(
            "application/json"
        ):
            raise TransportError(f"{self.url}: HTTP {resp.status_code}: {resp.text.strip()[:200]}")
        if not resp.content:
            return resp.status_code, None
        try:
            return resp.status_code, orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            raise TransportError(
                f"{self.url}: HTTP {resp.status_code}, not JSON: {resp.text[:200]}"
            ) from None

    async def call(self, method: str, *params: Any) -> Any:
        body = orjson.dumps(
            {
                "jsonrpc": "2.0",
                "id": next(self._ids),
                "method": full_method_name(method),
                "params": list(params),
            }
        )
        _, answer = await self.post(body)
        return _result(answer)

    async def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Several calls in one request; each item is the result or the RpcCallError, in order."""
        first = next(self._ids)
        for _ in calls[1:]:
            next(self._ids)
        body = orjson.dumps(
            [
                {"jsonrpc": "2.0", "id": first + i, "method": full_method_name(m), "params": list(p)}
                for i, (m, p) in enumerate(calls)
            ]
        )
        _, answer = await self.post(body)
        if not isinstance(answer, list):
            _result(answer)  # a batch-level error
            raise TransportError("a batch was not answered with an array")
        by_id = {item.get("id"): item for item in answer if isinstance(item, dict)}
        out: list[Any] = []
        for i in range(len(calls)):
            try:
                out.append(_result(by_id.get(first + i)))
            except RpcCallError as exc:
                out.append(exc)
        return out


class WsClient:
    """Calls and channels over one WebSocket; use `async with WsClient.connect(...)`."""

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, trio.MemorySendChannel[Any]] = {}
        self._channels: dict[int, trio.MemorySendChannel[Any]] = {}
        self._early: dict[int, list[Any]] = {}  # values of a channel not yet claimed by subscribe()
        self._closed_ids: set[int] = set()
        self._error: BaseException | None = None

    @classmethod
    @asynccontextmanager
    async def connect(
        cls, url: str, *, token: str | None = None, max_message_size: int = 64 << 20
    ) -> AsyncIterator["WsClient"]:
        headers = [(b"Authorization", f"Bearer {token}".encode())] if token else []
        try:
            async with trio_websocket.open_websocket_url(
                url, extra_headers=headers, max_message_size=max_message_size, message_queue_size=64
            ) as ws:
                client = cls(ws)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(client._reader)
                    try:
                        yield client
                    finally:
                        nursery.cancel_scope.cancel()
        except trio_websocket.HandshakeError as exc:
            raise TransportError(f"{url}: {exc}") from exc
        except OSError as exc:
            raise TransportError(f"{url}: {exc}") from exc

    async def _reader(self) -> None:
        try:
            while True:
                frame = orjson.loads(await self._ws.get_message())
                method = frame.get("method") if isinstance(frame, dict) else None
                if method == "xrpc.ch.val":
                    channel_id, value = frame["params"]
                    target = self._channels.get(channel_id)
                    if target is None:
                        self._early.setdefault(channel_id, []).append(value)
                    else:
                        await target.send(("value", value))
                elif method == "xrpc.ch.close":
                    channel_id = frame["params"][0]
                    target = self._channels.pop(channel_id, None)
                    if target is None:
                        self._closed_ids.add(channel_id)
                    else:
                        await target.send(("close", None))
                elif isinstance(frame, dict) and frame.get("id") in self._waiting:
                    await self._waiting.pop(frame["id"]).send(frame)
        except trio_websocket.ConnectionClosed as exc:
            self._error = exc
        finally:
            for waiter in list(self._waiting.values()) + list(self._channels.values()):
                waiter.close()

    async def call(self, method: str, *params: Any) -> Any:
        _, answer = await self._request(method, params)
        return _result(answer)

    async def _request(self, method: str, params: tuple[Any, ...]) -> tuple[int, Any]:
        """Send a request; its id and the answer frame."""
        if self._error is not None:
            raise TransportError(f"connection closed: {self._error}")
        request_id = next(self._ids)
        send, recv = trio.open_memory_channel[Any](1)
        self._waiting[request_id] = send
        frame = {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": full_method_name(method),
            "params": list(params),
        }
        await self._ws.send_message(orjson.dumps(frame).decode())
        try:
            return request_id, await recv.receive()
        except trio.EndOfChannel:
            raise TransportError(f"connection closed: {self._error}") from None

    async def send_raw(self, text: str) -> None:
        await self._ws.send_message(text)

    @asynccontextmanager
    async def subscribe(self, method: str, *params: Any) -> AsyncIterator[AsyncIterator[Any]]:
        """Call a channel method; iterate its values until the node closes the channel. Leaving the
        block early cancels the channel (xrpc.cancel)."""
        request_id, answer = await self._request(method, params)
        channel_id = _result(answer)
        send, recv = trio.open_memory_channel[Any](_CHANNEL_BUFFER)
        for value in self._early.pop(channel_id, []):
            send.send_nowait(("value", value))
        if channel_id in self._closed_ids:
            self._closed_ids.discard(channel_id)
            send.send_nowait(("close", None))
        else:
            self._channels[channel_id] = send
        finished = False

        async def values() -> AsyncIterator[Any]:
            nonlocal finished
            async for kind, value in recv:
                if kind == "close":
                    finished = True
                    return
                yield value
            finished = True

        try:
            yield values()
        finally:
            if not finished and self._error is None:
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    cancel = {"jsonrpc": "2.0", "method": "xrpc.cancel", "params": [request_id]}
                    await self._ws.send_message(orjson.dumps(cancel).decode())


def endpoint_from_multiaddr(maddr: str, *, api: str = "v1", websocket: bool = False) -> str:
    """The URL of the RPC path at a Lotus-style multiaddr: /ip4/127.0.0.1/tcp/1234/http ->
    http://127.0.0.1:1234/rpc/v1 (ws://... with websocket=True)."""
    parts = [p for p in maddr.strip().split("/") if p]
    host = port = None
    secure = False
    i = 0
    while i < len(parts):
        proto = parts[i]
        if proto in ("ip4", "dns", "dns4", "dns6") and i + 1 < len(parts):
            host = parts[i + 1]
            i += 2
        elif proto == "ip6" and i + 1 < len(parts):
            host = f"[{parts[i + 1]}]"
            i += 2
        elif proto == "tcp" and i + 1 < len(parts):
            port = parts[i + 1]
            i += 2
        elif proto in ("http", "ws"):
            i += 1
        elif proto in ("https", "wss", "tls"):
            secure = True
            i += 1
        else:
            raise ValueError(f"unsupported multiaddr component {proto!r} in {maddr!r}")
    if host is None or port is None or not port.isdigit():
        raise ValueError(f"multiaddr {maddr!r} names no host and TCP port")
    scheme = ("wss" if secure else "ws") if websocket else ("https" if secure else "http")
    return f"{scheme}://{host}:{port}/rpc/{api}"


def endpoint_from_api_info(info: str, *, api: str = "v1", websocket: bool = False) -> tuple[str, str | None]:
    """FULLNODE_API_INFO (`token:multiaddr`, or a bare multiaddr or URL) as (url, token)."""
    token: str | None = None
    text = info.strip()
    if (
        not text.startswith("/")
        and ":" in text
        and not text.startswith(("http://", "https://", "ws://", "wss://"))
    ):
        token, text = text.split(":", 1)
    if text.startswith(("http://", "https://", "ws://", "wss://")):
        return text, token
    return endpoint_from_multiaddr(text, api=api, websocket=websocket), token
