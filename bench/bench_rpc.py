"""JSON-RPC over HTTP: ChainHead (a fixed 3-block head TipSet as Lotus JSON) beside a bare hypercorn app
that returns the same bytes, both measured in this run; and MpoolPush into a real node's message pool.

Figures: one client (keep-alive, one request at a time) p50/p99 latency; 16 concurrent keep-alive
clients requests/s and p99, and each server's CPU time per request under that load (from /proc: the
figure the machine's other work moves least; the latencies include every time another process held
the server's core, and on the shared 2-core machine that, not the server's work, makes the 16-client
p99: docs/rpc.md). Targets (issue 9): one-client p50 <= 1 ms; 16 clients >= 0.6x the bare
app's requests/s with p99 <= 15 ms. Each server runs in its own process (started and stopped by
PID here). The load comes from `wrk` when it is installed (`apt-get install wrk`), else from a Python
load generator in this process (slower than wrk: its figures are lower for both servers alike).

MpoolPush: a FullNode over a devnet genesis with funded secp256k1 accounts (in memory), served by the
node's own registry in its own process; pre-signed transfers, each sender's in nonce order, and every
answer is read (a refusal is counted, not accepted). The pool checks every signature, nonce and balance.
Target (issue 9): >= 2,000 accepted msgs/s, measured over a WebSocket: one connection with 64 calls in
flight, as Lotus's go-jsonrpc clients push in bulk (each call its own frame and answer). Beside it,
over HTTP from 16 keep-alive clients (wrk cannot tell an accepted push from a refused one, both HTTP
200, so a Lua script counts the answers): a bare hypercorn app answering the same requests (the ceiling
of one call per HTTP request on this machine: hypercorn's own cost per request is about 0.45 ms of
CPU), MpoolPush one call per request, and MpoolPush in JSON-RPC batches of 20 calls per request (each
call still checked and answered on its own), and the same batches from one client over one
connection (this process), one batch after another. Both servers set up the garbage collector once
they listen as the daemon does (node/gcpolicy.py configure_collector: the node's thresholds, the
start-up objects frozen out of its scans).

    python -m bench rpc                             # as part of make bench
    python -m bench.bench_rpc serve rpc|bare|mpool  # one server alone, prints its port
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson

from bench.common import check, console, report, section

DURATION_S: Final = 5.0
# wrk's own default (2 s) cuts a request that a loaded machine answers late: the server then cancels
# that call, and for MpoolPush every later nonce of the sender is refused as a gap.
WRK_TIMEOUT_S: Final = 30
CLIENTS: Final = 16
TARGET_P50_MS: Final = 1.0
TARGET_RATIO: Final = 0.6
TARGET_P99_MS: Final = 15.0
REQUEST: Final = b'{"jsonrpc":"2.0","id":1,"method":"Filecoin.ChainHead","params":[]}'
# MpoolPush: senders, messages each, and the node's API secret. The calls go round the senders, so that
# a sender's next nonce is 64 calls after its previous one (16 are in flight at most).
PUSH_SENDERS: Final = 4 * CLIENTS
PUSH_PER_SENDER: Final = 600  # under the pool's 1,000 pending per sender
PUSH_TARGET: Final = 2000.0
PUSH_BATCH: Final = 20
# WebSocket calls in flight on the one connection: a sender's next nonce is 64 calls later, so a
# sender's calls seldom overlap (answers come back in any order, as go-jsonrpc's may; the pool takes a
# nonce up to 4 past the next expected one).
PUSH_WINDOW: Final = 64
PUSH_SECRET: Final = b"b" * 32
FIL: Final = 10**18


# -- the servers (run in child processes) ------------------------------------------------------------
def _push_keys() -> list[Any]:
    from chain.crypto.keys import KeyType, PrivateKey

    return [PrivateKey.derive(KeyType.SECP256K1, b"bench/mpool-push/%d" % i) for i in range(PUSH_SENDERS + 1)]


def _serve_node() -> None:
    """A FullNode whose genesis funds the push senders, served on a free port (prints it)."""
    from dataclasses import replace

    import trio

    from chain.params import DEVNET
    from chain.types.address import Address
    from node.fullnode import in_memory_full_node
    from node.gcpolicy import configure_collector
    from node.genesis import build_genesis
    from node.genesis_template import AccountEntry
    from node.keystore import Keystore
    from node.logs import configure
    from node.wallet import Wallet
    from rpc.methods import full_node_registry
    from rpc.server import RpcServer
    from tests.consensus.devchain import devnet_template

    configure(level="warning")
    accounts = tuple(AccountEntry(Address.of_key(k), 1_000 * FIL) for k in _push_keys())
    # A chain needs power: one miner with one pre-sealed 2 KiB sector (sealed here, a few seconds).
    template = devnet_template(miners=1, sectors=1, name="bench")
    genesis = build_genesis(replace(template, timestamp=int(time.time()), accounts=accounts))
    with tempfile.TemporaryDirectory() as tmp:
        node = in_memory_full_node(genesis, Wallet(Keystore.create(Path(tmp) / "keystore")), policy=DEVNET)

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                server = RpcServer(full_node_registry(), node, secret=PUSH_SECRET, port=0)
                bound = await nursery.start(server.run)
                configure_collector()  # as the daemon does once its services run
                print(f"PORT {bound.port}", flush=True)

        trio.run(main)


def _serve(which: str) -> None:
    if which == "mpool":
        _serve_node()
        return
    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve

    from chain.params import DEVNET
    from chain.types.tipset import TipSet
    from node.gcpolicy import configure_collector
    from rpc.methods import full_node_registry
    from rpc.server import KEEP_ALIVE_MAX_REQUESTS, RpcServer, parse_bind
    from tests.rpc.toy import sample_tipset

    head = sample_tipset(blocks=3, height=5000)

    class Chain:
        def head(self) -> TipSet:
            return head

    class Node:
        """What the node's own ChainHead reads: a chain whose head is the fixed tipset."""

        policy = DEVNET
        peer_id = "12D3KooWBench"
        start_time = datetime.now(UTC)
        chain = Chain()

        def request_shutdown(self) -> None:
            pass

    registry = full_node_registry()

    body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": head.to_json("t")})

    async def bare(scope: dict[str, Any], receive: Callable[[], Any], send: Callable[[Any], Any]) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            if which == "rpc":
                bound = await nursery.start(RpcServer(registry, Node(), secret=None, port=0).run)
            else:
                config = Config()
                config.bind = ["127.0.0.1:0"]
                config.accesslog = None
                config.keep_alive_max_requests = KEEP_ALIVE_MAX_REQUESTS  # as the RPC server's
                binds = await nursery.start(lambda task_status: serve(bare, config, task_status=task_status))  # type: ignore[arg-type]
                bound = parse_bind(binds[0])
            configure_collector()  # both servers as the daemon runs: its thresholds, start-up objects frozen
            print(f"PORT {bound.port}", flush=True)

    trio.run(main)


class _Server:
    """A server process, stopped by its PID."""

    def __init__(self, which: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_rpc", "serve", which],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        line = ""
        while not line.startswith("PORT ") and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                break
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"{which} server did not start")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}/rpc/v1"

    def cpu_seconds(self) -> float:
        """The server process's CPU time so far (user + system): its cost, whatever else the machine
        runs at the same time."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# -- load: wrk ---------------------------------------------------------------------------------------
_UNITS: Final = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([0-9.]+)(us|ms|s)", text)
    if m is None:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _wrk(url: str, clients: int, script: Path) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms)."""
    options = ["-t1", f"-c{clients}", f"-d{DURATION_S:.0f}s", f"--timeout={WRK_TIMEOUT_S}s", "--latency"]
    out = subprocess.run(
        ["wrk", *options, "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=DURATION_S + 30,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    return rps, p50, p99


# -- load: Python -------------------------------------------------------------------------------------
def _http_request(port: int) -> bytes:
    return (
        f"POST /rpc/v1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(REQUEST)}\r\n\r\n"
    ).encode() + REQUEST


def _take_response(buf: bytearray) -> bool:
    """Remove one complete HTTP/1.1 response (with a Content-Length) from buf; False if incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    head = bytes(buf[:end]).lower()
    m = re.search(rb"content-length:\s*(\d+)", head)
    if m is None or not head.startswith(b"http/1.1 200"):
        raise RuntimeError(f"unexpected response: {bytes(buf[:200])!r}")
    total = end + 4 + int(m.group(1))
    if len(buf) < total:
        return False
    del buf[:total]
    return True


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _python_one_client(port: int) -> tuple[float, float, float]:
    request = _http_request(port)
    latencies: list[float] = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray()
        end = time.perf_counter() + DURATION_S
        while True:
            start = time.perf_counter()
            if start > end:
                break
            sock.sendall(request)
            while not _take_response(buf):
                chunk = sock.recv(1 << 16)
                if not chunk:
                    raise RuntimeError("connection closed")
                buf += chunk
            latencies.append((time.perf_counter() - start) * 1000)
    return len(latencies) / DURATION_S, _percentile(latencies, 0.5), _percentile(latencies, 0.99)


def _python_many_clients(port: int, clients: int) -> tuple[float, float, float]:
    import trio

    request = _http_request(port)
    latencies: list[float] = []

    async def client(deadline: float) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        buf = bytearray()
        async with stream:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                await stream.send_all(request)
                while not _take_response(buf):
                    chunk = await stream.receive_some(1 << 16)
                    if not chunk:
                        raise RuntimeError("connection closed")
                    buf += chunk
                latencies.append((time.perf_counter() - start) * 1000)

    async def main() -> None:
        deadline = time.perf_counter() + DURATION_S
        async with trio.open_nursery() as nursery:
            for _ in range(clients):
                nursery.start_soon(client, deadline)

    trio.run(main)
    return len(latencies) / DURATION_S, _percentile(latencies, 0.5), _percentile(latencies, 0.99)


# -- the run ------------------------------------------------------------------------------------------
def _measure(
    server: _Server, use_wrk: bool, script: Path
) -> tuple[dict[str, tuple[float, float, float]], float]:
    """The figures (one client, many clients), and the server's CPU microseconds per request under the
    many clients' load: its cost, which the machine's other work moves far less than the latencies."""
    if use_wrk:
        _wrk(server.url, 1, script)  # warm-up (first-use compilation of the codecs)
        one = _wrk(server.url, 1, script)
        cpu = server.cpu_seconds()
        many = _wrk(server.url, CLIENTS, script)
    else:
        _python_one_client(server.port)
        one = _python_one_client(server.port)
        cpu = server.cpu_seconds()
        many = _python_many_clients(server.port, CLIENTS)
    per_request = (server.cpu_seconds() - cpu) * 1e6 / max(many[0] * DURATION_S, 1.0)
    return {"one": one, "many": many}, per_request


# -- MpoolPush -----------------------------------------------------------------------------------------
# wrk sends the pre-signed calls in order, one or a batch per request (`request()`), and reads every
# answer: a "result" is an accepted message, an "error" a refusal (both are HTTP 200).
VERIFIED_BY_WRK: Final = b'{"jsonrpc":"2.0","method":"Filecoin.Version","params":[]}'
PUSH_LUA: Final = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  bodies = {}
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. args[2]}
  i, accepted, refused, first_error = 0, 0, 0, ""
end
function request()
  i = i + 1
  if i > #bodies then i = 1 end -- past the end, repeats: refused as already in the pool, and counted
  return wrk.format("POST", nil, headers, bodies[i])
end
local function count(body, what)
  local n, at = 0, 1
  while true do
    local found = body:find(what, at, true)
    if not found then return n end
    n, at = n + 1, found + #what
  end
end
function response(status, headers, body)
  accepted = accepted + count(body, '"result"')
  local failed = count(body, '"error"')
  if failed > 0 then
    refused = refused + failed
    if first_error == "" then first_error = body:sub(body:find('"error"', 1, true), -1):sub(1, 300) end
  end
end
function done(summary, latency, requests)
  local a, r, err = 0, 0, ""
  for _, t in ipairs(threads) do
    a, r = a + t:get("accepted"), r + t:get("refused")
    if err == "" then err = t:get("first_error") end
  end
  io.write(string.format("PUSHED %d %d %.6f\\n", a, r, summary.duration / 1e6))
  io.write(string.format("TIMEOUTS %d\\n", summary.errors.timeout))
  if err ~= "" then io.write("FIRST_ERROR " .. err .. "\\n") end
end
"""


def _push_calls() -> tuple[list[bytes], list[bytes]]:
    """Signed transfers as MpoolPush calls (JSON-RPC request objects): a warm-up sender's, then the
    senders' round after round (each sender's in nonce order)."""
    from chain.types.address import Address
    from tests.rpc.chain_node import transfer

    keys = _push_keys()
    to = Address.new_id(100)

    def call(key: Any, nonce: int) -> bytes:
        params = [transfer(key, nonce, to, value=1, gas_limit=1_000_000).to_json("t")]
        return orjson.dumps({"jsonrpc": "2.0", "id": nonce, "method": "Filecoin.MpoolPush", "params": params})

    warm = [call(keys[-1], n) for n in range(200)]
    rounds = [call(keys[s], n) for n in range(PUSH_PER_SENDER) for s in range(PUSH_SENDERS)]
    return warm, rounds


def _batched(rounds: list[bytes], batch: int) -> list[bytes]:
    """Request bodies of `batch` calls each (a JSON-RPC batch), or one call each for batch 1. A batch
    holds one sender's next `batch` nonces (a batch's calls run in order), and the senders take turns,
    so that a sender's next batch is 64 requests after its previous one, as its next call is unbatched."""
    if batch == 1:
        return rounds
    by_sender = [rounds[s::PUSH_SENDERS] for s in range(PUSH_SENDERS)]
    return [
        b"[" + b",".join(calls[n : n + batch]) + b"]"
        for n in range(0, PUSH_PER_SENDER, batch)
        for calls in by_sender
    ]


def _push_wrk(url: str, token: str, bodies: list[bytes], tmp: Path) -> tuple[int, int, float]:
    """(accepted, refused, seconds): wrk with 16 keep-alive connections sending the bodies in order."""
    script, lines = tmp / "push.lua", tmp / "bodies.txt"
    script.write_text(PUSH_LUA)
    # wrk calls request() once before it connects, to check the request (script_verify_request): that
    # first body is never sent. A notification (no id: no answer, nothing counted) takes its place.
    lines.write_bytes(b"\n".join([VERIFIED_BY_WRK, *bodies]) + b"\n")
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{CLIENTS}",
            f"-d{DURATION_S:.0f}s",
            f"--timeout={WRK_TIMEOUT_S}s",
            "-s",
            str(script),
            url,
            "--",
            str(lines),
            token,
        ],
        capture_output=True,
        text=True,
        timeout=DURATION_S + 60,
        check=True,
    ).stdout
    found = re.search(r"PUSHED (\d+) (\d+) ([0-9.]+)", out)
    if found is None:
        raise RuntimeError(f"wrk printed no counts:\n{out}")
    timeouts = re.search(r"TIMEOUTS (\d+)", out)
    if timeouts is not None and int(timeouts.group(1)):
        raise RuntimeError(f"wrk timed out {timeouts.group(1)} requests after {WRK_TIMEOUT_S} s:\n{out}")
    first = re.search(r"FIRST_ERROR (.*)", out)
    if first is not None:
        console.print(f"  first refusal: {first.group(1)[:300]}")
    return int(found.group(1)), int(found.group(2)), float(found.group(3))


def _push_python(
    port: int, token: str, warm: list[bytes], rounds: list[bytes], batch: int, clients: int = CLIENTS
) -> tuple[int, int, float]:
    """(accepted, refused, seconds) from the Python load generator: `clients` keep-alive clients, each
    with its own senders in nonce order, `batch` calls per HTTP request, after the warm-up pushes."""
    import trio

    bodies = _batched(rounds, batch)  # body i is sender i % 64's: with 16 clients each takes four
    per_client = [
        [body for i, body in enumerate(bodies) if i % PUSH_SENDERS % clients == c] for c in range(clients)
    ]

    def request(body: bytes) -> bytes:
        return (
            f"POST /rpc/v1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    counts = {"accepted": 0, "refused": 0}
    errors: list[bytes] = []

    async def client(bodies: list[bytes], deadline: float) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        buf = bytearray()
        async with stream:
            for body in bodies:
                if time.perf_counter() > deadline:
                    return
                await stream.send_all(request(body))
                while (answer := _take_body(buf)) is None:
                    chunk = await stream.receive_some(1 << 16)
                    if not chunk:
                        raise RuntimeError("connection closed")
                    buf += chunk
                counts["accepted"] += answer.count(b'"result"')
                failed = answer.count(b'"error"')
                if failed:
                    counts["refused"] += failed
                    errors.append(answer)

    async def main() -> float:
        await client(warm, float("inf"))
        counts["accepted"] = counts["refused"] = 0
        start = time.perf_counter()
        deadline = start + DURATION_S
        async with trio.open_nursery() as nursery:
            for own in per_client:
                nursery.start_soon(client, own, deadline)
        return time.perf_counter() - start

    elapsed = trio.run(main)
    if errors:
        console.print(f"  first refusal: {errors[0][:300]!r}")
    return counts["accepted"], counts["refused"], elapsed


def _ws_frame(payload: bytes) -> bytes:
    """A client's text frame (RFC 6455): FIN, opcode 1, masked with the all-zero key (a valid key that
    leaves the payload as it is, so the frames are built once, before the clock starts)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x81, 0x80 | n))
    elif n < 1 << 16:
        head = bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + bytes(4) + payload


def _ws_take_frames(buf: bytearray) -> list[bytes]:
    """Remove the complete (unmasked, unfragmented) server frames from buf; their payloads."""
    out = []
    at = 0
    while len(buf) - at >= 2:
        opcode, n = buf[at] & 0x0F, buf[at + 1] & 0x7F
        start = at + 2
        if n == 126:
            n, start = int.from_bytes(buf[start : start + 2], "big"), start + 2
        elif n == 127:
            n, start = int.from_bytes(buf[start : start + 8], "big"), start + 8
        if len(buf) < start + n:
            break
        if opcode == 0x8:
            raise RuntimeError(f"the server closed the WebSocket: {bytes(buf[start : start + n])!r}")
        out.append(bytes(buf[start : start + n]))
        at = start + n
    del buf[:at]
    return out


def _push_ws(port: int, token: str, calls: list[bytes], window: int) -> tuple[int, int, float]:
    """(accepted, refused, seconds): one WebSocket connection to /rpc/v1 carrying the calls in order
    with up to `window` of them in flight (a go-jsonrpc client's way: every call a frame, answered by
    id, none waiting for the one before), for DURATION_S."""
    frames = [_ws_frame(c) for c in calls]
    accepted = refused = 0
    first_error = b""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(
            (
                f"GET /rpc/v1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: ZmlscHktYmVuY2gtcHVzaA==\r\n"
                f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
            ).encode()
        )
        buf = bytearray()
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise RuntimeError("the server closed the connection during the WebSocket handshake")
            buf += chunk
        head, _, rest = bytes(buf).partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"WebSocket upgrade refused: {head[:200]!r}")
        buf = bytearray(rest)
        sent = answered = 0
        start = time.perf_counter()
        deadline = start + DURATION_S
        while answered < len(frames):
            now = time.perf_counter()
            if sent < len(frames) and sent - answered < window and now < deadline:
                more = min(len(frames), answered + window)
                sock.sendall(b"".join(frames[sent:more]))
                sent = more
            if answered == sent:
                break
            chunk = sock.recv(1 << 18)
            if not chunk:
                raise RuntimeError("the server closed the WebSocket")
            buf += chunk
            for answer in _ws_take_frames(buf):
                answered += 1
                if b'"result"' in answer:
                    accepted += 1
                else:
                    refused += 1
                    first_error = first_error or answer
        elapsed = time.perf_counter() - start
    if first_error:
        console.print(f"  first refusal: {first_error[:300]!r}")
    return accepted, refused, elapsed


def _take_body(buf: bytearray) -> bytes | None:
    """Remove one complete HTTP/1.1 response from buf and return its body; None if incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    m = re.search(rb"content-length:\s*(\d+)", bytes(buf[:end]).lower())
    if m is None:
        raise RuntimeError(f"unexpected response: {bytes(buf[:200])!r}")
    total = end + 4 + int(m.group(1))
    if len(buf) < total:
        return None
    body = bytes(buf[end + 4 : total])
    del buf[:total]
    return body


def run_mpool_push(use_wrk: bool) -> None:
    from rpc.auth import create_token, perms_up_to

    section("RPC: Filecoin.MpoolPush into a node's message pool (secp256k1, signatures checked)")
    tool = (
        "wrk" if use_wrk else "the Python load generator (install wrk for wrk's figures: apt-get install wrk)"
    )
    console.print(
        f"  HTTP: load from {tool}, {CLIENTS} keep-alive clients; WebSocket: one connection from this"
        f" process, {PUSH_WINDOW} calls in flight; {DURATION_S:.0f} s per figure"
    )
    warm, rounds = _push_calls()
    token = create_token(PUSH_SECRET, perms_up_to("write"))

    def load(server: _Server, how: str, tmp: Path) -> tuple[int, int, float, float]:
        """(accepted, refused, seconds, server CPU microseconds per accepted call); how: "ws", or the
        calls per HTTP request."""
        _push_python(server.port, token, warm, [], 1)  # the warm-up sender's pushes
        cpu = server.cpu_seconds()
        if how == "ws":
            accepted, refused, elapsed = _push_ws(server.port, token, rounds, PUSH_WINDOW)
        elif how == "one":  # a single client sending batches one after another
            accepted, refused, elapsed = _push_python(server.port, token, [], rounds, PUSH_BATCH, clients=1)
        elif not use_wrk:
            accepted, refused, elapsed = _push_python(server.port, token, [], rounds, int(how))
        else:
            accepted, refused, elapsed = _push_wrk(server.url, token, _batched(rounds, int(how)), tmp)
        return accepted, refused, elapsed, (server.cpu_seconds() - cpu) * 1e6 / max(accepted, 1)

    with tempfile.TemporaryDirectory() as tmp:
        # The ceiling of one call per request here: a bare hypercorn app answering the same requests.
        bare = _Server("bare")
        try:
            answered, _, elapsed, bare_cpu = load(bare, "1", Path(tmp))
        finally:
            bare.stop()
        ceiling = answered / elapsed
        report(f"bare app, same requests, {CLIENTS} clients", ceiling, "req/s", "the HTTP ceiling")
        report("  its CPU per request", bare_cpu, "us", "hypercorn's own cost, the floor of a call")
        for how in ("1", str(PUSH_BATCH), "one", "ws"):
            server = _Server("mpool")  # a fresh pool: every run pushes the same messages
            try:
                accepted, refused, elapsed, cpu = load(server, how, Path(tmp))
            finally:
                server.stop()
            rate = accepted / elapsed
            if how == "ws":
                name = f"MpoolPush accepted, WebSocket, {PUSH_WINDOW} in flight"
                check(name, rate, "msgs/s", at_least=PUSH_TARGET, note=f"{refused} refused")
            elif how == "one":
                name = f"HTTP, 1 client, batches of {PUSH_BATCH}"
                report(f"MpoolPush accepted, {name}", rate, "msgs/s", f"{refused} refused")
            else:
                name = "HTTP, 1 call per request" if how == "1" else f"HTTP, batches of {how} calls"
                note = f"{rate / ceiling:.2f}x the bare app, {refused} refused"
                report(f"MpoolPush accepted, {name}", rate, "msgs/s", note)
            report(
                "  server CPU per accepted message",
                cpu,
                "us",
                f"{1e6 / cpu:,.0f} msgs/s per core at that cost",
            )


def run() -> None:
    use_wrk = shutil.which("wrk") is not None
    run_mpool_push(use_wrk)
    section("RPC over HTTP: Filecoin.ChainHead (3-block TipSet, Lotus JSON) vs a bare hypercorn app")
    tool = (
        "wrk" if use_wrk else "the Python load generator (install wrk for wrk's figures: apt-get install wrk)"
    )
    console.print(f"  load from {tool}; {DURATION_S:.0f} s per figure, servers in their own processes")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        body = REQUEST.decode().replace('"', '\\"')
        script.write_text(
            f'wrk.method = "POST"\nwrk.body = "{body}"\nwrk.headers["Content-Type"] = "application/json"\n'
        )
        figures: dict[str, dict[str, tuple[float, float, float]]] = {}
        cpu: dict[str, float] = {}
        for which in ("bare", "rpc"):
            server = _Server(which)
            try:
                figures[which], cpu[which] = _measure(server, use_wrk, script)
            finally:
                server.stop()
    bare, rpc = figures["bare"], figures["rpc"]
    report("bare app, 1 client: p50", bare["one"][1], "ms")
    report("bare app, 1 client: p99", bare["one"][2], "ms")
    report(f"bare app, {CLIENTS} clients", bare["many"][0], "req/s", f"p99 {bare['many'][2]:.2f} ms")
    report("  its CPU per request", cpu["bare"], "us", "hypercorn's own cost")
    check("ChainHead over HTTP, 1 client: p50", rpc["one"][1], "ms", at_most=TARGET_P50_MS)
    report("ChainHead over HTTP, 1 client: p99", rpc["one"][2], "ms")
    ratio = rpc["many"][0] / bare["many"][0]
    report(f"ChainHead over HTTP, {CLIENTS} clients", rpc["many"][0], "req/s")
    report(
        "  server CPU per request",
        cpu["rpc"],
        "us",
        f"{cpu['rpc'] - cpu['bare']:+.0f} us beside the bare app",
    )
    check(
        f"ChainHead, {CLIENTS} clients: req/s / bare app's",
        ratio,
        "x",
        at_least=TARGET_RATIO,
        note=f"bare {bare['many'][0]:,.0f} req/s",
    )
    check(f"ChainHead, {CLIENTS} clients: p99", rpc["many"][2], "ms", at_most=TARGET_P99_MS)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "serve" and argv[1] in ("rpc", "bare", "mpool"):
        _serve(argv[1])
        return 0
    run()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))
