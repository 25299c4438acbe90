"""HTTP retrieval from a provider's node: the trustless gateway (`/ipfs/`) and the piece gateway (`/piece/`).

An ASGI app served on the node's API port (`RetrievalHttpApp(store, ask).mount(server)` mounts it on
the RPC server's `/ipfs/` and `/piece/` prefixes), so curl, lassie and booster-http clients work:

- `GET|HEAD /ipfs/<cid>[/<name>...]` with `?format=car` or `Accept: application/vnd.ipld.car` (a CAR v1
  of the DAG in depth-first order, `dag-scope=all|entity|block`, `dups=n` unless `dups=y` is asked for)
  or `?format=raw` / `Accept: application/vnd.ipld.raw` (the block itself). A path walks UnixFS
  directories by name; the blocks of the walk come first in the CAR. The CAR is streamed as it is read
  from disk (chunked); a block found missing half-way ends the connection without the final chunk, so
  the client sees an incomplete transfer. 400 for a request this gateway cannot answer (no CAR or raw
  format asked for, a bad CID, scope or parameter), 404 when the root block is not stored here (412
  with `Cache-Control: only-if-cached`). `bafkqaaa` (the empty identity CID) answers the probe.
- `GET|HEAD /piece/<piece cid>` (v1 or v2 piece CID): the unpadded piece (the CAR, then zeros), with
  `Content-Type: application/piece`, `Range` (one range: 206 with `Content-Range`, 416 when it cannot be
  satisfied; several ranges are answered with the whole piece, as HTTP allows), `If-None-Match`, and
  the immutable caching headers Boost sends.

Data is served free to anyone when its retrieval ask (the piece's own, else the provider's) has no price;
priced data is refused with 402 and a message saying to make a retrieval deal.
"""

import re
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import parse_qs, unquote

import structlog
import trio

from chain.encoding import dagpb
from chain.encoding.cid import CID, DAG_PB, FIL_COMMITMENT_UNSEALED, RAW
from chain.encoding.commcid import v2_to_v1
from chain.encoding.errors import DecodeError
from chain.encoding.multihash import IDENTITY
from chain.store.blockstore import BlockNotFound
from chain.store.car import encode_header, encode_section
from node.markets.piecestore import FREE_ASK, BlockSource, PieceStore, RetrievalAsk, StoredPiece
from node.markets.traversal import DagScope, dfs_blocks
from node.markets.unixfs import DataType, UnixFSData

_log = structlog.get_logger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

CAR_MEDIA: Final = "application/vnd.ipld.car"
RAW_MEDIA: Final = "application/vnd.ipld.raw"
PIECE_MEDIA: Final = "application/piece"
IMMUTABLE: Final = b"public, max-age=29030400, immutable"
# Boost's constant Last-Modified for immutable piece data (1 ms after the epoch, in whole seconds).
LAST_MODIFIED: Final = b"Thu, 01 Jan 1970 00:00:00 GMT"
EMPTY_IDENTITY: Final = "bafkqaaa"
DEFAULT_CHUNK: Final = 1 << 20
_RANGE: Final = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


class Mountable(Protocol):
    def mount(self, prefix: str, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None: ...


class BadRequest(Exception):
    """A request this gateway cannot answer as asked (400); the message says why."""


@dataclass(frozen=True, slots=True)
class CarRequest:
    root: CID
    path: tuple[str, ...]
    scope: DagScope
    dups: bool


# -- request parsing ----------------------------------------------------------------------------------


def _media_ranges(accept: str) -> list[tuple[str, dict[str, str], float]]:
    """(type, params, q) from an Accept header, highest q first (stable)."""
    out = []
    for part in accept.split(","):
        pieces = [p.strip() for p in part.split(";")]
        if not pieces[0]:
            continue
        params: dict[str, str] = {}
        for item in pieces[1:]:
            key, _, value = item.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 0.0
        out.append((pieces[0].lower(), params, q))
    out.sort(key=lambda item: -item[2])
    return [item for item in out if item[2] > 0]


def negotiate(query: dict[str, list[str]], accept: str) -> tuple[str, dict[str, str]]:
    """The response format ("car" or "raw") and its CAR parameters; BadRequest if neither is asked for.

    `format` wins over Accept, as the spec says; car-version/car-order/car-dups in the query win over
    the Accept parameters."""
    params: dict[str, str] = {}
    chosen: str | None = None
    for media, media_params, _q in _media_ranges(accept):
        if media == CAR_MEDIA:
            chosen, params = "car", media_params
            break
        if media == RAW_MEDIA:
            chosen = "raw"
            break
    formats = query.get("format", [])
    if len(formats) > 1:
        raise BadRequest("give one format parameter")
    if formats:
        if formats[0] not in ("car", "raw"):
            raise BadRequest(
                f"format={formats[0]} is not served here: this trustless gateway serves car and raw"
            )
        if formats[0] != chosen:
            params = {}
        chosen = formats[0]
    if chosen is None:
        raise BadRequest(
            "this is a trustless gateway: ask for ?format=car (Accept: application/vnd.ipld.car) "
            "or ?format=raw (Accept: application/vnd.ipld.raw)"
        )
    for key in ("version", "order", "dups"):
        values = query.get(f"car-{key}")
        if values:
            params[key] = values[0]
    return chosen, params


def parse_car_params(
    root: CID, path: tuple[str, ...], query: dict[str, list[str]], params: dict[str, str]
) -> CarRequest:
    version = params.get("version", "1")
    if version != "1":
        raise BadRequest(f"CAR version {version} is not served here: only version=1")
    order = params.get("order", "dfs")
    if order not in ("dfs", "unk"):
        raise BadRequest(f"CAR order {order!r} is not served here: only order=dfs")
    dups = params.get("dups", "n")
    if dups not in ("y", "n"):
        raise BadRequest(f"dups must be y or n, got {dups!r}")
    scopes = query.get("dag-scope", ["all"])
    try:
        scope = DagScope(scopes[0])
    except ValueError:
        raise BadRequest(f"dag-scope must be all, entity or block, got {scopes[0]!r}") from None
    if "entity-bytes" in query:
        raise BadRequest("entity-bytes is not supported by this gateway: ask for the whole entity")
    return CarRequest(root, path, scope, dups == "y")


def parse_ipfs_path(path: str) -> tuple[CID, tuple[str, ...]]:
    rest = path[len("/ipfs/") :]
    head, _, tail = rest.partition("/")
    if not head:
        raise BadRequest("no CID in the path: GET /ipfs/<cid>")
    try:
        cid = CID.parse(unquote(head))
    except DecodeError as exc:
        raise BadRequest(f"invalid CID {head!r}: {exc}") from None
    segments = tuple(unquote(s) for s in tail.split("/") if s)
    return cid, segments


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """(start, end exclusive) of a single byte range; None to ignore the header (not bytes, or several
    ranges); "unsatisfiable" when no byte of it lies in the piece."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    match = _RANGE.match(spec)
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size
    start = int(first)
    end = size if not last else int(last) + 1
    if last and int(last) < start:
        return None  # an invalid range is ignored (RFC 9110 14.1.1)
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size)


# -- the app ----------------------------------------------------------------------------------------


async def answer_range(
    send: Send, wanted: str | None, size: int, noun: str, headers: list[tuple[bytes, bytes]]
) -> tuple[int, int, int] | None:
    """What to send of `size` bytes for the Range header `wanted` (None: all of them): start, end and
    the status, with the content-length (and the content-range of a part) added to headers; None once a
    range outside them has been answered 416."""
    start, end, status = 0, size, 200
    if wanted is not None:
        parsed = parse_range(wanted, size)
        if parsed == "unsatisfiable":
            await respond_text(
                send,
                416,
                f"range {wanted} is outside the {size}-byte {noun}\n",
                [(b"content-range", f"bytes */{size}".encode()), (b"accept-ranges", b"bytes")],
            )
            return None
        if isinstance(parsed, tuple):
            start, end = parsed
            status = 206
            headers.append((b"content-range", f"bytes {start}-{end - 1}/{size}".encode()))
    headers.append((b"content-length", b"%d" % (end - start)))
    return start, end, status


def request_headers(scope: Scope) -> dict[bytes, str]:
    out: dict[bytes, str] = {}
    for key, value in scope.get("headers", []):
        name = key.lower()
        text = value.decode("latin-1")
        out[name] = f"{out[name]}, {text}" if name in out else text
    return out


async def respond_text(
    send: Send, status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = text.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RetrievalHttpApp:
    """The `/ipfs/` and `/piece/` routes (see the module's docstring)."""

    def __init__(
        self,
        store: PieceStore,
        ask: RetrievalAsk | Callable[[], RetrievalAsk] = FREE_ASK,
        *,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> None:
        self.store = store
        self._ask = ask
        self.chunk_size = chunk_size

    def mount(self, server: Mountable) -> None:
        server.mount("/ipfs/", self)
        server.mount("/piece/", self)

    def provider_ask(self) -> RetrievalAsk:
        return self._ask() if callable(self._ask) else self._ask

    def ask_of(self, piece: StoredPiece) -> RetrievalAsk:
        return piece.ask if piece.ask is not None else self.provider_ask()

    def _refusal(self, pieces: list[StoredPiece]) -> str | None:
        """Why the data in pieces is not served free, or None if one of them is free."""
        if not pieces or any(self.ask_of(p).free for p in pieces):
            return None
        ask = self.ask_of(pieces[0])
        return (
            f"this data is priced ({ask.price_per_byte} attoFIL per byte, unsealing {ask.unseal_price} "
            f"attoFIL): make a retrieval deal for it (filpy client retrieve)\n"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1003})
            return
        method = scope["method"]
        path: str = scope["path"]
        if method not in ("GET", "HEAD"):
            await respond_text(
                send, 405, f"{method} is not allowed here: GET or HEAD\n", [(b"allow", b"GET, HEAD")]
            )
            return
        try:
            if path.startswith("/ipfs/"):
                await self._ipfs(scope, receive, send)
            elif path.startswith("/piece/"):
                await self._piece(scope, receive, send)
            else:
                await respond_text(send, 404, f"no such path: {path}\n")
        except BadRequest as exc:
            await respond_text(send, 400, f"{exc}\n")

    # -- /ipfs/ -----------------------------------------------------------------------------------
    async def _ipfs(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = request_headers(scope)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        root, segments = parse_ipfs_path(scope["path"])
        kind, params = negotiate(query, headers.get(b"accept", ""))
        head = scope["method"] == "HEAD"
        if kind == "raw" and segments:
            raise BadRequest("a raw block is asked for by CID alone: GET /ipfs/<cid>?format=raw")
        if root.multihash.code == IDENTITY:
            await self._identity(root, kind, params, query, send, head)
            return
        if not self.store.has_block(root):
            only_cached = "only-if-cached" in headers.get(b"cache-control", "")
            status = 412 if only_cached else 404
            await respond_text(send, status, f"{root} is not stored here\n")
            return
        refusal = self._refusal(self.store.pieces_with(root))
        if refusal is not None:
            await respond_text(send, 402, refusal)
            return
        if kind == "raw":
            data = await trio.to_thread.run_sync(self.store.get_block, root)
            if data is None:
                await respond_text(send, 404, f"{root} is not stored here\n")
                return
            out = [
                (b"content-type", RAW_MEDIA.encode()),
                (b"content-length", b"%d" % len(data)),
                (b"content-disposition", f'attachment; filename="{root}.bin"'.encode()),
                (b"etag", f'"{root}.raw"'.encode()),
                (b"x-ipfs-path", f"/ipfs/{root}".encode()),
                (b"x-ipfs-roots", str(root).encode()),
                (b"cache-control", IMMUTABLE),
                (b"x-content-type-options", b"nosniff"),
                (b"vary", b"Accept"),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": out})
            await send({"type": "http.response.body", "body": b"" if head else data})
            return
        request = parse_car_params(root, segments, query, params)
        await self._car(request, receive, send, head)

    async def _identity(
        self,
        root: CID,
        kind: str,
        params: dict[str, str],
        query: dict[str, list[str]],
        send: Send,
        head: bool,
    ) -> None:
        """The probe (`bafkqaaa`) and other identity CIDs: their data is the CID itself."""
        if str(root) != EMPTY_IDENTITY:
            raise BadRequest(f"identity CID {root}: only the probe {EMPTY_IDENTITY} is answered")
        if kind == "raw":
            body = b""
            media = RAW_MEDIA
        else:
            request = parse_car_params(root, (), query, params)
            body = encode_header([root])
            media = f"{CAR_MEDIA}; version=1; order=dfs; dups={'y' if request.dups else 'n'}"
        out = [(b"content-type", media.encode()), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": out})
        await send({"type": "http.response.body", "body": b"" if head else body})

    def _resolve(self, source: BlockSource, request: CarRequest) -> tuple[CID, list[tuple[CID, bytes]]]:
        """Walk the path through UnixFS directories: the target CID and the blocks walked through."""
        walked: list[tuple[CID, bytes]] = []
        cid = request.root
        for name in request.path:
            data = source(cid)
            if data is None:
                raise BlockNotFound(cid)
            walked.append((cid, data))
            if cid.codec != DAG_PB:
                raise BadRequest(f"cannot resolve {name!r}: {cid} is not a UnixFS directory")
            node = dagpb.decode(data)
            meta = UnixFSData.decode(node.data or b"")
            if meta.type is not DataType.Directory:
                raise BadRequest(
                    f"cannot resolve {name!r}: {cid} is a UnixFS {meta.type.name}, not a plain directory"
                )
            match = [link.hash for link in node.links if link.name == name]
            if not match:
                raise FileNotFoundError(f"{name!r} is not in directory {cid}")
            cid = match[0]
        return cid, walked

    async def _car(self, request: CarRequest, receive: Receive, send: Send, head: bool) -> None:
        source = BlockSource(self.store)
        try:
            try:
                target, walked = await trio.to_thread.run_sync(self._resolve, source, request)
            except FileNotFoundError as exc:
                await respond_text(send, 404, f"{exc}\n")
                return
            except (DecodeError, BlockNotFound) as exc:
                await respond_text(
                    send, 404 if isinstance(exc, BlockNotFound) else 400, f"cannot resolve the path: {exc}\n"
                )
                return
            if request.path and not self.store.has_block(target):
                await respond_text(send, 404, f"{target} is not stored here\n")
                return
            dups = "y" if request.dups else "n"
            path = "/".join((f"/ipfs/{request.root}", *request.path))
            roots = ",".join(str(cid) for cid, _ in walked) + ("," if walked else "") + str(target)
            out = [
                (b"content-type", f"{CAR_MEDIA}; version=1; order=dfs; dups={dups}".encode()),
                (b"content-disposition", f'attachment; filename="{target}.car"'.encode()),
                (b"etag", f'W/"{target}.car.{request.scope}.dfs.{dups}"'.encode()),
                (b"x-ipfs-path", path.encode()),
                (b"x-ipfs-roots", roots.encode()),
                (b"cache-control", IMMUTABLE),
                (b"x-content-type-options", b"nosniff"),
                (b"vary", b"Accept"),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": out})
            if head:
                await send({"type": "http.response.body", "body": b""})
                return
            blocks = self._car_sections(source, request, target, walked)
            await self._stream(receive, send, lambda: next_chunk(blocks, self.chunk_size), what=str(target))
        finally:
            source.close()

    def _car_sections(
        self, source: BlockSource, request: CarRequest, target: CID, walked: list[tuple[CID, bytes]]
    ) -> Iterator[bytes]:
        yield encode_header([request.root])
        for cid, data in walked:
            yield encode_section(cid, data)
        for cid, data in dfs_blocks(source, target, request.scope, dups=request.dups):
            yield encode_section(cid, data)

    async def _stream(
        self, receive: Receive, send: Send, produce: Callable[[], bytes | None], *, what: str
    ) -> None:
        """Send what produce() returns (called in a worker thread) until it returns None; stop early if
        the client goes away. A failure ends the connection without the last chunk."""
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        nursery.cancel_scope.cancel()
                        return

            nursery.start_soon(watch)
            try:
                while True:
                    chunk = await trio.to_thread.run_sync(produce)
                    if chunk is None:
                        break
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except (BlockNotFound, DecodeError, OSError) as exc:
                _log.warning("retrieval.http_stream_failed", what=what, error=str(exc))
                nursery.cancel_scope.cancel()
                return
            await send({"type": "http.response.body", "body": b""})
            nursery.cancel_scope.cancel()

    # -- /piece/ -------------------------------------------------------------------------------------
    async def _piece(self, scope: Scope, receive: Receive, send: Send) -> None:
        text = unquote(scope["path"][len("/piece/") :]).strip("/")
        try:
            cid = CID.parse(text)
        except DecodeError as exc:
            raise BadRequest(f"invalid piece CID {text!r}: {exc}") from None
        if cid.codec == RAW:
            try:
                cid, _ = v2_to_v1(cid)
            except DecodeError as exc:
                raise BadRequest(f"{text} is not a piece CID: {exc}") from None
        elif cid.codec != FIL_COMMITMENT_UNSEALED:
            raise BadRequest(f"{text} is not a piece CID (codec 0x{cid.codec:x})")
        piece = self.store.get(cid)
        if piece is None:
            await respond_text(send, 404, f"piece {cid} is not stored here\n")
            return
        refusal = self._refusal([piece])
        if refusal is not None:
            await respond_text(send, 402, refusal)
            return
        headers = request_headers(scope)
        size = piece.unpadded_size
        etag = f'"{cid}"'
        common = [
            (b"content-type", PIECE_MEDIA.encode()),
            (b"accept-ranges", b"bytes"),
            (b"etag", etag.encode()),
            (b"cache-control", IMMUTABLE),
            (b"last-modified", LAST_MODIFIED),
            (b"x-content-type-options", b"nosniff"),
        ]
        if etag in [tag.strip() for tag in headers.get(b"if-none-match", "").split(",")]:
            await send({"type": "http.response.start", "status": 304, "headers": common})
            await send({"type": "http.response.body", "body": b""})
            return
        wanted = headers.get(b"range") if headers.get(b"if-range", etag) == etag else None
        answer = await answer_range(send, wanted, size, "piece", common)
        if answer is None:
            return
        start, end, status = answer
        await send({"type": "http.response.start", "status": status, "headers": common})
        if scope["method"] == "HEAD" or start == end:
            await send({"type": "http.response.body", "body": b""})
            return
        reader = await trio.to_thread.run_sync(self.store.open_piece, cid)
        position = start

        def produce() -> bytes | None:
            nonlocal position
            if position >= end:
                return None
            data = reader.read(position, min(self.chunk_size, end - position))
            position += len(data)
            return data or None

        try:
            await self._stream(receive, send, produce, what=f"piece {cid}")
        finally:
            reader.close()


def next_chunk(sections: Iterator[bytes], size: int) -> bytes | None:
    """About size bytes of CAR from sections; None when they are exhausted."""
    parts: list[bytes] = []
    total = 0
    for section in sections:
        parts.append(section)
        total += len(section)
        if total >= size:
            break
    return b"".join(parts) if parts else None
