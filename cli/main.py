"""The `filpy` command line: one subcommand per job, each in its own module of this package.

`filpy --help` and every command start fast because a subcommand's module (and what it imports:
the chain, the actors, the proofs) is imported only when that command runs. The table below is all
the top level knows of a command: its name, its one-line help and the module that implements it.
A command module offers `add_arguments(parser)`, which declares its arguments and sets the parser's
`handler` default (a function of the parsed arguments returning the exit status).

This module imports nothing of filpy at import time (tests/cli/test_main.py checks it).
"""

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

Handler = Callable[[argparse.Namespace], int]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    help: str
    module: str  # imported only when this command is on the command line
    # A node's process: once the command returns, its stores are closed and its logs written, and the
    # interpreter's own teardown (a last garbage collection over the node's caches, seconds for a node
    # that ran a while) is skipped so that SIGTERM stops it well within the 5 s a supervisor gives.
    exits_at_once: bool = False


COMMANDS: Final = (
    Command(
        "devnet", "run a single-node devnet that mines blocks, with the JSON-RPC API", "cli.devnet", True
    ),
    Command("daemon", "run a full node from a repo and a genesis, with the JSON-RPC API", "cli.daemon", True),
    Command("testnet", "run a local testnet of filpy daemons on 127.0.0.1: up, status, down", "cli.testnet"),
    Command("commp", "piece CID (CommP) and sizes of a file, as `lotus client commP`", "cli.commp"),
    Command("genesis", "make a genesis (state and block, as a CAR) from a template", "cli.genesis"),
    # Client commands: they talk to a running node over JSON-RPC (cli/client.py).
    Command("wallet", "manage the node's wallet: keys, balances, the default address", "cli.wallet"),
    Command("send", "send FIL from a wallet address", "cli.send"),
    Command("chain", "the chain: head, blocks, messages, export to a CAR file", "cli.chain"),
    Command("mpool", "the message pool: pending messages", "cli.mpool"),
    Command("state", "query the state: actors, miner power, messages, addresses", "cli.state"),
    Command("miner", "storage miners: create, info, list; sectors, sealing and proving", "cli.miner"),
    Command("paych", "payment channels and their vouchers", "cli.paych"),
    Command(
        "client",
        "storage and retrieval deals: import, query-ask, deal, list-deals, retrieve",
        "cli.client_commands",
    ),
    Command("auth", "API tokens", "cli.auth"),
    Command("sync", "the chain sync: status, wait until in sync", "cli.sync"),
    Command("net", "the libp2p network: peers, connect, listen addresses", "cli.net"),
)
_BY_NAME: Final = {command.name: command for command in COMMANDS}
LOG_LEVELS: Final = ("debug", "info", "warning", "error")


def _chosen(argv: Sequence[str]) -> Command | None:
    """The command named on the command line: the first argument that is a command's name (global
    options come before it and none of their values is a command name)."""
    for arg in argv:
        if arg == "--":
            return None
        command = _BY_NAME.get(arg)
        if command is not None:
            return command
    return None


class _Parser(argparse.ArgumentParser):
    """Notes in the namespace the innermost parser that parsed (`filpy wallet balance`'s), so that an
    argument no parser took is reported with that command's usage rather than `filpy`'s."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if not hasattr(parsed, PARSER_ATTR):  # a subcommand's parser returned first and set it
            setattr(parsed, PARSER_ATTR, self)
        return parsed, extras


PARSER_ATTR: Final = "_filpy_parser"


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser for argv: every command is listed, but only the one argv names gets its arguments
    (which imports its module)."""
    # No abbreviations of the global options: a command's own `--log` must not read as `--log-json`.
    parser = _Parser(prog="filpy", description="A Filecoin full node in Python.", allow_abbrev=False)
    parser.add_argument("--log-json", action="store_true", help="log JSON lines instead of key=value")
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        help="least severe level logged (default info; a node takes its config.toml's log.level)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = _chosen(argv)
    for command in COMMANDS:
        command_parser = sub.add_parser(command.name, help=command.help, description=command.help)
        if command is chosen:
            importlib.import_module(command.module).add_arguments(command_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else list(argv)
    args, extras = build_parser(args_list).parse_known_args(args_list)
    innermost: argparse.ArgumentParser = getattr(args, PARSER_ATTR)
    if extras:
        innermost.error(f"unrecognized arguments: {' '.join(extras)}")  # exits with 2, as parse_args
    delattr(args, PARSER_ATTR)
    from node import logs  # structlog: not needed to print help or usage errors

    logs.configure(json=args.log_json, level=args.log_level or "info")
    handler: Handler = args.handler
    try:
        status = handler(args)
        if _BY_NAME[args.command].exits_at_once:
            _exit_at_once(status)
        return status
    except BrokenPipeError:
        # The reader went away (`filpy ... | head`): stop quietly, as Unix tools do, and keep the
        # interpreter from complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _exit_at_once(status: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    sys.exit(main())
