"""Messages from the command line: building one for MpoolPushMessage, waiting for one to land
(StateWaitMsg), and describing where it executed, in the words of Lotus's `state wait-msg`."""

import argparse
from typing import Any

import orjson

from chain.types.address import Address
from chain.types.message import Message
from cli.client import CliError, Session
from cli.output import Output, cids, hexlify
from cli.values import address_network


def message_json(
    *,
    to: str,
    from_: str,
    value: int = 0,
    method: int = 0,
    params: bytes = b"",
    nonce: int = 0,
    gas_limit: int = 0,
    gas_fee_cap: int = 0,
    gas_premium: int = 0,
) -> dict[str, Any]:
    """An unsigned message as the JSON API takes it (zero gas fields: the node estimates them), with the
    network prefix of the recipient as given."""
    msg = Message(
        to=Address.parse(to),
        from_=Address.parse(from_),
        nonce=nonce,
        value=value,
        gas_limit=gas_limit,
        gas_fee_cap=gas_fee_cap,
        gas_premium=gas_premium,
        method=method,
        params=params,
    )
    encoded: dict[str, Any] = msg.to_json(address_network(to))
    return encoded


async def wait(s: Session, message: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    """StateWaitMsg with the command's --confidence: the lookup once the message has executed (a
    replacement counts, as Lotus's CLI allows it)."""
    lookup: dict[str, Any] = await s.call("StateWaitMsg", message, args.confidence, None, True)
    return lookup


def describe_lookup(out: Output, message: dict[str, str], lookup: dict[str, Any]) -> None:
    """Where and how a message executed (Lotus printMsg)."""
    receipt = lookup["Receipt"]
    pairs = []
    if lookup["Message"] != message:
        pairs.append(("Replaced by", lookup["Message"]["/"]))
    pairs += [
        ("Executed in tipset", cids(lookup["TipSet"])),
        ("Height", str(lookup["Height"])),
        ("Exit Code", str(receipt["ExitCode"])),
        ("Gas Used", str(receipt["GasUsed"])),
        ("Return", hexlify(receipt["Return"])),
    ]
    if lookup.get("ReturnDec") is not None:
        pairs.append(("Decoded return value", orjson.dumps(lookup["ReturnDec"]).decode()))
    out.fields(pairs)


def require_success(lookup: dict[str, Any], what: str) -> None:
    """CliError in Lotus's words, with the message's CID, unless the message succeeded."""
    code = int(lookup["Receipt"]["ExitCode"])
    if code != 0:
        raise CliError(f"{what} message {lookup['Message']['/']} execution failed (exit code {code})")
