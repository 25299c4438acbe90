"""`filpy paych ...`: payment channels, as `lotus paych`, over the node's Paych* methods
(node/markets/paych.py, docs/paych.md).

    add-funds FROM TO AMOUNT [--reserve]  PaychFund (PaychGet with --reserve), then PaychGetWaitReady:
                                          creates the channel if there is none; prints the channel
    list                                  PaychList
    status CHANNEL                        PaychAvailableFunds
    status-by-from-to FROM TO             PaychAvailableFundsByFromTo
    voucher create CHANNEL AMOUNT [--lane N]
                                          PaychVoucherCreate: prints the voucher (base64url of its CBOR)
    voucher check CHANNEL VOUCHER         PaychVoucherCheckValid
    voucher add CHANNEL VOUCHER           PaychVoucherAdd (a voucher paying us)
    voucher list CHANNEL [--export]       PaychVoucherList
    voucher best-spendable CHANNEL [--export]
                                          the highest voucher of each lane that PaychVoucherCheckSpendable
                                          says would be redeemed now
    voucher submit CHANNEL VOUCHER        PaychVoucherSubmit, waited for
    settle CHANNEL | collect CHANNEL      PaychSettle | PaychCollect, waited for

Amounts are FIL (`0.5`, `0.5 FIL`, `500 mFIL`); a voucher's amount is the total its lane pays, as in
Lotus. `--json` prints the main call's result as the node answered it (add-funds: the channel address
PaychGetWaitReady answered; settle, collect and submit: the lookup of their message).
"""

import argparse
from typing import TYPE_CHECKING, Any

from cli.subcommands import add_wait_options, command, group

if TYPE_CHECKING:
    from actors.paych.types import SignedVoucher
    from cli.client import Session
    from cli.output import Output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = group(parser, "paych_command")
    add_funds_parser = command(
        sub, "add-funds", add_funds, "add funds to the channel from FROM to TO, creating it if needed"
    )
    add_funds_parser.add_argument("sender", metavar="FROM")
    add_funds_parser.add_argument("recipient", metavar="TO")
    add_funds_parser.add_argument("amount", metavar="AMOUNT", help="FIL to add")
    add_funds_parser.add_argument("--reserve", action="store_true", help="reserve the funds (PaychGet)")
    add_wait_options(add_funds_parser)
    command(sub, "list", list_channels, "the channels this node tracks")
    status_parser = command(sub, "status", status, "an outbound channel's funds")
    status_parser.add_argument("channel", metavar="CHANNEL")
    by_from_to = command(
        sub, "status-by-from-to", status_by_from_to, "the funds of the channel from FROM to TO"
    )
    by_from_to.add_argument("sender", metavar="FROM")
    by_from_to.add_argument("recipient", metavar="TO")
    for name, action, help_text in (
        ("settle", settle, "settle a channel"),
        ("collect", collect, "collect a settled channel's funds"),
    ):
        sub_parser = command(sub, name, action, help_text)
        sub_parser.add_argument("channel", metavar="CHANNEL")
        add_wait_options(sub_parser)

    vouchers = group(
        sub.add_parser("voucher", help="the channels' vouchers", description="the channels' vouchers"),
        "voucher_command",
    )
    create_parser = command(vouchers, "create", voucher_create, "sign a voucher")
    create_parser.add_argument("channel", metavar="CHANNEL")
    create_parser.add_argument("amount", metavar="AMOUNT", help="what the lane pays in total, FIL")
    create_parser.add_argument("--lane", type=int, default=0, metavar="N", help="the lane (default 0)")
    for name, action, help_text in (
        ("check", voucher_check, "check that a voucher could be redeemed"),
        ("add", voucher_add, "store a voucher paying us"),
        ("submit", voucher_submit, "redeem a voucher on chain"),
    ):
        sub_parser = command(vouchers, name, action, help_text)
        sub_parser.add_argument("channel", metavar="CHANNEL")
        sub_parser.add_argument(
            "voucher", metavar="VOUCHER", help="the voucher as `voucher create` prints it"
        )
        if name == "submit":
            add_wait_options(sub_parser)
    for name, action, help_text in (
        ("list", voucher_list, "the channel's stored vouchers"),
        ("best-spendable", best_spendable, "the best voucher of each lane redeemable now"),
    ):
        sub_parser = command(vouchers, name, action, help_text)
        sub_parser.add_argument("channel", metavar="CHANNEL")
        sub_parser.add_argument("--export", action="store_true", help="print each voucher's text too")


def _voucher(text: str) -> "SignedVoucher":
    from chain.encoding.errors import DecodeError
    from cli.client import CliError
    from node.markets.paych_types import decode_voucher

    try:
        return decode_voucher(text)
    except DecodeError as exc:
        raise CliError(str(exc)) from None


def _voucher_json(sv: "SignedVoucher", channel: str) -> Any:
    from cli.values import address_network

    return sv.to_json(address_network(channel))


def _channel(text: str) -> str:
    from cli import values

    return values.address(text, "channel address")


async def add_funds(s: "Session", args: argparse.Namespace) -> None:
    from cli import values

    sender = values.address(args.sender, "from address")
    recipient = values.address(args.recipient, "to address")
    amount = str(values.amount(args.amount))
    if args.reserve:
        info = await s.call("PaychGet", sender, recipient, amount, {"OffChain": False})
    else:
        info = await s.call("PaychFund", sender, recipient, amount)
    if info["WaitSentinel"] is None:
        channel = info["Channel"]  # reserved from the channel's funds: no message
    else:
        s.out.line("waiting for confirmation..")
        channel = await s.call("PaychGetWaitReady", info["WaitSentinel"])
    if not s.out.json(channel):
        s.out.line(channel)


async def list_channels(s: "Session", args: argparse.Namespace) -> None:
    channels = await s.call("PaychList")
    if not s.out.json(channels):
        for channel in channels:
            s.out.line(channel)


def describe_funds(out: "Output", avail: dict[str, Any]) -> None:
    """A channel's funds, in Lotus's words (paychStatus)."""
    from cli.output import fil

    if avail["Channel"] is None:
        if avail["PendingWaitSentinel"] is not None:
            out.line("Creating channel")
            out.fields(
                [
                    ("From", avail["From"]),
                    ("To", avail["To"]),
                    ("Pending Amt", fil(avail["PendingAmt"])),
                    ("Wait Sentinel", avail["PendingWaitSentinel"]["/"]),
                ]
            )
            return
        out.line("Channel does not exist")
        out.fields([("From", avail["From"]), ("To", avail["To"])])
        return
    out.line("Adding Funds to channel" if avail["PendingWaitSentinel"] is not None else "Channel exists")
    pairs = [
        ("Channel", avail["Channel"]),
        ("From", avail["From"]),
        ("To", avail["To"]),
        ("Confirmed Amt", fil(avail["ConfirmedAmt"])),
        ("Available Amt", fil(avail["NonReservedAmt"])),
        ("Voucher Redeemed Amt", fil(avail["VoucherReedeemedAmt"])),
        ("Pending Amt", fil(avail["PendingAmt"])),
        ("Pending Available Amt", fil(avail["PendingAvailableAmt"])),
        ("Queued Amt", fil(avail["QueuedAmt"])),
    ]
    if avail["PendingWaitSentinel"] is not None:
        pairs.append(("Add Funds Wait Sentinel", avail["PendingWaitSentinel"]["/"]))
    out.fields(pairs)


async def status(s: "Session", args: argparse.Namespace) -> None:
    avail = await s.call("PaychAvailableFunds", _channel(args.channel))
    if not s.out.json(avail):
        describe_funds(s.out, avail)


async def status_by_from_to(s: "Session", args: argparse.Namespace) -> None:
    from cli import values

    sender = values.address(args.sender, "from address")
    recipient = values.address(args.recipient, "to address")
    avail = await s.call("PaychAvailableFundsByFromTo", sender, recipient)
    if not s.out.json(avail):
        describe_funds(s.out, avail)


async def _send_and_wait(
    s: "Session", args: argparse.Namespace, what: str, method: str, *params: Any
) -> dict[str, Any]:
    """Call a method that sends a message, wait for the message and require its success."""
    from cli.messages import require_success, wait

    message = await s.call(method, *params)
    lookup = await wait(s, message, args)
    require_success(lookup, what)
    return lookup


async def settle(s: "Session", args: argparse.Namespace) -> None:
    channel = _channel(args.channel)
    lookup = await _send_and_wait(s, args, "settle", "PaychSettle", channel)
    if not s.out.json(lookup):
        s.out.line(f"Settled channel {channel}")


async def collect(s: "Session", args: argparse.Namespace) -> None:
    channel = _channel(args.channel)
    lookup = await _send_and_wait(s, args, "collect", "PaychCollect", channel)
    if not s.out.json(lookup):
        s.out.line(f"Collected funds for channel {channel}")


async def voucher_create(s: "Session", args: argparse.Namespace) -> None:
    from actors.paych.types import SignedVoucher
    from cli import values
    from cli.client import CliError
    from cli.output import fil
    from node.markets.paych_types import encode_voucher

    channel = _channel(args.channel)
    if args.lane < 0:
        raise CliError(f"--lane cannot be negative, got {args.lane}")
    result = await s.call("PaychVoucherCreate", channel, str(values.amount(args.amount)), args.lane)
    if s.out.json(result):
        return
    if result["Voucher"] is None:
        shortfall = fil(result["Shortfall"])
        raise CliError(f"could not create voucher: insufficient funds in channel, shortfall: {shortfall}")
    s.out.line(encode_voucher(SignedVoucher.from_json(result["Voucher"])))


async def voucher_check(s: "Session", args: argparse.Namespace) -> None:
    channel = _channel(args.channel)
    result = await s.call("PaychVoucherCheckValid", channel, _voucher_json(_voucher(args.voucher), channel))
    if not s.out.json(result):
        s.out.line("voucher is valid")


async def voucher_add(s: "Session", args: argparse.Namespace) -> None:
    from cli.output import fil

    channel = _channel(args.channel)
    sv = _voucher(args.voucher)
    delta = await s.call("PaychVoucherAdd", channel, _voucher_json(sv, channel), None, "0")
    if not s.out.json(delta):
        s.out.line(f"added voucher: lane {sv.lane}, nonce {sv.nonce}: {fil(sv.amount)} (adds {fil(delta)})")


def _describe_vouchers(out: "Output", vouchers: list[dict[str, Any]], export: bool) -> None:
    """`Lane L, Nonce N: X FIL` per voucher, by lane then nonce (Lotus outputVoucher)."""
    from actors.paych.types import SignedVoucher
    from cli.output import fil
    from node.markets.paych_types import encode_voucher

    for v in sorted(vouchers, key=lambda v: (v["Lane"], v["Nonce"])):
        text = f"Lane {v['Lane']}, Nonce {v['Nonce']}: {fil(v['Amount'])}"
        if export:
            text += f"; {encode_voucher(SignedVoucher.from_json(v))}"
        out.line(text)


async def voucher_list(s: "Session", args: argparse.Namespace) -> None:
    vouchers = await s.call("PaychVoucherList", _channel(args.channel))
    if not s.out.json(vouchers):
        _describe_vouchers(s.out, vouchers, args.export)


async def best_spendable(s: "Session", args: argparse.Namespace) -> None:
    """Lotus's paychmgr.BestSpendableByLane: per lane, the highest voucher the chain would redeem now."""
    channel = _channel(args.channel)
    best: dict[int, dict[str, Any]] = {}
    for v in await s.call("PaychVoucherList", channel):
        better = v["Lane"] not in best or int(v["Amount"]) > int(best[v["Lane"]]["Amount"])
        if better and await s.call("PaychVoucherCheckSpendable", channel, v, None, None):
            best[v["Lane"]] = v
    chosen = [best[lane] for lane in sorted(best)]
    if not s.out.json(chosen):
        _describe_vouchers(s.out, chosen, args.export)


async def voucher_submit(s: "Session", args: argparse.Namespace) -> None:
    channel = _channel(args.channel)
    sv = _voucher_json(_voucher(args.voucher), channel)
    lookup = await _send_and_wait(s, args, "the", "PaychVoucherSubmit", channel, sv, None, None)
    if not s.out.json(lookup):
        s.out.line("channel updated successfully")
