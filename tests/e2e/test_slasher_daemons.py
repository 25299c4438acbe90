"""The slasher in running daemons (issue 12's consensus faults on real processes): a testnet made by
`filpy testnet init` has `[slasher] enabled` on every node, reporting from the node's own account, and
each daemon starts its slasher with that reporter (its log says so).

The fault is the one operators really commit: the same miner run twice. node1's repo (miner t01000, its
keys and sectors) is copied to a fourth repo given a libp2p identity of its own, and both run as daemons
next to the testnet. They make the same block for t01000 at every epoch (same CID: no fault) until their
message pools differ: two transfers from one account with the same nonce, one pushed to each (the pools
keep the one they got first: a replacement needs a higher premium). The next block of t01000 then
exists twice at one height with different messages: double-fork mining. A slasher reports it with
ReportConsensusFault (its log shows the message executed with exit code 0), the chain shows t01000
barred (StateMinerInfo's ConsensusFaultElapsed, over RPC) while t01001 keeps mining.

Every process is stopped by its PID in a finally, whatever happens."""

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import pytest
import trio

from actors.miner.types import MinerMethod
from chain.types.address import Address
from chain.types.message import Message, sign_message
from node.devnet import account_key
from node.keystore import Keystore
from node.p2p.identity import KEY_NAME as HOST_KEY
from node.testnet import read_testnet
from rpc.client import endpoint_from_multiaddr
from tests.chain.messages import unpriced
from tests.e2e.devnet_process import ROOT, kill_all
from tests.e2e.test_testnet import Node, filpy, wait_for
from tests.processes import kill_by_pid, killed_at_end

pytestmark = pytest.mark.slow

BLOCK_DELAY: Final = 2
T: Final = "t"
SENDER: Final = 7  # a devnet account no node defaults to (nodes 0..2 report from accounts 0..2)
FAULT_WAIT: Final = 180.0
TWIN_COMMAND: Final = (
    sys.executable,
    "-m",
    "cli",
    "daemon",
    "--api",
    "127.0.0.1:0",
    "--listen",
    "/ip4/127.0.0.1/tcp/0",
)


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    try:
        yield from killed_at_end(kill_by_pid)
    finally:
        kill_all(tmp_path / "testnet")


FIELD: Final = re.compile(r"(\w+)=('[^']*'|\S+)")


def _events(log: str, event: str) -> list[dict[str, str]]:
    """The `event` lines of a daemon's console log (key='value' pairs) as dicts."""
    found = []
    for line in log.splitlines():
        fields = {key: value.strip("'") for key, value in FIELD.findall(line)}
        if fields.get("event") == event:
            found.append(fields)
    return found


def _started_slasher(log: str) -> str | None:
    """The reporter of the `slasher.started` line in a daemon's log, or None."""
    started = _events(log, "slasher.started")
    return started[-1]["reporter"] if started else None


async def test_a_miner_run_twice_is_reported_by_a_running_slasher(
    tmp_path: Path, twin: list[subprocess.Popen[bytes]]
) -> None:
    directory = tmp_path / "testnet"
    filpy(
        *("testnet", "init", "--dir", str(directory), "--nodes", "3", "--miners", "2"),
        *("--block-delay", str(BLOCK_DELAY)),
    )
    filpy("testnet", "init", "--dir", str(directory))  # found again: nothing changes
    testnet = read_testnet(directory)
    assert testnet is not None and testnet.nodes[1].miners == (Address.parse("t01000"),)

    # The twin of node1: the same miner, its own identity and ports, node0 as its bootstrap peer.
    twin_repo = tmp_path / "twin"
    shutil.copytree(testnet.nodes[1].repo, twin_repo)
    Keystore(twin_repo / "keystore").delete(HOST_KEY)
    filpy("testnet", "up", "--dir", str(directory))
    log_path = tmp_path / "twin.log"
    with log_path.open("wb") as log:
        twin.append(
            subprocess.Popen(
                [*TWIN_COMMAND, "--repo", str(twin_repo)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        )

    # Every daemon runs its slasher, reporting from its own account.
    for info in testnet.nodes:
        reporter = _started_slasher(info.log_path.read_text(errors="replace"))
        assert reporter == Address.of_key(account_key(info.index)).to_string(T), info.name
    nodes = [Node(n.api_url, n.token_path.read_text().strip()) for n in testnet.nodes]

    async def twin_up() -> Node | None:
        assert twin[0].poll() is None, log_path.read_text(errors="replace")[-3000:]
        api = twin_repo / "api"
        if not api.exists():
            return None
        return Node(endpoint_from_multiaddr(api.read_text()), (twin_repo / "token").read_text().strip())

    second: Node = await wait_for("the twin's RPC", twin_up, 60)

    async def twin_following() -> bool:
        heads = [(await n.call("ChainHead"))["Height"] for n in (nodes[0], second)]
        return heads[0] > 2 and heads[1] >= heads[0] - 1

    await wait_for("the twin following the chain", twin_following)
    assert _started_slasher(log_path.read_text(errors="replace")) is not None

    # Two transfers from one account with one nonce, one to each instance of t01000, at once.
    key = account_key(SENDER)
    sender = Address.of_key(key)
    nonce = await nodes[1].call("MpoolGetNonce", sender.to_string(T))
    draft = unpriced(Address.of_key(account_key(8)), sender, nonce=nonce, value=1)
    # One estimate for both: with equal premiums neither can replace the other (a replacement pays 25%
    # more), so each pool keeps the one it got first. Two estimates may differ by more than that once
    # a block moves the premium estimate, and then the higher one wins in both pools over gossip.
    estimated = Message.from_json(await nodes[1].call("GasEstimateMessageGas", draft.to_json(T), None, None))
    signed = [
        sign_message(replace(estimated, to=Address.of_key(account_key(8 + i)), value=1 + i), key)
        for i in range(2)
    ]
    async with trio.open_nursery() as nursery:
        for node, message in zip((nodes[1], second), signed, strict=True):
            nursery.start_soon(node.call, "MpoolPush", message.to_json(T))

    # A slasher sees t01000's two blocks at one height and reports them; the chain bars t01000.
    async def barred() -> dict[str, Any] | None:
        info = await nodes[2].call("StateMinerInfo", "t01000", None)
        head = await nodes[2].call("ChainHead")
        return info if info["ConsensusFaultElapsed"] > head["Height"] else None

    await wait_for("t01000 barred for a consensus fault", barred, FAULT_WAIT)

    def logs() -> dict[str, str]:
        texts = {n.name: n.log_path.read_text(errors="replace") for n in testnet.nodes}
        return {**texts, "twin": log_path.read_text(errors="replace")}

    async def executed() -> list[dict[str, str]]:
        return [e for text in logs().values() for e in _events(text, "slasher.report_executed")]

    reports = await wait_for("the report's outcome in a slasher's log", executed, 30)
    assert all(e["fault"] == "DoubleForkMining" and e["miner"] == "t01000" for e in reports), reports

    # Every slasher logs the outcome on the chain it follows. While the twin keeps two forks apart, each
    # fork may execute a report of its own (all with exit code 0); the chain the nodes settle on keeps
    # exactly one, and any other report on it is refused (only the first report of a fault counts).
    async def kept() -> tuple[dict[str, str], dict[str, Any]] | None:
        landed = {}
        for e in await executed():  # read again: a slasher may log its outcome later than another's
            lookup = await nodes[0].call("StateSearchMsg", None, {"/": e["message"]}, None, True)
            if lookup is not None and lookup["Receipt"]["ExitCode"] == 0:
                landed[e["message"]] = (e, lookup)  # one per message: a reorg can log it twice
        return next(iter(landed.values())) if len(landed) == 1 else None

    first, lookup = await wait_for("exactly one report executed on node0's chain", kept, 60)
    miner_now = await nodes[0].call("StateMinerInfo", "t01000", None)
    assert miner_now["ConsensusFaultElapsed"] > lookup["Height"]  # barred from the report on
    report = {"/": first["message"]}
    message = await nodes[0].call("ChainGetMessage", report)
    assert message["To"] == "t01000" and message["Method"] == MinerMethod.ReportConsensusFault
    detected = {e["block1"] for text in logs().values() for e in _events(text, "slasher.fault_detected")}
    assert {first["block1"], first["block2"]} <= detected | {first["block2"]}

    # The network goes on with t01001 while t01000 is barred. Each node bars t01000 from the state its
    # own chain reached: node0 may have been on a fork that included the report an epoch or two later
    # than node2's, so every tipset is judged by its own parent state.
    async def barred_on_node0() -> list[dict[str, Any]] | None:
        ts = await nodes[0].call("ChainHead")
        chain = []
        for _ in range(3):
            # Validation reads the fault from the parent tipset's parent state (MinerEligibleToMine).
            parent_key = ts["Blocks"][0]["Parents"]
            parent = await nodes[0].call("ChainGetTipSet", parent_key)
            miner = await nodes[0].call("StateMinerInfo", "t01000", parent_key)
            if not parent["Height"] <= miner["ConsensusFaultElapsed"]:
                return None
            chain.append(ts)
            ts = parent
        return chain

    chain = await wait_for("three tipsets on node0 built while t01000 is barred", barred_on_node0)
    for ts in chain:
        assert {b["Miner"] for b in ts["Blocks"]} == {"t01001"}, ts["Height"]
