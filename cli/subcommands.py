"""Declaring client commands (the ones that talk to a running node: `filpy wallet list`, `filpy send`).

A command module (cli/wallet.py, ...) declares its subcommands with `command(sub, name, action, help)`
and writes each one's action as `async def action(s: Session, args) -> None` (cli/client.py): it calls
the node with `await s.call(...)` and prints with `s.out`. Every client command gets the same options:
`--repo DIR` (which node, cli/client.py) and `--json` (print the RPC result as the node answered it).

This module imports nothing but argparse: declaring the commands happens for `filpy wallet --help`,
which must stay as fast as `filpy --help` (cli/main.py). The connection, the chain's types and rich are
imported when a command runs.
"""

import argparse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from cli.client import Session

Action = Callable[["Session", argparse.Namespace], Awaitable[None]]
# How long a command that waits for the chain (a message to land, a miner to be created) waits.
DEFAULT_WAIT_TIMEOUT: Final = 600.0
# Tipsets on top of a message before a command that waits for it says it landed: Lotus's
# build.MessageConfidence, as the payment-channel manager waits (node/markets/paych.py, which this light
# module does not import).
MESSAGE_CONFIDENCE: Final = 5


@dataclass(frozen=True, slots=True)
class ClientHandler:
    """A parser's `handler`: runs the action against the node (cli/client.py run_action)."""

    action: Action
    command: str  # "filpy wallet balance", what error messages start with

    def __call__(self, args: argparse.Namespace) -> int:
        from cli.client import run_action

        return run_action(self.action, args, self.command)


def client_options(parser: argparse.ArgumentParser, action: Action) -> argparse.ArgumentParser:
    """Give parser the client options and make action its handler."""
    parser.add_argument(
        "--repo",
        type=Path,
        metavar="DIR",
        help="talk to the node running on this repo (default: $FULLNODE_API_INFO, else the node running "
        "on ~/.filpy-devnet, else on ~/.filpy)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the RPC result as JSON, as the node answered it"
    )
    parser.set_defaults(handler=ClientHandler(action, parser.prog))
    return parser


def group(
    parser: argparse.ArgumentParser, dest: str
) -> "argparse._SubParsersAction[argparse.ArgumentParser]":
    """The subcommands of a command group (`filpy wallet` -> new, list, ...)."""
    return parser.add_subparsers(dest=dest, required=True, metavar="SUBCOMMAND")


def command(
    sub: "argparse._SubParsersAction[argparse.ArgumentParser]",
    name: str,
    action: Action,
    help: str,
    *,
    aliases: Sequence[str] = (),
) -> argparse.ArgumentParser:
    """A client subcommand; add its own arguments to the parser returned."""
    parser = sub.add_parser(name, help=help, description=help, aliases=list(aliases))
    return client_options(parser, action)


def add_wait_options(parser: argparse.ArgumentParser, *, confidence: int = MESSAGE_CONFIDENCE) -> None:
    """--confidence and --timeout, for commands that wait for a message to land."""
    parser.add_argument(
        "--confidence",
        type=int,
        default=confidence,
        metavar="N",
        help=f"tipsets on top of the message's before it counts (default {confidence})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_WAIT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait (default {DEFAULT_WAIT_TIMEOUT:.0f})",
    )
