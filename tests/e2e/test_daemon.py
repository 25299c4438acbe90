"""`filpy daemon` end to end: a genesis made with `filpy genesis new` (its Timestamp set to now), a node
started on a new repo with it (no mining: the head stays at the genesis), then, with the genesis miner's
pre-sealed sectors in the repo and `mining.enabled = true`, a restart that mines. The first runs the
storage client only, the second is also the genesis miner's storage provider. The slasher is off by
default; `[slasher] enabled` with an address the wallet lacks stops the daemon with the reason, and with
one it holds the slasher runs among the node's services. Driven through the CLI and RPC only; every
process stopped by its PID."""

import json
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import tomli_w
import trio

from chain.types.address import Address
from node.devnet import account_key
from node.keystore import Keystore
from node.wallet import Wallet
from rpc.client import HttpClient, endpoint_from_multiaddr
from tests.e2e.devnet_process import ROOT
from tests.processes import kill_by_pid, killed_at_end

WAIT: Final = 60.0


def filpy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=True,
    )


@pytest.fixture
def daemons() -> Iterator[list[subprocess.Popen[bytes]]]:
    yield from killed_at_end(kill_by_pid)


def start(daemons: list[subprocess.Popen[bytes]], repo: Path, log: Path, *args: str) -> str:
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cli",
                "--log-json",
                "daemon",
                "--repo",
                str(repo),
                "--api",
                "127.0.0.1:0",
                *args,
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    daemons.append(proc)
    deadline = time.monotonic() + WAIT
    while not (repo / "api").exists():
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)
    return endpoint_from_multiaddr((repo / "api").read_text())


async def head(url: str) -> dict[str, Any]:
    async with HttpClient(url) as api:
        result: dict[str, Any] = await api.call("ChainHead")
        return result


async def test_daemon_runs_a_genesis_and_mines_when_configured(
    tmp_path: Path, daemons: list[subprocess.Popen[bytes]]
) -> None:
    template = json.loads(filpy("genesis", "example").stdout)
    template["Timestamp"] = int(time.time())
    (tmp_path / "template.json").write_text(json.dumps(template))
    sectors = tmp_path / "sectors"
    filpy(
        "genesis",
        "new",
        str(tmp_path / "template.json"),
        str(tmp_path / "genesis.car"),
        "--sectors",
        str(sectors),
    )
    repo, log = tmp_path / "repo", tmp_path / "daemon.log"

    url = start(daemons, repo, log, "--genesis", str(tmp_path / "genesis.car"))
    await trio.sleep(2)
    assert (await head(url))["Height"] == 0  # mining is off by default
    # a node that seals for no miner runs the storage client only
    (tmp_path / "hello.txt").write_text("hello, filecoin\n")
    imported = filpy("client", "import", str(tmp_path / "hello.txt"), "--repo", str(repo), "--json")
    assert json.loads(imported.stdout)["ClientDealPieceCID"]["PayloadSize"] > 0
    no_provider = subprocess.run(
        [sys.executable, "-m", "cli", "miner", "get-ask", "--repo", str(repo)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert no_provider.returncode == 1
    assert no_provider.stderr.strip().endswith("this node serves no miner: it takes no storage deals")
    daemons[-1].send_signal(signal.SIGTERM)
    assert daemons[-1].wait(10) == 0
    (running,) = [e["services"] for e in events(log) if e["event"] == "node running"]
    assert "slasher" not in running  # off by default

    # [slasher] on, reporting from an address the wallet lacks: the daemon refuses to run, saying why.
    reporter = Address.of_key(account_key(0))
    config = tomllib.loads((repo / "config.toml").read_text())
    config["slasher"] = {"enabled": True, "address": reporter.to_string("t")}
    (repo / "config.toml").write_text(tomli_w.dumps(config))
    refused = subprocess.run(
        [sys.executable, "-m", "cli", "daemon", "--repo", str(repo), "--api", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert refused.returncode == 1
    assert f"slasher.address {reporter.to_string('t')} is not in the wallet" in refused.stderr
    Wallet(Keystore(repo / "keystore"), "t").ensure_key(account_key(0))

    # The genesis miner's sectors into the repo, mining on at a 1 s block delay: a restart mines.
    for entry in sectors.iterdir():
        target = repo / "sectors" / entry.name
        if entry.is_dir():
            shutil.copytree(entry, target, dirs_exist_ok=True)
        else:
            shutil.copy2(entry, target)
    config = tomllib.loads((repo / "config.toml").read_text())
    config["mining"]["enabled"] = True
    config["chain"]["block_delay"] = 1
    (repo / "config.toml").write_text(tomli_w.dumps(config))
    url = start(daemons, repo, log)  # no --genesis: the repo's
    with trio.fail_after(WAIT):
        while (ts := await head(url))["Height"] < 2:
            await trio.sleep(0.2)
    assert ts["Blocks"][0]["Miner"] == "t01000"
    # mining, the node is its miner's storage provider: no ask yet (so not announced on chain either)
    assert json.loads(filpy("miner", "get-ask", "--repo", str(repo), "--json").stdout) == []
    daemons[-1].send_signal(signal.SIGINT)
    assert daemons[-1].wait(10) == 0
    names = [e["event"] for e in events(log)]
    assert "window post scheduler started" in names and "mined" in names
    # the slasher ran with the node's services, reporting from the configured address
    started = [e for e in events(log) if e["event"] == "slasher.started"]
    assert [e["reporter"] for e in started] == [reporter.to_string("t")]
    assert "slasher" in [e for e in events(log) if e["event"] == "node running"][-1]["services"]


def events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
