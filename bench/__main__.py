"""`python -m bench [NAME...]`: run every bench/bench_*.py module (or the named ones) in order."""

import importlib
import os
import pkgutil
import sys
import time

import bench
from bench.common import console, print_summary
from node.logs import configure


def main(argv: list[str]) -> int:
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    wanted = [n if n.startswith("bench_") else f"bench_{n}" for n in argv]
    for name in wanted or names:
        if name not in names:
            console.print(f"unknown benchmark {name!r}; have: {', '.join(names)}")
            return 2
    configure(level="warning")  # the services' info lines would drown the figures
    start = time.perf_counter()
    # Latencies and rates depend on what else the machine runs: the figures are read beside this.
    console.print(f"machine: {os.cpu_count()} CPUs, load average {_load()} at start")
    for name in wanted or names:
        importlib.import_module(f"bench.{name}").run()
    took = time.perf_counter() - start
    console.print(f"benchmarks done in {took:.1f} s; load average {_load()} at the end")
    print_summary()
    return 0


def _load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())  # over 1, 5 and 15 minutes


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
