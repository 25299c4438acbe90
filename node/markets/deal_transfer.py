"""Moving a deal's data from the client to the provider over HTTP, as Boost does: the provider pulls.

Client side: `DealDataApp`, an ASGI app mounted on the client node's RPC server under `/deal-data/`.
`offer(uuid, car, size)` makes a deal's CAR available at `/deal-data/<uuid>` behind a token made for that
deal alone (`Authorization: Bearer <token>`, or `?token=` for tools that cannot set headers); `revoke`
withdraws it once the provider has the data or the deal ended. GET and HEAD, with `Range` (one range:
206), so an interrupted download resumes; 401 without the deal's token, 404 for an unknown deal (the
answer does not say which, so a token cannot be tried against deals).

Provider side: `download(request, size, dest)` streams the URL into `dest` with httpx, never more than
`size` bytes (the proposal's Transfer.Size). A broken connection is resumed with `Range: bytes=<have>-`
when the server answers 206 for it, else the download starts over; a server error or a stall longer than
`stall_timeout` seconds is retried `attempts` times with a growing pause, then `TransferFailed` names
what went wrong. The bytes land in `dest.partial` and are renamed to `dest` only when exactly `size`
arrived; what is on disk of a failed transfer is removed unless `keep_partial` (a restart resumes it).
"""

import hmac
import os
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs

import httpx
import structlog
import trio

from node.markets.http_retrieval import Receive, Scope, Send, answer_range, request_headers, respond_text
from node.markets.storage_types import HttpRequest

_log = structlog.get_logger(__name__)

PREFIX: Final = "/deal-data/"
CHUNK: Final = 1 << 20
CAR_MEDIA: Final = b"application/vnd.ipld.car"


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Offer:
    car: Path
    size: int
    token: str


class DealDataApp:
    """The client's `/deal-data/<uuid>` route (see the module's docstring)."""

    def __init__(self, *, chunk_size: int = CHUNK) -> None:
        self._offers: dict[uuid.UUID, Offer] = {}
        self.served: dict[uuid.UUID, int] = {}  # bytes sent per deal, for progress
        self.chunk_size = chunk_size

    def mount(self, server: object) -> None:
        server.mount(PREFIX, self)  # type: ignore[attr-defined]

    def offer(self, deal: uuid.UUID, car: Path, size: int, token: str) -> None:
        self._offers[deal] = Offer(Path(car), size, token)

    def revoke(self, deal: uuid.UUID) -> None:
        self._offers.pop(deal, None)

    def offered(self, deal: uuid.UUID) -> bool:
        return deal in self._offers

    def _authorised(self, scope: Scope, offer: Offer) -> bool:
        headers = request_headers(scope)
        given = ""
        auth = headers.get(b"authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        else:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = (query.get("token") or [""])[0]
        return bool(given) and hmac.compare_digest(given.encode(), offer.token.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1003})
            return
        if scope["method"] not in ("GET", "HEAD"):
            await respond_text(send, 405, "GET or HEAD\n", [(b"allow", b"GET, HEAD")])
            return
        text = scope["path"][len(PREFIX) :].strip("/")
        try:
            deal = uuid.UUID(text)
        except ValueError:
            await respond_text(send, 404, "no such deal data\n")
            return
        offer = self._offers.get(deal)
        if offer is None or not self._authorised(scope, offer):
            # Unknown deal and wrong token answer alike only as far as the body goes; the status
            # tells a client with the right URL that its token is the problem.
            status = 404 if offer is None else 401
            await respond_text(send, status, "no such deal data, or not with this token\n")
            return
        await self._send_file(scope, receive, send, deal, offer)

    async def _send_file(
        self, scope: Scope, receive: Receive, send: Send, deal: uuid.UUID, offer: Offer
    ) -> None:
        headers = [(b"content-type", CAR_MEDIA), (b"accept-ranges", b"bytes")]
        answer = await answer_range(send, request_headers(scope).get(b"range"), offer.size, "data", headers)
        if answer is None:
            return
        start, end, status = answer
        try:
            source = await trio.open_file(offer.car, "rb")
        except OSError as exc:
            _log.error("deals.transfer_source_missing", deal=str(deal), car=str(offer.car), error=str(exc))
            await respond_text(send, 500, "the deal's data cannot be read\n")
            return
        async with source:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            if scope["method"] == "HEAD" or start == end:
                await send({"type": "http.response.body", "body": b""})
                return
            await source.seek(start)
            position = start
            async with trio.open_nursery() as nursery:

                async def watch() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    nursery.cancel_scope.cancel()

                nursery.start_soon(watch)
                while position < end:
                    chunk = await source.read(min(self.chunk_size, end - position))
                    if not chunk:
                        # The CAR shrank under us: end without the last chunk, the client sees it short.
                        _log.error(
                            "deals.transfer_source_short", deal=str(deal), at=position, size=offer.size
                        )
                        nursery.cancel_scope.cancel()
                        return
                    position += len(chunk)
                    self.served[deal] = max(self.served.get(deal, 0), position)
                    await send({"type": "http.response.body", "body": chunk, "more_body": position < end})
                nursery.cancel_scope.cancel()


# -- the provider's download ------------------------------------------------------------------------


class TransferFailed(Exception):
    """The data could not be had; the message says why (server status, size, stall, network)."""


Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class DownloadOptions:
    stall_timeout: float = 30.0  # seconds without a byte before the attempt is given up
    attempts: int = 5
    pause: float = 1.0  # seconds before the first retry, doubling
    keep_partial: bool = False


async def download(
    request: HttpRequest,
    size: int,
    dest: Path,
    *,
    options: DownloadOptions = DownloadOptions(),
    progress: Progress | None = None,
    client: httpx.AsyncClient | None = None,
) -> None:
    """Fetch exactly `size` bytes from request.url into dest (see the module's docstring)."""
    partial = dest.with_name(dest.name + ".partial")
    owns = client is None
    http = client or httpx.AsyncClient(timeout=httpx.Timeout(options.stall_timeout), follow_redirects=False)
    try:
        last_error = ""
        pause = options.pause
        for attempt in range(1, options.attempts + 1):
            try:
                await _attempt(http, request, size, partial, progress)
            except _Retry as exc:
                last_error = str(exc)
                _log.info("deals.transfer_retry", url=request.url, attempt=attempt, error=last_error)
                if attempt < options.attempts:
                    await trio.sleep(pause)
                    pause *= 2
                continue
            except TransferFailed:
                if not options.keep_partial:
                    partial.unlink(missing_ok=True)
                raise
            partial.replace(dest)
            return
        if not options.keep_partial:
            partial.unlink(missing_ok=True)
        raise TransferFailed(f"gave up after {options.attempts} attempts: {last_error}")
    finally:
        if owns:
            await http.aclose()


class _Retry(Exception):
    """An attempt that failed in a way worth another try (network, stall, 5xx)."""


async def _attempt(
    http: httpx.AsyncClient, request: HttpRequest, size: int, partial: Path, progress: Progress | None
) -> None:
    have = partial.stat().st_size if partial.exists() else 0
    if have > size:
        partial.unlink()
        have = 0
    if have == size:
        return  # a previous attempt got it all (the piece CID check comes next)
    headers = dict(request.headers)
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        async with http.stream("GET", request.url, headers=headers) as response:
            status = response.status_code
            if status >= 500:
                raise _Retry(f"the client's server answered {status}")
            if status == 206:
                first = _range_start(response.headers.get("content-range", ""), size)
                if first is None or first > have:
                    raise TransferFailed(
                        f"the client's server sent a range starting at {first}, {have} bytes are here"
                    )
                mode = "r+b"
                offset = first
            elif status == 200:
                mode, offset = "wb", 0  # no resumption: start over
            else:
                text = (await response.aread())[:200].decode("utf-8", "replace").strip()
                raise TransferFailed(f"the client's server answered {status}: {text}")
            length = response.headers.get("content-length")
            if length is not None and length.isdigit() and offset + int(length) > size:
                raise TransferFailed(f"the client offers {offset + int(length)} bytes, the deal says {size}")
            await _write(response, partial, mode, offset, size, progress)
    except httpx.TimeoutException as exc:
        raise _Retry(
            f"no data for too long after {_size(partial)} of {size} bytes ({type(exc).__name__})"
        ) from None
    except httpx.HTTPError as exc:
        raise _Retry(
            f"the transfer broke after {_size(partial)} of {size} bytes ({type(exc).__name__}: {exc})"
        ) from None
    got = _size(partial)
    if got != size:
        raise _Retry(f"the transfer ended after {got} of {size} bytes")


async def _write(
    response: httpx.Response, partial: Path, mode: str, offset: int, size: int, progress: Progress | None
) -> None:
    if mode == "r+b" and not partial.exists():
        partial.touch()
    out = await trio.open_file(partial, mode)
    async with out:
        await out.seek(offset)
        await out.truncate(offset)
        position = offset
        async for chunk in response.aiter_bytes():
            position += len(chunk)
            if position > size:
                raise TransferFailed(f"the client sent more than the {size} bytes the deal says")
            await out.write(chunk)
            await out.flush()  # what arrived is in the file, for a restart to resume from
            if progress is not None:
                progress(position)
        await out.flush()
        await trio.to_thread.run_sync(os.fsync, out.fileno())


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _range_start(header: str, size: int) -> int | None:
    """The first byte of a `Content-Range: bytes a-b/size` header, or None if it is not one for size."""
    unit, _, rest = header.partition(" ")
    span, _, total = rest.partition("/")
    first, _, _ = span.partition("-")
    if unit.strip().lower() != "bytes" or not first.isdigit() or (total.strip() not in ("*", str(size))):
        return None
    return int(first)
