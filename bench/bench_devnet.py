"""`filpy devnet` as a user runs it, in a child process on a temp repo and a free port of 127.0.0.1:

- the time from starting the command to the first block, on a fresh repo (the genesis and its two
  2 KiB sectors sealed first) and on a resumed one (the next block after a restart), at a 1 s block
  delay (issue 9's target: 10 s, with the venv ready);
- the resident memory of the node after 1,000 epochs (target: 300 MB). At a 1 s block delay that takes
  1,000 s, so the chain is run faster than the clock: `--block-delay 0` (blocks on demand) and one
  Filpy.MineTipset call per epoch, with the Window PoSt scheduler proving as on a timed devnet. The
  node's work per epoch is the same; only the waits between epochs are left out.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import httpx

from bench.common import check, console, report, section

ROOT: Final = Path(__file__).resolve().parents[1]
EPOCHS: Final = 1_000
FIRST_BLOCK_TARGET: Final = 10.0
RSS_TARGET_MB: Final = 300.0
TIMEOUT: Final = 120.0


class Devnet:
    def __init__(self, repo: Path, *args: str) -> None:
        self.repo = repo
        command = [sys.executable, "-m", "cli", "devnet", "--repo", str(repo), "--api", "127.0.0.1:0", *args]
        self.log = (repo.parent / f"{repo.name}.log").open("ab")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.log)
        self.http = httpx.Client(timeout=TIMEOUT)
        self.url = ""

    def wait_api(self) -> None:
        deadline = time.perf_counter() + TIMEOUT
        while not (self.repo / "api").exists():
            if self.proc.poll() is not None or time.perf_counter() > deadline:
                raise RuntimeError(f"filpy devnet did not start (see {self.log.name})")
            time.sleep(0.02)
        parts = (self.repo / "api").read_text().strip().split("/")
        self.url = f"http://{parts[2]}:{parts[4]}/rpc/v1"
        token = (self.repo / "token").read_text().strip()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, *params: Any) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        answer = self.http.post(self.url, json=body).json()
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def height(self) -> int:
        height: int = self.call("Filecoin.ChainHead")["Height"]
        return height

    def wait_height(self, height: int) -> float:
        """Seconds since the process started, once the head is at height or above."""
        deadline = time.perf_counter() + TIMEOUT
        while self.height() < height:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"no block at height {height} within {TIMEOUT} s")
            time.sleep(0.02)
        return time.perf_counter() - self.started

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def first_blocks(root: Path) -> None:
    repo = root / "timed"
    fresh = Devnet(repo, "--block-delay", "1")
    try:
        fresh.wait_api()
        took = fresh.wait_height(1)
        height = fresh.height()
    finally:
        fresh.stop()
    check("filpy devnet: start to first block, fresh repo", took, "s", at_most=FIRST_BLOCK_TARGET)
    resumed = Devnet(repo)
    try:
        resumed.wait_api()
        again = resumed.wait_height(height + 1)
    finally:
        resumed.stop()
    check("filpy devnet: start to next block, resumed repo", again, "s", at_most=FIRST_BLOCK_TARGET)


def memory_after_epochs(root: Path) -> None:
    node = Devnet(root / "fast", "--block-delay", "0")
    try:
        node.wait_api()
        rss_start = node.rss_mb()
        began = time.perf_counter()
        misses = 0
        while node.height() < EPOCHS:
            misses = misses + 1 if node.call("Filpy.MineTipset") is None else 0
            if misses > 3:
                raise RuntimeError(f"no block at height {node.height()} any more (see the node's log)")
        took = time.perf_counter() - began
        rss_end = node.rss_mb()
    finally:
        node.stop()
    report("RSS at start (height 0)", rss_start, "MB")
    check(f"filpy devnet: RSS after {EPOCHS:,} epochs", rss_end, "MB", at_most=RSS_TARGET_MB)
    report(f"{EPOCHS:,} epochs mined via Filpy.MineTipset", took, "s", f"{EPOCHS / took:,.0f} epochs/s")


def run() -> None:
    section("filpy devnet (child process, 127.0.0.1)")
    with tempfile.TemporaryDirectory(prefix="bench-devnet-") as tmp:
        root = Path(tmp)
        first_blocks(root)
        memory_after_epochs(root)
    console.print()
