"""Timing helpers and the one report format every benchmark prints."""

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich import box
from rich.console import Console
from rich.table import Table

console = Console(highlight=False, width=120)


def report(name: str, value: float, unit: str, note: str = "") -> None:
    """Print one figure: name, value, unit and an optional note (a ratio, a target)."""
    console.print(f"  {name:<52} {_figure(value):>14} {unit:<10} {note}")


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


@dataclass(frozen=True, slots=True)
class Target:
    """A figure with its target: at most `limit` (latencies, times, memory) or at least (rates)."""

    name: str
    value: float
    unit: str
    limit: float
    at_most: bool

    @property
    def met(self) -> bool:
        return self.value <= self.limit if self.at_most else self.value >= self.limit

    def describe(self) -> str:
        return f"{'<=' if self.at_most else '>='} {_figure(self.limit)} {self.unit}"


# The targets checked in this run, in order, for the summary `python -m bench` prints at its end.
TARGETS: list[Target] = []


def check(
    name: str,
    value: float,
    unit: str,
    *,
    at_most: float | None = None,
    at_least: float | None = None,
    note: str = "",
) -> bool:
    """Report a figure beside its target (exactly one of at_most, at_least) and remember it for the
    summary; whether it is met."""
    if (at_most is None) == (at_least is None):
        raise ValueError("check() takes exactly one of at_most and at_least")
    limit = at_most if at_most is not None else at_least
    assert limit is not None
    target = Target(name, value, unit, limit, at_most is not None)
    TARGETS.append(target)
    verdict = "met" if target.met else "MISSED"
    report(name, value, unit, f"target {target.describe()}: {verdict}" + (f"; {note}" if note else ""))
    return target.met


def print_summary() -> None:
    """The table of every target checked in this run: the target, the measured figure, met or missed."""
    if not TARGETS:
        return
    table = Table(title="targets", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("figure")
    table.add_column("target", justify="right")
    table.add_column("measured", justify="right")
    table.add_column("")
    for t in TARGETS:
        verdict = "[green]met[/green]" if t.met else "[bold red]missed[/bold red]"
        table.add_row(t.name, t.describe(), f"{_figure(t.value)} {t.unit}", verdict)
    console.print(table)
    missed = sum(not t.met for t in TARGETS)
    console.print(f"{len(TARGETS) - missed} of {len(TARGETS)} targets met")


def _figure(value: float) -> str:
    return f"{value:,.3f}" if value < 100 else f"{value:,.0f}"
