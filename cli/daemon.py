"""`filpy daemon`: run a full node from a repo and a genesis, and what `filpy devnet` shares with it.

    filpy daemon [--repo DIR] [--genesis FILE] [--network devnet|mainnet] [--api HOST:PORT]

The repo (default ~/.filpy) is made on first start, for --network (default devnet: the chains filpy runs
today are devnets made by `filpy genesis new`); --genesis FILE is copied into it as genesis.car and
later starts may leave it out (given again, it must be the chain's). No accounts are made. The node
mines only when config.toml says `mining.enabled = true`, with every miner whose sectors the repo's
sector store holds (<repo>/sectors; the pre-sealed miners that `filpy genesis new ... --sectors
<repo>/sectors` writes there are indexed, and their key files imported into the keystore) and whose
worker key is in the keystore.

A node run (`serve`), for both commands: the repo is open and locked, the full node open on its
datastore; the RPC's JWT secret comes from the keystore (`auth-jwt-private`, made on first start); the
services start in order under node/daemon.py (the payment-channel manager and settler; when the node
mines, each miner's Window PoSt scheduler and the block miner; then the RPC server with every method of
full_node_registry()); once the server listens, the admin token (`token`, 0600) and the RPC multiaddr
(`api`) are written into the repo, atomically. SIGINT, SIGTERM or Filecoin.Shutdown stop everything
in reverse order within 5 s; the `api` file is removed and the datastore closed. A `kill -9` loses
nothing: every write is a LevelDB batch or an atomic file.
"""

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # the node's modules are imported when the command runs (cli/main.py)
    from node.config import Config
    from node.daemon import Service, TaskStatus
    from node.fullnode import FullNode
    from node.mining.local import LocalMiner
    from node.repo import Repo
    from node.sealing.sectors import SectorStore
    from rpc.server import BoundAddress

DEFAULT_REPO: Final = Path("~/.filpy")
DEFAULT_NETWORK: Final = "devnet"
MAX_GENESIS_BYTES: Final = 1 << 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repo", type=Path, default=DEFAULT_REPO, metavar="DIR", help="the node's repo (~/.filpy)"
    )
    parser.add_argument(
        "--genesis", type=Path, metavar="FILE", help="genesis CAR to start the chain from (first start)"
    )
    parser.add_argument(
        "--network",
        choices=("devnet", "mainnet"),
        help="network profile of a new repo (default devnet; an existing repo keeps its own)",
    )
    parser.add_argument(
        "--api", metavar="HOST:PORT", help="JSON-RPC endpoint (default: config.toml's api.listen)"
    )
    parser.set_defaults(handler=run)


class CliError(Exception):
    """What the command says before exiting with status 1."""


def fail(command: str, message: str) -> int:
    sys.stderr.write(f"filpy {command}: {message}\n")
    return 1


def run(args: argparse.Namespace) -> int:
    from node.config import ConfigError
    from node.fullnode import NodeError
    from node.mining.local import LocalMinerError
    from node.repo import Repo, RepoError, repo_network

    try:
        network = args.network or repo_network(args.repo) or DEFAULT_NETWORK
        with Repo.open(args.repo, network=network) as repo:
            return _run_daemon(args, repo)
    except (CliError, RepoError, ConfigError, NodeError, LocalMinerError) as exc:
        return fail("daemon", str(exc))
    except KeyboardInterrupt:
        return 130


def _run_daemon(args: argparse.Namespace, repo: "Repo") -> int:
    from chain.params import PROFILES
    from node.atomic import write_atomic
    from node.fullnode import open_full_node
    from node.mining.local import index_presealed, local_miners
    from node.sealing.sectors import SectorStore, SectorStoreError
    from node.wallet import Wallet

    config = api_config(repo.config, args.api)
    policy = replace(PROFILES[repo.network], block_delay_secs=config.chain.block_delay)
    genesis = repo.genesis_path
    if args.genesis is not None:
        genesis = args.genesis
        if not repo.genesis_path.exists():
            write_atomic(repo.genesis_path, _read_genesis(args.genesis))
    elif not genesis.exists():
        raise CliError(
            f"{repo.path} has no genesis yet: give the chain's genesis CAR with --genesis FILE "
            "(`filpy genesis new` makes one)"
        )
    wallet = Wallet(repo.keystore, policy.address_network)
    node = open_full_node(repo.datastore_path, genesis, wallet, policy=policy)
    try:
        services: list[Service] = []
        if config.mining.enabled:
            try:
                store = SectorStore.open(repo.sectors_path)
                index_presealed(store, wallet, policy.address_network)
            except SectorStoreError as exc:
                raise CliError(f"the sector store in {repo.sectors_path}: {exc}") from None
            miners = local_miners(node.state, node.chain.head(), store, wallet)
            if not miners:
                raise CliError(
                    f"mining.enabled is true but the sector store in {repo.sectors_path} holds no sector "
                    "(a genesis miner's pre-sealed sectors go there with `filpy genesis new --sectors`)"
                )
            services = mining_services(node, miners, store)

        def running(bound: "BoundAddress") -> None:
            head = node.chain.head()
            sys.stdout.write(
                f"filpy daemon: RPC on {bound.url()} (token in {repo.token_path}), genesis "
                f"{node.genesis.cid()}, head at height {head.height}; Ctrl-C stops it\n"
            )
            sys.stdout.flush()

        return serve("daemon", repo, node, config, services, running)
    finally:
        node.chain.close()


def _read_genesis(path: Path) -> bytes:
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_GENESIS_BYTES + 1)
    except OSError as exc:
        raise CliError(f"{path}: cannot read the genesis: {exc.strerror or exc}") from None
    if len(data) > MAX_GENESIS_BYTES:
        raise CliError(f"{path}: more than {MAX_GENESIS_BYTES} bytes: not a genesis CAR")
    return data


def api_config(config: "Config", api: str | None) -> "Config":
    """The repo's config with --api applied (checked as config.toml's api.listen)."""
    from node.config import with_overrides

    return config if api is None else with_overrides(config, {"api.listen": api})


class ApiService:
    """The RPC server as a node service: once it listens, the repo's `token` (admin) and `api` files are
    written, and started() gives the address it is bound to."""

    name = "rpc"

    def __init__(self, repo: "Repo", node: "FullNode", secret: bytes, config: "Config") -> None:
        from node.config import parse_host_port
        from rpc.methods import full_node_registry
        from rpc.server import RpcServer

        host, port = parse_host_port(config.api.listen)
        self.listen = config.api.listen
        self.repo = repo
        self.secret = secret
        self.server = RpcServer(
            full_node_registry(),
            node,
            secret=secret,
            host=host,
            port=port,
            max_body=config.api.max_request_bytes,
        )
        self.bound: BoundAddress | None = None

    async def run(self, *, task_status: "TaskStatus | None" = None) -> None:
        import trio

        from rpc.auth import create_token, perms_up_to
        from rpc.registry import ADMIN

        status = trio.TASK_STATUS_IGNORED if task_status is None else task_status
        try:
            async with trio.open_nursery() as nursery:
                bound: BoundAddress = await nursery.start(self.server.run)
                self.repo.write_token(create_token(self.secret, perms_up_to(ADMIN)))
                self.repo.write_api(bound.multiaddr())
                self.bound = bound
                status.started(bound)
        except BaseExceptionGroup as group:
            # hypercorn's bind failure reaches us inside the nurseries' exception groups
            failed = group.subgroup(OSError)
            if self.bound is not None or failed is None:
                raise
            error = _first_leaf(failed)
            raise ApiListenError(f"cannot listen on {self.listen}: {error.strerror or error}") from None


class ApiListenError(Exception):
    """The RPC endpoint cannot be bound (the port is taken, the address is not this machine's)."""


def _first_leaf(group: BaseExceptionGroup[OSError]) -> OSError:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def mining_services(
    node: "FullNode", miners: "Sequence[LocalMiner]", store: "SectorStore"
) -> list["Service"]:
    """The services of a node that mines: each miner's Window PoSt scheduler, then the block miner,
    which waits for the schedulers to have handled a head before mining on it (so their proofs reach
    the next block even while it catches up with the clock)."""
    from node.mining.miner import MiningService
    from node.mining.wdpost import WindowPoStScheduler

    schedulers = [WindowPoStScheduler.for_node(node, m.address, store) for m in miners]
    mining = MiningService(node, miners, pacers=[s.wait_processed for s in schedulers])
    node.mining = mining
    return [*schedulers, mining]


def jwt_secret(repo: "Repo") -> bytes:
    """The RPC's HS256 secret, from the keystore (made on first start)."""
    from rpc import auth

    return repo.keystore.get_or_create(auth.KEYSTORE_NAME, auth.KEY_TYPE, auth.new_secret).private_key


def serve(
    command: str,
    repo: "Repo",
    node: "FullNode",
    config: "Config",
    services: Sequence["Service"],
    on_running: Callable[["BoundAddress"], None],
) -> int:
    """Run the node's own services (the payment-channel manager and settler), then the given ones (the
    miner's), then the RPC server, until stopped; the exit status."""
    from node.daemon import ServiceRunner, run_runner
    from node.markets.paych_settler import PaychSettler

    api = ApiService(repo, node, jwt_secret(repo), config)
    own: list[Service] = [node.paych, PaychSettler(node.paych)]

    def running() -> None:
        assert api.bound is not None
        on_running(api.bound)

    runner = ServiceRunner([*own, *services, api], exit_on_stuck=True, on_running=running)
    node.on_shutdown = runner.request_stop
    status = run_runner(runner)
    if runner.failure is not None:
        hint = ""
        if (
            runner.failure.service == ApiService.name
            and "address already in use" in str(runner.failure).lower()
        ):
            hint = " (is another node listening there? choose another endpoint with --api HOST:PORT)"
        fail(command, f"{runner.failure}{hint}")
    return status
