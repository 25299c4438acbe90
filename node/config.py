"""The node's configuration: `<repo>/config.toml`, declared once below as frozen dataclasses.

Each section is a dataclass whose fields are the section's keys; `setting(default, doc, check)` gives a
key its default, the comment written above it in config.toml, and the check of its value. From that one
declaration come:

- `load_config(path)` / `parse_config(text)`: strict reading (tomllib). An unknown section or key, a
  value of the wrong type or a bad value raises ConfigError naming the key path (`api.listen`), what was
  expected and what was found. A key left out takes its default.
- `render_config(config)`: the TOML text, every key with its comment (values written by tomli-w, so
  strings are escaped as TOML wants). `config.example.toml` at the top of the tree is
  `render_config(Config())`, and a test keeps it so.
- `with_overrides(config, {"api.listen": "127.0.0.1:2345"})`: command-line flags on top of the file,
  through the same checks.

Writing is atomic (node/atomic.py): a crash leaves the old config.toml or the new one.
"""

import dataclasses
import ipaddress
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Self

import tomli_w
from multiaddr import Multiaddr

from chain.params import PROFILES
from chain.types.address import Address
from node.atomic import read_existing, write_atomic

MAX_CONFIG_BYTES: Final = 1 << 20
# chain.block_delay: Lotus devnets run down to 1 s; 0 means "mine only on demand" (filpy devnet).
MAX_DEVNET_BLOCK_DELAY: Final = 30
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
COMPRESSIONS: Final = ("snappy", "none")

Check = Callable[[Any], str | None]  # returns what is wrong with a value, or None


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file, the key path and the problem."""


def setting(default: Any, doc: str, check: Check | None = None) -> Any:
    """A config key: its default, the comment written above it, and the check of its value."""
    return field(default=default, metadata={"doc": doc, "check": check})


# -- value checks -------------------------------------------------------------------------------------


def parse_host_port(text: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 hosts in brackets) -> (host, port); ValueError saying what is wrong."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected HOST:PORT (e.g. 127.0.0.1:1234), got {text!r}")
    if not port_text.isascii() or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"port {port_text!r} in {text!r} is not a number in 0..65535")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"{host!r} in {text!r} is not an IPv6 address") from None
        return host[1:-1], int(port_text)
    if ":" in host:
        raise ValueError(f"write an IPv6 host in brackets: [{host}]:{port_text}")
    labels = host.split(".")
    if not all(label and label.isascii() and label.replace("-", "").isalnum() for label in labels):
        raise ValueError(f"{host!r} in {text!r} is not a host name or IP address")
    return host, int(port_text)


def _listen_address(value: str) -> str | None:
    try:
        parse_host_port(value)
    except ValueError as exc:
        return str(exc)
    return None


def _one_of(*choices: str) -> Check:
    def check(value: str) -> str | None:
        if value in choices:
            return None
        return f"expected one of {', '.join(repr(c) for c in choices)}, got {value!r}"

    return check


def _between(low: int, high: int, unit: str = "") -> Check:
    def check(value: int) -> str | None:
        if low <= value <= high:
            return None
        return f"{value}{unit} is outside {low}..{high}{unit}"

    return check


def _multiaddr(text: str, *, peer: bool) -> str | None:
    if not text:
        return "an empty multiaddr"
    try:
        address = Multiaddr(text)
    except ValueError as exc:
        return f"{text!r} is not a multiaddr: {exc}"
    names = [p.name for p in address.protocols()]
    if peer and names[-1:] != ["p2p"]:
        return f"{text!r} does not end with /p2p/<peer ID>: a bootstrap peer must say who it is"
    if not peer and "p2p" in names:
        return f"{text!r} is a peer's address; a listen address has no /p2p/ part"
    return None


def _multiaddrs(*, peer: bool) -> Check:
    def check(values: tuple[str, ...]) -> str | None:
        for i, text in enumerate(values):
            problem = _multiaddr(text, peer=peer)
            if problem is not None:
                return f"[{i}]: {problem}"
        return None

    return check


# -- the declaration ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainConfig:
    """[chain]"""

    network: str = setting(
        "devnet",
        'network profile (chain/params.py): "devnet" (t addresses, 2 KiB sectors, short proving '
        'periods) or "mainnet"',
        _one_of(*PROFILES),
    )
    block_delay: int = setting(
        4,
        "seconds between epochs: block timestamps are genesis time + height x block_delay. On a devnet "
        f"1..{MAX_DEVNET_BLOCK_DELAY}, or 0 to mine only on demand; mainnet's is 30",
        _between(0, MAX_DEVNET_BLOCK_DELAY, " s"),
    )


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """[api]"""

    listen: str = setting(
        "127.0.0.1:1234",
        "JSON-RPC endpoint, HOST:PORT (HTTP POST and WebSocket on /rpc/v0 and /rpc/v1)",
        _listen_address,
    )
    max_request_bytes: int = setting(
        10 << 20,
        "largest request body the RPC server reads, in bytes",
        _between(1 << 10, 1 << 30, " bytes"),
    )


@dataclass(frozen=True, slots=True)
class DatastoreConfig:
    """[datastore]"""

    cache_mb: int = setting(64, "LevelDB block cache, in MiB", _between(1, 1 << 16, " MiB"))
    write_buffer_mb: int = setting(
        16, "LevelDB write buffer (memtable) size, in MiB", _between(1, 1 << 10, " MiB")
    )
    max_open_files: int = setting(
        512, "table files LevelDB keeps open at once", _between(64, 1 << 16, " files")
    )
    compression: str = setting("snappy", 'block compression: "snappy" or "none"', _one_of(*COMPRESSIONS))
    sync_writes: bool = setting(
        False,
        "wait for the disk on every write: survives an operating-system crash or power loss, at a cost "
        "in speed (a crash of the node alone loses nothing either way)",
    )

    def leveldb_options(self) -> dict[str, Any]:
        """Keyword arguments for plyvel.DB."""
        return {
            "lru_cache_size": self.cache_mb << 20,
            "write_buffer_size": self.write_buffer_mb << 20,
            "max_open_files": self.max_open_files,
            "compression": None if self.compression == "none" else self.compression,
        }


@dataclass(frozen=True, slots=True)
class Libp2pConfig:
    """[libp2p]"""

    listen: tuple[str, ...] = setting(
        ("/ip4/127.0.0.1/tcp/0",),
        "multiaddrs the libp2p host listens on (tcp/0: a free port)",
        _multiaddrs(peer=False),
    )
    bootstrap: tuple[str, ...] = setting(
        (),
        "peers to connect to at start, as multiaddrs ending with /p2p/<peer ID>",
        _multiaddrs(peer=True),
    )


@dataclass(frozen=True, slots=True)
class MarketsConfig:
    """[markets]"""

    listen: tuple[str, ...] = setting(
        (),
        "multiaddrs the storage provider's own libp2p host listens on (a node that serves a miner "
        "takes deals on a host of its own, as a lotus-miner beside its full node); empty: a free port "
        "of each IP that [libp2p] listen names",
        _multiaddrs(peer=False),
    )
    announce: tuple[str, ...] = setting(
        (),
        "multiaddrs announced on chain as the provider's (its miner's Multiaddrs, which clients dial), "
        "e.g. the public address of a port forwarded to a listen address; empty: the addresses it "
        "listens on",
        _multiaddrs(peer=False),
    )


@dataclass(frozen=True, slots=True)
class MiningConfig:
    """[mining]"""

    enabled: bool = setting(
        False, "mine blocks with the miners whose keys are in the keystore (filpy devnet turns it on)"
    )


def _wallet_address(text: str) -> str | None:
    if not text:
        return None
    try:
        Address.parse(text)
    except ValueError as exc:
        return f"{text!r} is not an address: {exc}"
    return None


@dataclass(frozen=True, slots=True)
class SlasherConfig:
    """[slasher]"""

    enabled: bool = setting(
        False,
        "watch the blocks this node receives and makes for consensus faults (double-fork mining, "
        "time-offset mining, parent grinding) and report them with ReportConsensusFault, as Lotus's "
        "consensus fault reporter; each report costs gas and earns the reporter a share of the penalty",
    )
    address: str = setting(
        "",
        "wallet address that sends the reports (pays their gas, receives the rewards); empty: the "
        "wallet's default address",
        _wallet_address,
    )


@dataclass(frozen=True, slots=True)
class LogConfig:
    """[log]"""

    level: str = setting(
        "info", 'least severe level logged: "debug", "info", "warning" or "error"', _one_of(*LOG_LEVELS)
    )
    json: bool = setting(False, "JSON lines instead of key=value lines")


@dataclass(frozen=True, slots=True)
class Config:
    """The whole config.toml: one field per section."""

    chain: ChainConfig = field(default_factory=ChainConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    datastore: DatastoreConfig = field(default_factory=DatastoreConfig)
    libp2p: Libp2pConfig = field(default_factory=Libp2pConfig)
    markets: MarketsConfig = field(default_factory=MarketsConfig)
    mining: MiningConfig = field(default_factory=MiningConfig)
    slasher: SlasherConfig = field(default_factory=SlasherConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def __post_init__(self) -> None:
        problem = _whole_config_problem(self)
        if problem is not None:
            raise ConfigError(problem)

    @classmethod
    def for_network(cls, network: str) -> Self:
        """The defaults for a network profile (mainnet's block delay is its own)."""
        if network not in PROFILES:
            raise ConfigError(f"chain.network: {_one_of(*PROFILES)(network)}")
        chain = ChainConfig(network=network, block_delay=PROFILES[network].block_delay_secs)
        return cls(chain=chain)


def _whole_config_problem(config: Config) -> str | None:
    """Rules across keys."""
    chain = config.chain
    if chain.network == "mainnet" and chain.block_delay != PROFILES["mainnet"].block_delay_secs:
        return (
            f"chain.block_delay: mainnet's block delay is {PROFILES['mainnet'].block_delay_secs} s, "
            f"not {chain.block_delay}"
        )
    return None


CONFIG_HEADER: Final = """\
# filpy node configuration (<repo>/config.toml; docs/repo.md describes every key).
# Values shown are the defaults; a key left out takes its default, an unknown key is an error.
"""


# -- reading ------------------------------------------------------------------------------------------


def _sections() -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(Config)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


# A TOML value's kind in words; bool comes before int, which isinstance counts it as.
_KINDS: Final = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a float"),
    (str, "a string"),
    (list, "an array"),
    (dict, "a table"),
)


def _kind(value: Any) -> str:
    return next((name for kind, name in _KINDS if isinstance(value, kind)), type(value).__name__)


_EXPECTED: Final = {bool: "true or false", int: "an integer", str: "a string"}
_PLURAL: Final = {bool: "booleans", int: "integers", str: "strings"}


def _convert(hint: Any, raw: Any, key: str) -> Any:
    """The value of a key from its TOML value, or ConfigError."""
    if hint is bool or hint is str:
        if type(raw) is not hint:
            raise ConfigError(f"{key}: expected {_EXPECTED[hint]}, got {_kind(raw)} {raw!r}")
        return raw
    if hint is int:
        if type(raw) is not int:  # bool is an int to Python, not to TOML
            raise ConfigError(f"{key}: expected an integer, got {_kind(raw)} {raw!r}")
        return raw
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(raw, list):
            raise ConfigError(f"{key}: expected an array of {_PLURAL[item]}, got {_kind(raw)} {raw!r}")
        return tuple(_convert(item, value, f"{key}[{i}]") for i, value in enumerate(raw))
    raise TypeError(f"{key}: config keys of type {hint} are not supported")  # a declaration mistake


def _check(f: dataclasses.Field[Any], value: Any, key: str) -> None:
    check: Check | None = f.metadata.get("check")
    problem = None if check is None else check(value)
    if problem is not None:
        separator = "" if problem.startswith("[") else ": "
        raise ConfigError(f"{key}{separator}{problem}")


def _section(cls: type, raw: Any, name: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: expected a table [{name}], got {_kind(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            known = ", ".join(fields)
            raise ConfigError(f"{name}.{key}: unknown key (keys of [{name}]: {known})")
    hints = _hints(cls)
    values = {}
    for key, value in raw.items():
        path = f"{name}.{key}"
        converted = _convert(hints[key], value, path)
        _check(fields[key], converted, path)
        values[key] = converted
    return cls(**values)


def config_from_dict(raw: Mapping[str, Any]) -> Config:
    """A Config from decoded TOML; ConfigError naming the first bad key."""
    sections = {f.name: f for f in _sections()}
    for name in raw:
        if name not in sections:
            raise ConfigError(f"{name}: unknown section (sections: {', '.join(sections)})")
    hints = _hints(Config)
    return Config(**{name: _section(hints[name], value, name) for name, value in raw.items()})


def parse_config(text: str) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}") from None
    return config_from_dict(raw)


def load_config(path: Path) -> Config:
    """Read and check a config file; ConfigError names the file and the key."""
    path = Path(path)
    data = read_existing(path, MAX_CONFIG_BYTES + 1, ConfigError, "config")
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: more than {MAX_CONFIG_BYTES} bytes; not a config file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: {exc}") from None
    try:
        return parse_config(text)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


# -- overrides ----------------------------------------------------------------------------------------


def with_overrides(config: Config, overrides: Mapping[str, Any]) -> Config:
    """config with some keys replaced ({"section.key": value}), each checked as if read from the file."""
    sections = {f.name: f for f in _sections()}
    hints = _hints(Config)
    changed: dict[str, dict[str, Any]] = {}
    for path, value in overrides.items():
        name, _, key = path.partition(".")
        if name not in sections:
            raise ConfigError(f"{path}: unknown section {name!r}")
        fields = {f.name: f for f in dataclasses.fields(hints[name])}
        if key not in fields:
            raise ConfigError(f"{path}: unknown key (keys of [{name}]: {', '.join(fields)})")
        raw = list(value) if isinstance(value, tuple) else value
        converted = _convert(_hints(hints[name])[key], raw, path)
        _check(fields[key], converted, path)
        changed.setdefault(name, {})[key] = converted
    return dataclasses.replace(
        config,
        **{name: dataclasses.replace(getattr(config, name), **keys) for name, keys in changed.items()},
    )


# -- writing ------------------------------------------------------------------------------------------


def _comment(doc: str, width: int = 100) -> list[str]:
    lines: list[str] = []
    line = "#"
    for word in doc.split():
        if len(line) + 1 + len(word) > width:
            lines.append(line)
            line = "#"
        line = f"{line} {word}"
    lines.append(line)
    return lines


def _toml_value(key: str, value: Any) -> str:
    """One `key = value` line (arrays on one line), written by tomli-w for correct escaping."""
    if isinstance(value, tuple):
        items = [tomli_w.dumps({"v": item}).strip().removeprefix("v = ") for item in value]
        return f"{key} = [{', '.join(items)}]"
    return tomli_w.dumps({key: value}).strip()


def render_config(config: Config) -> str:
    """config as TOML, each key under its comment: what config.toml and config.example.toml hold."""
    out = [CONFIG_HEADER]
    for section in _sections():
        values = getattr(config, section.name)
        out.append(f"[{section.name}]")
        for f in dataclasses.fields(values):
            out.extend(_comment(f.metadata["doc"]))
            out.append(_toml_value(f.name, getattr(values, f.name)))
        out.append("")
    return "\n".join(out)


def write_config(path: Path, config: Config) -> None:
    """Write config atomically: a crash leaves the old file or the new one, never a torn one."""
    write_atomic(Path(path), render_config(config).encode("utf-8"), 0o644)
