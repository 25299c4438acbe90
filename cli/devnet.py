"""`filpy devnet`: a devnet node that mines real blocks behind the JSON-RPC API.

    filpy devnet [--repo DIR] [--api HOST:PORT] [--block-delay SECONDS] [--accounts N] [--reset]
                 [--beacon drand|mock] [--listen MULTIADDR ...] [--bootstrap MULTIADDR ...]

It is `filpy daemon` (cli/daemon.py) plus the devnet: the repo (default ~/.filpy-devnet) gets a genesis
with prefunded accounts and one miner holding pre-sealed 2 KiB sectors (node/devnet.py; a progress bar
while sealing), and the node mines with that miner and any created from it (node/mining/services.py).
A new devnet runs its own drand beacon (this node holds the key and produces a round every epoch;
other nodes joining with `filpy daemon --genesis <repo>/genesis.car --bootstrap <its address>` take the
rounds from gossip and check them), or Lotus's mock beacon with `--beacon mock` (always with
`--block-delay 0`: rounds follow the clock, blocks on demand do not). The node is on a network like any
daemon: its libp2p address is printed, and peers may join it. Once every service runs, it prints the
RPC URL, the admin token's path, the libp2p address, the genesis CID, the miner and the accounts with
their keys in `lotus wallet export` form. Run again, it resumes the same chain (with its beacon);
--reset starts a new one.
"""

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

from cli.daemon import CliError, add_network_arguments, fail

if TYPE_CHECKING:
    from cli.daemon import Started
    from node.beacon.setup import NodeBeacon
    from node.devnet import Devnet
    from node.fullnode import FullNode
    from node.repo import Repo

DEFAULT_REPO: Final = Path("~/.filpy-devnet")
# When stdout is not a terminal, lines are not wrapped (keys and CIDs stay whole for copying).
PIPE_WIDTH: Final = 240


def _block_delay(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole seconds, got {text!r}") from None
    if not 0 <= value <= 30:
        raise argparse.ArgumentTypeError(f"expected 1..30 seconds, or 0 to mine only on demand, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repo", type=Path, default=DEFAULT_REPO, metavar="DIR", help="the devnet's repo (~/.filpy-devnet)"
    )
    parser.add_argument(
        "--api",
        metavar="HOST:PORT",
        help="JSON-RPC endpoint (default 127.0.0.1:1234, config.toml's api.listen)",
    )
    parser.add_argument(
        "--block-delay",
        type=_block_delay,
        metavar="SECONDS",
        help="seconds between epochs, 1..30 (default 4), or 0 to mine only on demand (Filpy.MineTipset) "
        "or when a message arrives; fixed when the devnet is made",
    )
    parser.add_argument(
        "--accounts", type=int, metavar="N", help="prefunded accounts of a new devnet (default 10)"
    )
    parser.add_argument("--reset", action="store_true", help="remove the chain and start a new devnet")
    parser.add_argument(
        "--beacon",
        choices=("drand", "mock"),
        help="randomness beacon of a new devnet: drand (default: a drand chain this node produces, "
        "which no miner can predict) or mock (Lotus's, computable by anyone; the default with "
        "--block-delay 0); an existing devnet keeps its own",
    )
    add_network_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from node.beacon.setup import BeaconSetupError
    from node.config import ConfigError
    from node.devnet import NETWORK_NAME, DevnetError
    from node.fullnode import NodeError
    from node.mining.local import LocalMinerError
    from node.repo import Repo, RepoError

    try:
        with Repo.open(args.repo, network=NETWORK_NAME) as repo:
            return _run_devnet(args, repo)
    except (
        CliError,
        RepoError,
        ConfigError,
        DevnetError,
        NodeError,
        BeaconSetupError,
        LocalMinerError,
    ) as exc:
        return fail("devnet", str(exc))
    except KeyboardInterrupt:  # Ctrl-C before the node runs (while sealing)
        return 130


def new_devnet_beacon(args: argparse.Namespace, repo: "Repo") -> str | None:
    """The beacon to ask prepare_devnet for: --beacon; else, for a new devnet, drand (the mock when
    blocks come only on demand); else None (an existing devnet keeps its own)."""
    from node.beacon.setup import BEACON_DRAND, BEACON_MOCK

    if args.beacon is not None:
        return str(args.beacon)
    if repo.devnet_path.exists() and not args.reset:
        return None
    delay = args.block_delay if args.block_delay is not None else repo.config.chain.block_delay
    return BEACON_DRAND if delay > 0 else BEACON_MOCK


def _run_devnet(args: argparse.Namespace, repo: "Repo") -> int:
    from dataclasses import replace

    from chain.params import DEVNET
    from cli.daemon import configure_logs, node_config, serve, wait_entry_of
    from node.devnet import ADDRESS_NETWORK, RichSealProgress, prepare_devnet
    from node.mining.services import miner_services, serving_miners
    from node.repo_node import open_repo_node
    from node.sealing.sectors import SectorStore
    from node.wallet import Wallet

    config = node_config(repo.config, args)
    configure_logs(args, config)
    with RichSealProgress() as progress:
        devnet = prepare_devnet(
            repo,
            accounts=args.accounts,
            reset=args.reset,
            progress=progress,
            block_delay=args.block_delay,
            beacon=new_devnet_beacon(args, repo),
        )
    policy = replace(DEVNET, block_delay_secs=devnet.block_delay)
    wallet = Wallet(repo.keystore, ADDRESS_NETWORK)
    opened = open_repo_node(
        repo, devnet.genesis_path, wallet, policy=policy, config=config, beacon_kind=devnet.beacon
    )
    node = opened.node
    try:
        store = SectorStore.open(repo.sectors_path)  # prepare_devnet indexed the miner's sectors
        miners = serving_miners(node, store)
        node.faucet = devnet.accounts[0].address if devnet.accounts else devnet.miner.owner
        services = miner_services(node, miners, store, wait_entry=wait_entry_of(opened.beacon))

        def running(started: "Started") -> None:
            print_banner(repo, node, devnet, started, opened.beacon)

        return serve("devnet", repo, node, config, services, running, beacon=opened.beacon, sectors=store)
    finally:
        node.chain.close()


def print_banner(
    repo: "Repo", node: "FullNode", devnet: "Devnet", started: "Started", beacon: "NodeBeacon"
) -> None:
    """What the user needs to use the devnet, on stdout: a panel, then the accounts."""
    from rich import box
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table

    from chain.stmgr.actors import ActorNotFound
    from chain.types.fil import format_fil
    from node.devnet import ADDRESS_NETWORK

    console = Console(width=None if sys.stdout.isatty() else PIPE_WIDTH, highlight=False)
    head = node.chain.head()
    miner = devnet.miner
    delay = (
        "on demand (Filpy.MineTipset, or a message arriving)"
        if devnet.block_delay == 0
        else f"{devnet.block_delay} s"
    )
    chain = "new devnet" if devnet.created else f"resumed at height {head.height}"
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column(overflow="fold")
    bound = started.api
    facts.add_row("RPC", f"{bound.url('/rpc/v1')}  (also /rpc/v0, and ws://)")
    facts.add_row("token", f"{repo.token_path}  (admin)")
    facts.add_row("api", f"{repo.api_path}  ({bound.multiaddr()})")
    facts.add_row("libp2p", "\n".join(started.network.peer_addresses()))
    facts.add_row("genesis", str(devnet.genesis_cid))
    miner_id = miner.id_address.to_string(ADDRESS_NETWORK)
    facts.add_row("miner", f"{miner_id}  ({len(miner.sectors)} pre-sealed 2 KiB sectors)")
    facts.add_row("worker", miner.worker.to_string(ADDRESS_NETWORK))
    facts.add_row("block delay", delay)
    facts.add_row("beacon", _describe_beacon(beacon, repo))
    facts.add_row("chain", chain)
    facts.add_row("repo", str(repo.path))
    console.print(Panel(facts, title="filpy devnet", title_align="left", expand=False))

    accounts = Table(
        title="prefunded accounts",
        title_justify="left",
        box=box.SIMPLE,
    )
    accounts.add_column("#", justify="right")
    accounts.add_column("address", no_wrap=True)
    accounts.add_column("balance", justify="right", no_wrap=True)
    for account in devnet.accounts:
        try:
            balance = format_fil(node.state.get_actor(account.address, head).balance)
        except ActorNotFound:
            balance = "0 FIL"
        accounts.add_row(str(account.index), account.address.to_string(ADDRESS_NETWORK), balance)
    if devnet.accounts:
        console.print(accounts)
        # One line per key, never wrapped by us, so that a terminal copies it whole.
        console.print(
            "their private keys, as `lotus wallet export` prints them (`lotus wallet import` reads them;"
            " they are well known: never send real FIL to these accounts):"
        )
        for account in devnet.accounts:
            console.print(f"  {account.index:>2}  {account.lotus_export}", soft_wrap=True)
    console.print(
        f"Filpy.Faucet sends from {node.faucet.to_string(ADDRESS_NETWORK) if node.faucet else '-'}. "
        "Ctrl-C stops the devnet; `filpy devnet` again resumes it, `--reset` starts over."
    )
    sys.stdout.flush()


def _describe_beacon(beacon: "NodeBeacon", repo: "Repo") -> str:
    if beacon.service is None:
        return "mock (Lotus's: every round computable in advance)"
    chain = beacon.service.info.hash.hex()
    role = "produced by this node" if beacon.service.producing else "received from the network"
    return f"drand, chain {chain[:16]}…, {role}  ({repo.drand_path})"
