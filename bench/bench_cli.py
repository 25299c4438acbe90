"""CLI start-up: wall time of `filpy --help` and of a command's help, each a fresh process.

What a user waits for before the first line: interpreter start, site-packages, and whatever the
command line imports. cli/main.py imports a subcommand's module only when it runs, so `filpy --help`
pays for argparse alone. Reported against a bare `python -c pass` measured in the same run (the floor
no CLI can go below). Target: `filpy --help` under 0.2 s.
"""

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

from bench.common import report, section

RUNS: Final = 9
TARGET_SECONDS: Final = 0.2


def _filpy() -> list[str]:
    """The installed console script (what a user runs), or the module if it is not installed."""
    script = Path(sys.executable).parent / "filpy"
    if script.exists():
        return [str(script)]
    found = shutil.which("filpy")
    return [found] if found else [sys.executable, "-m", "cli"]


def _median_seconds(argv: list[str]) -> float:
    """Median wall time of RUNS fresh processes running argv (output discarded, status checked)."""
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=60)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run() -> None:
    filpy = _filpy()
    section(f"CLI start-up (median of {RUNS} fresh processes; {' '.join(filpy)})")
    floor = _median_seconds([sys.executable, "-c", "pass"])
    report("python -c pass (interpreter start, the floor)", floor * 1e3, "ms")
    help_time = _median_seconds([*filpy, "--help"])
    verdict = "ok" if help_time < TARGET_SECONDS else "OVER TARGET"
    report(
        "filpy --help",
        help_time * 1e3,
        "ms",
        f"{help_time / floor:.2f}x the floor (target < {TARGET_SECONDS * 1e3:.0f} ms: {verdict})",
    )
    commp_help = _median_seconds([*filpy, "commp", "--help"])
    report(
        "filpy commp --help (imports the CommP command)", commp_help * 1e3, "ms", f"{commp_help / floor:.2f}x"
    )
    genesis_help = _median_seconds([*filpy, "genesis", "--help"])
    report(
        "filpy genesis --help",
        genesis_help * 1e3,
        "ms",
        f"{genesis_help / floor:.2f}x",
    )
