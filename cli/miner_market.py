"""`filpy miner set-ask|get-ask|retrieval-ask|deals ...`: the storage provider's side of deals, as
`lotus-miner storage-deals` and `retrieval-deals` (and Boost's offline-deal import) had it, over
MarketSetAsk, MarketGetAsk, MarketSetRetrievalAsk, MarketGetRetrievalAsk and filpy's
`Filpy.StorageDealsList` / `Filpy.StorageDealImportData` (rpc/methods/client.py).

    set-ask --price FIL [--verified-price FIL] [--min-size SIZE] [--max-size SIZE] [--duration EPOCHS]
                                   prices in FIL per GiB per epoch; sizes padded (256B, 2KiB, 8MiB); the
                                   ask of each miner the node provides for
    get-ask                        the signed asks of the miners the node provides for
    retrieval-ask set [--price FIL] [--unseal-price FIL] [--payment-interval SIZE]
                      [--payment-interval-increase SIZE]
                                   the retrieval terms: --price in FIL per GiB sent (as lotus-miner
                                   retrieval-deals set-ask), kept per byte; options left out stay as they are
    retrieval-ask get              the retrieval terms
    deals list [-v]                the deals the provider accepted, with their sectors
    deals import-data PROPOSAL FILE
                                   the CAR of an offline deal (`filpy client deal --manual`), read by the
                                   node from FILE; PROPOSAL is the deal's proposal CID (Lotus) or UUID (Boost)

The node serves one provider (node/markets/node_service.py): these commands are about that miner.
"""

import argparse
from typing import TYPE_CHECKING, Any, Final

from cli.subcommands import command, group

if TYPE_CHECKING:
    from cli.client import Session

# lotus-miner storage-deals set-ask's defaults: --duration 720h, sizes 256B to the sector size
DEFAULT_ASK_HOURS: Final = 720
GIB: Final = 1 << 30  # retrieval prices are set per GiB and kept per byte


def add_arguments(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = command(sub, "set-ask", set_ask, "set the provider's storage ask")
    p.add_argument("--price", required=True, metavar="FIL", help="FIL per GiB per epoch")
    p.add_argument(
        "--verified-price", metavar="FIL", help="FIL per GiB per epoch for verified deals (default: --price)"
    )
    p.add_argument(
        "--min-size", "--min-piece-size", default="256B", metavar="SIZE", help="smallest piece (256B)"
    )
    p.add_argument(
        "--max-size", "--max-piece-size", metavar="SIZE", help="largest piece (default: the sector size)"
    )
    p.add_argument(
        "--duration",
        type=int,
        metavar="EPOCHS",
        help=f"how long the ask holds (default {DEFAULT_ASK_HOURS}h)",
    )
    command(sub, "get-ask", get_ask, "the storage asks of the miners this node provides for")

    retrieval = group(
        sub.add_parser(
            "retrieval-ask",
            help="the provider's retrieval terms",
            description="the provider's retrieval terms",
        ),
        "retrieval_ask_command",
    )
    p = command(retrieval, "set", retrieval_ask_set, "set the provider's retrieval terms")
    p.add_argument("--price", metavar="FIL", help="FIL per GiB sent (0: free)")
    p.add_argument("--unseal-price", metavar="FIL", help="FIL for unsealing the data")
    p.add_argument("--payment-interval", metavar="SIZE", help="bytes sent before the first payment is due")
    p.add_argument(
        "--payment-interval-increase", metavar="SIZE", help="how much the interval grows after each payment"
    )
    command(retrieval, "get", retrieval_ask_get, "the provider's retrieval terms")

    deals = group(
        sub.add_parser(
            "deals", help="the provider's storage deals", description="the provider's storage deals"
        ),
        "deals_command",
    )
    p = command(deals, "list", deals_list, "the storage deals the provider accepted")
    p.add_argument("-v", "--verbose", action="store_true", help="also the clients and the last messages")
    p = command(deals, "import-data", import_data, "the data of an offline deal, from a CAR file")
    p.add_argument("proposal", metavar="PROPOSAL", help="the deal's proposal CID or UUID")
    p.add_argument("file", metavar="FILE", help="the deal's CAR (`filpy client export ROOT OUT --car`)")


def _size(text: str, what: str) -> int:
    from cli.client import CliError
    from node.mining.create import MinerCreateError, parse_sector_size

    try:
        return parse_sector_size(text)
    except MinerCreateError as exc:
        raise CliError(f"{what}: {exc}") from None


async def _provider_miner(s: "Session") -> dict[str, Any]:
    """The provider's miner as Filpy.MinerList has it (the one the ask is signed for)."""
    from cli.client import CliError

    ask = await s.call("MarketGetAsk")
    served: list[dict[str, Any]] = await s.call("Filpy.MinerList")
    if ask is not None:
        for m in served:
            if m["Miner"]["IDAddress"] == ask["Ask"]["Miner"]:
                return m
    sealing = [m for m in served if m["Sealing"]]
    if not sealing:
        raise CliError("this node seals for no miner, so it runs no storage provider")
    return sealing[-1]


async def set_ask(s: "Session", args: argparse.Namespace) -> None:
    from cli import values
    from cli.output import fil, size_str

    price = values.amount(args.price, "price")
    verified = price if args.verified_price is None else values.amount(args.verified_price, "verified price")
    min_size = _size(args.min_size, "--min-size")
    if args.max_size is not None:
        max_size = _size(args.max_size, "--max-size")
    else:
        max_size = int((await _provider_miner(s))["Miner"]["SectorSize"])
    duration = args.duration
    if duration is None:
        block_delay = int((await s.call("Version"))["BlockDelay"]) or 30
        duration = DEFAULT_ASK_HOURS * 3600 // block_delay
    await s.call("MarketSetAsk", str(price), str(verified), duration, min_size, max_size)
    ask = await s.call("MarketGetAsk")
    if s.out.json(ask):
        return
    # MarketSetAsk sets the ask of every miner the node provides for: name them all, its first first
    sealing = [m["Miner"]["IDAddress"] for m in await s.call("Filpy.MinerList") if m["Sealing"]]
    miners = [ask["Ask"]["Miner"], *(m for m in sealing if m != ask["Ask"]["Miner"])]
    s.out.line(
        f"Ask set for {', '.join(miners)}: {fil(price)} per GiB per epoch ({fil(verified)} verified), "
        f"pieces of {size_str(min_size)} to {size_str(max_size)}, until epoch {ask['Ask']['Expiry']}"
    )


async def get_ask(s: "Session", args: argparse.Namespace) -> None:
    from cli.output import fil, size_str

    # every miner the node provides for (set-ask sets them all), not only MarketGetAsk's first
    signed = await s.call("Filpy.MarketGetAsks")
    if s.out.json(signed):
        return
    if not signed:
        s.out.line("No ask set: set one with `filpy miner set-ask`")
        return
    asks = [a["Ask"] for a in signed]
    s.out.table(
        ["Miner", "Price per GiB", "Verified", "Min. Piece Size", "Max. Piece Size", "Expiry", "Seq. No."],
        [
            [
                ask["Miner"],
                fil(ask["Price"]),
                fil(ask["VerifiedPrice"]),
                size_str(ask["MinPieceSize"]),
                size_str(ask["MaxPieceSize"]),
                str(ask["Expiry"]),
                str(ask["SeqNo"]),
            ]
            for ask in asks
        ],
    )


async def retrieval_ask_set(s: "Session", args: argparse.Namespace) -> None:
    from cli import values

    ask: dict[str, Any] = await s.call("MarketGetRetrievalAsk")
    if args.price is not None:
        ask["PricePerByte"] = str(values.amount(args.price, "price") // GIB)
    if args.unseal_price is not None:
        ask["UnsealPrice"] = str(values.amount(args.unseal_price, "unseal price"))
    if args.payment_interval is not None:
        ask["PaymentInterval"] = _size(args.payment_interval, "--payment-interval")
    if args.payment_interval_increase is not None:
        ask["PaymentIntervalIncrease"] = _size(args.payment_interval_increase, "--payment-interval-increase")
    await s.call("MarketSetRetrievalAsk", ask)
    await retrieval_ask_get(s, args)


async def retrieval_ask_get(s: "Session", args: argparse.Namespace) -> None:
    from cli.output import fil, size_str

    ask = await s.call("MarketGetRetrievalAsk")
    if s.out.json(ask):
        return
    s.out.table(
        ["Price per byte", "Price per GiB", "Unseal price", "Payment interval", "Interval increase"],
        [
            [
                fil(ask["PricePerByte"]),
                fil(int(ask["PricePerByte"]) * GIB),
                fil(ask["UnsealPrice"]),
                size_str(ask["PaymentInterval"]),
                size_str(ask["PaymentIntervalIncrease"]),
            ]
        ],
    )


async def deals_list(s: "Session", args: argparse.Namespace) -> None:
    from cli.output import fil, size_str

    deals = await s.call("Filpy.StorageDealsList")
    if s.out.json(deals):
        return
    columns = ["ProposalCid", "DealId", "State", "Size", "Price", "Duration", "Sector", "Transfer"]
    if args.verbose:
        columns += ["Client", "Message"]
    rows = []
    for d in deals:
        row = [
            d["SignedProposalCid"]["/"],
            "" if d["ChainDealID"] < 0 else str(d["ChainDealID"]),
            d["State"],
            size_str(d["PieceSize"]),
            fil(d["PricePerEpoch"]),
            str(d["EndEpoch"] - d["StartEpoch"]),
            "" if d["SectorNumber"] < 0 else str(d["SectorNumber"]),
            d["TransferType"],
        ]
        rows.append([*row, d["Client"], d["Message"]] if args.verbose else row)
    s.out.table(columns, rows, right=("DealId", "Size", "Duration", "Sector"))


async def _deal_uuid(s: "Session", proposal: str) -> str:
    """The UUID of the provider's deal named by its proposal CID (or by its UUID)."""
    import uuid

    from cli import values
    from cli.client import CliError

    try:
        return str(uuid.UUID(proposal.strip()))
    except ValueError:
        pass
    wanted = values.cid(proposal, "proposal CID")
    for d in await s.call("Filpy.StorageDealsList"):
        if d["SignedProposalCid"] == wanted:
            found: str = d["DealUuid"]
            return found
    raise CliError(f"the provider has no deal with proposal CID {wanted['/']}")


async def import_data(s: "Session", args: argparse.Namespace) -> None:
    from pathlib import Path

    deal_uuid = await _deal_uuid(s, args.proposal)
    info = await s.call("Filpy.StorageDealImportData", deal_uuid, str(Path(args.file).resolve()))
    if not s.out.json(info):
        s.out.line(f"Imported the data of deal {info['DealUuid']}: {info['State']}")
