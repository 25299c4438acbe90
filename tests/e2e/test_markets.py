"""Storage deals end to end on a real `filpy devnet` child process, driven only through the `filpy` command
line (each command a child process of its own, as a user runs it): a 2 KiB miner is created with
`filpy miner create`, its worker funded, the devnet restarted to serve it (its storage provider then
announces itself on chain); `filpy miner set-ask`; a file imported with `filpy client import`; a deal
made with `filpy client deal` and followed with `filpy client get-deal` until StorageDealActive (the
sector proven on chain, the piece inclusion proof checked by the client); the file retrieved with
`filpy client retrieve`, byte for byte. Then an offline deal: `filpy client deal --manual`, the CAR
written with `filpy client export --car` and handed to the provider with `filpy miner deals
import-data`, active, retrieved again. Every process is stopped by its PID, also when the test fails.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from tests.e2e.devnet_process import ROOT, DevnetProcess

pytestmark = pytest.mark.slow  # a devnet started twice, a miner created, two sectors sealed: about 90 s

COMMAND_TIMEOUT: Final = 120.0  # one CLI command (miner create waits for its message)
DEAL_TIMEOUT: Final = 240.0  # a deal from proposal to active on a loaded machine
ACTIVE: Final = 7  # StorageDealActive
STAGE_ORDER: Final = (
    "StorageDealClientFunding",
    "StorageDealFundsReserved",
    "StorageDealProposalAccepted",
    "StorageDealTransferring",
    "StorageDealVerifyData",
    "StorageDealPublishing",
    "StorageDealAwaitingPreCommit",
    "StorageDealStaged",
    "StorageDealSealing",
    "StorageDealActive",
)
FAILED: Final = {11: "StorageDealFailing", 26: "StorageDealError", 1: "StorageDealProposalRejected"}


@pytest.fixture
def processes() -> Iterator[list[DevnetProcess]]:
    started: list[DevnetProcess] = []
    yield started
    for proc in started:
        proc.kill()


def start(processes: list[DevnetProcess], repo: Path, *args: str) -> DevnetProcess:
    proc = DevnetProcess(repo, *args)
    processes.append(proc)
    proc.wait_ready()
    return proc


def filpy(repo: Path, *args: str, json_out: bool = False) -> Any:
    """Run `filpy <args> --repo repo [--json]`; its stdout (parsed with --json), failing the test with
    its stderr when it exits non-zero."""
    command = [sys.executable, "-m", "cli", *args, "--repo", str(repo), *(["--json"] if json_out else [])]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, f"filpy {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    return json.loads(done.stdout) if json_out else done.stdout


def filpy_fails(repo: Path, *args: str) -> str:
    """Run a `filpy` command that must be refused: its one-line message (exit status 1, no traceback)."""
    command = [sys.executable, "-m", "cli", *args, "--repo", str(repo)]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    return done.stderr.strip()


def until(what: str, timeout: float, probe: Callable[[], Any]) -> Any:
    """probe() until it returns something true, polling for at most timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout} s: {what}")


def wait_active(repo: Path, proposal: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        info: dict[str, Any] = filpy(repo, "client", "get-deal", proposal, json_out=True)
        assert info["State"] not in FAILED, f"deal {proposal} failed: {info['Message']}"
        return info if info["State"] == ACTIVE else None

    info: dict[str, Any] = until(f"deal {proposal} active", DEAL_TIMEOUT, probe)
    return info


def import_file(repo: Path, path: Path) -> tuple[str, str]:
    """`filpy client import`: the root and piece CIDs."""
    imported = filpy(repo, "client", "import", str(path), json_out=True)
    return imported["ClientImport"]["Root"]["/"], imported["ClientDealPieceCID"]["PieceCID"]["/"]


def query_ask(repo: Path, miner: str) -> dict[str, Any] | None:
    """The miner's ask once its provider is announced on chain and answers (None before)."""
    command = [sys.executable, "-m", "cli", "client", "query-ask", miner, "--repo", str(repo), "--json"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    if done.returncode != 0:
        return None
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_deal_through_the_cli_to_active_and_retrieved(tmp_path: Path, processes: list[DevnetProcess]) -> None:
    repo = tmp_path / "devnet"
    node = start(processes, repo, "--block-delay", "1")

    # -- a 2 KiB miner, created and funded, served from the next start ------------------------------
    worker = filpy(repo, "wallet", "new", "bls").strip()
    created = filpy(
        repo, "miner", "create", "--worker", worker, "--sector-size", "2KiB", "--pledge", "100", json_out=True
    )
    miner = created["IDAddress"]
    filpy(repo, "send", worker, "10")
    node.stop(signal.SIGTERM)
    node = start(processes, repo)
    served = {m["Miner"]["IDAddress"]: m for m in filpy(repo, "miner", "list", json_out=True)}
    assert served[miner]["Sealing"]

    # -- the provider's ask, read by the client over /fil/storage/ask -------------------------------
    filpy(repo, "miner", "set-ask", "--price", "0.0000001", "--max-size", "2KiB")
    answer = until(f"{miner}'s provider answering", 60.0, lambda: query_ask(repo, miner))
    ask = answer["Response"]
    assert (ask["Miner"], ask["Price"], ask["MaxPieceSize"]) == (miner, str(10**11), 2048)

    # -- an online deal: the provider pulls the CAR over HTTP from the client's node ----------------
    data = os.urandom(1500)
    (tmp_path / "data.bin").write_bytes(data)
    root, piece = import_file(repo, tmp_path / "data.bin")
    proposal = filpy(repo, "client", "deal", root, miner, "--duration", "600", "--add-funds").strip()
    info = wait_active(repo, proposal)
    assert info["PieceCID"]["/"] == piece and info["Provider"] == miner
    # the stages the client saw, in the order deals go through them (it polls the provider each second,
    # so a stage the provider passed through between two polls may be missing)
    stages = [stage["Name"] for stage in info["DealStages"]["Stages"]]
    assert stages == [name for name in STAGE_ORDER if name in stages], stages
    assert {"StorageDealProposalAccepted", "StorageDealActive"} <= set(stages), stages
    provider_deal = next(
        d
        for d in filpy(repo, "miner", "deals", "list", json_out=True)
        if d["SignedProposalCid"]["/"] == proposal
    )
    assert provider_deal["SectorNumber"] >= 0 and provider_deal["ChainDealID"] == info["DealID"]

    # -- refused before anything is sent, each with what to do ----------------------------------------
    cheap = filpy_fails(repo, "client", "deal", root, miner, "--duration", "600", "--price", "1 attoFIL")
    assert f"under {miner}'s ask: a 2048-byte piece costs at least" in cheap
    short = filpy_fails(repo, "client", "deal", root, miner, "--duration", "100000")
    assert "market escrow has" in short and "rerun with --add-funds" in short
    unknown = "bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    assert filpy_fails(repo, "miner", "deals", "import-data", unknown, str(tmp_path / "data.bin")).endswith(
        f"the provider has no deal with proposal CID {unknown}"
    )
    assert f"no provider offers {unknown}" in filpy_fails(
        repo, "client", "retrieve", unknown, str(tmp_path / "x")
    )

    offers = filpy(repo, "client", "find", root, json_out=True)
    assert [o["Miner"] for o in offers if not o["Err"]] == [miner]
    filpy(repo, "client", "retrieve", root, str(tmp_path / "out.bin"))
    assert (tmp_path / "out.bin").read_bytes() == data

    # -- an offline deal: the CAR handed to the provider with import-data --------------------------
    offline = os.urandom(1200)
    (tmp_path / "offline.bin").write_bytes(offline)
    root2, _ = import_file(repo, tmp_path / "offline.bin")
    filpy(repo, "client", "export", root2, str(tmp_path / "offline.car"), "--car")
    proposal2 = filpy(
        repo, "client", "deal", root2, miner, "--duration", "600", "--manual", "--add-funds"
    ).strip()
    until(
        "the offline deal waiting for its data",
        60.0,
        lambda: any(
            d["SignedProposalCid"]["/"] == proposal2 and d["State"] == "StorageDealWaitingForData"
            for d in filpy(repo, "miner", "deals", "list", json_out=True)
        ),
    )
    filpy(repo, "miner", "deals", "import-data", proposal2, str(tmp_path / "offline.car"))
    wait_active(repo, proposal2)
    filpy(repo, "client", "retrieve", root2, str(tmp_path / "offline.out"), "--miner", miner)
    assert (tmp_path / "offline.out").read_bytes() == offline

    node.stop(signal.SIGTERM)
