"""`filpy chain ...`: the node's chain, as `lotus chain`.

    head [--height]                  ChainHead: height, time, blocks (--height: just the height)
    get-block CID                    ChainGetBlock, with the block's message counts (ChainGetBlockMessages)
    get-message CID                  ChainGetMessage
    export [--tipset T] [--recent-stateroots N] [--skip-old-msgs] FILE.car
                                     ChainExport over a WebSocket, streamed into FILE.car

`--json` prints the main call's result (ChainHead, ChainGetBlock, ChainGetMessage) as the node answered
it. An export is written to `FILE.car.part` and renamed to FILE.car once the node has sent its last
piece, so FILE.car is never a cut-off CAR; a FILE.car that exists is not overwritten.
"""

import argparse
from typing import TYPE_CHECKING, Any

from cli.subcommands import command, group

if TYPE_CHECKING:
    from cli.client import Session


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = group(parser, "chain_command")
    head_parser = command(sub, "head", head, "the head of the chain")
    head_parser.add_argument("--height", action="store_true", help="print just the head's height")
    block = command(sub, "get-block", get_block, "a block header", aliases=("getblock",))
    block.add_argument("cid", metavar="CID", help="the block's CID")
    message = command(sub, "get-message", get_message, "a message", aliases=("getmessage", "get-msg"))
    message.add_argument("cid", metavar="CID", help="the message's CID (signed or not)")
    export_parser = command(sub, "export", export, "export the chain to a CAR file")
    export_parser.add_argument("file", metavar="FILE.car", help="where to write the CAR")
    export_parser.add_argument(
        "--tipset",
        default="@head",
        metavar="T",
        help="export the chain ending at @head, @<height> or CID,CID,...",
    )
    export_parser.add_argument(
        "--recent-stateroots",
        type=int,
        default=0,
        metavar="N",
        help="include the state trees of the last N epochs (default 0: the genesis's only)",
    )
    export_parser.add_argument(
        "--skip-old-msgs", action="store_true", help="leave out messages older than the recent state roots"
    )


async def head(s: "Session", args: argparse.Namespace) -> None:
    import time

    from cli.output import fil, when

    ts = await s.call("ChainHead")
    if s.out.json(ts):
        return
    if args.height:
        s.out.line(str(ts["Height"]))
        return
    first = ts["Blocks"][0]
    s.out.fields(
        [
            ("Height", str(ts["Height"])),
            ("Time", when(int(first["Timestamp"]), time.time())),
            ("Parent weight", first["ParentWeight"]),
            ("Parent base fee", fil(first["ParentBaseFee"])),
        ]
    )
    s.out.table(
        ["Block", "Miner", "Win count"],
        [
            [c["/"], b["Miner"], str((b["ElectionProof"] or {}).get("WinCount", 0))]
            for c, b in zip(ts["Cids"], ts["Blocks"], strict=True)
        ],
        right=("Win count",),
    )


async def get_block(s: "Session", args: argparse.Namespace) -> None:
    import time

    from cli import values
    from cli.output import cids, fil, when

    cid = values.cid(args.cid, "block CID")
    block = await s.call("ChainGetBlock", cid)
    if s.out.json(block):
        return
    messages = await s.call("ChainGetBlockMessages", cid)
    s.out.fields(
        [
            ("CID", cid["/"]),
            ("Height", str(block["Height"])),
            ("Miner", block["Miner"]),
            ("Time", when(int(block["Timestamp"]), time.time())),
            ("Win count", str((block["ElectionProof"] or {}).get("WinCount", 0))),
            ("Parents", cids(block["Parents"])),
            ("Parent weight", block["ParentWeight"]),
            ("Parent state root", block["ParentStateRoot"]["/"]),
            ("Parent receipts", block["ParentMessageReceipts"]["/"]),
            ("Parent base fee", fil(block["ParentBaseFee"])),
            ("Messages", block["Messages"]["/"]),
            ("BLS messages", str(len(messages["BlsMessages"]))),
            ("Secp256k1 messages", str(len(messages["SecpkMessages"]))),
            ("Beacon entries", ", ".join(str(e["Round"]) for e in block["BeaconEntries"] or ()) or "none"),
        ]
    )


def message_fields(cid: str, msg: dict[str, Any]) -> list[tuple[str, str]]:
    """A message's fields, amounts in FIL."""
    from cli.output import fil, hexlify

    return [
        ("CID", cid),
        ("From", msg["From"]),
        ("To", msg["To"]),
        ("Nonce", str(msg["Nonce"])),
        ("Value", fil(msg["Value"])),
        ("Method", str(msg["Method"])),
        ("Params", hexlify(msg["Params"]) or "none"),
        ("Gas limit", str(msg["GasLimit"])),
        ("Gas fee cap", f"{msg['GasFeeCap']} attoFIL"),
        ("Gas premium", f"{msg['GasPremium']} attoFIL"),
    ]


async def get_message(s: "Session", args: argparse.Namespace) -> None:
    from cli import values

    cid = values.cid(args.cid, "message CID")
    msg = await s.call("ChainGetMessage", cid)
    if not s.out.json(msg):
        s.out.fields(message_fields(cid["/"], msg))


async def export(s: "Session", args: argparse.Namespace) -> None:
    import base64
    import os
    import sys
    from pathlib import Path

    from rich.console import Console
    from rich.progress import DownloadColumn, Progress, SpinnerColumn, TextColumn, TransferSpeedColumn

    from cli import values
    from cli.client import CliError

    if args.recent_stateroots < 0:
        raise CliError(f"--recent-stateroots cannot be negative, got {args.recent_stateroots}")
    if args.skip_old_msgs and args.recent_stateroots == 0:
        raise CliError("--skip-old-msgs needs --recent-stateroots")
    path = Path(args.file)
    if path.exists():
        raise CliError(f"{path} exists: choose another file")
    tsk = await values.tipset(s, args.tipset)
    part = path.with_name(path.name + ".part")
    written, complete = 0, False
    columns = (
        SpinnerColumn(),
        TextColumn("exporting {task.description}"),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    try:
        with (
            part.open("wb") as stream,
            Progress(
                *columns, console=Console(stderr=True), transient=True, disable=not sys.stderr.isatty()
            ) as progress,
        ):
            task = progress.add_task(path.name, total=None)
            async with (
                s.websocket() as ws,
                ws.subscribe("ChainExport", args.recent_stateroots, args.skip_old_msgs, tsk) as pieces,
            ):
                async for piece in pieces:
                    if not piece:
                        complete = True
                        break
                    data = base64.b64decode(piece)
                    stream.write(data)
                    written += len(data)
                    progress.update(task, completed=written)
            stream.flush()
            os.fsync(stream.fileno())
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise CliError(f"{part}: {exc.strerror or exc}") from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    if not complete:
        part.unlink(missing_ok=True)
        raise CliError("incomplete export (the node closed the stream before its end): nothing written")
    part.rename(path)
    if not s.out.json({"Path": str(path), "Bytes": written}):
        s.out.line(f"exported {written} bytes to {path}")
