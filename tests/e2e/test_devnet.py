"""`filpy devnet` end to end, as a child process on a temp repo and a free port of 127.0.0.1, driven only
through its RPC endpoint (rpc/client.py) and what it prints: blocks appear with wall-clock timestamps;
Filpy.SetMining pauses and resumes, Filpy.MineTipset mines, Filpy.Faucet sends; SIGTERM stops it within
5 s and a second run resumes the chain; `kill -9` loses nothing; `--reset` starts a new chain.
Every process is stopped by its PID, also when a test fails."""

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

import trio

from chain.crypto.keys import KeyType, PrivateKey
from chain.types.address import Address
from node.genesis_template import FIL
from rpc.client import HttpClient
from tests.e2e.devnet_process import ROOT, DevnetProcess, start

WAIT: Final = 40.0  # the before-stop hook's bound for the first block
STOP_WITHIN: Final = 5.0
CLOCK_SLACK: Final = 5.0  # how far behind the wall clock a block may appear on a loaded machine


async def head(api: HttpClient) -> dict[str, Any]:
    result: dict[str, Any] = await api.call("ChainHead")
    return result


async def wait_height(api: HttpClient, height: int, timeout: float = WAIT) -> dict[str, Any]:
    with trio.fail_after(timeout):
        while (ts := await head(api))["Height"] < height:
            await trio.sleep(0.1)
    return ts


def timestamp(ts: dict[str, Any]) -> int:
    stamps = {b["Timestamp"] for b in ts["Blocks"]}
    assert len(stamps) == 1
    return int(stamps.pop())


async def test_devnet_mines_obeys_its_controls_stops_and_resumes(
    tmp_path: Path, processes: list[DevnetProcess]
) -> None:
    repo = tmp_path / "repo"
    proc, url = start(processes, repo, "--block-delay", "1")
    assert "new devnet" in proc.output() and (repo / "token").stat().st_mode & 0o777 == 0o600
    genesis = proc.genesis()

    # A second devnet on the same repo, or on the same endpoint, says why it cannot start.
    endpoint = url.split("/")[2]
    for args, why in (
        (["--repo", str(repo)], f"{repo} is in use by another filpy process (PID {proc.pid})"),
        (
            ["--repo", str(tmp_path / "other"), "--api", endpoint],
            f"cannot listen on {endpoint}: Address already",
        ),
    ):
        refused = subprocess.run(
            [sys.executable, "-m", "cli", "devnet", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        assert refused.returncode == 1 and why in refused.stderr
    to = Address.of_key(PrivateKey.derive(KeyType.SECP256K1, b"e2e recipient"))
    async with proc.client(url) as api:
        # blocks appear, each at its epoch's time: genesis time + height s, close to the wall clock
        first = await wait_height(api, 1)
        start_ts = timestamp(first) - first["Height"]
        for _ in range(3):
            ts = await wait_height(api, (await head(api))["Height"] + 1)
            assert timestamp(ts) == start_ts + ts["Height"]
            assert abs(time.time() - timestamp(ts)) < CLOCK_SLACK

        assert await api.call("Filpy.SetMining", False) is None
        await trio.sleep(1.5)  # a block being made when paused may still land
        paused = await head(api)
        await trio.sleep(2.5)
        assert (await head(api))["Cids"] == paused["Cids"]
        mined = await api.call("Filpy.MineTipset")
        assert mined["Height"] > paused["Height"] and (await head(api))["Cids"] == mined["Cids"]

        sent = await api.call("Filpy.Faucet", to.to_string("t"), str(5 * FIL))
        assert await api.call("Filpy.SetMining", True) is None
        with trio.fail_after(WAIT):
            landed = await api.call("StateWaitMsg", sent, 1, -1, True)
        assert landed["Receipt"]["ExitCode"] == 0
        assert await api.call("WalletBalance", to.to_string("t")) == str(5 * FIL)
        await wait_height(api, mined["Height"] + 3)
        height = (await head(api))["Height"]

    took = proc.stop(signal.SIGTERM)
    assert took < STOP_WITHIN and proc.proc.returncode == 0
    assert not (repo / "api").exists()

    # A second run resumes the chain: same genesis, from where it stopped, mining on.
    again, url = start(processes, repo)
    assert again.genesis() == genesis and "resumed at height" in again.output()
    async with again.client(url) as api:
        assert (await head(api))["Height"] >= height
        await wait_height(api, height + 2)
    assert again.stop(signal.SIGINT) < STOP_WITHIN and again.proc.returncode == 0


async def test_kill_9_loses_nothing_and_reset_starts_over(
    tmp_path: Path, processes: list[DevnetProcess]
) -> None:
    repo = tmp_path / "repo"
    proc, url = start(processes, repo, "--block-delay", "1")
    genesis = proc.genesis()
    async with proc.client(url) as api:
        before = await wait_height(api, 3)
        genesis_time = timestamp(before) - before["Height"]
    proc.kill()  # SIGKILL, at whatever moment the miner is in

    again, url = start(processes, repo, "--block-delay", "1")
    assert again.genesis() == genesis
    async with again.client(url) as api:
        resumed = await head(api)
        assert resumed["Height"] >= before["Height"]
        after = await wait_height(api, resumed["Height"] + 2)
        assert timestamp(after) == genesis_time + after["Height"]  # the same chain, on the clock
    again.kill()

    # --reset: a new chain (a new genesis, made now), back to height 0; on demand this time.
    fresh, url = start(processes, repo, "--reset", "--block-delay", "0")
    assert fresh.genesis() != genesis and "new devnet" in fresh.output()
    async with fresh.client(url) as api:
        zero = await head(api)
        assert zero["Height"] == 0 and timestamp(zero) > genesis_time
        mined = await api.call("Filpy.MineTipset")
        assert mined["Height"] == 1 and timestamp(mined) == timestamp(zero)  # no clock: the genesis time
    assert fresh.stop() < STOP_WITHIN
