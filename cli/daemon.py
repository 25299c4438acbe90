"""`filpy daemon`: run a full node from a repo and a genesis, on a network, and what `filpy devnet`
shares with it.

    filpy daemon [--repo DIR] [--genesis FILE] [--network devnet|mainnet] [--api HOST:PORT]
                 [--listen MULTIADDR ...] [--bootstrap MULTIADDR ...]

The repo (default ~/.filpy) is made on first start, for --network (default devnet: the chains filpy runs
today are devnets made by `filpy genesis new`); --genesis FILE is copied into it as genesis.car and
later starts may leave it out (given again, it must be the chain's). A genesis made for a drand beacon
needs the chain's drand.json in the repo: one beside the genesis file is copied in with it. No accounts
are made. The node joins the network: its libp2p host listens on --listen (default config.toml's
libp2p.listen) and dials config.toml's libp2p.bootstrap peers and the --bootstrap ones, and the chain
sync follows the heaviest chain its peers have. It mines only when config.toml says `mining.enabled =
true`, with every miner it serves (node/mining/services.py: those whose sectors the repo's sector store
holds, <repo>/sectors, where the pre-sealed miners that `filpy genesis new ... --sectors <repo>/sectors`
writes are indexed and their key files imported; and those created from this node), each with its
Window PoSt scheduler and sealing pipeline; a miner created while it runs (`filpy miner create`) is
served at once (node/mining/services.py ServeCreated).

A node run (`serve`), for both commands: the repo is open and locked, the full node open on its
datastore (config.toml's [datastore] options) with its chain's beacon; the RPC's JWT secret comes from
the keystore (`auth-jwt-private`, made on first start); the services start in order under
node/daemon.py: the payment-channel manager and settler; with config.toml's `[slasher] enabled`, the
slasher (node/slasher.py: it reports the consensus faults of the blocks the sync accepts or submits, from
`[slasher] address`); the chain sync, the P2P node and, for a drand chain, the beacon service
(node/network.py); when the node mines, each miner's Window PoSt scheduler
and sealing pipeline, then the block miner; then the RPC server with every method of
full_node_registry(); then the markets (node/markets/node_service.py: the storage client, and on a node
that seals for a miner the storage provider and retrieval for it, announced on chain; their HTTP routes
on the RPC server). Once the server listens, the admin token (`token`, 0600) and the RPC multiaddr
(`api`) are written into the repo, atomically. SIGINT, SIGTERM or Filecoin.Shutdown stop everything in
reverse order within 5 s; the `api` file is removed and the datastore closed. A `kill -9` loses
nothing: every write is a LevelDB batch or an atomic file. Logging follows config.toml's [log] unless
`--log-level` or `--log-json` say otherwise.
"""

import argparse
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:  # the node's modules are imported when the command runs (cli/main.py)
    from node.beacon.setup import NodeBeacon
    from node.config import Config
    from node.daemon import Service, TaskStatus
    from node.fullnode import FullNode
    from node.network import NodeNetwork
    from node.repo import Repo
    from node.sealing.sectors import SectorStore
    from rpc.server import BoundAddress

DEFAULT_REPO: Final = Path("~/.filpy")
DEFAULT_NETWORK: Final = "devnet"
MAX_GENESIS_BYTES: Final = 1 << 30
DRAND_INFO: Final = "drand.json"


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
    add_network_arguments(parser)
    parser.set_defaults(handler=run)


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    """--listen and --bootstrap, shared with `filpy devnet`."""
    parser.add_argument(
        "--listen",
        action="append",
        metavar="MULTIADDR",
        help="libp2p listen address, e.g. /ip4/127.0.0.1/tcp/4001 (repeatable; default: config.toml's "
        "libp2p.listen, a free port on 127.0.0.1)",
    )
    parser.add_argument(
        "--bootstrap",
        action="append",
        metavar="MULTIADDR",
        help="a peer to connect to and stay connected to, /ip4/.../tcp/.../p2p/<peer ID> (repeatable; "
        "added to config.toml's libp2p.bootstrap)",
    )


class CliError(Exception):
    """What the command says before exiting with status 1."""


def fail(command: str, message: str) -> int:
    sys.stderr.write(f"filpy {command}: {message}\n")
    return 1


def run(args: argparse.Namespace) -> int:
    from node.beacon.setup import BeaconSetupError
    from node.config import ConfigError
    from node.fullnode import NodeError
    from node.mining.local import LocalMinerError
    from node.repo import Repo, RepoError, repo_network

    try:
        network = args.network or repo_network(args.repo) or DEFAULT_NETWORK
        with Repo.open(args.repo, network=network) as repo:
            return _run_daemon(args, repo)
    except (CliError, RepoError, ConfigError, NodeError, LocalMinerError, BeaconSetupError) as exc:
        return fail("daemon", str(exc))
    except KeyboardInterrupt:
        return 130


def _run_daemon(args: argparse.Namespace, repo: "Repo") -> int:
    from chain.params import PROFILES
    from node.atomic import write_atomic
    from node.mining.local import index_presealed
    from node.mining.services import miner_services, serving_miners
    from node.repo_node import open_repo_node
    from node.sealing.sectors import SectorStore, SectorStoreError
    from node.wallet import Wallet

    config = node_config(repo.config, args)
    configure_logs(args, config)
    policy = replace(PROFILES[repo.network], block_delay_secs=config.chain.block_delay)
    genesis = repo.genesis_path
    if args.genesis is not None:
        genesis = args.genesis
        if not repo.genesis_path.exists():
            write_atomic(repo.genesis_path, _read_genesis(args.genesis))
        _copy_drand_info(args.genesis.parent / DRAND_INFO, repo.drand_path)
    elif not genesis.exists():
        raise CliError(
            f"{repo.path} has no genesis yet: give the chain's genesis CAR with --genesis FILE "
            "(`filpy genesis new` makes one)"
        )
    wallet = Wallet(repo.keystore, policy.address_network)
    opened = open_repo_node(repo, genesis, wallet, policy=policy, config=config)
    node = opened.node
    try:
        services: list[Service] = []
        store: SectorStore | None = None
        if config.mining.enabled:
            try:
                store = SectorStore.open(repo.sectors_path)
                index_presealed(store, wallet, policy.address_network)
            except SectorStoreError as exc:
                raise CliError(f"the sector store in {repo.sectors_path}: {exc}") from None
            miners = serving_miners(node, store)
            if not miners:
                raise CliError(
                    f"mining.enabled is true but this node serves no miner: the sector store in "
                    f"{repo.sectors_path} holds no sector (a genesis miner's pre-sealed sectors go there "
                    "with `filpy genesis new --sectors`) and no miner was created from it"
                )
            services = miner_services(node, miners, store, wait_entry=wait_entry_of(opened.beacon))

        def running(started: "Started") -> None:
            head = node.chain.head()
            sys.stdout.write(
                f"filpy daemon: RPC on {started.api.url()} (token in {repo.token_path}), genesis "
                f"{node.genesis.cid()}, head at height {head.height}; libp2p "
                f"{' '.join(started.network.peer_addresses())}; Ctrl-C stops it\n"
            )
            sys.stdout.flush()

        return serve("daemon", repo, node, config, services, running, beacon=opened.beacon, sectors=store)
    finally:
        node.chain.close()


def _copy_drand_info(source: Path, target: Path) -> None:
    """A drand chain's info beside the genesis goes into a repo that has none (a node of a chain with
    its own beacon needs it, as a Lotus build needs its drand ChainInfoJSON)."""
    if target.exists() or not source.is_file():
        return
    try:
        shutil.copyfile(source, target)
    except OSError as exc:
        raise CliError(f"cannot copy {source} into the repo: {exc.strerror or exc}") from None


def _read_genesis(path: Path) -> bytes:
    from node.atomic import read_existing

    data = read_existing(path, MAX_GENESIS_BYTES + 1, CliError, "genesis")
    if len(data) > MAX_GENESIS_BYTES:
        raise CliError(f"{path}: more than {MAX_GENESIS_BYTES} bytes: not a genesis CAR")
    return data


def api_config(config: "Config", api: str | None) -> "Config":
    """The repo's config with --api applied (checked as config.toml's api.listen)."""
    from node.config import with_overrides

    return config if api is None else with_overrides(config, {"api.listen": api})


def node_config(config: "Config", args: argparse.Namespace) -> "Config":
    """The repo's config with the command line's --api, --listen and --bootstrap applied, each checked
    as its config.toml key (--bootstrap adds to libp2p.bootstrap, --listen replaces libp2p.listen)."""
    from node.config import with_overrides

    overrides: dict[str, object] = {}
    if args.api is not None:
        overrides["api.listen"] = args.api
    if args.listen:
        overrides["libp2p.listen"] = tuple(args.listen)
    if args.bootstrap:
        known = config.libp2p.bootstrap
        overrides["libp2p.bootstrap"] = known + tuple(a for a in args.bootstrap if a not in known)
    return with_overrides(config, overrides) if overrides else config


def configure_logs(args: argparse.Namespace, config: "Config") -> None:
    """config.toml's [log], unless the global --log-level or --log-json were given."""
    from node import logs

    level = args.log_level if getattr(args, "log_level", None) else config.log.level
    logs.configure(json=bool(getattr(args, "log_json", False)) or config.log.json, level=level)


def wait_entry_of(beacon: "NodeBeacon") -> "Callable[..., Any] | None":
    """What the block miner waits for a beacon round with: the drand service's wait_entry, or None for
    the mock (whose rounds are always there)."""
    return None if beacon.service is None else beacon.service.wait_entry


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

    def base_url(self) -> str:
        """http://host:port of the server once it listens: where peers fetch deal data and retrievals."""
        assert self.bound is not None, "the RPC server is not listening yet"
        return self.bound.url("")

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


def jwt_secret(repo: "Repo") -> bytes:
    """The RPC's HS256 secret, from the keystore (made on first start)."""
    from rpc import auth

    return repo.keystore.get_or_create(auth.KEYSTORE_NAME, auth.KEY_TYPE, auth.new_secret).private_key


@dataclass(frozen=True, slots=True)
class Started:
    """What a node run tells its command once every service runs."""

    api: "BoundAddress"
    network: "NodeNetwork"


def serve(
    command: str,
    repo: "Repo",
    node: "FullNode",
    config: "Config",
    services: Sequence["Service"],
    on_running: Callable[[Started], None],
    *,
    beacon: "NodeBeacon",
    sectors: "SectorStore | None" = None,
) -> int:
    """Run the node's own services (the payment-channel manager and settler, and with `[slasher]
    enabled` the slasher, fed every block the sync service accepts or submits), its network (sync, P2P
    node, the drand beacon service), then the given ones (the miners'), then the RPC server, then the
    markets (node/markets/node_service.py: a provider for one of the miners the node seals for), until
    stopped; the exit status. With `sectors` (a node that serves miners) a miner created while it runs
    (Filpy.MinerCreate) is served at once from that store (node/mining/services.py ServeCreated)."""
    from node.daemon import ServiceRunner, run_runner
    from node.gcpolicy import SyncGcPolicy, configure_collector
    from node.markets.node_service import MarketsService
    from node.markets.paych_settler import PaychSettler
    from node.mining.services import ServeCreated
    from node.network import NodeNetwork
    from node.slasher import slasher_service

    network = NodeNetwork.open(node, repo.keystore, config.libp2p, beacon=beacon.service)
    SyncGcPolicy().attach(network.sync.syncer)  # a catch-up's batches frozen, collected in full now and then
    api = ApiService(repo, node, jwt_secret(repo), config)
    own: list[Service] = [node.paych, PaychSettler(node.paych)]
    slasher = slasher_service(node, config.slasher)
    if slasher is not None:  # every block gossip accepts and every block this node submits
        network.sync.block_observers.append(slasher.observe)
        own.append(slasher)
    markets = MarketsService(
        node,
        repo.path,
        network.p2p.host,
        repo.keystore,
        config.libp2p,
        server=api.server,
        base_url=api.base_url,
        markets_config=config.markets,
    )

    def running() -> None:
        assert api.bound is not None
        configure_collector()  # collections then skip what start-up made: shorter RPC pauses
        on_running(Started(api.bound, network))

    runner = ServiceRunner(
        [*own, *network.services(), *services, api, markets], exit_on_stuck=True, on_running=running
    )
    node.on_shutdown = runner.request_stop
    if sectors is not None:
        node.on_miner_created = ServeCreated(
            node,
            sectors,
            start=runner.add,
            wait_entry=wait_entry_of(beacon),
            on_served=[markets.take_miner],
        )
    status = run_runner(runner)
    if runner.failure is not None:
        hint = ""
        if (
            runner.failure.service == ApiService.name
            and "address already in use" in str(runner.failure).lower()
        ):
            hint = " (is another node listening there? choose another endpoint with --api HOST:PORT)"
        elif runner.failure.service == "p2p" and "address already in use" in str(runner.failure).lower():
            hint = " (another node listens on that libp2p address: choose another with --listen)"
        fail(command, f"{runner.failure}{hint}")
    return status
