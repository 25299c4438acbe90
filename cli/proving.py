"""`filpy miner proving ...`: a miner's Window PoSt proving, as `lotus-miner proving` shows it, read from the
node that proves for it through the `Filpy.Proving*` RPC methods (rpc/methods/proving.py).

    proving info [--miner M]                  the current deadline, the proving period, sector counts
    proving deadlines [--miner M] [--all]     one row per deadline: open, partitions, sectors (faults)
    proving deadline N [--miner M] [-n]       one deadline's partitions and their sector sets
    proving faults [--miner M]                every faulty sector: deadline, partition, why
    proving check N [--miner M] [--only-bad]  the deadline's sectors checked on disk now (admin)

They are subcommands of `filpy miner` (cli/miner.py) with the client options (`--repo`, `--json`,
cli/subcommands.py). A command given no miner uses the one miner the node proves for
(Filpy.ProvingMiners; an error names them when there are several).
"""

import argparse
from typing import TYPE_CHECKING, Any

from cli.subcommands import command, group

if TYPE_CHECKING:
    from cli.client import Session


def add_proving(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """`filpy miner proving` and its subcommands, under `filpy miner`'s subcommands."""
    parser = sub.add_parser(
        "proving",
        help="a miner's Window PoSt proving and faults (as lotus-miner proving)",
        description="a miner's Window PoSt proving and faults (as lotus-miner proving)",
    )
    commands = group(parser, "proving_command")
    info_parser = command(
        commands, "info", info, "the current deadline, the proving period and sector counts"
    )
    _miner_option(info_parser)
    deadlines_parser = command(
        commands, "deadlines", deadlines, "every deadline of the current proving period"
    )
    _miner_option(deadlines_parser)
    deadlines_parser.add_argument(
        "--all", "-a", action="store_true", help="count all sectors (only live sectors by default)"
    )
    deadline_parser = command(commands, "deadline", deadline, "one deadline's partitions and their sectors")
    deadline_parser.add_argument("index", type=int, metavar="N", help="the deadline's index")
    _miner_option(deadline_parser)
    deadline_parser.add_argument(
        "--sector-nums", "-n", action="store_true", help="print the sector numbers of each set"
    )
    faults_parser = command(commands, "faults", faults, "the miner's faulty sectors, with why when known")
    _miner_option(faults_parser)
    check_parser = command(
        commands, "check", check, "check a deadline's sectors on disk (reads every replica)"
    )
    check_parser.add_argument("index", type=int, metavar="N", help="the deadline's index")
    _miner_option(check_parser)
    check_parser.add_argument("--only-bad", action="store_true", help="print only bad sectors")


def _miner_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--miner", metavar="MINER", help="the miner (default: the one this node proves for)")


async def _proving_miner(s: "Session", given: str | None) -> str:
    from cli import values
    from cli.client import CliError

    if given:
        return values.address(given, "miner address")
    miners: list[str] = await s.call("Filpy.ProvingMiners")
    if len(miners) == 1:
        return miners[0]
    if not miners:
        raise CliError("this node proves for no miner: name one with --miner")
    raise CliError(f"this node proves for several miners ({', '.join(miners)}): say which with --miner")


def _count(bitfield: Any) -> int:
    from chain.types.bitfield import BitField

    return BitField.from_json(bitfield).count()


def _numbers(bitfield: Any) -> str:
    from chain.types.bitfield import BitField

    return str(list(BitField.from_json(bitfield)))


async def _block_delay(s: "Session") -> int:
    return int((await s.call("Version"))["BlockDelay"])


async def info(s: "Session", args: argparse.Namespace) -> None:
    from cli.output import epoch_time

    miner = await _proving_miner(s, args.miner)
    pi = await s.call("Filpy.ProvingInfo", miner, None)
    if s.out.json(pi):
        return
    current = pi["CurrentEpoch"]
    delay = await _block_delay(s)

    def at(epoch: int) -> str:
        return epoch_time(current, epoch, delay)

    live = pi["LiveSectors"]
    percent = pi["FaultySectors"] * 100 / live if live else 0.0
    s.out.fields(
        [
            ("Miner", pi["Miner"]),
            ("Current Epoch", str(current)),
            ("Proving Period Boundary", str(pi["ProvingPeriodBoundary"])),
            ("Proving Period Start", at(pi["PeriodStart"])),
            ("Next Period Start", at(pi["NextPeriodStart"])),
            ("Live Sectors", str(live)),
            ("Active Sectors", str(pi["ActiveSectors"])),
            ("Faults", f"{pi['FaultySectors']} ({percent:.2f}%)"),
            ("Recovering", str(pi["RecoveringSectors"])),
            ("Deadline Index", str(pi["DeadlineIndex"])),
            ("Deadline Sectors", str(pi["DeadlineLiveSectors"])),
            ("Deadline Open", at(pi["DeadlineOpen"])),
            ("Deadline Close", at(pi["DeadlineClose"])),
            ("Deadline Challenge", at(pi["DeadlineChallenge"])),
            ("Deadline FaultCutoff", at(pi["DeadlineFaultCutoff"])),
        ]
    )


async def deadlines(s: "Session", args: argparse.Namespace) -> None:
    miner = await _proving_miner(s, args.miner)
    found = await s.call("Filpy.ProvingDeadlines", miner, None)
    if s.out.json(found):
        return
    key = "AllSectors" if args.all else "LiveSectors"
    rows = []
    for dl in found:
        partitions = dl["Partitions"] or []
        counted = [_count(p[key]) for p in partitions]
        used = len(partitions) if args.all else sum(1 for c in counted if c)
        faulty = sum(_count(p["FaultySectors"]) for p in partitions)
        proven = sum(1 for p in partitions if p["Proven"])
        rows.append(
            [
                str(dl["Index"]),
                str(dl["Open"]),
                str(used),
                f"{sum(counted)} ({faulty})",
                str(proven),
                "(current)" if dl["Current"] else "",
            ]
        )
    s.out.line(f"Miner: {miner}")
    s.out.table(
        ["Deadline", "Open", "Partitions", "Sectors (Faults)", "Proven Partitions", ""],
        rows,
        right=("Deadline", "Open", "Partitions", "Proven Partitions"),
    )


async def deadline(s: "Session", args: argparse.Namespace) -> None:
    from cli.client import CliError

    miner = await _proving_miner(s, args.miner)
    found = await s.call("Filpy.ProvingDeadlines", miner, None)
    if not 0 <= args.index < len(found):
        raise CliError(f"deadline {args.index} does not exist (0 to {len(found) - 1})")
    dl = found[args.index]
    if s.out.json(dl):
        return
    partitions = dl["Partitions"] or []
    s.out.fields(
        [
            ("Deadline Index", str(dl["Index"])),
            ("Deadline Open", str(dl["Open"])),
            ("Deadline FaultCutoff", str(dl["FaultCutoff"])),
            ("Partitions", str(len(partitions))),
            ("Proven Partitions", str(sum(1 for p in partitions if p["Proven"]))),
            ("Current", "true" if dl["Current"] else "false"),
        ]
    )
    for p in partitions:
        pairs = []
        for name, key in (
            ("All", "AllSectors"),
            ("Live", "LiveSectors"),
            ("Active", "ActiveSectors"),
            ("Faulty", "FaultySectors"),
            ("Recovering", "RecoveringSectors"),
        ):
            pairs.append((f"{name} Sectors", str(_count(p[key]))))
            if args.sector_nums:
                pairs.append((f"{name} Sector Numbers", _numbers(p[key])))
        s.out.line()
        s.out.fields(pairs, title=f"Partition {p['Index']}")


async def faults(s: "Session", args: argparse.Namespace) -> None:
    miner = await _proving_miner(s, args.miner)
    found = await s.call("Filpy.ProvingFaults", miner, None)
    if s.out.json(found):
        return
    rows = []
    for f in found:
        status = "recovering" if f["Recovering"] else "faulty"
        rows.append(
            [str(f["Deadline"]), str(f["Partition"]), str(f["Sector"]), status, f.get("Reason") or ""]
        )
    s.out.line(f"Miner: {miner}")
    s.out.table(
        ["Deadline", "Partition", "Sector", "Status", "Reason"],
        rows,
        right=("Deadline", "Partition", "Sector"),
    )


async def check(s: "Session", args: argparse.Namespace) -> None:
    miner = await _proving_miner(s, args.miner)
    checks = await s.call("Filpy.ProvingCheck", miner, args.index)
    if s.out.json(checks):
        return
    rows = [
        [
            str(c["Deadline"]),
            str(c["Partition"]),
            str(c["Sector"]),
            "good" if c["Good"] else f"bad ({c['Reason']})",
        ]
        for c in checks
        if not (c["Good"] and args.only_bad)
    ]
    s.out.table(
        ["Deadline", "Partition", "Sector", "Status"], rows, right=("Deadline", "Partition", "Sector")
    )
