"""Timing helpers and the one report format every benchmark prints."""

import time
from collections.abc import Callable

from rich.console import Console

console = Console(highlight=False, width=120)


def report(name: str, value: float, unit: str, note: str = "") -> None:
    """Print one figure: name, value, unit and an optional note (a ratio, a target)."""
    text = f"{value:,.3f}" if value < 100 else f"{value:,.0f}"
    console.print(f"  {name:<52} {text:>14} {unit:<10} {note}")


def section(title: str) -> None:
    console.print(f"[bold]{title}[/bold]")


def per_second(fn: Callable[[], object], min_seconds: float = 1.0, batch: int = 1) -> float:
    """Calls of fn per second (each call counting batch operations), run for at least min_seconds."""
    fn()  # warm-up
    calls = 0
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < min_seconds:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
    return calls * batch / elapsed


def seconds(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time of fn over repeat runs."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
