"""The deal data's HTTP transfer: the client's `/deal-data/<uuid>` route (one token per deal, Range,
revocation) and the provider's download (exact size, resumed with Range after a cut, started over when
the server ignores Range, failing cleanly after its attempts), against a real HTTP server on 127.0.0.1;
and a deal whose transfer is cut half-way, resumed to the end."""

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
import trio

from node.markets.deal_states import StorageDealStatus as S
from node.markets.deal_transfer import DealDataApp, DownloadOptions, TransferFailed, download, new_token
from node.markets.http_retrieval import Receive, Scope, Send
from node.markets.storage_types import HttpRequest
from rpc.registry import Registry
from rpc.server import RpcServer
from tests.markets.deal_net import FirstResponseCut, deal_file, deal_net

FAST: Final = DownloadOptions(stall_timeout=2.0, attempts=3, pause=0.01)
DATA = os.urandom(300_000)


@dataclass
class Served:
    base: str
    app: DealDataApp
    car: Path


@pytest.fixture
async def served(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[Served]:
    car = tmp_path / "data.car"
    car.write_bytes(DATA)
    app = DealDataApp(chunk_size=64 << 10)
    server = RpcServer(Registry(), object(), secret=None, host="127.0.0.1", port=0)
    app.mount(server)
    bound = await nursery.start(server.run)
    yield Served(f"http://127.0.0.1:{bound.port}", app, car)


async def test_deal_data_needs_the_deal_s_token(served: Served) -> None:
    deal, other = uuid.uuid4(), uuid.uuid4()
    token = new_token()
    served.app.offer(deal, served.car, len(DATA), token)
    served.app.offer(other, served.car, len(DATA), new_token())
    url = f"{served.base}/deal-data/{deal}"
    async with httpx.AsyncClient() as http:
        assert (await http.get(url)).status_code == 401
        assert (await http.get(url, headers={"Authorization": "Bearer wrong"})).status_code == 401
        other_token = served.app._offers[other].token
        assert (await http.get(url, headers={"Authorization": f"Bearer {other_token}"})).status_code == 401
        assert (
            await http.get(
                f"{served.base}/deal-data/{uuid.uuid4()}", headers={"Authorization": f"Bearer {token}"}
            )
        ).status_code == 404
        assert (await http.get(f"{served.base}/deal-data/not-a-uuid")).status_code == 404
        auth = {"Authorization": f"Bearer {token}"}
        full = await http.get(url, headers=auth)
        assert full.status_code == 200 and full.content == DATA
        assert full.headers["content-length"] == str(len(DATA)) and full.headers["accept-ranges"] == "bytes"
        part = await http.get(url, headers={**auth, "Range": "bytes=1000-1999"})
        assert part.status_code == 206 and part.content == DATA[1000:2000]
        assert part.headers["content-range"] == f"bytes 1000-1999/{len(DATA)}"
        assert (await http.get(url, headers={**auth, "Range": f"bytes={len(DATA)}-"})).status_code == 416
        head = await http.head(url, headers=auth)
        assert head.status_code == 200 and head.content == b""
        assert (await http.get(f"{url}?token={token}")).content == DATA
        assert (await http.post(url, headers=auth)).status_code == 405
        served.app.revoke(deal)
        assert (await http.get(url, headers=auth)).status_code == 404
    assert served.app.served[deal] == len(DATA)


async def test_download_gets_exactly_the_data(served: Served, tmp_path: Path) -> None:
    deal, token = uuid.uuid4(), new_token()
    served.app.offer(deal, served.car, len(DATA), token)
    request = HttpRequest(f"{served.base}/deal-data/{deal}", {"Authorization": f"Bearer {token}"})
    seen: list[int] = []
    await download(request, len(DATA), tmp_path / "got.car", options=FAST, progress=seen.append)
    assert (tmp_path / "got.car").read_bytes() == DATA
    assert seen[-1] == len(DATA) and not (tmp_path / "got.car.partial").exists()
    with pytest.raises(TransferFailed, match="answered 401"):
        await download(HttpRequest(request.url), len(DATA), tmp_path / "x.car", options=FAST)
    with pytest.raises(TransferFailed, match="the deal says 1000"):
        await download(request, 1000, tmp_path / "y.car", options=FAST)
    assert not (tmp_path / "x.car.partial").exists() and not (tmp_path / "y.car.partial").exists()


@dataclass
class FlakyApp:
    """Serves DATA, cutting the connection after `cut` bytes for the first `cuts` requests; honours Range
    unless told not to; or always answers `status`."""

    cut: int = 100_000
    cuts: int = 1
    ranges: bool = True
    status: int = 200
    requests: list[str | None] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        wanted = dict(scope["headers"]).get(b"range")
        self.requests.append(wanted.decode() if wanted else None)
        if self.status != 200:
            await send({"type": "http.response.start", "status": self.status, "headers": []})
            await send({"type": "http.response.body", "body": b"no"})
            return
        start, status, headers = 0, 200, []
        if wanted and self.ranges:
            start = int(wanted.decode().split("=")[1].split("-")[0])
            status = 206
            headers.append((b"content-range", f"bytes {start}-{len(DATA) - 1}/{len(DATA)}".encode()))
        body = DATA[start:]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if len(self.requests) <= self.cuts:
            await send({"type": "http.response.body", "body": body[: self.cut], "more_body": True})
            return  # the connection ends short of content-length
        await send({"type": "http.response.body", "body": body})


async def serve(nursery: trio.Nursery, app: Any) -> str:
    server = RpcServer(Registry(), object(), secret=None, host="127.0.0.1", port=0)
    server.mount("/flaky/", app)
    bound = await nursery.start(server.run)
    return f"http://127.0.0.1:{bound.port}/flaky/x"


async def test_a_cut_transfer_resumes_with_range(nursery: trio.Nursery, tmp_path: Path) -> None:
    app = FlakyApp(cut=100_000, cuts=2)
    url = await serve(nursery, app)
    await download(HttpRequest(url), len(DATA), tmp_path / "got.car", options=FAST)
    assert (tmp_path / "got.car").read_bytes() == DATA
    assert app.requests == [None, "bytes=100000-", "bytes=200000-"]


async def test_a_server_without_range_is_read_again_from_the_start(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    app = FlakyApp(cut=100_000, cuts=1, ranges=False)
    url = await serve(nursery, app)
    await download(HttpRequest(url), len(DATA), tmp_path / "got.car", options=FAST)
    assert (tmp_path / "got.car").read_bytes() == DATA
    assert app.requests == [None, "bytes=100000-"]


async def test_a_transfer_that_keeps_failing_gives_up_cleanly(nursery: trio.Nursery, tmp_path: Path) -> None:
    cutting = FlakyApp(cut=50_000, cuts=10)
    with pytest.raises(
        TransferFailed, match="gave up after 3 attempts: the transfer broke after 150000 of 300000 bytes"
    ):
        await download(
            HttpRequest(await serve(nursery, cutting)), len(DATA), tmp_path / "a.car", options=FAST
        )
    failing = FlakyApp(status=503)
    with pytest.raises(TransferFailed, match="answered 503"):
        await download(
            HttpRequest(await serve(nursery, failing)), len(DATA), tmp_path / "b.car", options=FAST
        )
    assert len(failing.requests) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.slow
async def test_a_deal_whose_transfer_is_cut_resumes_and_completes(tmp_path: Path) -> None:
    imported_file = deal_file(tmp_path / "file", size=1900)

    data = FirstResponseCut(700)
    net = deal_net(tmp_path, data_app=data)
    imported = net.import_file(imported_file)
    async with net.running():
        proposal = await net.start_deal(imported)
        await net.deal_reaches(proposal, S.StorageDealStaged)
    assert data.requests == [None, "bytes=700-"]
    (deal,) = net.provider.deals()
    assert deal.bytes_received == imported.car_size
