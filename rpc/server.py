"""The JSON-RPC server: an ASGI app on hypercorn's trio worker.

`/rpc/v0` and `/rpc/v1` take HTTP POST (single and batch requests) and WebSocket (calls and channels);
other paths are 404 unless an app is mounted on their prefix (`mount("/piece/", app)`, as the markets
will). A request body above `max_body` bytes is refused before it is read: from its Content-Length
when it has one, else as soon as the bytes read pass the limit (HTTP 413, JSON-RPC -32700 with
go-jsonrpc's message). Tokens come from `Authorization: Bearer` or `?token=` (HTTP and the WebSocket
upgrade); a token that does not verify is refused with 401, no token means `read`.

    server = RpcServer(registry, node, secret=secret, host="127.0.0.1", port=1234)
    bound = await nursery.start(server.run)   # BoundAddress: the real port when port=0
"""

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple
from urllib.parse import parse_qs

import structlog
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from chain.encoding.schema import DEFAULT_NETWORK
from rpc.auth import AuthError, TokenCache, bearer_token
from rpc.dispatch import Dispatcher, dumps, error_object
from rpc.errors import PARSE_ERROR
from rpc.registry import Api, Registry
from rpc.subscriptions import SessionLimits, WsSession

if TYPE_CHECKING:
    from trio_typing import TaskStatus  # trio-stubs (installed with trio-typing) shadow trio's own types

_log = structlog.get_logger(__name__)

DEFAULT_MAX_BODY: Final = 8 << 20
KEEP_ALIVE_MAX_REQUESTS: Final = 1 << 30
TOKEN_CACHE_SIZE: Final = 256
RPC_PATHS: Final[dict[str, Api]] = {"/rpc/v0": "v0", "/rpc/v1": "v1"}

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_JSON_HEADERS: Final = [(b"content-type", b"application/json")]


class BoundAddress(NamedTuple):
    host: str
    port: int

    def url(self, path: str = "/rpc/v1", scheme: str = "http") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{path}"

    def multiaddr(self) -> str:
        """As Lotus writes the repo's `api` file: /ip4/127.0.0.1/tcp/1234/http."""
        family = "ip6" if ":" in self.host else "ip4"
        return f"/{family}/{self.host}/tcp/{self.port}/http"


def parse_bind(bind: str) -> BoundAddress:
    """hypercorn's bind report ('http://127.0.0.1:1234', 'http://[::1]:1234') as an address."""
    hostport = bind.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    return BoundAddress(host.strip("[]"), int(port))


class RpcServer:
    """The RPC endpoint of a node (a service: `run` until cancelled)."""

    def __init__(
        self,
        registry: Registry,
        node: Any,
        *,
        secret: bytes | None,
        host: str = "127.0.0.1",
        port: int = 1234,
        max_body: int = DEFAULT_MAX_BODY,
        network: str | None = None,
        limits: SessionLimits | None = None,
    ) -> None:
        if network is None:
            policy = getattr(node, "policy", None)
            network = getattr(policy, "address_network", DEFAULT_NETWORK)
        self.dispatcher = Dispatcher(registry, node, secret=secret, network=network)
        self.secret = secret
        self.host, self.port = host, port
        self.max_body = max_body
        self.limits = limits or SessionLimits()
        self._mounts: list[tuple[str, AsgiApp]] = []
        # Checking a token's signature costs more than many a call: each token is checked once.
        self.tokens = TokenCache(secret, TOKEN_CACHE_SIZE)

    def mount(self, prefix: str, app: AsgiApp) -> None:
        """Serve paths starting with prefix (e.g. "/piece/") with another ASGI app."""
        self._mounts.append((prefix, app))

    async def run(self, *, task_status: "TaskStatus[BoundAddress]" = trio.TASK_STATUS_IGNORED) -> None:
        config = Config()
        config.bind = [f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"]
        config.accesslog = None
        # hypercorn's own messages through a plain stdlib logger (warnings and errors reach stderr;
        # LogSetLevel can change it) instead of the handler it installs by default.
        config.errorlog = logging.getLogger("rpc.hypercorn")
        config.graceful_timeout = 0.5  # stop within a second of being cancelled
        config.websocket_max_message_size = self.max_body
        config.include_server_header = False
        # hypercorn closes a keep-alive connection after 1,000 requests by default; Lotus's Go server
        # keeps it, and wallets polling ChainHead would reconnect every few minutes.
        config.keep_alive_max_requests = KEEP_ALIVE_MAX_REQUESTS

        async def started_from_binds(
            *, task_status: "TaskStatus[list[str]]" = trio.TASK_STATUS_IGNORED
        ) -> None:
            await serve(self.app, config, task_status=task_status, mode="asgi")  # type: ignore[arg-type]

        async with trio.open_nursery() as nursery:
            binds: list[str] = await nursery.start(started_from_binds)
            bound = parse_bind(binds[0])
            _log.info("rpc listening", url=bound.url())
            task_status.started(bound)

    # -- ASGI -----------------------------------------------------------------------------------------
    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)

    def _mounted(self, path: str) -> AsgiApp | None:
        for prefix, app in self._mounts:
            if path.startswith(prefix):
                return app
        return None

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        api = RPC_PATHS.get(path)
        if api is None:
            mounted = self._mounted(path)
            if mounted is not None:
                await mounted(scope, receive, send)
            else:
                await _plain(send, 404, f"no such path: {path}\n")
            return
        if scope["method"] != "POST":
            await _plain(send, 405, "JSON-RPC takes POST (or a WebSocket upgrade)\n", [(b"allow", b"POST")])
            return
        authorization = None
        length = None
        for key, value in scope["headers"]:
            if key == b"authorization":
                authorization = value.decode("latin-1")
            elif key == b"content-length":
                length = value
        try:
            perms = self.tokens.perms(bearer_token(authorization, _query_token(scope)))
        except AuthError as exc:
            await _plain(send, 401, f"{exc}\n")
            return
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await self._too_large(send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            if chunk:
                chunks.append(chunk)
                size += len(chunk)
                if size > self.max_body:
                    await self._too_large(send)
                    return
            more = message.get("more_body", False)
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        status, out = await self.dispatcher.handle_body(api, perms, body)
        headers = [*_JSON_HEADERS, (b"content-length", b"%d" % len(out))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": out})

    async def _too_large(self, send: Send) -> None:
        # go-jsonrpc's words; 413 and Connection: close so the client stops sending the rest.
        message = f"request bigger than maximum {self.max_body} allowed"
        body = dumps(error_object(None, PARSE_ERROR, message))
        headers = [*_JSON_HEADERS, (b"content-length", b"%d" % len(body)), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        api = RPC_PATHS.get(scope["path"])
        if api is None:
            mounted = self._mounted(scope["path"])
            if mounted is not None:
                await mounted(scope, receive, send)
            else:
                await _deny(scope, send, 404, f"no such path: {scope['path']}\n")
            return
        authorization = None
        for key, value in scope["headers"]:
            if key == b"authorization":
                authorization = value.decode("latin-1")
        try:
            perms = self.tokens.perms(bearer_token(authorization, _query_token(scope)))
        except AuthError as exc:
            await _deny(scope, send, 401, f"{exc}\n")
            return
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        accept: dict[str, Any] = {"type": "websocket.accept"}
        subprotocols = scope.get("subprotocols") or []
        if subprotocols:
            accept["subprotocol"] = subprotocols[0]  # go-jsonrpc echoes what the client asked for
        await send(accept)
        await WsSession(self.dispatcher, api, perms, self.limits).serve(receive, send)


def _query_token(scope: Scope) -> str | None:
    query = scope.get("query_string") or b""
    if b"token=" not in query:
        return None
    values = parse_qs(query.decode("latin-1")).get("token")
    return values[0] if values else None


async def _plain(
    send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"%d" % len(body)),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _deny(scope: Scope, send: Send, status: int, text: str) -> None:
    """Refuse a WebSocket upgrade with an HTTP status (ASGI's denial response where the server has it)."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": text.encode()})
    else:
        await send({"type": "websocket.close", "code": 1008})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
