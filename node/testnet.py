"""A local testnet's directory: N node repos sharing one genesis with M genesis miners, wired together.

`prepare_testnet(directory, nodes=N, miners=M, ...)` makes (or finds) what `filpy testnet up` starts and
what the docker-compose services run (`filpy testnet init`):

    DIR/testnet.json      the layout, written last (its presence means the rest is complete)
    DIR/genesis.car       the shared genesis (also in each repo), DIR/drand.json its beacon's chain info
    DIR/node0 ... nodeN-1 one filpy repo per node (devnet profile)

The genesis holds the devnet's well-known prefunded accounts (node/devnet.py: account i's key is derived
from `filpy-devnet-account-<i>`; every node's wallet holds them, node i's default address is account
i mod K) and M miners t01000... with two pre-sealed 2 KiB sectors each, whose keys are derived from
`filpy-testnet-miner-<i>` and whose sectors, owner and worker keys go into the repo of the node that runs
them: with more nodes than miners, miner i runs on node i+1 and node0 (the bootstrap node) mines
nothing; otherwise miner i runs on node i mod N. A drand beacon (the default) is produced by node0, which
holds its key; every node has its drand.json and checks the rounds it receives.

Each repo's config.toml says where the node listens (RPC `127.0.0.1:<api port>`, libp2p
`/ip4/127.0.0.1/tcp/<p2p port>`), which nodes it dials (every node before it: node0 is everyone's
bootstrap peer and the nodes form a full mesh), whether it mines (the nodes holding miners) and the block
delay, and that its slasher (node/slasher.py) watches for consensus faults and reports them from the node's
default address. The ports are given (a base port + node index, for compose files) or free ports of 127.0.0.1
found when the testnet is made, and kept: a testnet started again keeps its URLs. Each node's libp2p
identity is made here, in its keystore, so that the others can name it as a bootstrap peer.
"""

import json
import shutil
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import structlog

from chain.encoding.carry import carried
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.types.address import Address
from node.atomic import read_at_most, write_atomic
from node.beacon.setup import BEACON_DRAND, BEACON_KINDS, BEACON_MOCK, BeaconSetupError, create_drand_chain
from node.config import MAX_DEVNET_BLOCK_DELAY, ConfigError, with_overrides
from node.devnet import (
    ADDRESS_NETWORK,
    PROFILE,
    devnet_accounts,
    devnet_miner_entry,
    genesis_template_of,
)
from node.genesis import GENESIS_BEACON_ENTRY, GenesisError, SealProgress, build_genesis, write_genesis_car
from node.genesis_template import MINER_START_ID, GenesisTemplate
from node.keystore import Keystore
from node.p2p.identity import KeystoreIdentity, load_or_create_identity, peer_id_of
from node.preseal import write_presealed
from node.repo import Repo, RepoError
from node.wallet import Wallet

RECORD: Final = "testnet.json"
RECORD_VERSION: Final = 1
GENESIS_FILE: Final = "genesis.car"
DRAND_FILE: Final = "drand.json"
DEFAULT_NODES: Final = 3
DEFAULT_MINERS: Final = 2
DEFAULT_ACCOUNTS: Final = 10
DEFAULT_BLOCK_DELAY: Final = 4
MAX_NODES: Final = 32
MAX_MINERS: Final = 32
MINER_KEY_SEED: Final = "filpy-testnet-miner-"
HOST: Final = "127.0.0.1"
MAX_RECORD_BYTES: Final = 1 << 20

log = structlog.get_logger("testnet")


class TestnetError(Exception):
    """The testnet cannot be made or used as asked; the message says why and what to do."""

    __test__ = False  # not a pytest test class, whatever its name


def node_name(index: int) -> str:
    return f"node{index}"


def miner_node(miner: int, nodes: int, miners: int) -> int:
    """The node that runs genesis miner `miner` (0-based): node0 is the bootstrap node and mines only
    when there are no more nodes than miners."""
    return miner + 1 if nodes > miners else miner % nodes


def miner_address(miner: int) -> Address:
    return Address.new_id(MINER_START_ID + miner)


@dataclass(frozen=True, slots=True)
class TestnetNode:
    """One node of a testnet: its repo, where it listens, who it is, the genesis miners it runs."""

    __test__ = False  # not a pytest test class, whatever its name
    index: int
    repo: Path
    api: str  # HOST:PORT of its RPC
    listen: str  # its libp2p listen multiaddr
    peer_id: str
    miners: tuple[Address, ...]  # the genesis miners it runs

    @property
    def name(self) -> str:
        return node_name(self.index)

    @property
    def peer_address(self) -> str:
        """Its libp2p address with its peer ID: what the others dial."""
        return f"{self.listen}/p2p/{self.peer_id}"

    @property
    def api_url(self) -> str:
        return f"http://{self.api}/rpc/v1"

    @property
    def token_path(self) -> Path:
        return self.repo / "token"

    @property
    def pid_path(self) -> Path:
        return self.repo / "pid"

    @property
    def log_path(self) -> Path:
        return self.repo / "daemon.log"


@dataclass(frozen=True, slots=True)
class Testnet:
    """A testnet as recorded in DIR/testnet.json."""

    __test__ = False  # not a pytest test class, whatever its name
    directory: Path
    genesis: CID
    block_delay: int
    beacon: str
    accounts: int
    miners: int
    nodes: tuple[TestnetNode, ...]
    created: bool  # made now, or found

    @property
    def genesis_path(self) -> Path:
        return self.directory / GENESIS_FILE

    def to_bytes(self) -> bytes:
        raw: dict[str, Any] = {
            "Version": RECORD_VERSION,
            "Genesis": str(self.genesis),
            "BlockDelay": self.block_delay,
            "Beacon": self.beacon,
            "Accounts": self.accounts,
            "Miners": self.miners,
            "Nodes": [
                {
                    "Repo": node.repo.name,
                    "Api": node.api,
                    "Listen": node.listen,
                    "PeerID": node.peer_id,
                    "Miners": [m.to_string(ADDRESS_NETWORK) for m in node.miners],
                }
                for node in self.nodes
            ],
        }
        return (json.dumps(raw, indent=2) + "\n").encode()


def read_testnet(directory: Path) -> Testnet | None:
    """The testnet recorded in directory, None when there is none; TestnetError when it is damaged."""
    directory = Path(directory).expanduser().absolute()
    path = directory / RECORD
    data = read_at_most(path, MAX_RECORD_BYTES + 1, TestnetError)
    if data is None:
        return None
    try:
        raw = json.loads(data)
        if not isinstance(raw, dict) or raw.get("Version") != RECORD_VERSION:
            raise ValueError(f"expected a version {RECORD_VERSION} testnet record")
        nodes = tuple(
            TestnetNode(
                index=i,
                repo=directory / _text(entry["Repo"]),
                api=_text(entry["Api"]),
                listen=_text(entry["Listen"]),
                peer_id=_text(entry["PeerID"]),
                miners=tuple(Address.parse(_text(m)) for m in entry["Miners"]),
            )
            for i, entry in enumerate(raw["Nodes"])
        )
        return Testnet(
            directory=directory,
            genesis=CID.parse(_text(raw["Genesis"])),
            block_delay=_int(raw["BlockDelay"]),
            beacon=_text(raw["Beacon"]),
            accounts=_int(raw["Accounts"]),
            miners=_int(raw["Miners"]),
            nodes=nodes,
            created=False,
        )
    except (ValueError, KeyError, TypeError, DecodeError) as exc:
        raise TestnetError(f"{path} is damaged ({exc}): start a new testnet with --reset") from None


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _int(value: object) -> int:
    if type(value) is not int:
        raise ValueError(f"expected an integer, got {value!r}")
    return value


# -- making one ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TestnetSpec:
    """What a new testnet is made of (the command line's options)."""

    __test__ = False  # not a pytest test class, whatever its name

    nodes: int = DEFAULT_NODES
    miners: int = DEFAULT_MINERS
    block_delay: int = DEFAULT_BLOCK_DELAY
    beacon: str = BEACON_DRAND
    accounts: int = DEFAULT_ACCOUNTS
    api_port: int = 0  # node i's RPC on api_port + i; 0: free ports
    p2p_port: int = 0  # node i's libp2p on p2p_port + i; 0: free ports

    def check(self) -> None:
        if not 1 <= self.nodes <= MAX_NODES:
            raise TestnetError(f"--nodes: expected 1..{MAX_NODES}, got {self.nodes}")
        if not 1 <= self.miners <= MAX_MINERS:
            raise TestnetError(f"--miners: expected 1..{MAX_MINERS}, got {self.miners}")
        if not 1 <= self.block_delay <= MAX_DEVNET_BLOCK_DELAY:
            raise TestnetError(
                f"--block-delay: expected 1..{MAX_DEVNET_BLOCK_DELAY} seconds (a testnet follows the "
                f"clock), got {self.block_delay}"
            )
        if self.beacon not in BEACON_KINDS:
            raise TestnetError(f"--beacon: expected one of {', '.join(BEACON_KINDS)}, got {self.beacon!r}")
        if not 1 <= self.accounts <= 100:
            raise TestnetError(f"--accounts: expected 1..100, got {self.accounts}")
        for name, port in (("--api-port", self.api_port), ("--p2p-port", self.p2p_port)):
            if port and not 1024 <= port <= 65535 - self.nodes:
                raise TestnetError(f"{name}: expected a port in 1024..{65535 - self.nodes}, got {port}")


def testnet_template(spec: TestnetSpec, timestamp: int, peers: Sequence[str]) -> GenesisTemplate:
    """The genesis template: the devnet's accounts and M miners (each with the peer ID of its node)."""
    miners = [
        {
            **devnet_miner_entry(miner_address(i), f"{MINER_KEY_SEED}{i}"),
            "PeerId": peers[miner_node(i, spec.nodes, spec.miners)],
        }
        for i in range(spec.miners)
    ]
    return genesis_template_of(spec.accounts, timestamp, miners, "testnet")


def free_ports(count: int, host: str = HOST) -> list[int]:
    """count distinct ports nothing listens on now (bound and released at once: another process may
    take one before the node does, which the node then reports as a port in use)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def prepare_testnet(
    directory: Path,
    spec: TestnetSpec,
    *,
    reset: bool = False,
    progress: SealProgress | None = None,
    clock: Callable[[], float] = time.time,
) -> Testnet:
    """The testnet in directory: made as spec says when there is none (or with reset), else the one
    recorded there, which must match the spec's nodes and miners."""
    spec.check()
    directory = Path(directory).expanduser().absolute()
    if reset:
        remove_testnet(directory)
    found = read_testnet(directory)
    if found is not None:
        if (len(found.nodes), found.miners) != (spec.nodes, spec.miners):
            raise TestnetError(
                f"the testnet in {directory} has {len(found.nodes)} nodes and {found.miners} miners, not "
                f"{spec.nodes} and {spec.miners}: run without --nodes/--miners to start it again, or with "
                "--reset to make a new one"
            )
        return found
    return _make(directory, spec, progress, clock)


def remove_testnet(directory: Path) -> None:
    """Remove what prepare_testnet made in directory (the record, the genesis, the node repos); a
    directory holding anything else is left alone (TestnetError)."""
    if not directory.exists():
        return
    ours = {RECORD, GENESIS_FILE, DRAND_FILE}
    entries = list(directory.iterdir())
    strangers = [
        e.name for e in entries if e.name not in ours and not (e.name.startswith("node") and e.is_dir())
    ]
    if strangers:
        raise TestnetError(
            f"{directory} holds more than a testnet ({', '.join(sorted(strangers)[:5])}): not removing it;"
            " choose another --dir"
        )
    record = directory / RECORD
    if record.exists():
        record.unlink()  # first: a crash below leaves no record of a half-removed testnet
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif entry.exists() or entry.is_symlink():
            entry.unlink()
    log.info("testnet removed", directory=str(directory))


def _make(
    directory: Path, spec: TestnetSpec, progress: SealProgress | None, clock: Callable[[], float]
) -> Testnet:
    if directory.exists() and any(directory.iterdir()):
        raise TestnetError(
            f"{directory} is not empty and holds no complete testnet ({RECORD}): use --reset to make a "
            "new testnet there, or choose another --dir"
        )
    directory.mkdir(parents=True, exist_ok=True)
    api_ports = _ports(spec.api_port, spec.nodes)
    p2p_ports = _ports(spec.p2p_port, spec.nodes)
    keystores: list[Keystore] = []
    peers = []
    for i in range(spec.nodes):
        repo_path = directory / node_name(i)
        with _open_repo(repo_path) as repo:
            peers.append(peer_id_of(load_or_create_identity(KeystoreIdentity(repo.keystore))).to_base58())
            keystores.append(repo.keystore)
    timestamp = int(clock())
    template = testnet_template(spec, timestamp, peers)
    log.info("building the testnet genesis", nodes=spec.nodes, miners=spec.miners, beacon=spec.beacon)
    try:
        round_zero = GENESIS_BEACON_ENTRY
        if spec.beacon != BEACON_MOCK:
            # node0 produces the rounds; every node gets the chain info
            info = create_drand_chain(
                keystores[0], directory / DRAND_FILE, genesis_time=timestamp, period=spec.block_delay
            )
            round_zero = info.genesis_entry
        genesis = build_genesis(template, progress=progress, beacon_entry=round_zero)
        write_genesis_car(genesis, directory / GENESIS_FILE)
    except (GenesisError, BeaconSetupError) as exc:
        raise TestnetError(f"building the testnet genesis failed: {exc}") from None
    nodes = []
    for i in range(spec.nodes):
        miners = [m for m in range(spec.miners) if miner_node(m, spec.nodes, spec.miners) == i]
        node = TestnetNode(
            index=i,
            repo=directory / node_name(i),
            api=f"{HOST}:{api_ports[i]}",
            listen=f"/ip4/{HOST}/tcp/{p2p_ports[i]}",
            peer_id=peers[i],
            miners=tuple(miner_address(m) for m in miners),
        )
        nodes.append(node)
    for node in nodes:
        with _open_repo(node.repo) as repo:
            _fill_repo(repo, node, nodes, spec, genesis.miners, directory)
    # The record keeps the spec's block delay, beacon and counts; its nodes are the nodes made.
    testnet = carried(
        Testnet, spec, directory=directory, genesis=genesis.cid, nodes=tuple(nodes), created=True
    )
    write_atomic(directory / RECORD, testnet.to_bytes(), 0o644)
    log.info("testnet made", directory=str(directory), genesis=str(genesis.cid))
    return testnet


def _ports(base: int, count: int) -> list[int]:
    return [base + i for i in range(count)] if base else free_ports(count)


def _open_repo(path: Path) -> Repo:
    try:
        return Repo.open(path, network=PROFILE)
    except RepoError as exc:
        raise TestnetError(str(exc)) from None


def _fill_repo(
    repo: Repo,
    node: TestnetNode,
    nodes: Sequence[TestnetNode],
    spec: TestnetSpec,
    miners: Sequence[Any],
    directory: Path,
) -> None:
    """A node's repo: its config, the genesis (and drand chain info), the accounts' keys, its miners'
    sectors and keys."""
    accounts = devnet_accounts(spec.accounts)
    own = accounts[node.index % len(accounts)].address
    try:
        config = with_overrides(
            repo.config,
            {
                "chain.block_delay": spec.block_delay,
                "api.listen": node.api,
                "libp2p.listen": (node.listen,),
                "libp2p.bootstrap": tuple(n.peer_address for n in nodes[: node.index]),
                "mining.enabled": bool(node.miners),
                # every node of a testnet watches for consensus faults, reporting from its own account
                "slasher.enabled": True,
                "slasher.address": own.to_string(ADDRESS_NETWORK),
            },
        )
    except ConfigError as exc:  # the ports and addresses are ours: a bug
        raise AssertionError(f"the testnet config is invalid: {exc}") from exc
    repo.write_config(config)
    shutil.copyfile(directory / GENESIS_FILE, repo.genesis_path)
    if (directory / DRAND_FILE).exists():
        shutil.copyfile(directory / DRAND_FILE, repo.drand_path)
    wallet = Wallet(repo.keystore, ADDRESS_NETWORK)
    for account in accounts:
        wallet.ensure_key(account.key)
    wallet.set_default(own)
    for miner in miners:
        if miner.id_address in node.miners:
            write_presealed(repo.sectors_path, miner, ADDRESS_NETWORK)
