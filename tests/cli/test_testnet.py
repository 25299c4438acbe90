"""`filpy testnet init / status / down` without daemons: what init makes and prints, the refusals, and
down's handling of pid files (a process that stops on SIGTERM, one that ignores it and is killed after
the bound, a stale pid file naming another process). Every process started here is killed by its PID in
a finally. (`up` with real daemons: tests/e2e/test_testnet.py.)"""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import cli.testnet
from cli import main as cli_main
from node.testnet import read_testnet
from tests.processes import kill_by_pid, killed_at_end


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    yield from killed_at_end(kill_by_pid)


def fake_daemon(repo: Path, *, ignore_term: bool) -> subprocess.Popen[bytes]:
    """A process whose command line names `daemon` and the repo, as a node's does."""
    code = "import signal, time\n"
    if ignore_term:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "print('ready', flush=True)\ntime.sleep(120)\n"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "daemon", "--repo", str(repo)], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"  # the handler is in place
    return proc


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_init_status_down(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    processes: list[subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    directory = tmp_path / "tn"
    assert cli_main.main(["testnet", "status", "--dir", str(directory)]) == 1
    assert f"no testnet in {directory}" in capsys.readouterr().err

    args = ["--dir", str(directory), "--nodes", "2", "--miners", "1", "--beacon", "mock"]
    assert cli_main.main(["testnet", "init", *args, "--api-port", "23000", "--p2p-port", "24000"]) == 0
    out = capsys.readouterr().out
    testnet = read_testnet(directory)
    assert testnet is not None and f"genesis {testnet.genesis}" in out
    assert "node0  RPC http://127.0.0.1:23000/rpc/v1" in out and "node1  RPC http://127.0.0.1:23001" in out
    assert cli_main.main(["testnet", "init", *args]) == 0
    assert "testnet found in" in capsys.readouterr().out
    for flag, value, message in (
        ("--block-delay", "9", "was made with --block-delay 4, not 9"),
        ("--beacon", "drand", "was made with --beacon mock, not drand"),
        ("--nodes", "3", "has 2 nodes and 1 miners, not 3 and 1"),
    ):
        assert cli_main.main(["testnet", "up", "--dir", str(directory), flag, value]) == 1
        assert message in capsys.readouterr().err

    assert cli_main.main(["testnet", "status", "--dir", str(directory)]) == 1
    out = capsys.readouterr().out
    assert out.count("not running") == 2 and "no node of" in out

    node0, node1 = testnet.nodes
    polite = fake_daemon(node0.repo, ignore_term=False)
    stubborn = fake_daemon(node1.repo, ignore_term=True)
    processes += [polite, stubborn]
    node0.pid_path.write_text(f"{polite.pid}\n")
    node1.pid_path.write_text(f"{stubborn.pid}\n")
    monkeypatch.setattr(cli.testnet, "STOP_TIMEOUT", 1.0)
    began = time.monotonic()
    assert cli_main.main(["testnet", "down", "--dir", str(directory)]) == 0
    out = capsys.readouterr().out
    assert time.monotonic() - began < 5
    assert f"node0: stopped PID {polite.pid} (SIGTERM" in out
    assert f"node1: stopped PID {stubborn.pid} (SIGKILL" in out
    assert "stopped 2 of 2 nodes" in out
    assert gone(polite.pid) and gone(stubborn.pid)  # (down reaped them: they were our children)
    assert not node0.pid_path.exists() and not node1.pid_path.exists()

    # A pid file naming a process that is not this node's daemon (the PID was reused): left alone.
    node0.pid_path.write_text(f"{os.getpid()}\n")
    assert cli_main.main(["testnet", "down", "--dir", str(directory)]) == 0
    out = capsys.readouterr().out
    assert f"node0: not running (removed a stale pid file naming PID {os.getpid()})" in out
    assert "node1: not running" in out and not node0.pid_path.exists()
