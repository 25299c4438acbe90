"""Client import and `/piece/` retrieval throughput, each beside a baseline measured in the same run.

Import: `ImportStore.import_file` of a 256 MiB random file (in the page cache) into a CAR: two passes
(chunk hashing, then the CAR written in DFS order with its CommP), against the machine's sha256 over the
same file (hashlib.file_digest) and CommP alone over bytes of the same size. Target >= 100 MB/s.

`/piece/`: a 256 MiB piece downloaded over loopback from the node's HTTP server (hypercorn on trio,
the RPC server with the retrieval app mounted) by httpx in a separate process, so that client and
server do not share one interpreter; against reading the same CAR from disk. Target >= 200 MB/s.
Runs are interleaved and the median is reported, so a neighbour's load hits every figure alike.
"""

import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

import trio

from bench.common import report, section
from node.markets.http_retrieval import RetrievalHttpApp
from node.markets.imports import ImportStore
from node.markets.piecestore import PieceStore
from proofs.commp import CommPWriter
from rpc.registry import Registry
from rpc.server import RpcServer

SIZE: Final = 256 << 20
ROUNDS: Final = 3
_MB: Final = 1e6
_DOWNLOAD: Final = (
    "import httpx, sys, time\n"
    "n = 0\n"
    "start = time.perf_counter()\n"
    "with httpx.stream('GET', sys.argv[1], timeout=60) as r:\n"
    "    r.raise_for_status()\n"
    "    for chunk in r.iter_raw(1 << 20):\n"
    "        n += len(chunk)\n"
    "print(n, time.perf_counter() - start)\n"
)


def _write_random(path: Path) -> None:
    with path.open("wb") as out:
        for _ in range(SIZE >> 24):
            out.write(os.urandom(1 << 24))


def _sha256_file(path: Path) -> float:
    start = time.perf_counter()
    with path.open("rb") as stream:
        hashlib.file_digest(stream, "sha256")
    return time.perf_counter() - start


def _commp_only() -> float:
    data = os.urandom(1 << 24)
    start = time.perf_counter()
    with CommPWriter(threads=2) as writer:
        for _ in range(SIZE >> 24):
            writer.write(data)
        writer.finish()
    return time.perf_counter() - start


def _bench_import(work: Path) -> Path:
    section("client import (UnixFS + CAR + CommP), 256 MiB")
    source = work / "source"
    _write_random(source)
    store = ImportStore.open(work / "imports")
    times: dict[str, list[float]] = {"import": [], "sha256": [], "commp": []}
    car = work / "imports" / "1.car"
    for _ in range(ROUNDS):
        times["sha256"].append(_sha256_file(source))
        times["commp"].append(_commp_only())
        start = time.perf_counter()
        made = store.import_file(source)
        times["import"].append(time.perf_counter() - start)
        car = made.car_path
        for other in store.imports()[:-1]:
            store.remove(other.import_id)
    rate = {k: SIZE / statistics.median(v) / _MB for k, v in times.items()}
    report(
        "filpy client import",
        rate["import"],
        "MB/s",
        f"target >= 100; {rate['import'] / rate['sha256']:.2f} x sha256",
    )
    report("sha256 of the same file (hashlib)", rate["sha256"], "MB/s")
    report(
        "CommP alone, same size, 2 threads",
        rate["commp"],
        "MB/s",
        f"import = {rate['import'] / rate['commp']:.2f} x CommP",
    )
    return car


def _bench_piece(work: Path, car: Path) -> None:
    section("/piece/ download over loopback, 256 MiB piece")
    store = PieceStore.open(work / "pieces")
    piece = store.add_car(car)
    app = RetrievalHttpApp(store)
    server = RpcServer(Registry(), object(), secret=None, host="127.0.0.1", port=0)
    app.mount(server)
    rates: list[float] = []
    disk: list[float] = []

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(server.run)
            url = f"http://127.0.0.1:{bound.port}/piece/{piece.piece_cid}"
            for _ in range(ROUNDS):
                start = time.perf_counter()
                with car.open("rb") as stream:
                    while stream.read(1 << 20):
                        pass
                disk.append(piece.car_size / (time.perf_counter() - start) / _MB)
                done = await trio.run_process([sys.executable, "-c", _DOWNLOAD, url], capture_stdout=True)
                received, elapsed = done.stdout.split()
                assert int(received) == piece.unpadded_size
                rates.append(int(received) / float(elapsed) / _MB)
            nursery.cancel_scope.cancel()

    trio.run(main)
    rate, read = statistics.median(rates), statistics.median(disk)
    report(
        "/piece/ GET (httpx client process)",
        rate,
        "MB/s",
        f"target >= 200; {rate / read:.2f} x reading the CAR",
    )
    report("reading the CAR from the page cache", read, "MB/s")


def run() -> None:
    with tempfile.TemporaryDirectory(prefix="filpy-bench-markets-") as tmp:
        work = Path(tmp)
        car = _bench_import(work)
        _bench_piece(work, car)
