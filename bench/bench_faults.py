"""Storage faults on `filpy devnet` at a 1 s block delay (a child process on a temp repo, 127.0.0.1): the
time from a sector's replica deleted to its fault declared on chain (DeclareFaults executed, the sector
in StateMinerFaults), in epochs and seconds.

The Window PoSt scheduler checks a deadline's sectors once per proving period, when the deadline two
before it is challenged (node/mining/wdpost_faults.py, as Lotus), so the time depends on where in the
period the replica goes. The benchmark deletes it two epochs before its deadline's check, which measures
the declaration path itself (the check, the push, the inclusion and execution); a replica deleted just
after the check waits one proving period more (the worst case, derived from the measured figure: the
proving period is a constant of the devnet profile), and one deleted at a random point of the period
half of that on average.
"""

import re
import tempfile
import time
from pathlib import Path
from typing import Final

from bench.bench_devnet import Devnet
from bench.common import console, report, section
from chain.params import DEVNET
from chain.types.bitfield import BitField

MINER: Final = "t01000"
SECTOR: Final = 0
TIMEOUT: Final = 300.0
BLOCK_DELAY: Final = 1


def check_height(open_epoch: int) -> int:
    """The head height at which the scheduler checks the deadline opening at open_epoch (challenge of
    the deadline two before it, plus the challenge confidence of 1)."""
    return open_epoch - 2 * DEVNET.wpost_challenge_window - DEVNET.wpost_challenge_lookback + 1


def wait_for_height(node: Devnet, height: int) -> None:
    deadline = time.perf_counter() + TIMEOUT
    while node.height() < height:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"height {height} not reached within {TIMEOUT} s")
        time.sleep(0.02)


def _height_of(log: str, event: str) -> int:
    """The height= of the first log line of this event (the node logs key=value lines)."""
    for line in log.splitlines():
        if f"event='{event}'" in line:
            found = re.search(r" height=(\d+)", line)
            if found:
                return int(found.group(1))
    raise RuntimeError(f"no {event!r} line in the node's log")


def run() -> None:
    section("storage faults: filpy devnet, 1 s blocks (child process, 127.0.0.1)")
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        repo = Path(tmp) / "repo"
        node = Devnet(repo, "--block-delay", str(BLOCK_DELAY))
        try:
            node.wait_api()
            node.wait_height(1)
            views = node.call("Filpy.ProvingDeadlines", MINER, None)
            (deadline,) = [
                d
                for d in views
                for p in d["Partitions"] or ()
                if SECTOR in BitField.from_json(p["LiveSectors"])
            ]
            check = check_height(deadline["Open"])
            while check - 2 <= node.height():
                check += DEVNET.wpost_proving_period
            wait_for_height(node, check - 2)
            replica = repo / "sectors" / "sealed" / f"s-{MINER}-{SECTOR}"
            replica.unlink()
            deleted_at, began = node.height(), time.perf_counter()
            while SECTOR not in BitField.from_json(node.call("Filecoin.StateMinerFaults", MINER, None)):
                if time.perf_counter() - began > TIMEOUT:
                    raise RuntimeError(f"the fault was not declared within {TIMEOUT} s")
                time.sleep(0.02)
            took, seen = time.perf_counter() - began, node.height()
            power = node.call("Filecoin.StateMinerPower", MINER, None)["MinerPower"]["RawBytePower"]
            blocks = {
                node.call("Filecoin.ChainGetTipSetByHeight", h, None)["Height"]
                for h in range(deleted_at + 1, seen + 1)
            }
        finally:
            node.stop()
        log = (repo.parent / f"{repo.name}.log").read_text()
    pushed, landed = _height_of(log, "declaring faults"), _height_of(log, "faults declared")
    epochs, period = seen - deleted_at, DEVNET.wpost_proving_period
    report("replica deleted -> fault declared on chain (measured)", epochs, "epochs", f"{took:.1f} s")
    report("  deleted -> checked, DeclareFaults pushed", pushed - deleted_at, "epochs", "(deleted 2 before)")
    report("  pushed -> executed on chain (in its state)", landed - pushed, "epochs")
    report("  null rounds (Winning PoSts of the lost sector)", epochs - len(blocks), "epochs")
    report(
        "deleted right after its check (derived: + a period)",
        epochs + period,
        "epochs",
        f"~{took + period * BLOCK_DELAY:.0f} s at {BLOCK_DELAY} s blocks",
    )
    report("deleted at a random time (derived: + half a period)", epochs + period / 2, "epochs")
    report("miner's raw power after the declaration", float(power), "bytes", "4,096 before")
    console.print()
