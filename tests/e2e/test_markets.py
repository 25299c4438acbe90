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
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from chain.encoding.commcid import piece_cid_v1
from proofs.commp import commp_of_bytes
from rpc.client import endpoint_from_multiaddr, full_method_name
from tests.e2e.devnet_process import ROOT, DevnetProcess
from tests.interop.js_env import JS_DIR, node_with_packages

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


def devnet_with_provider(processes: list[DevnetProcess], repo: Path) -> tuple[DevnetProcess, str]:
    """A devnet at a 1 s block delay serving a 2 KiB miner made with `filpy miner create` (its worker
    funded, the devnet restarted to serve it) whose provider has an ask (`filpy miner set-ask`) and
    answers it over /fil/storage/ask: the node and the miner's ID address."""
    node = start(processes, repo, "--block-delay", "1")
    worker = filpy(repo, "wallet", "new", "bls").strip()
    created = filpy(
        repo, "miner", "create", "--worker", worker, "--sector-size", "2KiB", "--pledge", "100", json_out=True
    )
    miner: str = created["IDAddress"]
    filpy(repo, "send", worker, "10")
    node.stop(signal.SIGTERM)
    node = start(processes, repo)
    served = {m["Miner"]["IDAddress"]: m for m in filpy(repo, "miner", "list", json_out=True)}
    assert served[miner]["Sealing"]
    filpy(repo, "miner", "set-ask", "--price", "0.0000001", "--max-size", "2KiB")
    until(f"{miner}'s provider answering", 60.0, lambda: query_ask(repo, miner))
    return node, miner


def rpc(repo: Path, method: str, *params: Any) -> Any:
    """One JSON-RPC call to the devnet of repo (for what no CLI command shows, and for fast polling)."""
    request = urllib.request.Request(
        endpoint_from_multiaddr((repo / "api").read_text()),
        data=json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": full_method_name(method), "params": list(params)}
        ).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {(repo / 'token').read_text().strip()}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=COMMAND_TIMEOUT) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # a JSON-RPC error comes with a 500
        answer = json.loads(exc.read())
    assert "error" not in answer, f"{method}: {answer['error']}"
    return answer["result"]


def test_deal_through_the_cli_to_active_and_retrieved(tmp_path: Path, processes: list[DevnetProcess]) -> None:
    repo = tmp_path / "devnet"
    node, miner = devnet_with_provider(processes, repo)
    ask = query_ask(repo, miner)
    assert ask is not None
    assert (ask["Response"]["Miner"], ask["Response"]["Price"], ask["Response"]["MaxPieceSize"]) == (
        miner,
        str(10**11),
        2048,
    )

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


# A sector past AddPiece whose pre-commit is on its way or on chain: a kill here must not seal it twice.
SEALING_AFTER_PRECOMMIT: Final = {"PreCommitWait", "WaitSeed", "Committing", "SubmitCommit", "CommitWait"}


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """A plain HTTP GET, as curl would do it: status, headers (lower-case names), body (no filpy code)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=60) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def car_blocks(car: Path) -> dict[str, Any]:
    """The CAR read by the JavaScript reference reader (@ipld/car), which checks every block against its
    CID: {version, roots, blocks: [{cid, codec, size}]}."""
    node = node_with_packages("reading a CAR served over HTTP")
    done = subprocess.run(
        [node, str(JS_DIR / "car_tool.mjs"), "read", str(car)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"@ipld/car refused the CAR:\n{done.stderr}"
    read: dict[str, Any] = json.loads(done.stdout)
    return read


def test_provider_killed_while_sealing_then_retrieved_over_http_and_paid(
    tmp_path: Path, processes: list[DevnetProcess]
) -> None:
    repo = tmp_path / "devnet"
    node, miner = devnet_with_provider(processes, repo)
    data = os.urandom(1500)
    (tmp_path / "data.bin").write_bytes(data)
    root, piece = import_file(repo, tmp_path / "data.bin")
    proposal = filpy(repo, "client", "deal", root, miner, "--duration", "600", "--add-funds").strip()

    # -- SIGKILL the node (client and provider) once the deal's sector has sent its pre-commit --------
    def sealing() -> tuple[int, dict[str, Any]] | None:
        deal = next(
            (d for d in rpc(repo, "Filpy.StorageDealsList") if d["SignedProposalCid"]["/"] == proposal), None
        )
        if deal is None or deal["SectorNumber"] < 0:
            return None
        status = rpc(repo, "Filpy.SectorsStatus", miner, deal["SectorNumber"], False)
        return (deal["SectorNumber"], status) if status["State"] in SEALING_AFTER_PRECOMMIT else None

    sector, before = until("the deal's sector pre-committing", DEAL_TIMEOUT, sealing)
    sectors_before = rpc(repo, "Filpy.SectorsList", miner)
    node.stop(signal.SIGKILL)
    node = start(processes, repo)

    info = wait_active(repo, proposal)
    # the client checked the sector on chain and the provider's inclusion proof against its CommD
    assert "piece inclusion proof verifies against its CommD" in info["Message"], info["Message"]
    after = rpc(repo, "Filpy.SectorsStatus", miner, sector, True)
    assert rpc(repo, "Filpy.SectorsList", miner) == sectors_before  # no sector opened again for the deal
    assert after["PreCommitMsg"] == before["PreCommitMsg"] and after["PreCommitMsg"] is not None
    assert info["DealID"] in after["Deals"] and after["Activation"] > 0
    sent = [entry["Kind"] for entry in after["Log"] if entry["Kind"] == "event;PreCommitWait"]
    assert len(sent) == 1, after["Log"]  # pre-committed once, across the kill

    # -- plain HTTP from the provider's node: the trustless gateway and the piece gateway ------------
    base = endpoint_from_multiaddr((repo / "api").read_text()).removesuffix("/rpc/v1")
    status, headers, car = http_get(f"{base}/ipfs/{root}?format=car")
    assert status == 200 and headers["content-type"].startswith("application/vnd.ipld.car"), (status, car)
    (tmp_path / "http.car").write_bytes(car)
    read = car_blocks(tmp_path / "http.car")
    assert read["roots"] == [root] and root in {b["cid"] for b in read["blocks"]}
    assert data in car  # a file of one chunk is one raw block: the file itself

    status, _, whole = http_get(f"{base}/piece/{piece}")
    assert status == 200
    commp = commp_of_bytes(whole)
    assert str(piece_cid_v1(commp.commitment)) == piece and len(whole) == info["Size"]  # unpadded
    status, headers, part = http_get(f"{base}/piece/{piece}", {"Range": "bytes=100-299"})
    assert (status, part) == (206, whole[100:300])
    assert headers["content-range"] == f"bytes 100-299/{len(whole)}"

    # -- a priced retrieval: refused over --maxprice, then paid by vouchers the provider redeems ------
    filpy(repo, "miner", "retrieval-ask", "set", "--price", "0.001", "--payment-interval", "1024")
    ask = filpy(repo, "miner", "retrieval-ask", "get", json_out=True)
    per_byte = 10**15 // 2**30
    assert (ask["PricePerByte"], ask["PaymentInterval"]) == (str(per_byte), 1024)
    assert http_get(f"{base}/ipfs/{root}?format=car")[0] == 402  # priced data is no longer free
    offer = next(o for o in filpy(repo, "client", "find", root, json_out=True) if o["Miner"] == miner)
    price = int(offer["MinPrice"])
    assert price == per_byte * offer["Size"]
    refused = filpy_fails(repo, "client", "retrieve", root, str(tmp_path / "x"), "--maxprice", "1 attoFIL")
    assert f"the offer of {miner} costs" in refused and "over --maxprice" in refused
    assert not (tmp_path / "x").exists()
    filpy(repo, "client", "retrieve", root, str(tmp_path / "paid.bin"), "--maxprice", "1")
    assert (tmp_path / "paid.bin").read_bytes() == data

    channels = filpy(repo, "paych", "list", json_out=True)
    assert len(channels) == 1, channels
    channel = channels[0]
    vouchers = filpy(repo, "paych", "voucher", "list", channel, json_out=True)
    paid = max(int(v["Amount"]) for v in vouchers)
    assert paid == per_byte * len(car) <= price, vouchers  # the bytes sent (the CAR), at most the quote
    best = filpy(repo, "paych", "voucher", "best-spendable", channel, "--export").split("; ")[-1].strip()
    filpy(repo, "paych", "voucher", "submit", channel, best)
    state = rpc(repo, "StateReadState", channel, None)["State"]
    assert int(state["ToSend"]) == paid  # redeemed on chain: the provider can collect it after settling

    node.stop(signal.SIGTERM)
