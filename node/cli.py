"""The `filpy` command line: one subcommand per job, each in the module that owns the job."""

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from node import commp_cli, genesis_cli, logs

Handler = Callable[[argparse.Namespace], int]


def _devnet(_args: argparse.Namespace) -> int:
    # The daemon (repo, libp2p host, sync, mining, RPC) is the devnet issue's work; until it lands this
    # command says so instead of pretending to start a node.
    sys.stderr.write(
        "filpy devnet: not available yet. Missing: the daemon (node/daemon.py), genesis with a pre-sealed\n"
        "miner, the mining loop and the JSON-RPC server on 127.0.0.1:1234. See the open issues.\n"
    )
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="filpy", description="A Filecoin full node in Python.")
    parser.add_argument("--log-json", action="store_true", help="log JSON lines instead of key=value")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    devnet = sub.add_parser("devnet", help="start a single-node devnet (not yet available)")
    devnet.set_defaults(handler=_devnet)

    commp = sub.add_parser("commp", help="piece CID (CommP) and sizes of a file, as `lotus client commP`")
    commp_cli.add_arguments(commp)
    commp.set_defaults(handler=commp_cli.run)

    genesis = sub.add_parser("genesis", help="make a genesis (state and block, as a CAR) from a template")
    genesis_cli.add_arguments(genesis)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(json=args.log_json, level=args.log_level)
    handler: Handler = args.handler
    try:
        return handler(args)
    except BrokenPipeError:
        # The reader went away (`filpy ... | head`): stop quietly, as Unix tools do, and keep the
        # interpreter from complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
