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
from dataclasses import KW_ONLY, dataclass, field
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


@dataclass(eq=False, repr=False)
class Dispatcher:
    """Answers requests for one registry and node; `network` is the address prefix of results."""

    registry: Registry
    node: Any
    _: KW_ONLY
    secret: bytes | None
    network: str
    # A memo method's last result and its encoding (see `_encode`).
    _memo: dict[Method, tuple[Any, orjson.Fragment]] = field(init=False, default_factory=dict)

    # -- bodies ---------------------------------------------------------------------------------------
    async def handle_body(self, api: Api, perms: frozenset[str], body: bytes) -> tuple[int, bytes]:
        """An HTTP body to (status, response body); the body is empty when nothing is to be answered."""
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            if not body.strip():
                return 500, dumps(error_object(None, INVALID_REQUEST, "invalid request: empty body"))
            return 500, dumps(error_object(None, PARSE_ERROR, f"Parse error: {exc}"))
        if type(parsed) is list:
            if not parsed:
                return 500, dumps(error_object(None, INVALID_REQUEST, "invalid request: empty batch"))
            out = await self.handle_batch(api, perms, parsed)
            return 200, dumps(out) if out else b""
        resp, framework = await self.handle_one(api, perms, parsed, None)
        if resp is None:
            return 200, b""
        return (500 if framework else 200), dumps(resp)

    async def handle_batch(self, api: Api, perms: frozenset[str], items: list[Any]) -> list[dict[str, Any]]:
        """A batch's answers in order, notifications left out (go-jsonrpc runs them one after another).
        A run of consecutive calls of a method with a run handler (MpoolPush) is handed to it at once,
        with the same effect as running them one after another."""
        prepared = [self.prepare(api, item, None) for item in items]
        out = []
        i = 0
        while i < len(prepared):
            first = prepared[i]
            if not isinstance(first, Call):
                if first is not None:
                    out.append(first)
                i += 1
                continue
            end = i + 1
            if first.method.run is not None:
                while end < len(prepared) and _same_method(prepared[end], first.method):
                    end += 1
            if end - i > 1:
                calls = [c for c in prepared[i:end] if isinstance(c, Call)]
                answers = await self.run_calls(perms, first.method, calls)
            else:
                answers = [(await self._call(api, perms, first, None))[0]]
            out.extend(a for a in answers if a is not None)
            i = end
        return out

    # -- one request ----------------------------------------------------------------------------------
    async def handle_one(
        self, api: Api, perms: frozenset[str], req: Any, channels: ChannelHost | None
    ) -> tuple[dict[str, Any] | None, bool]:
        """One request object to (response or None, whether the error is the framework's)."""
        prepared = self.prepare(api, req, channels)
        if not isinstance(prepared, Call):
            return prepared, True
        return await self._call(api, perms, prepared, channels)

    def prepare(self, api: Api, req: Any, channels: ChannelHost | None) -> "Call | dict[str, Any] | None":
        """The call a request object asks for, or the framework's error answer (None: a notification's):
        method found, params decoded (not yet run, nor its permission checked)."""
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
            return self._error(exc.request_id, exc.code, exc.message)
        except InvalidParams as exc:
            return self._error(request_id, exc.code, exc.message)
        return Call(request_id, m, args)

    async def _call(
        self, api: Api, perms: frozenset[str], call: "Call", channels: ChannelHost | None
    ) -> tuple[dict[str, Any] | None, bool]:
        request_id, m = call.request_id, call.method
        try:
            if m.perm not in perms:
                raise permission_denied(m.name, m.perm.value)
            ctx = (
                CallContext(api, perms, self.registry, self.secret, self.network) if m.wants_context else None
            )
            result = await m.invoke(self.node, ctx, call.args)
            if m.channel:
                if request_id is None or channels is None:
                    aclose = getattr(result, "aclose", None)
                    if aclose is not None:
                        await aclose()
                    return None, False
                await channels.open_channel(request_id, m, result)
                return None, False
            return self._answer(request_id, m, result), False
        except RpcError as exc:
            return self._refusal(request_id, exc)
        except Exception as exc:
            return self._failure(request_id, m, exc), True

    async def run_calls(
        self, perms: frozenset[str], m: Method, calls: list["Call"]
    ) -> list[dict[str, Any] | None]:
        """Consecutive calls of one method with a run handler, answered in order (None for a
        notification's)."""
        assert m.run is not None
        if m.perm not in perms:
            denied = permission_denied(m.name, m.perm.value)
            return [self._refusal(c.request_id, denied)[0] for c in calls]
        try:
            outcomes = await m.run(self.node, [c.args for c in calls])
        except Exception as exc:  # the run as a whole failed: each call is answered as failed
            outcomes = [exc] * len(calls)
        answers: list[dict[str, Any] | None] = []
        for call, outcome in zip(calls, outcomes, strict=True):
            if isinstance(outcome, RpcError):
                answers.append(self._refusal(call.request_id, outcome)[0])
                continue
            if not isinstance(outcome, Exception):
                try:
                    answers.append(self._answer(call.request_id, m, outcome))
                    continue
                except Exception as exc:
                    outcome = exc
            answers.append(self._failure(call.request_id, m, outcome))
        return answers

    def _answer(self, request_id: Any, m: Method, result: Any) -> dict[str, Any] | None:
        if request_id is None:
            return None
        return {"jsonrpc": "2.0", "id": request_id, "result": self._encode(m, result)}

    def _encode(self, m: Method, result: Any) -> Any:
        """The result's JSON value. A memo method's result is immutable, so while its handler returns
        the very object it returned last time (ChainHead: until the head changes) the encoding made
        then is reused, as bytes that orjson writes into the answer as they are. The memo holds that
        object, so its identity cannot be taken by another one meanwhile."""
        if not m.memo:
            return m.encode_result(result, self.network)
        last = self._memo.get(m)
        if last is not None and last[0] is result:
            return last[1]
        encoded = orjson.Fragment(orjson.dumps(m.encode_result(result, self.network)))
        self._memo[m] = (result, encoded)
        return encoded

    @staticmethod
    def _refusal(request_id: Any, exc: RpcError) -> tuple[dict[str, Any] | None, bool]:
        if request_id is None:
            return None, False
        return {"jsonrpc": "2.0", "id": request_id, "error": exc.to_json()}, exc.code in _FRAMEWORK_CODES

    def _failure(self, request_id: Any, m: Method, exc: Exception) -> dict[str, Any] | None:
        _log.error(
            "rpc call failed",
            method=m.full_name,
            error=repr(exc),
            traceback="".join(traceback.format_exception(exc)),
        )
        message = f"internal error in '{m.full_name}' (see the node's log)"
        return self._error(request_id, INTERNAL_ERROR, message)

    @staticmethod
    def _error(request_id: Any, code: int, message: str) -> dict[str, Any] | None:
        """The error answer; a notification gets none, except when the request itself is unreadable
        (then the id is unknown and the answer carries a null id, as JSON-RPC 2.0 says)."""
        if request_id is None and code not in (PARSE_ERROR, INVALID_REQUEST):
            return None
        return error_object(request_id, code, message)


class Call:
    """A request that decoded: its id (None: a notification), method and arguments."""

    __slots__ = ("args", "method", "request_id")

    def __init__(self, request_id: Any, method: Method, args: list[Any]) -> None:
        self.request_id, self.method, self.args = request_id, method, args


def _same_method(prepared: "Call | dict[str, Any] | None", m: Method) -> bool:
    return isinstance(prepared, Call) and prepared.method is m
