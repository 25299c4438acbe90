"""What `filpy devnet` needs before its chain runs: the accounts, the genesis and the miner's sectors.

The accounts are the same on every filpy devnet: account i's secp256k1 key is
`PrivateKey.derive(secp256k1, b"filpy-devnet-account-<i>")` (sha256 of that label), as Ganache and
Hardhat hand out the same well-known accounts, so that scripts and tests can name them. Their keys are
public knowledge: never send real FIL to them. Each starts with 100,000 FIL.

The genesis has those accounts and one miner, t01000, whose owner (secp256k1) and worker (BLS) keys
are derived from the seed "filpy-devnet-miner" and who holds two pre-sealed 2 KiB sectors, sealed for
real when the genesis is built (node/genesis.py, node/preseal.py). The genesis timestamp is the time
the devnet is made, so that block timestamps (genesis time + height x block delay) follow the wall
clock. Nothing else varies: the state, the sectors and the genesis ticket depend only on the template,
whose only changing field is the timestamp, which only the block header carries (tests check this).

`prepare_devnet(repo)` builds that genesis into the repo (genesis.car, sectors/, then devnet.json as
the record that it is complete), or reuses the one the repo holds, indexes the miner's pre-sealed
sectors in the repo's sector store (node/sealing/sectors.py: in place, as they are already in
sectors/; the Window PoSt scheduler proves from that store), and imports the accounts' and the miner's
keys into the repo's wallet. The record also keeps the devnet's block delay: block timestamps must be
the parent's + block delay x epochs (the consensus rule), so a chain keeps the delay it was made with
(another one asks for --reset, as another number of accounts does). `reset=True` first removes the
repo's chain (Repo.reset_chain: only inside the opened repo, which Repo.open has checked is a filpy
devnet repo).

`beacon="drand"` makes the devnet run its own drand beacon instead of Lotus's mock: a key made with
the genesis (kept in the repo's keystore), its chain info in drand.json, and the genesis's round 0 the
chain's group hash (node/beacon/setup.py). A reused devnet keeps the beacon it was made with.
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import structlog
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from chain.crypto.keys import KeyType, PrivateKey
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.store.blockstore import MemoryBlockstore
from chain.types.address import Address
from chain.types.block import BlockHeader
from node.atomic import read_at_most, write_atomic
from node.beacon.setup import BEACON_KINDS, BEACON_MOCK, BeaconSetupError, beacon_kind_of, create_drand_chain
from node.config import MAX_DEVNET_BLOCK_DELAY
from node.genesis import (
    GENESIS_BEACON_ENTRY,
    GenesisError,
    SealProgress,
    build_genesis,
    load_genesis_file,
    write_genesis_car,
)
from node.genesis_template import FIL, MINER_START_ID, GenesisTemplate, TemplateError, parse_template
from node.preseal import PresealedMiner, PresealError, read_presealed, write_presealed
from node.repo import Repo
from node.sealing.sectors import SectorStore, SectorStoreError
from node.wallet import Wallet

NETWORK_NAME: Final = "devnet"
PROFILE: Final = "devnet"
ADDRESS_NETWORK: Final = "t"
DEFAULT_ACCOUNTS: Final = 10
MAX_ACCOUNTS: Final = 500  # the template's IDs 100..999 hold them with room to spare
ACCOUNT_BALANCE: Final = 100_000 * FIL
ACCOUNT_SEED_PREFIX: Final = "filpy-devnet-account-"
MINER_KEY_SEED: Final = "filpy-devnet-miner"
MINER_SECTORS: Final = 2
MINER_SECTOR_SIZE: Final = 2048
MINER_OWNER_BALANCE: Final = 100_000 * FIL
MINER_WORKER_BALANCE: Final = 10_000 * FIL
MINER_POWER_BALANCE: Final = 1_000 * FIL
RECORD_VERSION: Final = 1
MAX_RECORD_BYTES: Final = 64 << 10

log = structlog.get_logger("devnet")


class DevnetError(Exception):
    """The devnet cannot be prepared in this repo; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class DevnetAccount:
    """A prefunded devnet account."""

    index: int
    key: PrivateKey

    @property
    def address(self) -> Address:
        return Address.of_key(self.key)

    @property
    def lotus_export(self) -> str:
        """The key as `lotus wallet export` prints it (`lotus wallet import` and filpy read it)."""
        return self.key.to_lotus_export()


def account_key(index: int) -> PrivateKey:
    return PrivateKey.derive(KeyType.SECP256K1, f"{ACCOUNT_SEED_PREFIX}{index}".encode())


def devnet_accounts(count: int) -> tuple[DevnetAccount, ...]:
    _check_count(count)
    return tuple(DevnetAccount(i, account_key(i)) for i in range(count))


def _check_count(count: int) -> None:
    if type(count) is not int or not 0 <= count <= MAX_ACCOUNTS:
        raise DevnetError(f"--accounts: expected a number of accounts in 0..{MAX_ACCOUNTS}, got {count!r}")


def _check_block_delay(seconds: int) -> None:
    if type(seconds) is not int or not 0 <= seconds <= MAX_DEVNET_BLOCK_DELAY:
        raise DevnetError(
            f"--block-delay: expected seconds in 1..{MAX_DEVNET_BLOCK_DELAY}, or 0 to mine only on demand, "
            f"got {seconds!r}"
        )


def devnet_miner_entry(miner: Address, key_seed: str) -> dict[str, Any]:
    """A genesis template's entry for a devnet miner: its balances and its pre-sealed sectors."""
    return {
        "ID": miner.to_string(ADDRESS_NETWORK),
        "KeySeed": key_seed,
        "OwnerBalance": str(MINER_OWNER_BALANCE),
        "WorkerBalance": str(MINER_WORKER_BALANCE),
        "PowerBalance": str(MINER_POWER_BALANCE),
        "SectorSize": MINER_SECTOR_SIZE,
        "Sectors": MINER_SECTORS,
    }


def genesis_template_of(
    accounts: int, timestamp: int, miners: list[dict[str, Any]], what: str
) -> GenesisTemplate:
    """A template of the devnet's profile: its funded accounts and the given miners' entries (a
    template `filpy genesis new` would accept as JSON). Built from checked values, so a template that
    does not parse is a bug (AssertionError naming what), not bad input."""
    raw: dict[str, Any] = {
        "NetworkName": NETWORK_NAME,
        "Profile": PROFILE,
        "Timestamp": timestamp,
        "Accounts": [
            {
                "Type": "account",
                "Balance": str(ACCOUNT_BALANCE),
                "Meta": {"Owner": account.address.to_string(ADDRESS_NETWORK)},
            }
            for account in devnet_accounts(accounts)
        ],
        "Miners": miners,
    }
    try:
        return parse_template(raw)
    except TemplateError as exc:
        raise AssertionError(f"the {what} template is invalid: {exc}") from exc


def devnet_template(accounts: int, timestamp: int) -> GenesisTemplate:
    """The devnet's genesis template: its accounts and one miner."""
    miner = devnet_miner_entry(Address.new_id(MINER_START_ID), MINER_KEY_SEED)
    return genesis_template_of(accounts, timestamp, [miner], "devnet")


# -- the record of a built devnet (devnet.json) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DevnetRecord:
    """devnet.json: written last when a devnet genesis is built, so its presence means the genesis
    and the sectors are complete."""

    genesis: CID
    accounts: int
    timestamp: int
    miner: Address
    block_delay: int | None = None  # None: a record from before the delay was kept (any delay goes)

    def to_bytes(self) -> bytes:
        raw: dict[str, Any] = {
            "Version": RECORD_VERSION,
            "Genesis": str(self.genesis),
            "Accounts": self.accounts,
            "Timestamp": self.timestamp,
            "Miner": self.miner.to_string(ADDRESS_NETWORK),
        }
        if self.block_delay is not None:
            raw["BlockDelay"] = self.block_delay
        return (json.dumps(raw, indent=2) + "\n").encode()

    @classmethod
    def read(cls, path: Path) -> "DevnetRecord | None":
        data = read_at_most(path, MAX_RECORD_BYTES, DevnetError)
        if data is None:
            return None
        try:
            raw = json.loads(data)
            if not isinstance(raw, dict) or raw.get("Version") != RECORD_VERSION:
                raise ValueError(f"expected a version {RECORD_VERSION} record")
            accounts, timestamp, delay = raw["Accounts"], raw["Timestamp"], raw.get("BlockDelay")
            if type(accounts) is not int or type(timestamp) is not int:
                raise ValueError("Accounts and Timestamp must be integers")
            if delay is not None and (type(delay) is not int or not 0 <= delay <= MAX_DEVNET_BLOCK_DELAY):
                raise ValueError(f"BlockDelay must be an integer in 0..{MAX_DEVNET_BLOCK_DELAY}")
            genesis, miner = CID.parse(raw["Genesis"]), Address.parse(raw["Miner"])
            return cls(genesis, accounts, timestamp, miner, delay)
        except (ValueError, KeyError, TypeError, DecodeError) as exc:
            raise DevnetError(f"{path} is damaged ({exc}): run with --reset to start over") from None


# -- preparing ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Devnet:
    """A devnet ready to run: what the daemon starts from and what `filpy devnet` prints."""

    genesis: BlockHeader
    genesis_path: Path
    miner: PresealedMiner
    accounts: tuple[DevnetAccount, ...]
    created: bool  # built now (True) or found in the repo
    block_delay: int  # seconds between epochs; 0: blocks only on demand

    @property
    def beacon(self) -> str:
        """The beacon the genesis was made for: "mock" or "drand"."""
        return beacon_kind_of(self.genesis)

    @property
    def genesis_cid(self) -> CID:
        return self.genesis.cid()

    @property
    def miner_address(self) -> Address:
        return self.miner.id_address

    @property
    def genesis_timestamp(self) -> int:
        return self.genesis.timestamp


def prepare_devnet(
    repo: Repo,
    *,
    accounts: int | None = None,
    reset: bool = False,
    progress: SealProgress | None = None,
    clock: Callable[[], float] = time.time,
    beacon: str | None = None,
    block_delay: int | None = None,
) -> Devnet:
    """Build or reuse the devnet genesis in repo and put the devnet's keys in its wallet.

    accounts: how many prefunded accounts a new genesis gets (None: DEFAULT_ACCOUNTS, or what the repo's
    accounts: how many prefunded accounts a new genesis gets (None: DEFAULT_ACCOUNTS, or what the repo's
    devnet has); block_delay: the seconds between its epochs (None: the repo config's chain.block_delay
    for a new devnet, what the repo's devnet has otherwise). Asking an existing devnet for another
    number of accounts or another delay is an error that suggests --reset. progress is called as
    sectors are sealed; clock gives the genesis timestamp. beacon: "mock" or "drand" for a new genesis
    (None: the mock, or what the repo's devnet runs).
    """
    if repo.network != PROFILE:
        raise DevnetError(f"{repo.path} is a {repo.network} repo; a devnet needs a devnet repo")
    if beacon is not None and beacon not in BEACON_KINDS:
        raise DevnetError(f"--beacon: expected one of {', '.join(BEACON_KINDS)}, got {beacon!r}")
    if accounts is not None:
        _check_count(accounts)
    if block_delay is not None:
        _check_block_delay(block_delay)
    if reset:
        repo.reset_chain()
    record = DevnetRecord.read(repo.devnet_path)
    if record is None:
        kind = BEACON_MOCK if beacon is None else beacon
        delay = repo.config.chain.block_delay if block_delay is None else block_delay
        devnet = _build(
            repo, DEFAULT_ACCOUNTS if accounts is None else accounts, progress, clock, kind, delay
        )
    else:
        if accounts is not None and accounts != record.accounts:
            raise DevnetError(
                f"the devnet in {repo.path} has {record.accounts} accounts, not {accounts}: run without "
                "--accounts to resume it, or with --reset to start a new devnet"
            )
        if block_delay is not None and record.block_delay is not None and block_delay != record.block_delay:
            raise DevnetError(
                f"the devnet in {repo.path} was made with --block-delay {record.block_delay}, not "
                f"{block_delay} (its blocks' timestamps follow its delay): run without --block-delay to "
                "resume it, or with --reset to start a new devnet"
            )
        devnet = _reuse(repo, record, block_delay)
        if beacon is not None and beacon != devnet.beacon:
            raise DevnetError(
                f"the devnet in {repo.path} runs the {devnet.beacon} beacon, not {beacon}: run without "
                "--beacon to resume it, or with --reset to start a new devnet"
            )
    _index_sectors(repo, devnet)
    _import_keys(repo, devnet)
    return devnet


def _build(
    repo: Repo,
    accounts: int,
    progress: SealProgress | None,
    clock: Callable[[], float],
    beacon: str,
    block_delay: int,
) -> Devnet:
    if _has_chain_data(repo.datastore_path):
        raise DevnetError(
            f"{repo.datastore_path} holds a chain but the repo has no complete devnet genesis "
            "(no devnet.json): run with --reset to start over"
        )
    timestamp = int(clock())
    template = devnet_template(accounts, timestamp)
    log.info(
        "building the devnet genesis",
        accounts=accounts,
        sectors=MINER_SECTORS,
        timestamp=timestamp,
        beacon=beacon,
    )
    began = time.monotonic()
    try:
        round_zero = GENESIS_BEACON_ENTRY
        if beacon != BEACON_MOCK:
            period = block_delay  # the drand rounds follow the epochs
            round_zero = create_drand_chain(
                repo.keystore, repo.drand_path, genesis_time=timestamp, period=period
            ).genesis_entry
        genesis = build_genesis(template, progress=progress, beacon_entry=round_zero)
        (miner,) = genesis.miners
        write_presealed(repo.sectors_path, miner, ADDRESS_NETWORK)
        write_genesis_car(genesis, repo.genesis_path)
    except (GenesisError, BeaconSetupError) as exc:
        raise DevnetError(f"building the devnet genesis failed: {exc}") from None
    except OSError as exc:
        raise DevnetError(f"writing the devnet genesis into {repo.path} failed: {exc}") from None
    record = DevnetRecord(genesis.cid, accounts, timestamp, miner.id_address, block_delay)
    write_atomic(repo.devnet_path, record.to_bytes())
    log.info(
        "devnet genesis built",
        genesis=str(genesis.cid),
        miner=miner.id_address.to_string(ADDRESS_NETWORK),
        seconds=round(time.monotonic() - began, 2),
    )
    return Devnet(
        genesis.header,
        repo.genesis_path,
        miner,
        devnet_accounts(accounts),
        created=True,
        block_delay=block_delay,
    )


def _reuse(repo: Repo, record: DevnetRecord, block_delay: int | None) -> Devnet:
    try:
        header = load_genesis_file(MemoryBlockstore(), repo.genesis_path)
        miner = read_presealed(repo.sectors_path, record.miner, ADDRESS_NETWORK)
    except (GenesisError, PresealError) as exc:
        raise DevnetError(
            f"the devnet in {repo.path} is damaged ({exc}): run with --reset to start over"
        ) from None
    if header.cid() != record.genesis:
        raise DevnetError(
            f"{repo.genesis_path} is genesis {header.cid()}, but {repo.devnet_path} records "
            f"{record.genesis}: run with --reset to start over"
        )
    delay = record.block_delay
    if delay is None:
        delay = repo.config.chain.block_delay if block_delay is None else block_delay
    log.info("reusing the devnet genesis", genesis=str(record.genesis), accounts=record.accounts)
    return Devnet(
        header, repo.genesis_path, miner, devnet_accounts(record.accounts), created=False, block_delay=delay
    )


def _has_chain_data(datastore: Path) -> bool:
    try:
        return any(datastore.iterdir())
    except FileNotFoundError:
        return False


def _index_sectors(repo: Repo, devnet: Devnet) -> None:
    """The miner's pre-sealed sectors in the repo's sector store (once: a later start finds them there,
    whatever has happened to their files since, which the store's check reports as faults)."""
    try:
        store = SectorStore.open(repo.sectors_path)
        if not all(store.has(devnet.miner_address, s.number) for s in devnet.miner.sectors):
            store.import_presealed(repo.sectors_path, devnet.miner_address, ADDRESS_NETWORK)
    except (SectorStoreError, PresealError, OSError) as exc:
        raise DevnetError(
            f"the sector store in {repo.sectors_path} is damaged ({exc}): run with --reset to start over"
        ) from None


def _import_keys(repo: Repo, devnet: Devnet) -> None:
    """Accounts', owner's and worker's keys into the wallet (those already there are left as they are);
    account 0 (else the owner) becomes the default address if there is none."""
    wallet = Wallet(repo.keystore, ADDRESS_NETWORK)
    keys = [account.key for account in devnet.accounts] + [devnet.miner.owner_key, devnet.miner.worker_key]
    for key in keys:
        wallet.ensure_key(key)
    if wallet.default() is None:
        wallet.set_default(Address.of_key(keys[0]))


# -- a progress bar for sealing ---------------------------------------------------------------------


class RichSealProgress:
    """A rich progress bar for the sectors sealed while a genesis is built (on stderr by default):

    with RichSealProgress() as progress:
        prepare_devnet(repo, progress=progress)
    """

    def __init__(self, console: Console | None = None, description: str = "sealing genesis sectors") -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console or Console(stderr=True),
        )
        self._task = self._progress.add_task(description, total=None)
        self._shown = False

    def __call__(self, sealed: int, total: int) -> None:
        if not self._shown:  # shown from the first sector on: a reused genesis seals nothing
            self._progress.start()
            self._shown = True
        self._progress.update(self._task, completed=sealed, total=total)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._shown:
            self._progress.stop()
