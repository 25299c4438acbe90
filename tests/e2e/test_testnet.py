"""`filpy testnet` on real processes: three daemons on 127.0.0.1 from one genesis at 1 s blocks, two of
them mining (node1 runs t01000, node2 t01001; node0, the bootstrap node, produces the drand rounds and
mines nothing), reached only through the command line, each node's JSON-RPC and node2's log.

- `up` returns with every node answering and connected to the others; `status` shows them;
- an undeclared storage fault: node2 is stopped (by its PID) before t01001's deadline opens and stays
  down over it: node1 mines on, and the deadline's cron marks t01001's sectors faulty (no PoSt, no
  declaration) and its power goes. node2 is started again (`filpy testnet up`), syncs, finds the sectors
  faulty and fine on disk, declares them recovered before their deadline's next cutoff, proves them, and
  the power returns;
- the heads converge and tipsets holding blocks of both miners appear (ChainGetTipSet: two blocks);
- a message pushed to node0 (MpoolPushMessage over its RPC) is included by a miner on another node, and
  every node has the same tipsets and state roots at the same heights;
- with node0 stopped no drand round arrives and mining stops everywhere; started again, it goes on;
- `down` stops every node by its PID.

One testnet for all of it: the recovery waits for the deadline to come round (a 120-epoch proving
period), and the other checks run in that wait instead of on a testnet of their own.

Every process is stopped by its PID in a finally, whatever happens."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

import pytest
import trio

from chain.params import DEVNET
from chain.types.bitfield import BitField
from node.testnet import Testnet, read_testnet
from rpc.client import HttpClient, RpcCallError
from tests.e2e.devnet_process import ROOT

pytestmark = pytest.mark.slow

WAIT: Final = 90.0
BLOCK_DELAY: Final = 1
FIL: Final = 10**18
MINER: Final = "t01001"  # run by node2, stopped over its deadline
SECTOR: Final = 2048
# Seconds: the deadline comes round within a proving period; the recovery takes up to another.
PERIOD: Final = DEVNET.wpost_proving_period * BLOCK_DELAY
FAULT_WAIT: Final = 2 * PERIOD + 60
# Epochs before the window opens at which node2 is stopped: its PoSt is proven from the challenge (two
# epochs before the window) on, so it cannot have sent it; stopping takes a few seconds.
MARGIN: Final = 8


def filpy(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    assert done.returncode == 0, f"filpy {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


class Node:
    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token

    async def call(self, method: str, *params: Any) -> Any:
        async with HttpClient(self.url, token=self.token, timeout=30) as api:
            return await api.call(method, *params)


async def wait_for(what: str, check: Any, timeout: float = WAIT) -> Any:
    deadline = trio.current_time() + timeout
    last: Any = None
    while trio.current_time() < deadline:
        last = await check()
        if last:
            return last
        await trio.sleep(0.5)
    raise AssertionError(f"{what} did not happen within {timeout} s (last: {last})")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split(") ")[1][:1] != "Z"


async def height(node: Node) -> int:
    return int((await node.call("ChainHead"))["Height"])


async def test_three_daemons_two_miners_one_down_over_its_deadline(testnet_dir: Path) -> None:
    up = filpy(
        *("testnet", "up", "--dir", str(testnet_dir), "--nodes", "3", "--miners", "2"),
        *("--block-delay", str(BLOCK_DELAY)),
    )
    assert "every node up and connected to the 2 others" in up.stdout
    testnet = read_testnet(testnet_dir)
    assert testnet is not None and testnet.nodes[0].miners == ()
    assert [str(m) for m in testnet.nodes[2].miners] == [MINER]
    nodes = [Node(n.api_url, n.token_path.read_text().strip()) for n in testnet.nodes]
    pids = [int(n.pid_path.read_text()) for n in testnet.nodes]
    for node, info in zip(nodes, testnet.nodes, strict=True):
        assert info.api_url in up.stdout and str(info.token_path) in up.stdout
        peers = {p["ID"] for p in await node.call("NetPeers")}
        assert peers == {n.peer_id for n in testnet.nodes} - {info.peer_id}
        assert (await node.call("NetAddrsListen"))["ID"] == info.peer_id
    assert await nodes[2].call("Filpy.ProvingMiners") == [MINER]

    # Tipsets with a block of each miner, on a chain every node follows: looked for before the fault
    # below, after which t01001 has no power until its recovery is proven (longer than this wait).
    async def two_miners() -> dict[str, Any] | None:
        ts = await nodes[0].call("ChainHead")
        while ts["Height"] > 0:
            if sorted(b["Miner"] for b in ts["Blocks"]) == ["t01000", "t01001"]:
                return ts
            ts = await nodes[0].call("ChainGetTipSet", ts["Blocks"][0]["Parents"])
        return None

    both = await wait_for("a tipset with blocks of both miners", two_miners)
    got = await nodes[2].call("ChainGetTipSet", both["Cids"])
    assert len(got["Blocks"]) == 2

    index = await undeclared_fault(testnet, nodes, pids)

    # A message pushed to node0 (which mines nothing), included by a miner on another node.
    sender = await nodes[0].call("WalletDefaultAddress")
    to = await nodes[2].call("WalletDefaultAddress")
    assert sender != to
    before = int(await nodes[1].call("WalletBalance", to))
    prototype = {
        "Version": 0,
        "To": to,
        "From": sender,
        "Nonce": 0,
        "Value": str(3 * FIL),
        "GasLimit": 0,
        "GasFeeCap": "0",
        "GasPremium": "0",
        "Method": 0,
        "Params": None,
    }
    signed = await nodes[0].call("MpoolPushMessage", prototype, None)
    cid = signed["CID"]

    async def gossiped() -> bool:  # StateWaitMsg refuses a message the node has not seen (as Lotus's)
        try:
            return bool(await nodes[2].call("ChainGetMessage", cid))
        except RpcCallError:
            return False

    await wait_for("node2 receiving the message", gossiped)
    with trio.fail_after(WAIT):
        lookup = await nodes[2].call("StateWaitMsg", cid, 1, -1, True)
    assert lookup["Receipt"]["ExitCode"] == 0
    included = await nodes[2].call("ChainGetTipSet", lookup["TipSet"])
    parent = await nodes[2].call("ChainGetTipSet", included["Blocks"][0]["Parents"])
    including = []
    for block, block_cid in zip(parent["Blocks"], parent["Cids"], strict=True):
        messages = await nodes[2].call("ChainGetBlockMessages", block_cid)
        if any(c == cid for c in messages["Cids"]):
            including.append(block["Miner"])
    assert including and set(including) <= {"t01000", "t01001"}
    assert int(await nodes[1].call("WalletBalance", to)) == before + 3 * FIL

    # Every node: the same tipset and the same state root at the same height, the same balance there.
    height = lookup["Height"]

    async def agreed() -> bool:
        heads = [await n.call("ChainHead") for n in nodes]
        return min(h["Height"] for h in heads) > height + 1

    await wait_for("every node past the message", agreed)

    # At 1 s blocks a late block can keep a node on a fork of the tip for a moment: the nodes agree once
    # each has taken the heaviest chain.
    async def same_tipset() -> list[dict[str, Any]] | None:
        tipsets = [await n.call("ChainGetTipSetByHeight", height + 1, None) for n in nodes]
        keys = {tuple(c["/"] for c in t["Cids"]) for t in tipsets}
        roots = {t["Blocks"][0]["ParentStateRoot"]["/"] for t in tipsets}
        return tipsets if len(keys) == len(roots) == 1 else None

    tipsets = await wait_for("every node with the same tipset and state root there", same_tipset)
    key = tipsets[0]["Cids"]
    assert {await n.call("WalletBalance", to) for n in nodes} == {str(before + 3 * FIL)}
    assert len({(await n.call("StateGetActor", to, key))["Balance"] for n in nodes}) == 1

    status = filpy("testnet", "status", "--dir", str(testnet_dir))
    for info in testnet.nodes:
        assert info.name in status.stdout and info.api_url in status.stdout
    assert "3 of 3 nodes answer" in status.stdout

    await recovered(testnet, nodes, index)

    # node0 produces the drand rounds: without it the miners get no round and stop; back, they go on.
    os.kill(pids[0], signal.SIGTERM)
    await wait_for("node0 stopping", lambda: trio.to_thread.run_sync(lambda: not alive(pids[0])), 20)
    await trio.sleep(3 * BLOCK_DELAY)  # the rounds already out are used up
    stalled = [(await n.call("ChainHead"))["Height"] for n in nodes[1:]]
    await trio.sleep(4 * BLOCK_DELAY)
    assert [(await n.call("ChainHead"))["Height"] for n in nodes[1:]] == stalled
    again = filpy("testnet", "up", "--dir", str(testnet_dir))
    assert "1 started, 2 already running" in again.stdout

    async def moving() -> bool:
        heights = [(await n.call("ChainHead"))["Height"] for n in nodes]
        return min(heights) > max(stalled)

    await wait_for("mining again once node0 is back", moving)

    down = filpy("testnet", "down", "--dir", str(testnet_dir))
    lines = down.stdout.splitlines()
    pids = [int(line.split("PID ")[1].split()[0]) for line in lines if "stopped PID" in line]
    assert len(pids) == 3 and "stopped 3 of 3 nodes" in down.stdout
    deadline = time.monotonic() + 15
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        await trio.sleep(0.2)
    assert not any(alive(pid) for pid in pids)
    assert not any((n.repo / "pid").exists() for n in testnet.nodes)
    assert "node0: not running" in filpy("testnet", "down", "--dir", str(testnet_dir)).stdout


async def faults(node: Node) -> list[int]:
    return list(BitField.from_json(await node.call("StateMinerFaults", MINER, None)))


async def raw_power(node: Node) -> int:
    return int((await node.call("StateMinerPower", MINER, None))["MinerPower"]["RawBytePower"])


async def undeclared_fault(testnet: Testnet, nodes: list[Node], pids: list[int]) -> int:
    """node2 stopped before t01001's deadline opens, down over it: the deadline's cron marks the sectors
    faulty. Then node2 started again (its recovery is `recovered`). The deadline's index."""
    node0 = nodes[0]
    assert await raw_power(node0) == 2 * SECTOR
    (deadline,) = [d for d in await node0.call("Filpy.ProvingDeadlines", MINER, None) if d["Partitions"]]
    index = deadline["Index"]

    async def next_open() -> int:
        (dl,) = [d for d in await node0.call("Filpy.ProvingDeadlines", MINER, None) if d["Index"] == index]
        return int(dl["Open"])

    async def before_window() -> bool:
        open_epoch, now = await next_open(), await height(node0)
        return MARGIN <= open_epoch - now <= DEVNET.wpost_proving_period - DEVNET.wpost_challenge_window

    await wait_for("a head before the deadline's window", before_window, PERIOD)
    missed = await next_open()
    os.kill(pids[2], signal.SIGTERM)
    await wait_for("node2 stopping", lambda: trio.to_thread.run_sync(lambda: not alive(pids[2])), 30)
    assert await height(node0) < missed

    # node1 mines on; the deadline's cron marks the sectors faulty: the undeclared fault.
    close = missed + DEVNET.wpost_challenge_window
    await wait_for("the cron marking the sectors faulty", lambda: faults(node0), FAULT_WAIT)
    assert await faults(node0) == [0, 1]
    assert await raw_power(node0) == 0
    assert await height(node0) >= close
    assert not BitField.from_json(await node0.call("StateMinerRecoveries", MINER, None))

    # node2 back: it syncs, declares the recoveries before the next cutoff, proves them.
    assert "1 started" in filpy("testnet", "up", "--dir", str(testnet.directory)).stdout
    pids[2] = int(testnet.nodes[2].pid_path.read_text())
    return int(index)


async def recovered(testnet: Testnet, nodes: list[Node], index: int) -> None:
    """t01001's sectors declared recovered by node2 (its log says so) and proven: the power is back."""

    async def back() -> bool:
        return not await faults(nodes[0]) and await raw_power(nodes[0]) == 2 * SECTOR

    await wait_for("the recovery declared and proven", back, FAULT_WAIT)
    log = testnet.nodes[2].log_path.read_text(errors="replace")  # the daemon's key=value lines
    (declared,) = [line for line in log.splitlines() if "event='recoveries declared'" in line]
    assert "sectors=[0, 1]" in declared and f"deadline={index} " in declared, declared
    assert "event='faults declared'" not in log  # the cron marked them, not node2
