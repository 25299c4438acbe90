"""`filpy state ...`: queries of the state, as `lotus state`.

    actor ADDR                     StateGetActor: balance, nonce, code (and the actor's kind), head
    miner-power MINER              StateMinerPower: the miner's power, the network's, the share
    wait-msg CID                   StateWaitMsg: waits for the message to land, then its receipt
    search-msg CID                 StateSearchMsg: the same without waiting
    lookup ADDR [-r]               StateLookupID, or with --reverse StateAccountKey

State queries read the head's state unless `--tipset @<height>|CID,...` says otherwise. `--json` prints
the call's result as the node answered it.
"""

import argparse
from typing import TYPE_CHECKING

from cli.subcommands import add_wait_options, command, group

if TYPE_CHECKING:
    from cli.client import Session


def _tipset_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tipset", metavar="T", help="query the state at @<height> or CID,CID,... (default @head)"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = group(parser, "state_command")
    actor_parser = command(
        sub, "actor", actor, "an actor's balance, nonce, code and head", aliases=("get-actor",)
    )
    actor_parser.add_argument("address", metavar="ADDR")
    _tipset_option(actor_parser)
    power = command(sub, "miner-power", miner_power, "a miner's power and the network's", aliases=("power",))
    power.add_argument("miner", metavar="MINER")
    _tipset_option(power)
    wait_parser = command(sub, "wait-msg", wait_msg, "wait for a message to land; its receipt")
    wait_parser.add_argument("cid", metavar="CID", help="the message's CID")
    add_wait_options(wait_parser)
    search = command(sub, "search-msg", search_msg, "where a message executed, without waiting")
    search.add_argument("cid", metavar="CID", help="the message's CID")
    lookup_parser = command(sub, "lookup", lookup, "the ID address of an address")
    lookup_parser.add_argument("address", metavar="ADDR")
    lookup_parser.add_argument(
        "-r", "--reverse", action="store_true", help="the key address of an ID address"
    )
    _tipset_option(lookup_parser)


async def actor(s: "Session", args: argparse.Namespace) -> None:
    from cli import values
    from cli.output import actor_name, fil

    address = values.address(args.address)
    found = await s.call("StateGetActor", address, await values.tipset(s, args.tipset))
    if s.out.json(found):
        return
    kind = actor_name(found["Code"])
    pairs = [
        ("Address", address),
        ("Balance", fil(found["Balance"])),
        ("Nonce", str(found["Nonce"])),
        ("Code", f"{found['Code']['/']} ({kind})" if kind else found["Code"]["/"]),
        ("Head", found["Head"]["/"]),
    ]
    if found.get("DelegatedAddress"):
        pairs.append(("Delegated address", found["DelegatedAddress"]))
    s.out.fields(pairs)


async def miner_power(s: "Session", args: argparse.Namespace) -> None:
    from cli import values
    from cli.client import CliError
    from cli.output import actor_name, power_shares

    miner = values.address(args.miner, "miner address")
    tsk = await values.tipset(s, args.tipset)
    if actor_name((await s.call("StateGetActor", miner, tsk))["Code"]) != "storageminer":
        raise CliError(f"{miner} is not a storage miner actor")
    power = await s.call("StateMinerPower", miner, tsk)
    if s.out.json(power):
        return
    quality_adjusted, raw = power_shares(power["MinerPower"], power["TotalPower"])
    s.out.fields(
        [
            ("Miner", miner),
            ("Quality-adjusted power", quality_adjusted),
            ("Raw power", raw),
            ("Above consensus minimum", "yes" if power["HasMinPower"] else "no: it wins no blocks"),
        ]
    )


async def wait_msg(s: "Session", args: argparse.Namespace) -> None:
    from cli import values
    from cli.messages import describe_lookup, wait

    cid = values.cid(args.cid, "message CID")
    found = await wait(s, cid, args)
    if not s.out.json(found):
        describe_lookup(s.out, cid, found)


async def search_msg(s: "Session", args: argparse.Namespace) -> None:
    from cli import values
    from cli.client import CliError
    from cli.messages import describe_lookup

    cid = values.cid(args.cid, "message CID")
    found = await s.call("StateSearchMsg", [], cid, None, True)
    if s.out.json(found):
        return
    if found is None:
        raise CliError(f"failed to find message: {cid['/']}")
    describe_lookup(s.out, cid, found)


async def lookup(s: "Session", args: argparse.Namespace) -> None:
    from cli import values

    address = values.address(args.address)
    method = "StateAccountKey" if args.reverse else "StateLookupID"
    found = await s.call(method, address, await values.tipset(s, args.tipset))
    if not s.out.json(found):
        s.out.line(found)
