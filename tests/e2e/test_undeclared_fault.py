"""An undeclared storage fault on real daemons: `filpy testnet up` with two nodes on 127.0.0.1, each
running one genesis miner (node0 t01000 and the drand beacon, node1 t01001), 1 s blocks. node1 is
stopped (by its PID) before t01001's deadline opens and stays down over it: node0 mines on, and the
deadline's cron marks t01001's sectors faulty (an undeclared fault: no PoSt, no declaration) and its
power goes. node1 is started again (`filpy testnet up`), syncs, finds the sectors faulty and fine on
disk, declares them recovered before their deadline's next cutoff, proves them, and the power returns.
Reached only through the command line, each node's JSON-RPC and node1's log; every process is stopped by
its PID, also when the test fails.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import pytest
import trio

from chain.params import DEVNET
from chain.types.bitfield import BitField
from node.testnet import read_testnet
from tests.e2e.devnet_process import ROOT
from tests.e2e.test_testnet import Node, alive

pytestmark = pytest.mark.slow

BLOCK_DELAY: Final = 1
MINER: Final = "t01001"  # run by node1
SECTOR: Final = 2048
# Seconds: the deadline comes round within a proving period; the recovery takes up to another.
PERIOD: Final = DEVNET.wpost_proving_period * BLOCK_DELAY
WAIT: Final = 2 * PERIOD + 60
# Epochs before the window opens at which node1 is stopped: its PoSt is proven from the challenge (two
# epochs before the window) on, so it cannot have sent it; stopping takes a few seconds.
MARGIN: Final = 8


def filpy(*args: str, timeout: float = 180) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    assert done.returncode == 0, f"filpy {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


async def height(node: Node) -> int:
    return int((await node.call("ChainHead"))["Height"])


async def wait_for(what: str, check: Any, timeout: float) -> Any:
    with trio.move_on_after(timeout):
        while True:
            last = await check()
            if last:
                return last
            await trio.sleep(0.5)
    raise AssertionError(f"{what} did not happen within {timeout} s")


async def test_a_node_down_over_its_deadline_is_marked_faulty_then_recovers(testnet_dir: Path) -> None:
    filpy(
        *("testnet", "up", "--dir", str(testnet_dir), "--nodes", "2", "--miners", "2"),
        *("--block-delay", str(BLOCK_DELAY)),
    )
    testnet = read_testnet(testnet_dir)
    assert testnet is not None and [str(m) for m in testnet.nodes[1].miners] == [MINER]
    node0, node1 = (Node(n.api_url, n.token_path.read_text().strip()) for n in testnet.nodes)
    assert await node1.call("Filpy.ProvingMiners") == [MINER]

    async def faults() -> list[int]:
        return list(BitField.from_json(await node0.call("StateMinerFaults", MINER, None)))

    async def raw_power() -> int:
        return int((await node0.call("StateMinerPower", MINER, None))["MinerPower"]["RawBytePower"])

    # The deadline holding t01001's sectors, and a moment to stop node1 before its window opens.
    assert await raw_power() == 2 * SECTOR
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
    pid = int(testnet.nodes[1].pid_path.read_text())
    os.kill(pid, signal.SIGTERM)
    await wait_for("node1 stopping", lambda: trio.to_thread.run_sync(lambda: not alive(pid)), 30)
    stopped_at = await height(node0)
    assert stopped_at < missed

    # node0 mines on; the deadline's cron marks the sectors faulty: the undeclared fault.
    close = missed + DEVNET.wpost_challenge_window
    await wait_for("the cron marking the sectors faulty", faults, WAIT)
    assert await faults() == [0, 1]
    assert await raw_power() == 0
    assert await height(node0) >= close
    assert not BitField.from_json(await node0.call("StateMinerRecoveries", MINER, None))

    # node1 back: it syncs, declares the recoveries before the next cutoff, proves them.
    assert "1 started" in filpy("testnet", "up", "--dir", str(testnet_dir))

    async def recovered() -> bool:
        return not await faults() and await raw_power() == 2 * SECTOR

    await wait_for("the recovery declared and proven", recovered, WAIT)
    log = testnet.nodes[1].log_path.read_text(errors="replace")  # the daemon's key=value lines
    (declared,) = [line for line in log.splitlines() if "event='recoveries declared'" in line]
    assert "sectors=[0, 1]" in declared and f"deadline={index} " in declared, declared
    assert "event='faults declared'" not in log  # the cron marked them, not node1
    filpy("testnet", "down", "--dir", str(testnet_dir))
