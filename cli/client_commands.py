"""`filpy client ...`: storage and retrieval deals from the client's side, as `lotus client` had them
(Lotus v1.26), over the node's Client* methods (rpc/methods/client.py).

    import FILE [--car]            ClientImport, then ClientDealPieceCID: the root, the piece CID, sizes
    export ROOT OUT [--car]        ClientExport of an import: the file again, or its CAR (what a provider
                                   imports for an offline deal: `filpy miner deals import-data`)
    query-ask MINER [--peer ID] [--size SIZE --duration EPOCHS]
                                   ClientQueryAsk over /fil/storage/ask/1.1.0 (the peer from the chain)
    deal ROOT MINER --duration EPOCHS [--price FIL] [--verified] [--manual] [--from ADDR]
         [--start-epoch E] [--provider-collateral FIL] [--add-funds]
                                   ClientStartDeal; prints the proposal CID
    list-deals [-v]                ClientListDeals
    get-deal PROPOSAL_CID          ClientGetDealInfo, with every stage the deal went through, and whether
                                   the provider's piece inclusion proof verifies against the sector's
                                   CommD on chain (Filpy.ClientDealInclusionProof)
    find ROOT                      ClientFindData: the providers' retrieval offers
    retrieve ROOT OUT [--miner M] [--car] [--maxprice FIL]
                                   ClientRetrieve, ClientRetrieveWait and ClientExport

Lotus's `lotus client deal` takes the price and duration as positional arguments; here the price is
`--price` (FIL per epoch for the whole deal, as Lotus) and may be left out: the miner's ask then sets it
(its price per GiB per epoch times the padded piece size). A price under the ask is refused before
anything is sent, as is a deal whose market escrow is short unless `--add-funds` gives consent to top
it up. `filpy commp FILE` is `lotus client commP`.
"""

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cli.subcommands import command, group

if TYPE_CHECKING:
    from cli.client import Session

GIB: Final = 1 << 30
ACTIVE: Final = 7  # StorageDealActive (node/markets/deal_states.py)
# Lotus's `set-ask --duration` default (720h) is what a client quote assumes when none is given.
DEFAULT_QUOTE_DURATION: Final = 2880


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = group(parser, "client_command")
    p = command(sub, "import", import_data, "import a file (or a CAR) for storage deals")
    p.add_argument("file", type=Path, metavar="FILE", help="the file to import")
    p.add_argument("--car", action="store_true", help="the file is a CAR: import it as it is")

    p = command(sub, "export", export, "write an import out again: the file, or its CAR with --car")
    p.add_argument("root", metavar="ROOT", help="the import's root CID")
    p.add_argument("out", type=Path, metavar="OUT", help="where to write it")
    p.add_argument("--car", action="store_true", help="write the CAR (what an offline deal imports)")

    p = command(sub, "query-ask", query_ask, "a miner's storage ask")
    p.add_argument("miner", metavar="MINER", help="the miner")
    p.add_argument("--peer", metavar="PEER_ID", help="the miner's peer (default: its peer ID on chain)")
    p.add_argument("--size", metavar="SIZE", help="quote a piece of this padded size (e.g. 2KiB)")
    p.add_argument("--duration", type=int, metavar="EPOCHS", help="quote a deal of this many epochs")

    p = command(sub, "deal", deal, "propose a storage deal to a miner")
    p.add_argument("root", metavar="ROOT", help="the data's root CID (from `filpy client import`)")
    p.add_argument("miner", metavar="MINER", help="the miner to store it with")
    p.add_argument(
        "--duration", type=int, required=True, metavar="EPOCHS", help="how long to store it, in epochs"
    )
    p.add_argument(
        "--price", metavar="FIL", help="FIL per epoch for the deal (default: what the miner's ask asks)"
    )
    p.add_argument("--verified", action="store_true", help="a verified deal (paid with DataCap)")
    p.add_argument(
        "--manual",
        action="store_true",
        help="an offline deal: the data goes to the miner out of band (`filpy miner deals import-data`)",
    )
    p.add_argument("--from", dest="wallet", metavar="ADDR", help="the client's wallet (default: default)")
    p.add_argument("--start-epoch", type=int, default=0, metavar="EPOCH", help="the deal's start epoch")
    p.add_argument(
        "--provider-collateral", default="0", metavar="FIL", help="the provider's collateral (default 0)"
    )
    p.add_argument(
        "--add-funds",
        action="store_true",
        help="add what the client's market escrow lacks for the deal (MarketAddBalance)",
    )

    p = command(sub, "list-deals", list_deals, "this client's storage deals")
    p.add_argument("-v", "--verbose", action="store_true", help="also the piece CIDs and the last messages")
    p = command(sub, "get-deal", get_deal, "one storage deal, with its stages")
    p.add_argument("proposal", metavar="PROPOSAL_CID", help="the deal's proposal CID")

    p = command(sub, "find", find, "who offers to retrieve data")
    p.add_argument("root", metavar="ROOT", help="the data's root CID")

    p = command(sub, "retrieve", retrieve, "retrieve data from a miner into a file")
    p.add_argument("root", metavar="ROOT", help="the data's root CID")
    p.add_argument("out", type=Path, metavar="OUT", help="the file to write")
    p.add_argument("--miner", metavar="MINER", help="retrieve from this miner (default: the best offer)")
    p.add_argument("--car", action="store_true", help="write the CAR instead of the file")
    p.add_argument("--maxprice", metavar="FIL", help="refuse offers dearer than this (default: any)")


# -- data ----------------------------------------------------------------------------------------------


async def import_data(s: "Session", args: argparse.Namespace) -> None:
    from cli.output import size_str

    imported = await s.call("ClientImport", {"Path": str(args.file.resolve()), "IsCAR": args.car})
    piece = await s.call("ClientDealPieceCID", imported["Root"])
    if s.out.json({"ClientImport": imported, "ClientDealPieceCID": piece}):
        return
    s.out.fields(
        [
            ("Import", str(imported["ImportID"])),
            ("Root", imported["Root"]["/"]),
            ("Piece CID", piece["PieceCID"]["/"]),
            ("Piece size", f"{size_str(piece['PieceSize'])} ({piece['PieceSize']} bytes padded)"),
            ("Payload size", f"{size_str(piece['PayloadSize'])} ({piece['PayloadSize']} bytes of CAR)"),
        ]
    )


async def export(s: "Session", args: argparse.Namespace) -> None:
    from cli import values

    root = values.cid(args.root, "root")
    out = args.out.resolve()
    await s.call("ClientExport", {"Root": root}, {"Path": str(out), "IsCAR": args.car})
    if not s.out.json({"Path": str(out)}):
        s.out.line(f"{'CAR' if args.car else 'File'} of {root['/']} written to {out}")


# -- asks and deals ------------------------------------------------------------------------------------


async def _peer_of(s: "Session", miner: str) -> str:
    from cli.client import CliError

    info = await s.call("StateMinerInfo", miner, [])
    peer: str | None = info.get("PeerId")
    if not peer:
        raise CliError(f"miner {miner} has no peer ID on chain: give it with --peer")
    return peer


async def _ask(s: "Session", miner: str, peer: str | None) -> dict[str, Any]:
    found: dict[str, Any] = await s.call("ClientQueryAsk", peer or await _peer_of(s, miner), miner)
    return found


def _min_price(ask: dict[str, Any], padded_size: int, verified: bool) -> int:
    """What the ask takes per epoch for a piece (its price per GiB per epoch times the size)."""
    per_gib = int(ask["VerifiedPrice"] if verified else ask["Price"])
    return per_gib * padded_size // GIB


async def query_ask(s: "Session", args: argparse.Namespace) -> None:
    from cli import values
    from cli.client import CliError
    from cli.output import fil, size_str
    from node.mining.create import MinerCreateError, parse_sector_size

    miner = values.address(args.miner, "miner address")
    answer = await _ask(s, miner, args.peer)
    if s.out.json(answer):
        return
    ask = answer["Response"]
    s.out.fields(
        [
            ("Ask", ask["Miner"]),
            ("Price per GiB", fil(ask["Price"])),
            ("Verified Price per GiB", fil(ask["VerifiedPrice"])),
            ("Max Piece size", size_str(ask["MaxPieceSize"])),
            ("Min Piece size", size_str(ask["MinPieceSize"])),
            ("Expiry", f"epoch {ask['Expiry']}"),
            ("Deal protocols", ", ".join(answer.get("DealProtocols") or ())),
        ]
    )
    if args.size is None:
        return
    try:
        size = parse_sector_size(args.size)
    except MinerCreateError as exc:
        raise CliError(f"--size: {exc}") from None
    epochs = args.duration or DEFAULT_QUOTE_DURATION
    per_epoch = _min_price(ask, size, False)
    s.out.fields(
        [
            ("Price per Block", fil(per_epoch)),
            (f"Total Price ({epochs} epochs)", fil(per_epoch * epochs)),
            ("Verified Price per Block", fil(_min_price(ask, size, True))),
        ]
    )


async def deal(s: "Session", args: argparse.Namespace) -> None:
    from cli import values
    from cli.client import CliError
    from cli.output import fil

    root = values.cid(args.root, "root")
    miner = values.address(args.miner, "miner address")
    if args.duration <= 0:
        raise CliError(f"--duration must be a positive number of epochs, got {args.duration}")
    wallet = values.address(args.wallet, "wallet") if args.wallet else await s.call("WalletDefaultAddress")
    if not wallet:
        raise CliError("the wallet has no default address: give the client's with --from")
    piece = await s.call("ClientDealPieceCID", root)
    ask = (await _ask(s, miner, None))["Response"]
    least = _min_price(ask, int(piece["PieceSize"]), args.verified)
    price = least if args.price is None else values.amount(args.price, "price")
    if price < least:
        raise CliError(
            f"a price of {fil(price)} per epoch is under {miner}'s ask: a {piece['PieceSize']}-byte piece "
            f"costs at least {fil(least)} per epoch"
        )
    if not int(ask["MinPieceSize"]) <= int(piece["PieceSize"]) <= int(ask["MaxPieceSize"]):
        raise CliError(
            f"the piece ({piece['PieceSize']} bytes padded) is outside {miner}'s ask "
            f"({ask['MinPieceSize']} to {ask['MaxPieceSize']} bytes)"
        )
    if not args.add_funds:
        escrow = await s.call("StateMarketBalance", wallet, [])
        free = int(escrow["Escrow"]) - int(escrow["Locked"])
        needed = price * args.duration
        if free < needed:
            raise CliError(
                f"{wallet}'s market escrow has {fil(free)} free, the deal needs {fil(needed)}: rerun with "
                "--add-funds to add the difference (MarketAddBalance)"
            )
    params = {
        "Data": {
            "TransferType": "manual" if args.manual else "http",
            "Root": root,
            "PieceCid": piece["PieceCID"],
            "PieceSize": _unpadded(int(piece["PieceSize"])),
        },
        "Wallet": wallet,
        "Miner": miner,
        "EpochPrice": str(price),
        "MinBlocksDuration": args.duration,
        "ProviderCollateral": str(values.amount(args.provider_collateral, "provider collateral")),
        "DealStartEpoch": args.start_epoch,
        "FastRetrieval": True,
        "VerifiedDeal": args.verified,
        "AddFunds": args.add_funds,
    }
    proposal = await s.call("ClientStartDeal", params)
    if not s.out.json(proposal):
        s.out.line(proposal["/"])


def _unpadded(padded: int) -> int:
    return padded - padded // 128


def _state_name(state: int) -> str:
    from node.markets.deal_states import state_name

    try:
        return state_name(state)
    except ValueError:
        return str(state)


async def list_deals(s: "Session", args: argparse.Namespace) -> None:
    from cli.output import fil, size_str

    deals = await s.call("ClientListDeals")
    if s.out.json(deals):
        return
    columns = ["DealCid", "DealId", "Provider", "State", "Size", "Price", "Duration", "Verified"]
    if args.verbose:
        columns += ["PieceCID", "Message"]
    rows = []
    for d in deals:
        row = [
            d["ProposalCid"]["/"],
            str(d["DealID"]) if d["DealID"] or d["State"] == ACTIVE else "",
            d["Provider"],
            _state_name(d["State"]),
            size_str(d["Size"]),
            fil(d["PricePerEpoch"]),
            str(d["Duration"]),
            "yes" if d["Verified"] else "no",
        ]
        rows.append([*row, d["PieceCID"]["/"], d["Message"]] if args.verbose else row)
    s.out.table(columns, rows, right=("DealId", "Size", "Duration"))


def _inclusion(pip: dict[str, Any]) -> str:
    """Filpy.ClientDealInclusionProof in a line: verified against which CommD, or why not."""
    if pip["Verified"]:
        where = f"offset {pip['Offset']} of sector {pip['SectorNumber']}"
        return f"PIP verified: the piece is at {where}, CommD {pip['CommD']['/']}"
    return f"not verified: {pip['Message']}"


async def get_deal(s: "Session", args: argparse.Namespace) -> None:
    from cli import values
    from cli.output import fil, size_str

    proposal = values.cid(args.proposal, "proposal CID")
    info = await s.call("ClientGetDealInfo", proposal)
    if s.out.json(info):
        return
    pip = await s.call("Filpy.ClientDealInclusionProof", proposal)
    s.out.fields(
        [
            ("Proposal CID", info["ProposalCid"]["/"]),
            ("State", _state_name(info["State"])),
            *([("Message", info["Message"])] if info["Message"] else []),
            ("Provider", info["Provider"]),
            ("Deal ID", str(info["DealID"])),
            ("Inclusion proof", _inclusion(pip)),
            ("Root", info["DataRef"]["Root"]["/"] if info.get("DataRef") else ""),
            ("Piece CID", info["PieceCID"]["/"]),
            ("Size", size_str(info["Size"])),
            ("Price per epoch", fil(info["PricePerEpoch"])),
            ("Duration", f"{info['Duration']} epochs"),
            ("Transfer", info["DataRef"]["TransferType"] if info.get("DataRef") else ""),
            ("Verified", "yes" if info["Verified"] else "no"),
            ("Created", info["CreationTime"]),
        ]
    )
    stages = (info.get("DealStages") or {}).get("Stages") or ()
    s.out.line()
    s.out.table(
        ["Stage", "Since", "Log"],
        [
            [st["Name"], st["CreatedTime"], "; ".join(entry["Log"] for entry in st["Logs"] or ())]
            for st in stages
        ],
        title="Deal stages",
    )


# -- retrieval -----------------------------------------------------------------------------------------


async def find(s: "Session", args: argparse.Namespace) -> None:
    from cli import values
    from cli.output import fil, size_str

    offers = await s.call("ClientFindData", values.cid(args.root, "root"), None)
    if s.out.json(offers):
        return
    s.out.table(
        ["Miner", "Peer", "Size", "Price", "Unseal price", "Error"],
        [
            [
                o["Miner"],
                o["MinerPeer"]["ID"],
                size_str(o["Size"]),
                fil(o["MinPrice"]),
                fil(o["UnsealPrice"]),
                o["Err"],
            ]
            for o in offers
        ],
        right=("Size",),
    )
    if not offers:
        s.out.line("0 offers: none of the providers this client made deals with has the data")


async def _offer(s: "Session", root: dict[str, str], miner: str | None) -> dict[str, Any]:
    from cli.client import CliError

    if miner is not None:
        offer: dict[str, Any] = await s.call("ClientMinerQueryOffer", miner, root, None)
        if offer["Err"]:
            raise CliError(f"{miner} does not offer {root['/']}: {offer['Err']}")
        return offer
    offers = [o for o in await s.call("ClientFindData", root, None) if not o["Err"]]
    if not offers:
        raise CliError(f"no provider offers {root['/']}: name one with --miner")
    best: dict[str, Any] = min(offers, key=lambda o: int(o["MinPrice"]))
    return best


async def retrieve(s: "Session", args: argparse.Namespace) -> None:
    from cli import values
    from cli.client import CliError
    from cli.output import fil, size_str

    root = values.cid(args.root, "root")
    miner = values.address(args.miner, "miner address") if args.miner else None
    offer = await _offer(s, root, miner)
    if args.maxprice is not None and int(offer["MinPrice"]) > values.amount(args.maxprice, "maxprice"):
        raise CliError(f"the offer of {offer['Miner']} costs {fil(offer['MinPrice'])}, over --maxprice")
    order = {
        "Root": root,
        "Piece": offer["Piece"],
        "Size": offer["Size"],
        "Total": offer["MinPrice"],
        "UnsealPrice": offer["UnsealPrice"],
        "PaymentInterval": offer["PaymentInterval"],
        "PaymentIntervalIncrease": offer["PaymentIntervalIncrease"],
        "Client": await s.call("WalletDefaultAddress"),
        "Miner": offer["Miner"],
        "MinerPeer": offer["MinerPeer"],
    }
    s.out.line(
        f"Retrieving {root['/']} from {offer['Miner']} ({size_str(offer['Size'])}, {fil(offer['MinPrice'])})"
    )
    started = await s.call("ClientRetrieve", order)
    await s.call("ClientRetrieveWait", started["DealID"])
    out = args.out.resolve()
    await s.call(
        "ClientExport", {"Root": root, "DealID": started["DealID"]}, {"Path": str(out), "IsCAR": args.car}
    )
    if not s.out.json({"DealID": started["DealID"], "Miner": offer["Miner"], "Path": str(out)}):
        s.out.line(f"Success: {'CAR' if args.car else 'file'} written to {out}")
