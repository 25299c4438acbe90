"""JSON-RPC 2.0 requests to method calls and back, whatever carried them (HTTP body, WebSocket frame).

Behaviour follows go-jsonrpc where clients see it: a request without `params` (or with null) has no
params; the param count is strict; an `id` that is absent or null makes a notification (no answer);
batches are answered in order with the notifications left out; errors of the framework (bad JSON, bad
request, unknown method, bad params) come back with HTTP status 500 for a single request, errors a
method returns with 200. A method's unexpected exception is logged with its traceback and answered
-32603 without the details.
"""

import traceback
from collections.abc import AsyncIterator
from typing import Any, Final, Protocol

import orjson
import structlog

from rpc.errors import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    InvalidParams,
    RpcError,
    permission_denied,
)
from rpc.registry import Api, CallContext, Method, Registry

_log = structlog.get_logger(__name__)

_FRAMEWORK_CODES: Final = frozenset({PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INTERNAL_ERROR, -32602})
_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1


class ChannelHost(Protocol):
    """The WebSocket session a channel method's values are sent through."""

    async def open_channel(self, request_id: Any, method: Method, values: AsyncIterator[Any]) -> None: ...


class BadRequest(Exception):
    def __init__(self, code: int, message: str, request_id: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.request_id = code, message, request_id


def error_object(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": err}


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def _request_id(req: dict[str, Any]) -> Any:
    """The request's id (None for a notification); ids are numbers or strings as go-jsonrpc's
    normalizeID accepts them (integral floats become integers)."""
    rid = req.get("id")
    if rid is None or type(rid) is str:
        return rid
    if type(rid) is int and _INT64_MIN <= rid <= _INT64_MAX:
        return rid
    if type(rid) is float and rid.is_integer():
        return int(rid)
    raise BadRequest(INVALID_REQUEST, "invalid request: 'id' must be a number, a string or null")


class Dispatcher:
    """Answers requests for one registry and node; `network` is the address prefix of results."""

    def __init__(self, registry: Registry, node: Any, *, secret: bytes | None, network: str) -> None:
        self.registry = registry
        self.node = node
        self.secret = secret
        self.network = network

    # -- bodies ---------------------------------------------------------------------------------------
    async def handle_body(self, api: Api, perms: frozenset[str], body: bytes) -> tuple[int, bytes]:
        """An HTTP body to (status, response body); the body is empty when nothing is to be answered."""
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            if not body.strip():
                return 500, dumps(error_object(None, INVALID_REQUEST, "Invalid request: empty body"))
            return 500, dumps(error_object(None, PARSE_ERROR, f"Parse error: {exc}"))
        if type(parsed) is list:
            if not parsed:
                return 500, dumps(error_object(None, INVALID_REQUEST, "Invalid request: empty batch"))
            out = await self.handle_batch(api, perms, parsed)
            return 200, dumps(out) if out else b""
        resp, framework = await self.handle_one(api, perms, parsed, None)
        if resp is None:
            return 200, b""
        return (500 if framework else 200), dumps(resp)

    async def handle_batch(self, api: Api, perms: frozenset[str], items: list[Any]) -> list[dict[str, Any]]:
        """A batch's answers in order, notifications left out (go-jsonrpc runs them one after another)."""
        out = []
        for item in items:
            resp, _ = await self.handle_one(api, perms, item, None)
            if resp is not None:
                out.append(resp)
        return out

    # -- one request ----------------------------------------------------------------------------------
    async def handle_one(
        self, api: Api, perms: frozenset[str], req: Any, channels: ChannelHost | None
    ) -> tuple[dict[str, Any] | None, bool]:
        """One request object to (response or None, whether the error is the framework's)."""
        request_id: Any = None
        try:
            if type(req) is not dict:
                raise BadRequest(INVALID_REQUEST, "invalid request: expected a JSON object")
            request_id = _request_id(req)
            version = req.get("jsonrpc", "2.0")
            if version != "2.0":
                raise BadRequest(INVALID_REQUEST, "invalid request: 'jsonrpc' must be \"2.0\"", request_id)
            name = req.get("method")
            if type(name) is not str:
                raise BadRequest(INVALID_REQUEST, "invalid request: 'method' must be a string", request_id)
            m = self.registry.lookup(api, name)
            if m is None:
                raise BadRequest(METHOD_NOT_FOUND, f"method '{name}' not found", request_id)
            if m.channel and channels is None:
                raise BadRequest(
                    METHOD_NOT_FOUND,
                    f"method '{name}' not supported in this mode (no out channel support):"
                    " subscriptions need a WebSocket connection to /rpc/v0 or /rpc/v1",
                    request_id,
                )
            args = m.decode_params(req.get("params"))
        except BadRequest as exc:
            return self._error(exc.request_id, exc.code, exc.message), True
        except InvalidParams as exc:
            return self._error(request_id, exc.code, exc.message), True
        try:
            if m.perm not in perms:
                raise permission_denied(m.name, m.perm.value)
            ctx = (
                CallContext(api, perms, self.registry, self.secret, self.network) if m.wants_context else None
            )
            result = await m.invoke(self.node, ctx, args)
            if m.channel:
                if request_id is None or channels is None:
                    aclose = getattr(result, "aclose", None)
                    if aclose is not None:
                        await aclose()
                    return None, False
                await channels.open_channel(request_id, m, result)
                return None, False
            if request_id is None:
                return None, False
            return {
                "jsonrpc": "2.0",
                "id": request_id,
                "result": m.encode_result(result, self.network),
            }, False
        except RpcError as exc:
            if request_id is None:
                return None, False
            return {"jsonrpc": "2.0", "id": request_id, "error": exc.to_json()}, exc.code in _FRAMEWORK_CODES
        except Exception as exc:
            _log.error(
                "rpc call failed",
                method=m.full_name,
                error=repr(exc),
                traceback="".join(traceback.format_exception(exc)),
            )
            message = f"internal error in '{m.full_name}' (see the node's log)"
            return self._error(request_id, INTERNAL_ERROR, message), True

    @staticmethod
    def _error(request_id: Any, code: int, message: str) -> dict[str, Any] | None:
        """The error answer; a notification gets none, except when the request itself is unreadable
        (then the id is unknown and the answer carries a null id, as JSON-RPC 2.0 says)."""
        if request_id is None and code not in (PARSE_ERROR, INVALID_REQUEST):
            return None
        return error_object(request_id, code, message)
