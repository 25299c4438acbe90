"""`filpy miner proving ...`: a miner's Window PoSt proving, as `lotus-miner proving` shows it, read from a
running node through the `Filpy.Proving*` RPC methods (rpc/methods/proving.py).

    filpy miner proving info                   the current deadline, the proving period, sector counts
    filpy miner proving deadlines [--all]      one line per deadline: open, partitions, sectors (faults)
    filpy miner proving deadline N [-n]        one deadline's partitions and their sector sets
    filpy miner proving faults                 every faulty sector: deadline, partition, why
    filpy miner proving check N [--only-bad]   the deadline's sectors checked on disk now (admin)

The node is found as Lotus clients find one: `FULLNODE_API_INFO` (`token:multiaddr`), else `--repo DIR`
(its `api` and `token` files; default ~/.filpy-devnet, then ~/.filpy). The miner is `--miner ADDRESS`, or
the one miner the node proves for (Filpy.ProvingMiners).
"""

import argparse
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final, TextIO

DEFAULT_REPOS: Final = (Path("~/.filpy-devnet"), Path("~/.filpy"))


class ProvingCliError(Exception):
    """What the user must fix; printed as `filpy miner proving: <message>`."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    groups = parser.add_subparsers(dest="miner_command", required=True, metavar="COMMAND")
    proving = groups.add_parser("proving", help="view proving information (as lotus-miner proving)")
    proving.add_argument("--repo", type=Path, metavar="DIR", help="the node's repo (its api and token)")
    proving.add_argument("--miner", metavar="ADDRESS", help="the miner (default: the one this node proves)")
    commands = proving.add_subparsers(dest="proving_command", required=True, metavar="COMMAND")
    commands.add_parser("info", help="the current deadline, the proving period and sector counts")
    deadlines = commands.add_parser("deadlines", help="every deadline of the current proving period")
    deadlines.add_argument(
        "--all", "-a", action="store_true", help="count all sectors (only live sectors by default)"
    )
    deadline = commands.add_parser("deadline", help="one deadline's partitions and their sectors")
    deadline.add_argument("index", type=int, help="the deadline's index")
    deadline.add_argument(
        "--sector-nums", "-n", action="store_true", help="print the sector numbers of each set"
    )
    commands.add_parser("faults", help="the miner's faulty sectors")
    check = commands.add_parser("check", help="check the deadline's sectors on disk (reads every replica)")
    check.add_argument("index", type=int, help="the deadline's index")
    check.add_argument("--only-bad", action="store_true", help="print only bad sectors")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import trio

    from rpc.client import RpcCallError, TransportError

    try:
        url, token = endpoint(args.repo, os.environ)
        return trio.run(_run, args, url, token, sys.stdout)
    except ProvingCliError as exc:
        print(f"filpy miner proving: {exc}", file=sys.stderr)
        return 1
    except RpcCallError as exc:
        print(f"filpy miner proving: the node answered: {exc.message}", file=sys.stderr)
        return 1
    except TransportError as exc:
        print(f"filpy miner proving: {exc}", file=sys.stderr)
        return 1


def endpoint(repo: Path | None, env: Any) -> tuple[str, str | None]:
    """(url, token) of the node: FULLNODE_API_INFO, else the repo's api and token files."""
    from rpc.client import endpoint_from_api_info, endpoint_from_multiaddr

    info = env.get("FULLNODE_API_INFO")
    if info and repo is None:
        try:
            return endpoint_from_api_info(info)
        except ValueError as exc:
            raise ProvingCliError(f"FULLNODE_API_INFO: {exc}") from None
    candidates = [repo] if repo is not None else list(DEFAULT_REPOS)
    for candidate in candidates:
        path = candidate.expanduser()
        api = path / "api"
        if api.exists():
            token_path = path / "token"
            token = token_path.read_text().strip() if token_path.exists() else None
            try:
                return endpoint_from_multiaddr(api.read_text()), token
            except ValueError as exc:
                raise ProvingCliError(f"{api}: {exc}") from None
    where = " or ".join(str(c) for c in candidates)
    raise ProvingCliError(
        f"no running node found: {where} has no api file (start the node, or set FULLNODE_API_INFO)"
    )


async def _run(args: argparse.Namespace, url: str, token: str | None, out: TextIO) -> int:
    from rpc.client import HttpClient

    async with HttpClient(url, token=token) as api:
        miner = args.miner or await _default_miner(api)
        commands: dict[str, Callable[[Any, str, argparse.Namespace, TextIO], Awaitable[None]]] = {
            "info": show_info,
            "deadlines": show_deadlines,
            "deadline": show_deadline,
            "faults": show_faults,
            "check": show_check,
        }
        await commands[args.proving_command](api, miner, args, out)
    return 0


async def _default_miner(api: Any) -> str:
    miners = await api.call("Filpy.ProvingMiners")
    if not miners:
        raise ProvingCliError("the node proves for no miner: name one with --miner ADDRESS")
    if len(miners) > 1:
        raise ProvingCliError(f"the node proves for {', '.join(miners)}: choose one with --miner ADDRESS")
    return str(miners[0])


class _Clock:
    """Epochs as lotus-miner prints them: `58 (in 12 epochs, ~48s)`, from the node's block delay."""

    def __init__(self, current: int, block_delay: int) -> None:
        self.current = current
        self.block_delay = block_delay

    def __call__(self, epoch: int) -> str:
        delta = epoch - self.current
        if delta == 0:
            return f"{epoch} (now)"
        span = f"{abs(delta)} epoch{'s' if abs(delta) != 1 else ''}"
        if self.block_delay > 0:
            span += f", ~{_duration(abs(delta) * self.block_delay)}"
        return f"{epoch} ({span} ago)" if delta < 0 else f"{epoch} (in {span})"


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m{seconds % 60}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60}m"


async def _clock(api: Any, current: int) -> _Clock:
    version = await api.call("Version")
    return _Clock(current, int(version.get("BlockDelay", 0)))


def _count(bitfield: Any) -> int:
    from chain.types.bitfield import BitField

    return BitField.from_json(bitfield).count()


def _numbers(bitfield: Any) -> list[int]:
    from chain.types.bitfield import BitField

    return list(BitField.from_json(bitfield))


def _table(rows: list[list[str]], out: TextIO) -> None:
    """Columns padded as Go's tabwriter (minwidth 2, padding 2) lays them out."""
    if not rows:
        return
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(max(map(len, rows)))]
    for row in rows:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        print("  ".join(cells).rstrip(), file=out)


async def show_info(api: Any, miner: str, args: argparse.Namespace, out: TextIO) -> None:
    info = await api.call("Filpy.ProvingInfo", miner, None)
    clock = await _clock(api, info["CurrentEpoch"])
    live = info["LiveSectors"]
    percent = info["FaultySectors"] * 100 / live if live else 0.0
    print(f"Miner: {info['Miner']}", file=out)
    print(f"Current Epoch:           {info['CurrentEpoch']}", file=out)
    print(f"Proving Period Boundary: {info['ProvingPeriodBoundary']}", file=out)
    print(f"Proving Period Start:    {clock(info['PeriodStart'])}", file=out)
    print(f"Next Period Start:       {clock(info['NextPeriodStart'])}", file=out)
    print(file=out)
    print(f"Faults:      {info['FaultySectors']} ({percent:.2f}%)", file=out)
    print(f"Recovering:  {info['RecoveringSectors']}", file=out)
    print(file=out)
    print(f"Deadline Index:       {info['DeadlineIndex']}", file=out)
    print(f"Deadline Sectors:     {info['DeadlineLiveSectors']}", file=out)
    print(f"Deadline Open:        {clock(info['DeadlineOpen'])}", file=out)
    print(f"Deadline Close:       {clock(info['DeadlineClose'])}", file=out)
    print(f"Deadline Challenge:   {clock(info['DeadlineChallenge'])}", file=out)
    print(f"Deadline FaultCutoff: {clock(info['DeadlineFaultCutoff'])}", file=out)


async def show_deadlines(api: Any, miner: str, args: argparse.Namespace, out: TextIO) -> None:
    deadlines = await api.call("Filpy.ProvingDeadlines", miner, None)
    rows = [["deadline", "open", "partitions", "sectors (faults)", "proven partitions"]]
    for dl in deadlines:
        partitions = dl["Partitions"] or []
        key = "AllSectors" if args.all else "LiveSectors"
        counted = [_count(p[key]) for p in partitions]
        used = len(partitions) if args.all else sum(1 for c in counted if c)
        faults = sum(_count(p["FaultySectors"]) for p in partitions)
        proven = sum(1 for p in partitions if p["Proven"])
        row = [str(dl["Index"]), str(dl["Open"]), str(used), f"{sum(counted)} ({faults})", str(proven)]
        if dl["Current"]:
            row.append("(current)")
        rows.append(row)
    print(f"Miner: {miner}", file=out)
    _table(rows, out)


async def show_deadline(api: Any, miner: str, args: argparse.Namespace, out: TextIO) -> None:
    deadlines = await api.call("Filpy.ProvingDeadlines", miner, None)
    if not 0 <= args.index < len(deadlines):
        raise ProvingCliError(f"deadline {args.index} does not exist (0 to {len(deadlines) - 1})")
    dl = deadlines[args.index]
    partitions = dl["Partitions"] or []
    print(f"Deadline Index:           {dl['Index']}", file=out)
    print(f"Deadline Open:            {dl['Open']}", file=out)
    print(f"Deadline FaultCutoff:     {dl['FaultCutoff']}", file=out)
    print(f"Partitions:               {len(partitions)}", file=out)
    print(f"Proven Partitions:        {sum(1 for p in partitions if p['Proven'])}", file=out)
    print(f"Current:                  {'true' if dl['Current'] else 'false'}", file=out)
    for p in partitions:
        print(file=out)
        print(f"Partition Index:          {p['Index']}", file=out)
        for name, key in (
            ("All", "AllSectors"),
            ("Live", "LiveSectors"),
            ("Active", "ActiveSectors"),
            ("Faulty", "FaultySectors"),
            ("Recovering", "RecoveringSectors"),
        ):
            pad = " " * (18 - len(name))
            print(f"\t{name} Sectors:{pad}{_count(p[key])}", file=out)
            if args.sector_nums:
                pad = " " * (12 - len(name))
                print(f"\t{name} Sector Numbers:{pad}{_numbers(p[key])}", file=out)


async def show_faults(api: Any, miner: str, args: argparse.Namespace, out: TextIO) -> None:
    faults = await api.call("Filpy.ProvingFaults", miner, None)
    rows = [["deadline", "partition", "sectors", "status"]]
    for f in faults:
        status = "recovering" if f["Recovering"] else "faulty"
        if f.get("Reason"):
            status += f" ({f['Reason']})"
        rows.append([str(f["Deadline"]), str(f["Partition"]), str(f["Sector"]), status])
    print(f"Miner: {miner}", file=out)
    _table(rows, out)


async def show_check(api: Any, miner: str, args: argparse.Namespace, out: TextIO) -> None:
    checks = await api.call("Filpy.ProvingCheck", miner, args.index)
    rows = [["deadline", "partition", "sector", "status"]]
    for c in checks:
        if c["Good"] and args.only_bad:
            continue
        status = "good" if c["Good"] else f"bad ({c['Reason']})"
        rows.append([str(c["Deadline"]), str(c["Partition"]), str(c["Sector"]), status])
    _table(rows, out)
