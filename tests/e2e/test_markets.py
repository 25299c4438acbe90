"""Storage deals end to end on a real `filpy devnet` child process (epochs of 1 s), driven through the
`filpy` command line (each command a child process of its own, as a user runs it) and, for the data,
plain HTTP with no filpy code on the client side.

The issue's deal: an 8 MiB miner made with `filpy miner create` and served at once by the running node
(no restart) beside the genesis miner, both answering asks on one provider host; its worker funded,
its ask set; a 1 MiB random file imported with `filpy client import`; a deal made with `filpy client
deal`, its sector sealed at once with `filpy miner sectors seal` and the deal watched through every
state in order until StorageDealActive, with the miner's power on chain; the piece inclusion proof
checked by the client node and, from outside, by the test (`Filpy.ClientDealInclusionProof` against the
sector's CommD from `StateSectorGetInfo`); the file retrieved over HTTP (`/ipfs/<root>?format=car` read
by the JavaScript UnixFS exporter) and with `filpy client retrieve`, byte-identical; `/piece/` hashing
to the piece CID; then a priced retrieval paid by vouchers, one of which the provider redeems on chain.
Meanwhile an offline deal with the genesis miner (`--manual`, the CAR handed over with `filpy miner
deals import-data`) turns active and is retrieved.

Then the genesis miner (2 KiB sectors) as provider, its host listening and announced where config.toml's
`[markets]` says: its node killed with SIGKILL while the deal's sector seals, restarted, the deal still
active with its sector pre-committed once. Every process is stopped by its PID, also when a test fails.
"""

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Final

import pytest
from multiaddr import Multiaddr

from chain.encoding.cid import CID
from chain.encoding.commcid import commitment_of_v1, piece_cid_v1
from node.config import Config, with_overrides
from node.markets.deal_states import StorageDealStatus
from node.repo import Repo
from proofs.commp import commp_of_bytes
from proofs.pip import PieceInclusionProof, verify_piece_inclusion
from rpc.client import endpoint_from_multiaddr, full_method_name
from tests.e2e.devnet_process import ROOT, DevnetProcess, start
from tests.interop.js_env import JS_DIR, node_with_packages

pytestmark = pytest.mark.slow  # two devnets, a miner created, three sectors sealed

COMMAND_TIMEOUT: Final = 120.0  # one CLI command (miner create waits for its message)
DEAL_TIMEOUT: Final = 240.0  # a deal from proposal to active on a loaded machine
ACTIVE: Final = 7  # StorageDealActive
GENESIS_MINER: Final = "t01000"  # a devnet's, 2 KiB sectors
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
STATE_RANK: Final = {StorageDealStatus[name].value: rank for rank, name in enumerate(STAGE_ORDER)}
FAILED: Final = {11: "StorageDealFailing", 26: "StorageDealError", 1: "StorageDealProposalRejected"}


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
        info: dict[str, Any] = rpc(repo, "ClientGetDealInfo", {"/": proposal})
        assert info["State"] not in FAILED, f"deal {proposal} failed: {info['Message']}"
        return info if info["State"] == ACTIVE else None

    info: dict[str, Any] = until(f"deal {proposal} active", DEAL_TIMEOUT, probe)
    return info


def import_file(repo: Path, path: Path) -> tuple[str, str]:
    """`filpy client import`: the root and piece CIDs."""
    imported = filpy(repo, "client", "import", str(path), json_out=True)
    return imported["ClientImport"]["Root"]["/"], imported["ClientDealPieceCID"]["PieceCID"]["/"]


def query_ask(repo: Path, miner: str) -> dict[str, Any] | None:
    """The miner's ask (ClientQueryAsk to the peer its miner info names) once its provider is announced
    on chain and answers; None before."""
    peer = rpc(repo, "StateMinerInfo", miner, None)["PeerId"]
    if not peer:
        return None
    answer = rpc_answer(repo, "ClientQueryAsk", peer, miner)
    return None if "error" in answer else answer["result"]


def provider_with_ask(repo: Path, max_size: str, *miners: str) -> list[dict[str, Any]]:
    """`filpy miner set-ask` (the ask of each miner the node provides for); each miner's ask once its
    provider has announced itself on chain and answers over /fil/storage/ask."""
    filpy(repo, "miner", "set-ask", "--price", "0.0000001", "--max-size", max_size)
    return [until(f"{m}'s provider answering", 60.0, partial(query_ask, repo, m)) for m in miners]


def rpc_answer(repo: Path, method: str, *params: Any) -> dict[str, Any]:
    """One JSON-RPC call to the devnet of repo: the JSON-RPC answer, a result or an error."""
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
            answer: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # a JSON-RPC error comes with a 500
        answer = json.loads(exc.read())
    return answer


def rpc(repo: Path, method: str, *params: Any) -> Any:
    """One JSON-RPC call's result (for what no CLI command shows, and for fast polling)."""
    answer = rpc_answer(repo, method, *params)
    assert "error" not in answer, f"{method}: {answer['error']}"
    return answer["result"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """A plain HTTP GET, as curl would do it: status, headers (lower-case names), body (no filpy code)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=60) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def unixfs_export(car: Path, out: Path) -> dict[str, Any]:
    """The file of the CAR's root written to out by the JavaScript references (@ipld/car, checking every
    block against its CID, and ipfs-unixfs-exporter): {root, type, size, blocks}."""
    node = node_with_packages("exporting a file from a CAR served over HTTP")
    done = subprocess.run(
        [node, str(JS_DIR / "unixfs_tool.mjs"), "export", str(car), str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"ipfs-unixfs-exporter refused the CAR:\n{done.stderr}"
    exported: dict[str, Any] = json.loads(done.stdout)
    return exported


def watch_deal(repo: Path, proposal: str, miner: str) -> tuple[dict[str, Any], list[int]]:
    """Follow the deal (ClientGetDealInfo every 0.2 s) until StorageDealActive: its last info and every
    state seen, in order. Once the provider has put the piece in a sector, that sector is sealed at once
    with `filpy miner sectors seal` (an 8 MiB sector would otherwise wait a minute for more deals)."""
    seen: list[int] = []
    sealing_asked = False
    deadline = time.monotonic() + DEAL_TIMEOUT
    while time.monotonic() < deadline:
        info: dict[str, Any] = rpc(repo, "ClientGetDealInfo", {"/": proposal})
        assert info["State"] not in FAILED, f"deal {proposal} failed: {info['Message']}"
        if not seen or seen[-1] != info["State"]:
            seen.append(info["State"])
        if info["State"] == ACTIVE:
            return info, seen
        if not sealing_asked:
            deals = rpc(repo, "Filpy.StorageDealsList")  # the provider may not have the proposal yet
            deal = next((d for d in deals if d["SignedProposalCid"]["/"] == proposal), None)
            if deal is not None and deal["SectorNumber"] >= 0:
                filpy(repo, "miner", "sectors", "seal", str(deal["SectorNumber"]), "--miner", miner)
                sealing_asked = True
        time.sleep(0.2)
    raise AssertionError(f"deal {proposal} not active within {DEAL_TIMEOUT} s; states seen {seen}")


def test_one_mib_file_stored_with_an_8mib_miner_proven_and_retrieved(
    tmp_path: Path, processes: list[DevnetProcess]
) -> None:
    repo = tmp_path / "devnet"
    node, _ = start(processes, repo, "--block-delay", "1")
    worker = filpy(repo, "wallet", "new", "bls").strip()
    created = filpy(
        repo, "miner", "create", "--worker", worker, "--sector-size", "8MiB", "--pledge", "100", json_out=True
    )
    miner: str = created["IDAddress"]
    filpy(repo, "send", worker, "10")
    served = {m["Miner"]["IDAddress"]: m for m in filpy(repo, "miner", "list", json_out=True)}
    assert served[miner]["Sealing"]  # served by the running node at once
    asks = provider_with_ask(repo, "8MiB", miner, GENESIS_MINER)  # both served, on one provider host
    assert filpy(repo, "client", "query-ask", miner, json_out=True)["Response"] == asks[0]["Response"]
    for provider, ask in zip((miner, GENESIS_MINER), asks, strict=True):
        assert (ask["Response"]["Miner"], ask["Response"]["Price"], ask["Response"]["MaxPieceSize"]) == (
            provider,
            str(10**11),
            8 << 20,
        )
    # `filpy miner get-ask` lists the ask of each miner the node provides for, as the clients read them
    listed = filpy(repo, "miner", "get-ask", json_out=True)
    assert sorted(a["Ask"]["Miner"] for a in listed) == sorted((miner, GENESIS_MINER))
    assert {a["Ask"]["Miner"]: a for a in listed}[miner]["Ask"] == asks[0]["Response"]

    # -- meanwhile an offline deal with the genesis miner: the CAR handed over with import-data ------
    offline = os.urandom(1200)
    (tmp_path / "offline.bin").write_bytes(offline)
    root2, _ = import_file(repo, tmp_path / "offline.bin")
    filpy(repo, "client", "export", root2, str(tmp_path / "offline.car"), "--car")
    proposal2 = filpy(
        repo, "client", "deal", root2, GENESIS_MINER, "--duration", "600", "--manual", "--add-funds"
    ).strip()
    until(
        "the offline deal waiting for its data",
        60.0,
        lambda: any(
            d["SignedProposalCid"]["/"] == proposal2 and d["State"] == "StorageDealWaitingForData"
            for d in rpc(repo, "Filpy.StorageDealsList")
        ),
    )
    filpy(repo, "miner", "deals", "import-data", proposal2, str(tmp_path / "offline.car"))

    # -- a 1 MiB file: imported, proposed, watched through every state to active ----------------------
    data = os.urandom(1 << 20)
    (tmp_path / "data.bin").write_bytes(data)
    root, piece = import_file(repo, tmp_path / "data.bin")
    cheap = filpy_fails(repo, "client", "deal", root, miner, "--duration", "600", "--price", "1 attoFIL")
    assert f"under {miner}'s ask: a {2 << 20}-byte piece costs at least" in cheap
    short = filpy_fails(repo, "client", "deal", root, miner, "--duration", "100000")
    assert "market escrow has" in short and "rerun with --add-funds" in short
    proposal = filpy(repo, "client", "deal", root, miner, "--duration", "600", "--add-funds").strip()
    info, seen = watch_deal(repo, proposal, miner)
    assert info["PieceCID"]["/"] == piece and info["Provider"] == miner
    assert seen == sorted(seen, key=lambda state: STATE_RANK[state]), seen  # never a step back
    # every state the client went through, in order; the provider's short steps before publication
    # (transferring, verifying, publishing) are seen when a status poll (each second) falls in them
    stages = [stage["Name"] for stage in info["DealStages"]["Stages"]]
    assert stages == [name for name in STAGE_ORDER if name in stages], stages
    assert stages[0] in ("StorageDealClientFunding", "StorageDealFundsReserved"), stages
    assert stages[-4:] == list(STAGE_ORDER[-4:]), stages  # each checked on chain by the client itself
    assert "StorageDealProposalAccepted" in stages, stages
    power = until(
        f"{miner}'s power on chain",
        30.0,
        lambda: int(rpc(repo, "StateMinerPower", miner, None)["MinerPower"]["RawBytePower"]),
    )
    assert power == 8 << 20

    # -- the piece inclusion proof: the client node checked it, and so can anyone with the RPC --------
    assert "piece inclusion proof verifies against its CommD" in info["Message"], info["Message"]
    pip = rpc(repo, "Filpy.ClientDealInclusionProof", {"/": proposal})
    assert pip["Verified"] and pip["DealID"] == info["DealID"], pip
    sector = rpc(repo, "StateSectorGetInfo", miner, pip["SectorNumber"], None)
    assert sector["UnsealedCID"] == pip["CommD"] and info["DealID"] in sector["DealIDs"]
    proof = PieceInclusionProof.from_bytes(base64.b64decode(pip["Proof"]))
    assert verify_piece_inclusion(
        proof,
        comm_d=commitment_of_v1(CID.parse(sector["UnsealedCID"]["/"])),
        sector_size=8 << 20,
        comm_p=commitment_of_v1(CID.parse(piece)),
        piece_size=2 << 20,
        offset=pip["Offset"],
    )
    assert "PIP verified" in filpy(repo, "client", "get-deal", proposal)
    # The provider's sector list counts the deal (the devnet's first deal has ID 0, a valid deal ID).
    (row,) = [
        line.split()
        for line in filpy(repo, "miner", "sectors", "list", "--miner", miner).splitlines()
        if line.split()[:1] == [str(pip["SectorNumber"])]
    ]
    assert row[-1] == "1", row

    # -- retrieved over plain HTTP and with `filpy client retrieve`: the same bytes -----------------
    base = endpoint_from_multiaddr((repo / "api").read_text()).removesuffix("/rpc/v1")
    status, headers, car = http_get(f"{base}/ipfs/{root}?format=car")
    assert status == 200 and headers["content-type"].startswith("application/vnd.ipld.car"), (status, car)
    (tmp_path / "http.car").write_bytes(car)
    exported = unixfs_export(tmp_path / "http.car", tmp_path / "http.bin")
    assert exported["root"] == root and (tmp_path / "http.bin").read_bytes() == data
    filpy(repo, "client", "retrieve", root, str(tmp_path / "out.bin"))
    assert (tmp_path / "out.bin").read_bytes() == data
    wait_active(repo, proposal2)  # the genesis miner's deal, sealed meanwhile
    filpy(repo, "client", "retrieve", root2, str(tmp_path / "offline.out"), "--miner", GENESIS_MINER)
    assert (tmp_path / "offline.out").read_bytes() == offline

    status, _, whole = http_get(f"{base}/piece/{piece}")
    assert status == 200 and len(whole) == info["Size"]  # the unpadded piece
    assert str(piece_cid_v1(commp_of_bytes(whole).commitment)) == piece
    status, headers, part = http_get(f"{base}/piece/{piece}", {"Range": "bytes=100-299"})
    assert (status, part) == (206, whole[100:300])
    assert headers["content-range"] == f"bytes 100-299/{len(whole)}"

    # -- a priced retrieval: refused over --maxprice, then paid by vouchers the provider redeems ------
    filpy(repo, "miner", "retrieval-ask", "set", "--price", "0.001", "--payment-interval", "256KiB")
    ask = filpy(repo, "miner", "retrieval-ask", "get", json_out=True)
    per_byte = 10**15 // 2**30
    assert (ask["PricePerByte"], ask["PaymentInterval"]) == (str(per_byte), 256 << 10)
    assert http_get(f"{base}/ipfs/{root}?format=car")[0] == 402  # priced data is no longer free
    offer = next(o for o in filpy(repo, "client", "find", root, json_out=True) if o["Miner"] == miner)
    price = int(offer["MinPrice"])
    assert price == per_byte * offer["Size"]
    refused = filpy_fails(repo, "client", "retrieve", root, str(tmp_path / "x"), "--maxprice", "1 attoFIL")
    assert f"the offer of {miner} costs" in refused and "over --maxprice" in refused
    assert not (tmp_path / "x").exists()
    filpy(repo, "client", "retrieve", root, str(tmp_path / "paid.bin"), "--maxprice", "1")
    assert (tmp_path / "paid.bin").read_bytes() == data

    (channel,) = filpy(repo, "paych", "list", json_out=True)
    vouchers = filpy(repo, "paych", "voucher", "list", channel, json_out=True)
    paid = max(int(v["Amount"]) for v in vouchers)
    assert len(vouchers) > 1 and paid == per_byte * len(car) <= price, vouchers  # the CAR's bytes, by parts
    best = filpy(repo, "paych", "voucher", "best-spendable", channel, "--export").split("; ")[-1].strip()
    filpy(repo, "paych", "voucher", "submit", channel, best)
    state = rpc(repo, "StateReadState", channel, None)["State"]
    assert int(state["ToSend"]) == paid  # redeemed on chain: the provider can collect it after settling

    node.stop(signal.SIGTERM)


# A sector past AddPiece whose pre-commit is on its way or on chain: a kill here must not seal it twice.
SEALING_AFTER_PRECOMMIT: Final = {"PreCommitWait", "WaitSeed", "Committing", "SubmitCommit", "CommitWait"}


def test_provider_killed_while_sealing_then_active(tmp_path: Path, processes: list[DevnetProcess]) -> None:
    repo = tmp_path / "devnet"
    # the provider's host on a port of our choosing ([markets] listen); on chain the addresses given in
    # [markets] announce, the one it listens on and one where nothing does (a client skips it)
    provider_addr, elsewhere = (f"/ip4/127.0.0.1/tcp/{free_port()}" for _ in range(2))
    markets = {"markets.listen": (provider_addr,), "markets.announce": (provider_addr, elsewhere)}
    Repo.open(repo, network="devnet", config=with_overrides(Config.for_network("devnet"), markets)).close()
    node, _ = start(processes, repo, "--block-delay", "1")
    (miner,) = (m["Miner"]["IDAddress"] for m in filpy(repo, "miner", "list", json_out=True))
    assert miner == GENESIS_MINER  # 2 KiB sectors: a small deal fills one, which seals at once
    provider_with_ask(repo, "2KiB", miner)
    announced = rpc(repo, "StateMinerInfo", miner, None)["Multiaddrs"]
    assert [str(Multiaddr(base64.b64decode(a))) for a in announced] == [provider_addr, elsewhere]
    data = os.urandom(1500)
    (tmp_path / "data.bin").write_bytes(data)
    root, _ = import_file(repo, tmp_path / "data.bin")
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
    node, _ = start(processes, repo)

    info = wait_active(repo, proposal)
    # the client checked the sector on chain and the provider's inclusion proof against its CommD
    assert "piece inclusion proof verifies against its CommD" in info["Message"], info["Message"]
    after = rpc(repo, "Filpy.SectorsStatus", miner, sector, True)
    assert rpc(repo, "Filpy.SectorsList", miner) == sectors_before  # no sector opened again for the deal
    assert after["PreCommitMsg"] == before["PreCommitMsg"] and after["PreCommitMsg"] is not None
    assert info["DealID"] in after["Deals"] and after["Activation"] > 0
    sent = [entry["Kind"] for entry in after["Log"] if entry["Kind"] == "event;PreCommitWait"]
    assert len(sent) == 1, after["Log"]  # pre-committed once, across the kill
    provider_deal = next(
        d
        for d in filpy(repo, "miner", "deals", "list", json_out=True)
        if d["SignedProposalCid"]["/"] == proposal
    )
    assert provider_deal["SectorNumber"] == sector and provider_deal["ChainDealID"] == info["DealID"]

    # -- refused, each with what is wrong ------------------------------------------------------------
    unknown = "bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    assert filpy_fails(repo, "miner", "deals", "import-data", unknown, str(tmp_path / "data.bin")).endswith(
        f"the provider has no deal with proposal CID {unknown}"
    )
    assert f"no provider offers {unknown}" in filpy_fails(
        repo, "client", "retrieve", unknown, str(tmp_path / "x")
    )

    node.stop(signal.SIGTERM)
