"""`filpy miner ...`: storage miners, as `lotus-miner` (init, info, sectors, sealing, proving), over the
node that serves them (rpc/methods/miner.py's and rpc/methods/proving.py's `Filpy.` methods and the State
methods).

    create --owner ADDR --worker ADDR --sector-size 2KiB|8MiB|512MiB [--pledge FIL]
                                   Filpy.MinerCreate: power.CreateMiner, waited for; the new miner
    list                           Filpy.MinerList: the miners the node serves
    info [MINER]                   StateMinerInfo, StateMinerPower, StateMinerProvingDeadline, balances
                                   and the sectors per state
    sectors pledge [--miner M]     Filpy.SectorPledge: a committed-capacity sector
    sectors seal N [--miner M]     Filpy.SectorStartSealing: seal a sector open for deals now
    sectors list [--miner M] [--fast]
                                   Filpy.SectorsList and each sector's Filpy.SectorsStatus, with whether
                                   it is on chain and active (StateMinerSectors, StateMinerActiveSectors)
    sectors status N [--miner M] [--log]
                                   Filpy.SectorsStatus
    sealing jobs [--miner M]       Filpy.SealingJobs: what seals now, with its progress
    proving info|deadlines|deadline N|faults|check N [--miner M]
                                   Filpy.Proving*: Window PoSt proving and faults (cli/proving.py)
    set-ask, get-ask, deals list, deals import-data
                                   the storage provider's ask and deals (cli/miner_market.py)

A command that takes a miner and is given none uses the node's only sealing miner (an error names them
when there are several). `--json` prints the main call's result as the node answered it; `info` prints
its three State calls' results keyed by method name, `sectors list` each sector's SectorsStatus.
"""

import argparse
from typing import TYPE_CHECKING, Any, Final

from cli import miner_market
from cli.proving import add_proving
from cli.subcommands import DEFAULT_WAIT_TIMEOUT, command, group

if TYPE_CHECKING:
    from cli.client import Session

SECTOR_SIZES: Final = ("2KiB", "8MiB", "512MiB")
# Lotus's sealtasks short names (TaskType.Short), for the jobs table.
TASK_SHORT: Final = {
    "seal/v0/addpiece": "AP",
    "seal/v0/precommit/1": "PC1",
    "seal/v0/precommit/2": "PC2",
    "seal/v0/commit/1": "C1",
    "seal/v0/commit/2": "C2",
    "seal/v0/finalize": "FIN",
}


def _miner_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--miner", metavar="MINER", help="the miner (default: the node's only sealing miner)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = group(parser, "miner_command")
    create_parser = command(
        sub, "create", create, "create a storage miner on chain and serve it from this node"
    )
    create_parser.add_argument(
        "--owner", metavar="ADDR", help="owner: signs and pays (default: the wallet's default)"
    )
    create_parser.add_argument(
        "--worker", required=True, metavar="ADDR", help="worker: a BLS key of the wallet"
    )
    create_parser.add_argument(
        "--sector-size", required=True, metavar="SIZE", help=f"sector size: {', '.join(SECTOR_SIZES)}"
    )
    create_parser.add_argument(
        "--pledge", default="0", metavar="FIL", help="the miner's first balance (default 0)"
    )
    create_parser.add_argument(
        "--timeout", type=float, default=DEFAULT_WAIT_TIMEOUT, metavar="SECONDS", help="how long to wait"
    )
    command(sub, "list", list_miners, "the miners this node serves")
    info_parser = command(sub, "info", info, "a miner's addresses, power, balances, deadline and sectors")
    info_parser.add_argument(
        "miner", nargs="?", metavar="MINER", help="the miner (default: the node's only one)"
    )

    sectors = group(
        sub.add_parser("sectors", help="a miner's sectors", description="a miner's sectors"),
        "sectors_command",
    )
    pledge_parser = command(sectors, "pledge", pledge, "seal a committed-capacity sector")
    _miner_option(pledge_parser)
    seal_parser = command(sectors, "seal", start_sealing, "seal a sector open for deals now")
    seal_parser.add_argument("number", type=int, metavar="N", help="the sector number")
    _miner_option(seal_parser)
    list_parser = command(sectors, "list", sectors_list, "the miner's sectors")
    _miner_option(list_parser)
    list_parser.add_argument(
        "--fast", action="store_true", help="leave out what the chain says of each sector"
    )
    status_parser = command(sectors, "status", sector_status, "a sector's state, messages and chain info")
    status_parser.add_argument("number", type=int, metavar="N", help="the sector number")
    _miner_option(status_parser)
    status_parser.add_argument("--log", action="store_true", help="show the sector's event log")

    sealing = group(
        sub.add_parser("sealing", help="the sealing work", description="the sealing work"), "sealing_command"
    )
    jobs_parser = command(sealing, "jobs", jobs, "the sealing jobs running or waiting now")
    jobs_parser.add_argument("--miner", metavar="MINER", help="one miner's jobs (default: every miner's)")
    add_proving(sub)
    miner_market.add_arguments(sub)  # set-ask, get-ask, deals: the storage provider's commands


async def served_miners(s: "Session") -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await s.call("Filpy.MinerList")
    return found


async def _the_miner(s: "Session", given: str | None, *, sealing: bool) -> str:
    """The miner a command is about: the one given, else the node's only (sealing) miner."""
    from cli import values
    from cli.client import CliError

    if given:
        return values.address(given, "miner address")
    served = [m for m in await served_miners(s) if m["Sealing"] or not sealing]
    if len(served) == 1:
        address: str = served[0]["Miner"]["IDAddress"]
        return address
    if not served:
        what = "seals for" if sealing else "serves"
        raise CliError(f"this node {what} no miner: name one, or make one with `filpy miner create`")
    names = ", ".join(m["Miner"]["IDAddress"] for m in served)
    raise CliError(f"this node serves several miners ({names}): say which with --miner")


async def create(s: "Session", args: argparse.Namespace) -> None:
    from cli import values
    from cli.client import CliError
    from node.mining.create import MinerCreated, MinerCreateError, parse_sector_size

    try:
        size = parse_sector_size(args.sector_size)
    except MinerCreateError as exc:
        raise CliError(str(exc)) from None
    pledge = values.amount(args.pledge, "pledge")
    worker = values.address(args.worker, "worker address")
    owner = (
        values.address(args.owner, "owner address") if args.owner else await s.call("WalletDefaultAddress")
    )
    s.out.line(f"Creating a miner of {args.sector_size} sectors: owner {owner}, worker {worker}")
    created = await s.call("Filpy.MinerCreate", owner, worker, size, str(pledge))
    if s.out.json(created):
        return
    network = values.address_network(owner)
    for line in MinerCreated.from_json(created).lines(network):
        s.out.line(line)
    miner = created["IDAddress"]
    if not any(m["Sealing"] for m in await served_miners(s) if m["Miner"]["IDAddress"] == miner):
        s.out.line(f"The node serves {miner} from its next start: restart it to mine and seal with it.")
    if int(await s.call("WalletBalance", worker)) == 0:
        s.out.line(
            f"Its worker {worker} has no FIL: send it some (`filpy send {worker} 10`) to pay for the "
            "miner's messages (PreCommit, ProveCommit, the provider's announcement)."
        )


async def list_miners(s: "Session", args: argparse.Namespace) -> None:
    from cli.output import size_str

    served = await served_miners(s)
    if s.out.json(served):
        return
    s.out.table(
        ["Miner", "Robust address", "Owner", "Worker", "Sector size", "Sealing"],
        [
            [
                m["Miner"]["IDAddress"],
                m["Miner"]["RobustAddress"],
                m["Miner"]["Owner"],
                m["Miner"]["Worker"],
                size_str(m["Miner"]["SectorSize"]),
                "yes" if m["Sealing"] else "no",
            ]
            for m in served
        ],
    )


async def info(s: "Session", args: argparse.Namespace) -> None:
    from cli.client import CliError
    from cli.output import epoch_time, fil_short, power_shares, size_str

    miner = await _the_miner(s, args.miner, sealing=False)
    answers = {
        "StateMinerInfo": await s.call("StateMinerInfo", miner, []),
        "StateMinerPower": await s.call("StateMinerPower", miner, []),
        "StateMinerProvingDeadline": await s.call("StateMinerProvingDeadline", miner, []),
    }
    if s.out.json(answers):
        return
    mi, power, deadline = answers.values()
    actor = await s.call("StateGetActor", miner, [])
    available = await s.call("StateMinerAvailableBalance", miner, [])
    worker_balance = await s.call("WalletBalance", mi["Worker"])
    block_delay = int((await s.call("Version"))["BlockDelay"])
    quality_adjusted, raw = power_shares(power["MinerPower"], power["TotalPower"])
    current = deadline["CurrentEpoch"]
    pairs = [
        ("Miner", f"{miner} ({size_str(mi['SectorSize'])} sectors)"),
        ("Owner", mi["Owner"]),
        ("Worker", mi["Worker"]),
        ("Beneficiary", mi["Beneficiary"]),
        ("Peer ID", mi["PeerId"] or "none"),
        ("Control addresses", ", ".join(mi["ControlAddresses"] or ()) or "none"),
        ("Power", quality_adjusted),
        ("Raw power", raw),
        ("Wins blocks", "yes" if power["HasMinPower"] else "no: below the minimum power"),
        ("Miner balance", fil_short(actor["Balance"])),
        ("Available", fil_short(available)),
        ("Worker balance", fil_short(worker_balance)),
        (
            "Proving deadline",
            f"{deadline['Index']} of {deadline['WPoStPeriodDeadlines']}, open from epoch "
            f"{epoch_time(current, deadline['Open'], block_delay)} to {deadline['Close']}",
        ),
        ("Current epoch", str(current)),
    ]
    try:
        summary = await s.call("Filpy.SectorsSummary", miner)
    except CliError:
        summary = None  # the node does not seal for this miner
    if summary is not None:
        pairs.append(("Sectors", ", ".join(f"{state}: {n}" for state, n in summary.items()) or "none"))
    s.out.fields(pairs)


async def pledge(s: "Session", args: argparse.Namespace) -> None:
    miner = await _the_miner(s, args.miner, sealing=True)
    sector = await s.call("Filpy.SectorPledge", miner)
    if not s.out.json(sector):
        s.out.line(f"Created CC sector: {sector['Number']}")


async def start_sealing(s: "Session", args: argparse.Namespace) -> None:
    miner = await _the_miner(s, args.miner, sealing=True)
    await s.call("Filpy.SectorStartSealing", miner, args.number)
    s.out.line(f"Sector {args.number} of {miner} starts sealing")


async def sectors_list(s: "Session", args: argparse.Namespace) -> None:
    from cli.output import epoch_time

    miner = await _the_miner(s, args.miner, sealing=True)
    numbers = await s.call("Filpy.SectorsList", miner)
    statuses = [await s.call("Filpy.SectorsStatus", miner, n, not args.fast) for n in numbers]
    if s.out.json(statuses):
        return
    committed = {i["SectorNumber"] for i in await s.call("StateMinerSectors", miner, None, [])}
    active = {i["SectorNumber"] for i in await s.call("StateMinerActiveSectors", miner, [])}
    current = (await s.call("ChainHead"))["Height"]
    block_delay = int((await s.call("Version"))["BlockDelay"])
    rows = []
    for st in statuses:
        number = st["SectorID"]
        deals = st["Deals"] or ()  # deal IDs only (no filler entries); 0 is a real deal ID
        expiration = "n/a"
        if not args.fast and number in committed:
            expiration = epoch_time(current, st["Expiration"], block_delay)
        rows.append(
            [
                str(number),
                st["State"],
                "YES" if number in committed else "NO",
                "YES" if number in active else "NO",
                expiration,
                str(len(deals)) if deals else "CC",
                st["LastErr"],
            ]
        )
    columns = ["ID", "State", "OnChain", "Active", "Expiration", "Deals", "Error"]
    if not any(row[-1] for row in rows):
        columns.pop()
        rows = [row[:-1] for row in rows]
    s.out.table(columns, rows, right=("ID",))


async def sector_status(s: "Session", args: argparse.Namespace) -> None:
    from datetime import UTC, datetime

    from cli.output import epoch_time, fil, hexlify

    miner = await _the_miner(s, args.miner, sealing=True)
    st = await s.call("Filpy.SectorsStatus", miner, args.number, True)
    if s.out.json(st):
        return

    def cid(value: dict[str, str] | None) -> str:
        return value["/"] if value else "<nil>"

    s.out.fields(
        [
            ("SectorID", str(st["SectorID"])),
            ("Status", st["State"]),
            ("CIDcommD", cid(st["CommD"])),
            ("CIDcommR", cid(st["CommR"])),
            ("Ticket", hexlify(st["Ticket"]["Value"])),
            ("TicketH", str(st["Ticket"]["Epoch"])),
            ("Seed", hexlify(st["Seed"]["Value"])),
            ("SeedH", str(st["Seed"]["Epoch"])),
            ("Precommit", cid(st["PreCommitMsg"])),
            ("Commit", cid(st["CommitMsg"])),
            ("Deals", str(list(st["Deals"] or ()))),
            ("Retries", str(st["Retries"])),
            *([("Last Error", st["LastErr"])] if st["LastErr"] else []),
        ]
    )
    if st["Activation"]:
        current = (await s.call("ChainHead"))["Height"]
        block_delay = int((await s.call("Version"))["BlockDelay"])
        s.out.line()
        s.out.fields(
            [
                ("SealProof", str(st["SealProof"])),
                ("Activation", epoch_time(current, st["Activation"], block_delay)),
                ("Expiration", epoch_time(current, st["Expiration"], block_delay)),
                ("DealWeight", st["DealWeight"]),
                ("VerifiedDealWeight", st["VerifiedDealWeight"]),
                ("InitialPledge", fil(st["InitialPledge"])),
            ],
            title="Sector On Chain Info",
        )
    else:
        s.out.line()
        s.out.line("Sector status not found on chain")
    if args.log:
        s.out.line()
        s.out.table(
            ["Time", "Event", "Message"],
            [
                [
                    datetime.fromtimestamp(entry["Timestamp"], UTC).strftime("%Y-%m-%d %H:%M:%S"),
                    entry["Kind"],
                    entry["Message"],
                ]
                for entry in st["Log"] or ()
            ],
            title="Event Log",
        )


async def jobs(s: "Session", args: argparse.Namespace) -> None:
    import time
    from datetime import datetime

    from cli import values
    from cli.output import duration

    miner = values.address(args.miner, "miner address") if args.miner else None
    found = await s.call("Filpy.SealingJobs", miner)
    if s.out.json(found):
        return
    names = {int(m["Miner"]["IDAddress"][2:]): m["Miner"]["IDAddress"] for m in await served_miners(s)}
    rows = []
    for job in sorted(found, key=lambda j: (j["RunWait"], j["Start"])):
        started = datetime.fromisoformat(job["Start"].replace("Z", "+00:00")).timestamp()
        progress = f"{job['Phase']} {job['Done']}/{job['Total']}" if job["Total"] else job["Phase"]
        rows.append(
            [
                job["ID"],
                names.get(job["Sector"]["Miner"], str(job["Sector"]["Miner"])),
                str(job["Sector"]["Number"]),
                TASK_SHORT.get(job["Task"], job["Task"]),
                "running" if job["RunWait"] == 0 else "waiting",
                duration(time.time() - started),
                progress,
            ]
        )
    s.out.table(["ID", "Miner", "Sector", "Task", "State", "Time", "Progress"], rows, right=("Sector",))
    s.out.line(f"{len(rows)} job{'' if len(rows) == 1 else 's'}")
