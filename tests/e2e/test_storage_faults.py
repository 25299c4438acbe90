"""Storage faults on a real `filpy devnet` (a child process on a temp repo and a free port, mining on
demand with `--block-delay 0`, driven only through its RPC, its log lines and the `filpy miner proving`
commands; stopped by its PID, also when the test fails):

- a sector's replica deleted -> the scheduler's check finds it before the deadline's cutoff ->
  DeclareFaults on chain (StateMinerFaults) and the power drops (StateMinerPower);
- the node stopped while the sector is faulty, the replica restored meanwhile, the node started again ->
  it declares the recovery, the next PoSt proves the sector, the power returns;
- the replica deleted for good -> faulty again, then terminated by the actor once faulty past the fault
  max age (StateSectorGetInfo: null); the devnet's sealing pipeline seals a committed-capacity sector in
  its place, proven by the miner's PoSts, and the power returns.

A node down over a deadline on a network that goes on without it is tests/e2e/test_testnet.py
(`filpy testnet`) and tests/mining/test_faults_network.py: a single-node devnet mines every epoch it
missed when it restarts, its PoSts included, so it never misses one. A deal sector's replacement and its
slashed deal are tests/sealing/test_replacement.py and tests/markets/test_deal_faults.py.
"""

import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import pytest

from chain.params import DEVNET
from chain.types.bitfield import BitField
from rpc.client import HttpClient
from tests.e2e.devnet_process import ROOT, DevnetProcess, events, height, logged, mine_until, start

pytestmark = pytest.mark.slow

MINER: Final = "t01000"
SECTOR: Final = 2048
# Bounds on epochs: finding a fault or a recovery takes at most a proving period and a deadline;
# a termination the fault max age after the fault's deadline, plus a period.
FIND: Final = DEVNET.wpost_proving_period + 3 * DEVNET.wpost_challenge_window
TERMINATE: Final = DEVNET.fault_max_age + 2 * DEVNET.wpost_proving_period
# Sealing the replacement: the pre-commit's challenge delay and the commit's confidence, with room.
SEAL: Final = DEVNET.pre_commit_challenge_delay + 40


async def faults(api: HttpClient) -> list[int]:
    return list(BitField.from_json(await api.call("StateMinerFaults", MINER, None)))


async def recoveries(api: HttpClient) -> list[int]:
    return list(BitField.from_json(await api.call("StateMinerRecoveries", MINER, None)))


async def raw_power(api: HttpClient) -> int:
    power: dict[str, Any] = await api.call("StateMinerPower", MINER, None)
    return int(power["MinerPower"]["RawBytePower"])


def proving(repo: Path, subcommand: str, *args: str) -> str:
    """`filpy miner proving SUBCOMMAND ...` against the running node, found through the repo."""
    done = subprocess.run(
        [sys.executable, "-m", "cli", "miner", "proving", subcommand, "--repo", str(repo), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_a_lost_replica_is_declared_recovered_across_a_restart_then_terminated(
    tmp_path: Path, processes: list[DevnetProcess]
) -> None:
    repo = tmp_path / "repo"
    proc, url = start(processes, repo, "--block-delay", "0")
    replica = repo / "sectors" / "sealed" / f"s-{MINER}-0"
    saved = replica.read_bytes()
    async with proc.client(url) as api:
        assert await api.call("Filpy.ProvingMiners") == [MINER]
        assert await raw_power(api) == 2 * SECTOR
        replica.unlink()
        deleted_at = await height(api)
        await mine_until(api, lambda: _has(faults(api), 0), FIND, "the fault declared")
        assert await raw_power(api) == SECTOR
        (declared,) = await logged(proc, "faults declared")
        assert declared["sectors"] == [0] and declared["height"] > deleted_at
        (check,) = [e for e in events(proc, "fault check") if e["faulty"]]
        assert "replica is missing" in check["faulty"]["0"]
        # Declared, not skipped: no PoSt of this deadline left sector 0 out.
        assert all(e["skipped"] == 0 for e in events(proc, "window post generated"))
        (fault,) = await api.call("Filpy.ProvingFaults", MINER, None)
        assert fault["Sector"] == 0 and not fault["Recovering"]
        assert "replica is missing" in fault["Reason"]

        # What an operator sees.
        info = proving(repo, "info")
        assert re.search(r"^Faults +1 \(50\.00%\)$", info, re.M), info
        assert re.search(rf"^Miner +{MINER}$", info, re.M), info
        deadline = fault["Deadline"]
        (row,) = [
            line.split() for line in proving(repo, "faults").splitlines() if "replica is missing" in line
        ]
        assert row[:4] == [str(deadline), str(fault["Partition"]), "0", "faulty"]
        checked = proving(repo, "check", str(deadline))
        assert re.search(r"^ *\d+ +\d+ +0 +bad \(.*replica is missing", checked, re.M), checked
        assert re.search(r"^ *\d+ +\d+ +1 +good$", checked, re.M), checked
        assert "good" not in proving(repo, "check", str(deadline), "--only-bad")
        rows = {line.split()[0]: line.split() for line in proving(repo, "deadlines").splitlines()[1:] if line}
        assert rows[str(deadline)][3:5] == ["2", "(1)"], rows

    # Stopped while the sector is faulty; the replica comes back meanwhile.
    assert proc.stop(signal.SIGTERM) < 10
    replica.write_bytes(saved)
    proc, url = start(processes, repo, "--block-delay", "0")
    async with proc.client(url) as api:
        assert await faults(api) == [0]
        await mine_until(api, lambda: _has(recoveries(api), 0), FIND, "the recovery declared")
        assert await raw_power(api) == SECTOR  # back once the PoSt proves it
        await mine_until(api, lambda: _empty(faults(api)), FIND, "the recovery proven")
        assert await raw_power(api) == 2 * SECTOR
        (recovered,) = await logged(proc, "recoveries declared")
        assert recovered["sectors"] == [0]

        # Lost for good: faulty again, then terminated past the fault max age.
        replica.unlink()
        await mine_until(api, lambda: _has(faults(api), 0), FIND, "the second fault declared")
        faulty_at = await height(api)
        gone = await mine_until(
            api, lambda: _none(api.call("StateSectorGetInfo", MINER, 0, None)), TERMINATE, "terminated"
        )
        assert gone - faulty_at >= DEVNET.fault_max_age - DEVNET.wpost_proving_period
        assert await faults(api) == [] and await raw_power(api) == SECTOR
        assert await api.call("StateSectorGetInfo", MINER, 1, None) is not None

        # The pipeline seals a committed-capacity sector in its place; its PoSts bring the power back.
        replacing = "sector terminated for faults: sealing a replacement"
        await mine_until(api, lambda: _logged(proc, replacing), 5, "the replacement opened")
        (replaced,) = events(proc, replacing)
        assert replaced["sector"] == 0 and replaced["slashed_deals"] == []
        new = replaced["replacement"]
        status = await api.call("Filpy.SectorsStatus", MINER, new, False)
        assert "replaces sector 0" in status["Log"][0]["Message"]
        await mine_until(api, lambda: _proving(api, new), SEAL, "the replacement sealed and proving")
        await mine_until(api, lambda: _power_is(api, 2 * SECTOR), FIND, "the replacement's power")
        await mine_until(api, lambda: _proven(api, new), FIND, "the replacement proven by a PoSt")
        assert await faults(api) == []
    assert proc.stop(signal.SIGTERM) < 10


async def _has(values: Any, item: int) -> bool:
    return item in await values


async def _empty(values: Any) -> bool:
    return not await values


async def _none(value: Any) -> bool:
    return await value is None


async def _logged(proc: DevnetProcess, name: str) -> bool:
    return bool(events(proc, name))


async def _power_is(api: HttpClient, value: int) -> bool:
    return await raw_power(api) == value


async def _proving(api: HttpClient, sector: int) -> bool:
    return bool((await api.call("Filpy.SectorsStatus", MINER, sector, False))["State"] == "Proving")


async def _proven(api: HttpClient, sector: int) -> bool:
    """Whether a Window PoSt has proven the sector: active in its partition (StateMinerActiveSectors)."""
    active = await api.call("StateMinerActiveSectors", MINER, None)
    return any(info["SectorNumber"] == sector for info in active)
