"""What the client commands print: rich tables and key-value lists on stdout, or the RPC result as JSON
(`--json`), and the value formats Lotus's CLI uses (FIL amounts, byte sizes, epochs as times).

Tables are drawn as `filpy devnet`'s accounts table (rich, box.SIMPLE); outside a terminal rich draws
them without colour and `PIPE_WIDTH` columns wide, so that addresses and CIDs are never cut or folded in
what a script reads. `--json` prints what the node answered, unchanged, indented.
"""

import base64
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TextIO

import orjson
from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from chain.encoding.cid import CID
from chain.types.fil import format_fil, format_fil_short

# Columns of a table written to a pipe or a file (as the devnet banner): wide enough for a BLS address.
PIPE_WIDTH: Final = 240
_BYTE_UNITS: Final = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB")
_DECI_UNITS: Final = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi")
# durafmt's units (Lotus's cliutil.EpochTime prints the first two that are not zero).
_DURATION_UNITS: Final = (
    ("year", 365 * 86400),
    ("week", 7 * 86400),
    ("day", 86400),
    ("hour", 3600),
    ("minute", 60),
    ("second", 1),
)


class Output:
    """Where a command prints. In `--json` mode only `json` writes; the other methods write nothing, so
    that a command may describe its result unconditionally after handing it to `json`."""

    def __init__(self, *, json_mode: bool, file: TextIO | None = None) -> None:
        self.json_mode = json_mode
        stream = file or sys.stdout
        self.console = Console(
            file=stream, width=None if stream.isatty() else PIPE_WIDTH, highlight=False, soft_wrap=True
        )

    def json(self, value: Any) -> bool:
        """Print value as JSON when `--json` was given; whether it was (the command is then done)."""
        if self.json_mode:
            self.console.file.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")
        return self.json_mode

    def line(self, text: str = "", *, end: str = "\n") -> None:
        if not self.json_mode:
            self.console.print(text, markup=False, end=end)

    def _print(self, renderable: RenderableType) -> None:
        """Draw a table; outside a terminal without the spaces that pad its lines (for scripts)."""
        if self.console.is_terminal:
            self.console.print(renderable)
            return
        with self.console.capture() as captured:
            self.console.print(renderable)
        self.console.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))

    def fields(self, pairs: Iterable[tuple[str, str]], *, title: str | None = None) -> None:
        """Key-value lines, keys in bold (Lotus prints these as `Key:\\tvalue`)."""
        if self.json_mode:
            return
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        for key, value in pairs:
            grid.add_row(Text(key), Text(value))
        if title:
            self.console.print(title, style="bold", markup=False)
        self._print(grid)

    def table(
        self,
        columns: Sequence[str],
        rows: Iterable[Sequence[str]],
        *,
        title: str | None = None,
        right: Sequence[str] = (),
    ) -> None:
        """A table with a header row; `right` names the columns aligned right (numbers, amounts)."""
        if self.json_mode:
            return
        table = Table(title=title, title_justify="left", box=box.SIMPLE, pad_edge=False, show_edge=False)
        for name in columns:
            table.add_column(name, justify="right" if name in right else "left", overflow="fold")
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))
        self._print(table)


# -- values as Lotus prints them -------------------------------------------------------------------------


def fil(atto: int | str) -> str:
    """An attoFIL amount (an int, or the decimal string of the JSON API) as `1.5 FIL` (types.FIL)."""
    return format_fil(int(atto))


def fil_short(atto: int | str) -> str:
    """`1.5 mFIL`, as Lotus's FIL.Short()."""
    return format_fil_short(int(atto))


def size_str(size: int | str) -> str:
    """A byte count as Lotus's types.SizeStr writes it: 1024-based units, 4 significant digits."""
    return _binary(int(size), _BYTE_UNITS, "%.4g")


def deci_str(size: int | str) -> str:
    """Lotus's types.DeciStr (power): 1024-based prefixes, 3 significant digits ("2 Ki", "1.5 Mi")."""
    return _binary(int(size), _DECI_UNITS, "%.3g")


def power_shares(mine: dict[str, str], total: dict[str, str]) -> tuple[str, str]:
    """A miner's quality-adjusted and raw power (StateMinerPower's claims) as `mine / total (share)`,
    as `lotus state power` prints them."""

    def of_total(key: str, form: Callable[[int], str]) -> str:
        part, whole = int(mine[key]), int(total[key])
        share = 100 * part / whole if whole else 0.0
        return f"{form(part)} / {form(whole)} ({share:.4f}%)"

    return of_total("QualityAdjPower", deci_str), of_total("RawBytePower", size_str)


def _binary(size: int, units: Sequence[str], form: str) -> str:
    if size == 0:
        return "0 B"
    value = float(size)
    unit = 0
    while value >= 1024 and unit + 1 < len(units):
        value /= 1024
        unit += 1
    return f"{form % value} {units[unit]}".rstrip()


def duration(seconds: float) -> str:
    """The first two units of a duration that are not zero, as durafmt's LimitFirstN(2): "4 minutes 8
    seconds", "2 days 1 hour", "0 seconds"."""
    left = int(seconds)
    parts = []
    for name, size in _DURATION_UNITS:
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count} {name}{'' if count == 1 else 's'}")
        if len(parts) == 2:
            break
    return " ".join(parts) or "0 seconds"


def epoch_time(current: int, epoch: int, block_delay: int) -> str:
    """An epoch as Lotus's cliutil.EpochTime writes it: `123 (4 minutes ago)`, `(now)`, `(in ...)`."""
    if epoch == current:
        return f"{epoch} (now)"
    seconds = abs(current - epoch) * block_delay
    return f"{epoch} ({duration(seconds)} ago)" if epoch < current else f"{epoch} (in {duration(seconds)})"


def when(unix: int, now: float | None = None) -> str:
    """A Unix time as UTC, with how long ago it was: `2026-12-02 05:37:25 UTC (3 seconds ago)`."""
    stamp = datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if now is None:
        return stamp
    delta = now - unix
    return f"{stamp} ({duration(delta)} ago)" if delta >= 0 else f"{stamp} (in {duration(-delta)})"


def actor_name(code: dict[str, str] | str) -> str:
    """The built-in actor a code CID names ("account", "storageminer"): filpy's codes are identity
    hashes of `fil/<version>/<name>` (actors/builtin.py); "" for a code that is not one."""
    text = code["/"] if isinstance(code, dict) else code
    try:
        digest = CID.parse(text).multihash.digest
    except ValueError:
        return ""
    parts = digest.decode("utf-8", errors="replace").split("/")
    return parts[2] if len(parts) == 3 and parts[0] == "fil" else ""


def cids(value: Sequence[dict[str, str]] | None) -> str:
    """A list of JSON CIDs, one per line (a tipset key)."""
    return "\n".join(c["/"] for c in value or ())


def hexlify(data_b64: str | None) -> str:
    """JSON bytes (base64) as hex, as Lotus prints a receipt's Return (`%x`)."""
    return base64.b64decode(data_b64).hex() if data_b64 else ""
