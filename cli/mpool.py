"""`filpy mpool pending [--local] [--to ADDR] [--from ADDR] [--cids]`: the message pool's pending messages
(MpoolPending at the head), as `lotus mpool pending`: a table, or the CIDs one per line. `--local`
keeps the messages from addresses of the node's wallet (WalletList). `--json` prints MpoolPending's
entries that pass the filters, as the node answered them.
"""

import argparse
from typing import TYPE_CHECKING

from cli.subcommands import command, group

if TYPE_CHECKING:
    from cli.client import Session


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = group(parser, "mpool_command")
    pending_parser = command(sub, "pending", pending, "the pending messages")
    pending_parser.add_argument(
        "--local", action="store_true", help="only messages from the wallet's addresses"
    )
    pending_parser.add_argument("--cids", action="store_true", help="only print the messages' CIDs")
    pending_parser.add_argument("--to", metavar="ADDR", help="only messages to this address")
    pending_parser.add_argument(
        "--from", dest="sender", metavar="ADDR", help="only messages from this address"
    )


async def pending(s: "Session", args: argparse.Namespace) -> None:
    from chain.types.address import Address
    from cli import values
    from cli.output import fil

    def same(a: str, b: str) -> bool:  # t1... and f1... name the same address
        return Address.parse(a) == Address.parse(b)

    to = values.address(args.to, "'to' address") if args.to else None
    sender = values.address(args.sender, "'from' address") if args.sender else None
    local = [Address.parse(a) for a in await s.call("WalletList")] if args.local else None
    entries = [
        entry
        for entry in await s.call("MpoolPending", [])
        if (local is None or Address.parse(entry["Message"]["From"]) in local)
        and (to is None or same(entry["Message"]["To"], to))
        and (sender is None or same(entry["Message"]["From"], sender))
    ]
    if s.out.json(entries):
        return
    if args.cids:
        for entry in entries:
            s.out.line(entry["CID"]["/"])
        return
    s.out.table(
        ["CID", "From", "To", "Nonce", "Value", "Method", "Gas limit", "Fee cap", "Premium"],
        [
            [
                e["CID"]["/"],
                e["Message"]["From"],
                e["Message"]["To"],
                str(e["Message"]["Nonce"]),
                fil(e["Message"]["Value"]),
                str(e["Message"]["Method"]),
                str(e["Message"]["GasLimit"]),
                e["Message"]["GasFeeCap"],
                e["Message"]["GasPremium"],
            ]
            for e in entries
        ],
        right=("Nonce", "Value", "Method", "Gas limit", "Fee cap", "Premium"),
    )
    s.out.line(f"{len(entries)} pending message{'' if len(entries) == 1 else 's'}")
