"""`filpy send [--from ADDR] TO AMOUNT`: send FIL (or call a method) from a wallet address, as `lotus
send`: the message goes through MpoolPushMessage (the node estimates gas, picks the nonce and signs with
its wallet), or, with `--nonce`, is estimated (GasEstimateMessageGas), signed (WalletSignMessage) and
pushed (MpoolPush) with that nonce. `--wait` then waits for it to land (StateWaitMsg) and says how it
executed; a message that failed on chain exits with status 1.

Output: Lotus's lines (`Sending message from: ...`, `Sending message to: ...`, `Using Method: 0`), then
the message CID. `--json`: MpoolPushMessage's signed message (MpoolPush's CID with `--nonce`), or with
`--wait` StateWaitMsg's lookup.
"""

import argparse
from typing import TYPE_CHECKING, Any

from cli.subcommands import add_wait_options, client_options

if TYPE_CHECKING:
    from cli.client import Session


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_send_arguments(parser)


def add_send_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of `filpy send` (also `filpy wallet send`)."""
    parser.add_argument("to", metavar="TO", help="recipient address")
    parser.add_argument("amount", metavar="AMOUNT", help="FIL to send: 1.5, 1.5 FIL, 1500 attoFIL")
    parser.add_argument(
        "--from",
        dest="sender",
        metavar="ADDR",
        help="send from this wallet address (default: the wallet's default)",
    )
    parser.add_argument(
        "--method", type=int, default=0, metavar="N", help="method to invoke (default 0, a plain send)"
    )
    parser.add_argument("--params-hex", metavar="HEX", help="the method's params, CBOR as hex")
    parser.add_argument("--gas-premium", metavar="ATTOFIL", help="gas premium (default: estimated)")
    parser.add_argument("--gas-feecap", metavar="ATTOFIL", help="gas fee cap (default: estimated)")
    parser.add_argument("--gas-limit", type=int, metavar="GAS", help="gas limit (default: estimated)")
    parser.add_argument("--nonce", type=int, metavar="N", help="use this nonce (default: the next one)")
    parser.add_argument(
        "--wait", action="store_true", help="wait for the message to land and print its receipt"
    )
    add_wait_options(parser)
    client_options(parser, send)


async def send(s: "Session", args: argparse.Namespace) -> None:
    from cli import values
    from cli.client import CliError
    from cli.messages import describe_lookup, message_json, require_success, wait

    to = values.address(args.to, "target address")
    value = values.amount(args.amount)
    if args.sender:
        sender = values.address(args.sender, "from address")
    else:
        try:
            sender = await s.call("WalletDefaultAddress")
        except CliError as exc:
            raise CliError(f"failed to get default address: {exc}") from None
    params = values.hex_bytes(args.params_hex, "params") if args.params_hex else b""
    if args.nonce is not None and args.nonce < 0:
        raise CliError(f"--nonce cannot be negative, got {args.nonce}")
    msg = message_json(
        to=to,
        from_=sender,
        value=value,
        method=args.method,
        params=params,
        gas_limit=args.gas_limit or 0,
        gas_fee_cap=values.attofil(args.gas_feecap, "gas fee cap") if args.gas_feecap else 0,
        gas_premium=values.attofil(args.gas_premium, "gas premium") if args.gas_premium else 0,
    )
    s.out.line(f"Sending message from: {sender}\nSending message to: {to}\nUsing Method: {args.method}")
    answer: Any
    if args.nonce is None:
        answer = await s.call("MpoolPushMessage", msg, None)
        cid = answer["CID"]
    else:
        estimated = await s.call("GasEstimateMessageGas", msg, None, [])
        estimated.pop("CID", None)  # the node's CID of the message before the nonce changes
        estimated["Nonce"] = args.nonce
        signed = await s.call("WalletSignMessage", sender, estimated)
        answer = cid = await s.call("MpoolPush", signed)
    if not args.wait:
        if not s.out.json(answer):
            s.out.line(cid["/"])
        return
    s.out.line(cid["/"])
    lookup = await wait(s, cid, args)
    if not s.out.json(lookup):
        describe_lookup(s.out, cid, lookup)
    require_success(lookup, "the")
