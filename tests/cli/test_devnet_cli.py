"""The client commands end to end: `filpy devnet` in a child process (temp repo, free port of 127.0.0.1,
1 s blocks) and `filpy ...` commands as child processes pointed at it with `--repo`, as a user runs them:
the prefunded accounts in `wallet list`, a transfer sent and waited for, `--json` equal to the node's
RPC answer, `sync wait` holding while the node is behind the clock and finishing once it caught up, and
the one-line message when the node is gone (stopped, or killed with its api file left behind). Every
process is stopped by its PID, also when the test fails."""

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
import trio

from chain.crypto.keys import KeyType, PrivateKey
from chain.types.address import Address
from tests.e2e.devnet_process import ROOT, DevnetProcess
from tests.processes import run_python

pytestmark = pytest.mark.slow  # a devnet and a dozen filpy processes: about 30 s
COMMAND_TIMEOUT: Final = 120.0
PAUSE: Final = 3.0  # seconds of paused mining: 3 epochs behind the clock at 1 s blocks


def started(directory: Path) -> Iterator[DevnetProcess]:
    proc = DevnetProcess(directory / "repo", "--block-delay", "1", logs=directory / "logs")
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.kill()


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevnetProcess]:
    """One devnet for the tests that leave it running."""
    yield from started(tmp_path_factory.mktemp("devnet"))


@pytest.fixture
def doomed(tmp_path: Path) -> Iterator[DevnetProcess]:
    """A devnet of the test's own, which it stops."""
    yield from started(tmp_path)


def filpy(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = run_python("-m", "cli", *args, "--repo", str(repo), timeout=COMMAND_TIMEOUT)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_a_user_session(devnet: DevnetProcess) -> None:
    repo = devnet.repo
    listed = filpy(repo, "wallet", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()[2:]]
    default = filpy(repo, "wallet", "default").stdout.strip()
    funded = [row for row in rows if row[1:3] == ["100000", "FIL"]]
    assert len(funded) == 10 and any(row[0] == default and row[-1] == "X" for row in rows)

    to = Address.of_key(PrivateKey.generate(KeyType.SECP256K1)).to_string("t")
    fresh = filpy(repo, "wallet", "balance", to)
    assert fresh.stdout == "0 FIL\n"  # no warning: the devnet is in sync with the clock
    sent = filpy(repo, "send", to, "12.5", "--wait", "--confidence", "1")
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.splitlines()[0] == f"Sending message from: {default}"
    assert re.search(r"^Exit Code +0$", sent.stdout, re.MULTILINE)
    assert filpy(repo, "wallet", "balance", to).stdout == "12.5 FIL\n"
    assert json.loads(filpy(repo, "wallet", "balance", to, "--json").stdout) == "12500000000000000000"

    head = json.loads(filpy(repo, "chain", "head", "--json").stdout)
    block = head["Cids"][0]["/"]

    async def rpc_block() -> object:
        async with devnet.client(devnet.wait_ready()) as api:
            return await api.call("ChainGetBlock", {"/": block})

    assert json.loads(filpy(repo, "chain", "get-block", block, "--json").stdout) == trio.run(rpc_block)


def test_sync_wait_holds_while_the_node_is_behind(devnet: DevnetProcess) -> None:
    repo = devnet.repo
    url = devnet.wait_ready()

    async def set_mining(enabled: bool) -> None:
        async with devnet.client(url) as api:
            await api.call("Filpy.SetMining", enabled)

    in_sync = filpy(repo, "sync", "wait")
    assert in_sync.returncode == 0 and in_sync.stdout.splitlines()[-1] == "Done!"
    trio.run(set_mining, False)
    time.sleep(PAUSE)
    waiting = subprocess.Popen(
        [sys.executable, "-m", "cli", "sync", "wait", "--repo", str(repo)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(PAUSE)
        assert waiting.poll() is None  # still waiting: the head is seconds behind the clock
        trio.run(set_mining, True)  # the miner catches up with the clock, epoch by epoch
        out, err = waiting.communicate(timeout=COMMAND_TIMEOUT)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait(10)
    assert waiting.returncode == 0 and "Traceback" not in err, err
    assert out.splitlines()[-1] == "Done!"
    assert "worker 1: complete" in out  # the bar's last state


def test_no_node_after_it_stopped(doomed: DevnetProcess) -> None:
    repo = doomed.repo
    url = doomed.wait_ready()
    doomed.stop(signal.SIGKILL)  # the api file stays behind, nobody listens there
    stale = filpy(repo, "chain", "head")
    assert stale.returncode == 1
    assert stale.stderr.startswith(f"filpy chain head: no node at {url} (from {repo / 'api'}): ")
    assert stale.stderr.rstrip().endswith("start one with `filpy devnet`")
    (repo / "api").unlink()
    stopped = filpy(repo, "wallet", "list")
    assert stopped.returncode == 1
    assert stopped.stderr.startswith(f"filpy wallet list: no node running on the repo {repo} (")
