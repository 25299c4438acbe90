"""`python -m bench [NAME...]`: run every bench/bench_*.py module (or the named ones) in order."""

import importlib
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
    for name in wanted or names:
        importlib.import_module(f"bench.{name}").run()
    console.print(f"benchmarks done in {time.perf_counter() - start:.1f} s")
    print_summary()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
