"""The repo: the directory a node keeps everything in (docs/repo.md), as Lotus's fsrepo lays it out.

    repo.json      {"Version": 1, "Network": "devnet"}: marks a filpy repo and the network it is for;
                   written first when a repo is made, never changed
    repo.lock      held (flock) by the process that has the repo open; holds its PID
    config.toml    node/config.py
    datastore/     LevelDB: blocks and chain metadata
    keystore/      0700, one 0600 file per key (node/keystore.py)
    token          the admin JWT (0600), for clients on this machine
    api            the RPC multiaddr, e.g. /ip4/127.0.0.1/tcp/1234/http; present while a node runs
    sectors/       sealed sectors and their keys (node/preseal.py's layout)
    genesis.car    the genesis this repo's chain starts from
    devnet.json    what `filpy devnet` made the genesis from (node/devnet.py)
    drand.json     the drand chain info of a chain that runs its own beacon (node/beacon/setup.py)

`Repo.open(path, network=...)` makes the repo if the directory is missing or empty, refuses anything
else that is not a filpy repo of that network, and takes the lock: a second process gets RepoLocked
naming the PID that holds it. The lock is an flock, so the kernel drops it when the holder dies (even by
kill -9); a stale repo.lock file never blocks a restart. Files are written atomically (node/atomic.py).

Clients (`filpy wallet ...` talking to a running node) read `api` and `token` without opening the
repo: `read_api_info(path)`.
"""

import contextlib
import errno
import fcntl
import ipaddress
import json
import os
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Self

import structlog

from chain.params import PROFILES
from node.atomic import read_at_most, write_atomic
from node.config import Config, ConfigError, load_config, parse_host_port, write_config
from node.keystore import Keystore

REPO_VERSION: Final = 1
MARKER: Final = "repo.json"
LOCK: Final = "repo.lock"
CONFIG: Final = "config.toml"
DATASTORE: Final = "datastore"
KEYSTORE: Final = "keystore"
TOKEN: Final = "token"
API: Final = "api"
SECTORS: Final = "sectors"
GENESIS: Final = "genesis.car"
DEVNET: Final = "devnet.json"
DRAND: Final = "drand.json"
TRASH_PREFIX: Final = ".trash-"
# What reset_chain removes: the chain and everything made with it.
CHAIN_ENTRIES: Final = (DEVNET, GENESIS, DRAND, DATASTORE, SECTORS)
TOKEN_MODE: Final = 0o600
REPO_DIR_MODE: Final = 0o700
MAX_SMALL_FILE_BYTES: Final = 64 << 10

log = structlog.get_logger("repo")


class RepoError(Exception):
    """A repo that cannot be opened or used; the message names the path and says what to do."""


class RepoLocked(RepoError):
    """Another process has the repo open."""

    def __init__(self, path: Path, pid: int | None) -> None:
        holder = f"PID {pid}" if pid is not None else "a process whose PID it did not record"
        super().__init__(
            f"{path} is in use by another filpy process ({holder}): stop it first, or use another --repo"
        )
        self.pid = pid


def api_multiaddr(listen: str) -> str:
    """The `api` file's content for an RPC endpoint HOST:PORT: /ip4|ip6|dns/<host>/tcp/<port>/http."""
    host, port = parse_host_port(listen)
    try:
        version = ipaddress.ip_address(host).version
        protocol = "ip4" if version == 4 else "ip6"
    except ValueError:
        protocol = "dns"
    return f"/{protocol}/{host}/tcp/{port}/http"


def _read_small(path: Path, what: str) -> bytes | None:
    """A small file's bytes, None if it does not exist; RepoError if it cannot be read or is too big."""
    data = read_at_most(path, MAX_SMALL_FILE_BYTES + 1, RepoError, what)
    if data is not None and len(data) > MAX_SMALL_FILE_BYTES:
        raise RepoError(f"{path}: the {what} is larger than {MAX_SMALL_FILE_BYTES} bytes")
    return data


@dataclass(frozen=True, slots=True)
class ApiInfo:
    """What a client needs to reach the node that has a repo open."""

    multiaddr: str
    token: str | None


def read_api_info(path: Path) -> ApiInfo:
    """The RPC multiaddr and admin token of the node running on the repo at path (as Lotus clients read
    `api` and `token`); RepoError if no node has written its endpoint there."""
    root = Path(path).expanduser()
    api = _read_small(root / API, "api file")
    if api is None:
        raise RepoError(f"{root / API} does not exist: is a node running on the repo {root}?")
    token = _read_small(root / TOKEN, "token")
    try:
        return ApiInfo(api.decode("utf-8").strip(), None if token is None else token.decode("utf-8").strip())
    except UnicodeDecodeError:
        raise RepoError(f"{root}: the api or token file is not text") from None


class _Lock:
    """An exclusive flock on repo.lock, holding this process's PID."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RepoError(f"{path}: cannot open the lock file: {exc.strerror or exc}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            pid = self._holder()
            os.close(self._fd)
            self._fd = None
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RepoLocked(path.parent, pid) from None
            raise RepoError(f"{path}: cannot lock: {exc.strerror or exc}") from None
        # Rewritten in place: renaming a new file over it would swap the inode the lock is on.
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def _holder(self) -> int | None:
        assert self._fd is not None
        try:
            text = os.pread(self._fd, 32, 0).decode("ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return int(text) if text.isdigit() else None

    def release(self) -> None:
        if self._fd is not None:
            # The file stays: deleting it while another process waits to open it would let two
            # processes lock two different files.
            os.close(self._fd)
            self._fd = None


class _Entry:
    """A path attribute of Repo: the entry `name` of the repo's directory (the layout above)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, repo: "Repo", owner: type["Repo"]) -> Path:
        return repo.path / self.name


class Repo:
    """A repo opened (and locked) by this process. Use as a context manager, or call close()."""

    def __init__(self, path: Path, network: str, config: Config, lock: _Lock) -> None:
        self.path = path
        self.network = network
        self.config = config
        self._lock: _Lock | None = lock
        self.keystore = Keystore(self.keystore_path)

    # paths ----------------------------------------------------------------------------------------
    config_path = _Entry(CONFIG)
    datastore_path = _Entry(DATASTORE)
    keystore_path = _Entry(KEYSTORE)
    token_path = _Entry(TOKEN)
    api_path = _Entry(API)
    sectors_path = _Entry(SECTORS)
    genesis_path = _Entry(GENESIS)
    devnet_path = _Entry(DEVNET)
    drand_path = _Entry(DRAND)

    # opening --------------------------------------------------------------------------------------
    @classmethod
    def open(
        cls, path: Path | str, *, network: str, create: bool = True, config: Config | None = None
    ) -> Self:
        """Open the repo at path for network ("devnet" or "mainnet"), making it first when the
        directory is missing or empty and create is true (with config, or the network's defaults)."""
        if network not in PROFILES:
            raise RepoError(f"unknown network {network!r}: expected one of {', '.join(PROFILES)}")
        root = Path(path).expanduser().absolute()
        existing = _existing_repo_network(root)
        if existing is None:
            if not create:
                raise RepoError(f"{root} is not a filpy repo (no {MARKER}); run the daemon once to make it")
            _check_can_init(root, allow={LOCK})
        elif existing != network:
            raise RepoError(
                f"{root} is a {existing} repo, not a {network} one: use another --repo for {network}"
            )
        lock = _Lock(root / LOCK)
        try:
            if _existing_repo_network(root) is None:  # nobody made it while we took the lock
                _check_can_init(root, allow={LOCK})
                write_atomic(root / MARKER, _marker(network), 0o644)
                log.info("repo created", path=str(root), network=network)
            repo_config = _prepare(root, network, config)
        except BaseException:
            lock.release()
            raise
        return cls(root, network, repo_config, lock)

    def close(self) -> None:
        """Remove the api file (the node no longer answers there, as Lotus) and release the lock."""
        if self._lock is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.api_path.unlink()
        self._lock.release()
        self._lock = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._lock is None:
            raise RepoError(f"{self.path}: the repo was closed")

    # small files ----------------------------------------------------------------------------------
    def write_config(self, config: Config) -> None:
        self._check_open()
        write_config(self.config_path, config)
        self.config = config

    def read_token(self) -> str | None:
        data = _read_small(self.token_path, "token")
        return None if data is None else data.decode("utf-8", "replace").strip()

    def write_token(self, token: str) -> None:
        self._check_open()
        write_atomic(self.token_path, token.encode("utf-8"), TOKEN_MODE)

    def write_api(self, multiaddr: str) -> None:
        self._check_open()
        write_atomic(self.api_path, multiaddr.encode("utf-8"), 0o644)

    def read_api(self) -> str | None:
        data = _read_small(self.api_path, "api file")
        return None if data is None else data.decode("utf-8", "replace").strip()

    # resetting ------------------------------------------------------------------------------------
    def reset_chain(self) -> list[str]:
        """Remove the chain: the datastore, the genesis, the sectors and the devnet record (config,
        keystore and token stay). Each entry is first renamed into a trash directory inside the repo,
        so that a crash half-way leaves whole entries, then the trash is deleted. Symbolic links are
        removed, never followed. Returns the names removed."""
        self._check_open()
        trash = self.path / f"{TRASH_PREFIX}{secrets.token_hex(4)}"
        trash.mkdir(mode=REPO_DIR_MODE)
        removed = []
        for name in CHAIN_ENTRIES:
            entry = self.path / name
            if entry.is_symlink() or entry.exists():
                os.rename(entry, trash / name)
                removed.append(name)
        _remove_tree(trash)
        _ensure_dirs(self.path)
        log.info("chain removed", path=str(self.path), removed=removed)
        return removed


def repo_network(path: Path | str) -> str | None:
    """The network of the filpy repo at path (from its repo.json), None when there is no repo there
    yet; RepoError when path cannot be a repo or its marker is damaged. Reads without locking."""
    return _existing_repo_network(Path(path).expanduser().absolute())


def _marker(network: str) -> bytes:
    return (json.dumps({"Version": REPO_VERSION, "Network": network}) + "\n").encode()


def _existing_repo_network(root: Path) -> str | None:
    """The network of the repo at root, None if root is missing or empty-of-repo; RepoError if root
    cannot be used at all."""
    if root.is_symlink() and not root.exists():
        raise RepoError(f"{root} is a broken symbolic link")
    if root.exists() and not root.is_dir():
        raise RepoError(f"{root} is a file, not a repo directory")
    if not root.exists():
        ancestor = next(p for p in root.parents if p.exists())
        if not ancestor.is_dir():
            raise RepoError(f"{root}: {ancestor} is a file, not a directory")
        return None
    if root.exists() and not os.access(root, os.R_OK | os.W_OK | os.X_OK):
        raise RepoError(f"{root}: permission denied: the repo directory must be readable and writable by you")
    data = _read_small(root / MARKER, MARKER)
    if data is None:
        return None
    try:
        marker = json.loads(data)
    except ValueError:
        raise RepoError(f"{root / MARKER} is not valid JSON: the repo is damaged") from None
    if not isinstance(marker, dict) or not isinstance(marker.get("Version"), int):
        raise RepoError(f'{root / MARKER}: expected {{"Version": n, "Network": name}}')
    if marker["Version"] != REPO_VERSION:
        raise RepoError(
            f"{root} is a version {marker['Version']} repo; this filpy reads version {REPO_VERSION}"
        )
    network = marker.get("Network")
    if network not in PROFILES:
        raise RepoError(f"{root / MARKER}: unknown network {network!r}")
    return str(network)


def _check_can_init(root: Path, allow: frozenset[str] | set[str] = frozenset()) -> None:
    """A repo is made only in a missing or empty directory: never over someone's files."""
    try:
        root.mkdir(mode=REPO_DIR_MODE, parents=True, exist_ok=True)
        others = sorted(name for name in os.listdir(root) if name not in allow)
    except OSError as exc:
        raise RepoError(f"{root}: cannot make the repo directory: {exc.strerror or exc}") from None
    if others:
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise RepoError(
            f"{root} is not empty and is not a filpy repo (no {MARKER}; it holds {shown}): "
            "choose a new or empty directory"
        )


def _ensure_dirs(root: Path) -> None:
    for name in (DATASTORE, SECTORS):
        (root / name).mkdir(mode=0o755, exist_ok=True)


def _prepare(root: Path, network: str, config: Config | None) -> Config:
    """Complete the layout (what a crash during creation may have left out), clear old trash, and load
    the config (writing it first if missing)."""
    try:
        _ensure_dirs(root)
        Keystore.create(root / KEYSTORE)
        for entry in os.listdir(root):
            if entry.startswith(TRASH_PREFIX):
                _remove_tree(root / entry)
    except OSError as exc:
        raise RepoError(f"{root}: cannot prepare the repo: {exc.strerror or exc}") from None
    path = root / CONFIG
    if not path.exists():
        write_config(path, config if config is not None else Config.for_network(network))
    try:
        loaded = load_config(path)
    except ConfigError as exc:
        raise RepoError(str(exc)) from None
    if loaded.chain.network != network:
        raise RepoError(
            f"{path}: chain.network is {loaded.chain.network!r}, but this repo was made for {network!r}"
        )
    return loaded


def _remove_tree(path: Path) -> None:
    """Delete path (a file, a link or a directory tree) without following symbolic links."""
    info: Any = os.lstat(path)
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(path)
    else:
        path.unlink()
