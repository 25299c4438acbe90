"""`filpy devnet`: a single-node devnet. The daemon (repo, libp2p host, sync, mining, RPC) is the next
issue's work; until it lands this command says so instead of pretending to start a node."""

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(handler=run)


def run(_args: argparse.Namespace) -> int:
    sys.stderr.write(
        "filpy devnet: not available yet. Missing: the daemon (node/daemon.py), genesis with a pre-sealed\n"
        "miner, the mining loop and the JSON-RPC server on 127.0.0.1:1234. See the open issues.\n"
    )
    return 2
