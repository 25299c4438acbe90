"""A WebSocket connection's calls and channels, as go-jsonrpc serves them.

Each call runs in its own task, so a long call (StateWaitMsg) does not hold up the others; the frames
a connection sends go through one bounded outbox drained by one writer. Calls of a method with a run
handler (MpoolPush, registry.py) are the exception: decoded as they arrive and queued, in arrival
order, for one runner task that hands every call waiting at once to the method's run handler, as
consecutive calls of a JSON-RPC batch are; each call is still answered in its own frame, by its id.
Clients push in bulk this way (go-jsonrpc: many calls in flight on one connection), and a task, a
cancel scope and a thread hand-off per call cost the event loop more than the push itself.

A channel method's call is answered with a channel id (1, 2, ... per connection); its values follow as
notifications `{"jsonrpc":"2.0","method":"xrpc.ch.val","params":[id, value]}` and its end as
`xrpc.ch.close [id]`. `xrpc.cancel [requestId]` from the client cancels that call, or that channel
(which then closes); a queued call of a run-handler method is then not run if its turn has not come,
and not answered if it has. Queued calls not yet run when the connection closes are not run.

Back-pressure: a channel's values are put in the outbox without waiting; when it is full the client is
not reading fast enough, and the connection is closed (code 1008) rather than letting the node wait
on it. Calls in flight per connection and channels per connection are bounded.
"""

import itertools
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import orjson
import structlog
import trio

from rpc.dispatch import Call, Dispatcher, dumps, error_object
from rpc.errors import INVALID_REQUEST, PARSE_ERROR, RpcError
from rpc.registry import Api, Method

_log = structlog.get_logger(__name__)

CANCEL: Final = "xrpc.cancel"
CH_VAL: Final = "xrpc.ch.val"
CH_CLOSE: Final = "xrpc.ch.close"
# Close code sent to a client that does not read its channel values (RFC 6455 policy violation).
TOO_SLOW_CLOSE_CODE: Final = 1008

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class SessionLimits:
    def __init__(self, *, outbox: int = 1024, inflight: int = 128, channels: int = 64) -> None:
        self.outbox, self.inflight, self.channels = outbox, inflight, channels


class _TooSlow(Exception):
    pass


class WsSession:
    """One accepted WebSocket connection on /rpc/<api>."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        api: Api,
        perms: frozenset[str],
        limits: SessionLimits | None = None,
    ) -> None:
        self.dispatcher, self.api, self.perms = dispatcher, api, perms
        self.limits = limits or SessionLimits()
        self._out_send, self._out_recv = trio.open_memory_channel[bytes](self.limits.outbox)
        self._inflight = trio.Semaphore(self.limits.inflight)
        self._handling: dict[Any, trio.CancelScope] = {}  # request id -> its call or channel
        self._channel_ids = itertools.count(1)
        self._channels = 0
        self._nursery: trio.Nursery | None = None
        self._close_reason: str | None = None
        # Calls of run-handler methods waiting for the runner (each holds an inflight slot); the last
        # queued call of each id until it is answered (what xrpc.cancel finds, as _handling); calls
        # cancelled: not run if their turn has not come, not answered if it has.
        self._run_send, self._run_recv = trio.open_memory_channel[Call](math.inf)
        self._queued: dict[Any, Call] = {}
        self._dropped: set[Call] = set()

    async def serve(self, receive: Receive, send: Send) -> None:
        """Read frames until the client goes away; then cancel what it started."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._writer, send)
            nursery.start_soon(self._runner)
            try:
                while True:
                    message = await receive()
                    kind = message["type"]
                    if kind == "websocket.disconnect":
                        break
                    if kind != "websocket.receive":
                        continue
                    data = message.get("text")
                    if data is None:
                        data = message.get("bytes") or b""
                    await self._frame(data)
            finally:
                nursery.cancel_scope.cancel()
        if self._close_reason is not None:
            _log.warning("websocket client closed", reason=self._close_reason)
            with trio.move_on_after(1):
                await send(
                    {"type": "websocket.close", "code": TOO_SLOW_CLOSE_CODE, "reason": self._close_reason}
                )

    # -- incoming ---------------------------------------------------------------------------------------
    async def _frame(self, data: str | bytes) -> None:
        try:
            frame = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            await self._out_send.send(dumps(error_object(None, PARSE_ERROR, f"Parse error: {exc}")))
            return
        assert self._nursery is not None
        if type(frame) is list:  # a batch: answered like an HTTP batch, no channels in it
            await self._inflight.acquire()
            self._nursery.start_soon(self._batch, frame)
            return
        if type(frame) is dict:
            method = frame.get("method")
            if method == CANCEL:
                self._cancel(frame.get("params"))
                return
            if method in (CH_VAL, CH_CLOSE) or (method is None and ("result" in frame or "error" in frame)):
                return  # this server opens no calls to its clients, so it expects no answers or channels
            if type(method) is str:
                m = self.dispatcher.registry.lookup(self.api, method)
                if m is not None and m.run is not None and not m.channel:
                    await self._inflight.acquire()
                    await self._queue_run(frame)
                    return
        await self._inflight.acquire()
        self._nursery.start_soon(self._call, frame)

    def _cancel(self, params: Any) -> None:
        if type(params) is list and len(params) == 1:
            scope = self._handling.get(params[0])
            if scope is not None:
                scope.cancel()
            call = self._queued.pop(params[0], None)
            if call is not None:
                self._dropped.add(call)

    async def _batch(self, items: list[Any]) -> None:
        try:
            if not items:
                out = dumps(error_object(None, INVALID_REQUEST, "invalid request: empty batch"))
            else:
                answers = await self.dispatcher.handle_batch(self.api, self.perms, items)
                out = dumps(answers) if answers else b""
        finally:
            self._inflight.release()
        if out:
            await self._out_send.send(out)

    async def _call(self, frame: Any) -> None:
        request_id = frame.get("id") if type(frame) is dict else None
        scope = trio.CancelScope()
        if request_id is not None:
            self._handling[request_id] = scope
        try:
            with scope:
                resp, _ = await self.dispatcher.handle_one(self.api, self.perms, frame, self)
                if resp is not None:
                    await self._out_send.send(dumps(resp))
        finally:
            if self._handling.get(request_id) is scope:
                del self._handling[request_id]
            self._inflight.release()

    async def _queue_run(self, frame: dict[str, Any]) -> None:
        """Decode a call of a run-handler method and queue it for the runner (its inflight slot is
        taken); a call that does not decode is answered at once."""
        prepared = self.dispatcher.prepare(self.api, frame, self)
        if not isinstance(prepared, Call):
            self._inflight.release()
            if prepared is not None:
                await self._out_send.send(dumps(prepared))
            return
        if prepared.request_id is not None:
            self._queued[prepared.request_id] = prepared
        self._run_send.send_nowait(prepared)

    async def _runner(self) -> None:
        """Run the queued calls: every call waiting at once, consecutive calls of one method handed to
        its run handler together; then each call's answer, in order, in its own frame."""
        async for first in self._run_recv:
            waiting = [first]
            while True:
                try:
                    waiting.append(self._run_recv.receive_nowait())
                except trio.WouldBlock:
                    break
            for m, run in itertools.groupby(waiting, key=lambda call: call.method):
                await self._run(m, list(run))

    async def _run(self, m: Method, queued: list[Call]) -> None:
        calls = []
        for call in queued:
            if call in self._dropped:  # cancelled before its turn
                self._dropped.discard(call)
                self._inflight.release()
            else:
                calls.append(call)
        answers = await self.dispatcher.run_calls(self.perms, m, calls) if calls else []
        for call, answer in zip(calls, answers, strict=True):
            self._inflight.release()
            if self._queued.get(call.request_id) is call:
                del self._queued[call.request_id]
            if call in self._dropped:
                self._dropped.discard(call)
            elif answer is not None:
                await self._out_send.send(dumps(answer))

    # -- channels ---------------------------------------------------------------------------------------
    async def open_channel(self, request_id: Any, method: Method, values: AsyncIterator[Any]) -> None:
        """Answer the call with a new channel id, then send the iterator's values (ChannelHost)."""
        if self._channels >= self.limits.channels:
            aclose = getattr(values, "aclose", None)
            if aclose is not None:
                await aclose()
            raise RpcError(f"too many channels open on this connection (at most {self.limits.channels})")
        channel_id = next(self._channel_ids)
        self._channels += 1
        scope = trio.CancelScope()
        self._handling[request_id] = scope  # xrpc.cancel with the call's id ends the channel
        await self._out_send.send(dumps({"jsonrpc": "2.0", "id": request_id, "result": channel_id}))
        assert self._nursery is not None
        self._nursery.start_soon(self._pump, request_id, channel_id, method, values, scope)

    async def _pump(
        self,
        request_id: Any,
        channel_id: int,
        method: Method,
        values: AsyncIterator[Any],
        scope: trio.CancelScope,
    ) -> None:
        network = self.dispatcher.network
        try:
            with scope:
                try:
                    async for value in values:
                        frame = {
                            "jsonrpc": "2.0",
                            "method": CH_VAL,
                            "params": [channel_id, method.encode_item(value, network)],
                        }
                        try:
                            self._out_send.send_nowait(dumps(frame))
                        except trio.WouldBlock:
                            raise _TooSlow from None
                finally:
                    aclose = getattr(values, "aclose", None)
                    if aclose is not None:
                        with trio.CancelScope(shield=True):
                            await aclose()
        except _TooSlow:
            self._close_reason = f"client too slow: channel {channel_id} of {method.full_name} overflowed"
            assert self._nursery is not None
            self._nursery.cancel_scope.cancel()
            return
        except Exception as exc:
            _log.error("rpc channel failed", method=method.full_name, error=repr(exc))
        finally:
            self._channels -= 1
            if self._handling.get(request_id) is scope:
                del self._handling[request_id]
        close = {"jsonrpc": "2.0", "method": CH_CLOSE, "params": [channel_id]}
        try:
            self._out_send.send_nowait(dumps(close))
        except trio.WouldBlock:
            self._close_reason = f"client too slow: channel {channel_id} could not be closed"
            assert self._nursery is not None
            self._nursery.cancel_scope.cancel()

    # -- outgoing ---------------------------------------------------------------------------------------
    async def _writer(self, send: Send) -> None:
        async for frame in self._out_recv:
            await send({"type": "websocket.send", "text": frame.decode()})
