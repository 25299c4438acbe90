"""A miner created on a running `filpy devnet` is served at once, with no restart (a child process on a
temp repo and a free port, mining on demand with `--block-delay 0`, driven through the `filpy` command
line and its RPC; stopped by its PID, also when the test fails): `filpy miner create` makes a 2 KiB
miner and the node says nothing of a restart; `filpy miner sectors pledge` seals a committed-capacity
sector with it at once, which reaches Proving; its Window PoSt proves it (StateMinerActiveSectors) and
its power is on chain (StateMinerPower); the block miner mines blocks with it; the storage provider,
which served the genesis miner, serves it too and announces it once it has an ask (its peer ID in
StateMinerInfo). Restarted, the node still serves it (its scheduler and pipeline, Filpy.ProvingMiners).
"""

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import pytest
import trio

from chain.params import DEVNET
from rpc.client import HttpClient
from tests.e2e.devnet_process import ROOT, DevnetProcess, events, mine_until, start

pytestmark = pytest.mark.slow  # a miner created, a sector sealed and proven: about a minute

GENESIS_MINER: Final = "t01000"
SECTOR: Final = 2048
COMMAND_TIMEOUT: Final = 120.0  # one CLI command (miner create waits for its message)
SEAL: Final = DEVNET.pre_commit_challenge_delay + 40  # epochs from the pledge to Proving, with room
# Epochs from Proving to the first Window PoSt of the sector's deadline: a proving period and a window.
PROVE: Final = DEVNET.wpost_proving_period + 3 * DEVNET.wpost_challenge_window
WIN: Final = 60  # epochs for the new miner (a third of the power) to win a block


def filpy(repo: Path, *args: str, json_out: bool = False) -> Any:
    """`filpy <args> --repo repo [--json]`: its stdout (parsed with --json); the test fails with its
    stderr when it exits non-zero."""
    command = [sys.executable, "-m", "cli", *args, "--repo", str(repo), *(["--json"] if json_out else [])]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, f"filpy {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    return json.loads(done.stdout) if json_out else done.stdout


async def filpy_mining(api: HttpClient, repo: Path, *args: str) -> str:
    """`filpy <args> --repo repo` for a command that waits for its messages on chain: tipsets are mined
    (Filpy.MineTipset) while it runs; its stdout, the test failing with its stderr when it exits
    non-zero. The command is stopped by its PID if it has not ended in time."""
    command = [sys.executable, "-m", "cli", *args, "--repo", str(repo)]
    child = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
    )
    try:
        with trio.fail_after(COMMAND_TIMEOUT):
            while child.poll() is None:
                await api.call("Filpy.MineTipset")
                await trio.sleep(0.2)
        out, err = child.communicate()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, f"filpy {' '.join(args)} exited {child.returncode}:\n{err}"
    return out


async def test_a_created_miner_is_served_at_once_and_after_a_restart(
    tmp_path: Path, processes: list[DevnetProcess]
) -> None:
    repo = tmp_path / "repo"
    proc, url = start(processes, repo, "--block-delay", "0")
    async with proc.client(url) as api:
        # -- created: served at once, nothing said of a restart ------------------------------------
        worker = filpy(repo, "wallet", "new", "bls").strip()
        out = await filpy_mining(
            api, repo, "miner", "create", "--worker", worker, "--sector-size", "2KiB", "--pledge", "100"
        )
        assert "restart" not in out, out
        (line,) = [x for x in out.splitlines() if x.startswith("New miners address is: ")]
        miner = line.split()[4]
        served = {m["Miner"]["IDAddress"]: m for m in filpy(repo, "miner", "list", json_out=True)}
        assert served[miner]["Sealing"] and served[GENESIS_MINER]["Sealing"]
        assert sorted(await api.call("Filpy.ProvingMiners")) == sorted([GENESIS_MINER, miner])
        (serving,) = events(proc, "serving a created miner")
        assert serving["miner"] == miner
        (taken,) = events(proc, "provider serves a created miner")
        assert taken["miner"] == miner and taken["providers"] == [GENESIS_MINER, miner]  # both at once
        filpy(repo, "send", worker, "10")  # the worker pays for PreCommit and ProveCommit

        # -- a committed-capacity sector, pledged at once, sealed, proven, with power ---------------
        pledged = filpy(repo, "miner", "sectors", "pledge", "--miner", miner)
        sector = int(pledged.strip().rsplit(" ", 1)[-1])

        async def sector_proving() -> bool:
            status = await api.call("Filpy.SectorsStatus", miner, sector, False)
            assert status["State"] not in ("Failed", "Removed"), status
            return bool(status["State"] == "Proving")

        async def proven() -> bool:
            active = await api.call("StateMinerActiveSectors", miner, None)
            return any(info["SectorNumber"] == sector for info in active)

        async def raw_power() -> int:
            power = await api.call("StateMinerPower", miner, None)
            return int(power["MinerPower"]["RawBytePower"])

        await mine_until(api, sector_proving, SEAL, "the pledged sector Proving")

        def posted() -> list[dict[str, Any]]:
            return [e for e in events(proc, "window post deadline proven") if e["miner"] == miner]

        async def post_landed() -> bool:
            return bool(posted())

        await mine_until(api, proven, PROVE, "the sector active")
        await mine_until(api, post_landed, PROVE, "a Window PoSt of the new miner on chain")
        assert await proven() and await raw_power() == SECTOR
        assert not [
            e for e in events(proc, "window post missed: the deadline closed without its PoSt on chain")
        ]

        # -- the block miner mines with it ---------------------------------------------------------
        async def mined_by_it() -> bool:
            head = await api.call("ChainHead")
            return any(block["Miner"] == miner for block in head["Blocks"])

        await mine_until(api, mined_by_it, WIN, "a block by the new miner")

        # -- its provider is announced once it has an ask --------------------------------------------
        filpy(repo, "miner", "set-ask", "--price", "0", "--max-size", "2KiB")

        async def announced() -> bool:
            return bool((await api.call("StateMinerInfo", miner, None))["PeerId"])

        await mine_until(api, announced, 20, "the provider's announcement on chain")

    # -- restarted: still served ------------------------------------------------------------------------
    assert proc.stop(signal.SIGTERM) < 10
    proc, url = start(processes, repo, "--block-delay", "0")
    async with proc.client(url) as api:
        assert sorted(await api.call("Filpy.ProvingMiners")) == sorted([GENESIS_MINER, miner])
        served = {m["Miner"]["IDAddress"]: m for m in filpy(repo, "miner", "list", json_out=True)}
        assert served[miner]["Sealing"]
        status = await api.call("Filpy.SectorsStatus", miner, sector, False)
        assert status["State"] == "Proving"
        (started,) = [e for e in events(proc, "markets started")]
        assert started["provider"] == miner
        assert await raw_power() == SECTOR
    assert proc.stop(signal.SIGTERM) < 10
