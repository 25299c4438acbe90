"""config.toml: the example in sync with the declaration, strict reading (each bad input with its
message), overrides, and atomic writes that a crash cannot tear."""

import dataclasses
import os
import re
from pathlib import Path

import pytest

from node.config import (
    Config,
    ConfigError,
    load_config,
    parse_config,
    parse_host_port,
    render_config,
    with_overrides,
    write_config,
)
from tests.node.crash import kill_while_writing
from tests.paths import ROOT

EXAMPLE = ROOT / "config.example.toml"
PEER = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"


def test_example_loads_and_is_the_defaults() -> None:
    assert load_config(EXAMPLE) == Config()
    # and it is exactly what the node writes, so comments cannot drift from the declaration either
    assert EXAMPLE.read_text() == render_config(Config())


def test_every_key_has_a_comment_in_the_rendered_file() -> None:
    text = render_config(Config())
    lines = text.splitlines()
    for section in dataclasses.fields(Config):
        assert f"[{section.name}]" in lines
        for key in dataclasses.fields(getattr(Config(), section.name)):
            index = next(i for i, line in enumerate(lines) if line.startswith(f"{key.name} = "))
            assert lines[index - 1].startswith("# "), key.name


def test_changed_values_round_trip() -> None:
    config = with_overrides(
        Config(),
        {
            "chain.block_delay": 1,
            "api.listen": "[::1]:2345",
            "datastore.compression": "none",
            "datastore.sync_writes": True,
            "libp2p.listen": ("/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4001"),
            "libp2p.bootstrap": (f"/ip4/10.0.0.1/tcp/4001/p2p/{PEER}", f"/dns4/a.example/tcp/1/p2p/{PEER}"),
            "markets.listen": ("/ip4/127.0.0.1/tcp/24001",),
            "markets.announce": ("/ip4/203.0.113.7/tcp/4001", "/dns4/provider.example/tcp/4001"),
            "mining.enabled": True,
            "log.level": "debug",
            "log.json": True,
        },
    )
    assert parse_config(render_config(config)) == config
    assert config.api.listen == "[::1]:2345" and config.libp2p.listen[1] == "/ip6/::/tcp/4001"


def test_keys_left_out_take_their_defaults() -> None:
    assert parse_config("") == Config()
    config = parse_config('[api]\nlisten = "0.0.0.0:1234"\n')
    assert config.api.listen == "0.0.0.0:1234"
    assert config.api.max_request_bytes == Config().api.max_request_bytes
    assert config.chain == Config().chain


def test_mainnet_defaults() -> None:
    config = Config.for_network("mainnet")
    assert (config.chain.network, config.chain.block_delay) == ("mainnet", 30)
    assert parse_config(render_config(config)) == config
    with pytest.raises(
        ConfigError, match=re.escape("chain.network: expected one of 'mainnet', 'devnet', got 'moon'")
    ):
        Config.for_network("moon")


def test_leveldb_options() -> None:
    options = with_overrides(Config(), {"datastore.compression": "none"}).datastore.leveldb_options()
    assert options == {
        "lru_cache_size": 64 << 20,
        "write_buffer_size": 16 << 20,
        "max_open_files": 512,
        "compression": None,
    }
    assert Config().datastore.leveldb_options()["compression"] == "snappy"


BAD_CONFIGS = [
    ("[chain\n", "not valid TOML"),
    (
        "listen = 1\n",
        "listen: unknown section (sections: chain, api, datastore, libp2p, markets, mining, slasher, log)",
    ),
    ("[Api]\n", "Api: unknown section"),
    ("api = 3\n", "api: expected a table [api], got an integer"),
    ("[api]\nlisten_address = 'x'\n", "api.listen_address: unknown key (keys of [api]: listen, max_req"),
    ("[api]\nlisten = 1234\n", "api.listen: expected a string, got an integer 1234"),
    ("[api]\nlisten = '127.0.0.1'\n", "api.listen: expected HOST:PORT (e.g. 127.0.0.1:1234), got '127."),
    ("[api]\nlisten = 'h:65536'\n", "api.listen: port '65536' in 'h:65536' is not a number in 0..65535"),
    ("[api]\nlisten = '::1:1234'\n", "api.listen: write an IPv6 host in brackets: [::1]:1234"),
    ("[api]\nlisten = '[zz]:1'\n", "api.listen: '[zz]' in '[zz]:1' is not an IPv6 address"),
    ("[api]\nlisten = 'a b:1'\n", "api.listen: 'a b' in 'a b:1' is not a host name or IP address"),
    ("[api]\nmax_request_bytes = 10\n", "api.max_request_bytes: 10 bytes is outside 1024..1073741824 bytes"),
    ("[api]\nmax_request_bytes = 1.5\n", "api.max_request_bytes: expected an integer, got a float 1.5"),
    ("[chain]\nnetwork = 'calib'\n", "chain.network: expected one of 'mainnet', 'devnet', got 'calib'"),
    ("[chain]\nblock_delay = 31\n", "chain.block_delay: 31 s is outside 0..30 s"),
    ("[chain]\nblock_delay = -1\n", "chain.block_delay: -1 s is outside 0..30 s"),
    ("[chain]\nblock_delay = true\n", "chain.block_delay: expected an integer, got a boolean True"),
    ("[chain]\nblock_delay = '4'\n", "chain.block_delay: expected an integer, got a string '4'"),
    ("[chain]\nnetwork = 'mainnet'\n", "chain.block_delay: mainnet's block delay is 30 s, not 4"),
    ("[mining]\nenabled = 'yes'\n", "mining.enabled: expected true or false, got a string 'yes'"),
    ("[mining]\nenabled = 1\n", "mining.enabled: expected true or false, got an integer 1"),
    ("[log]\nlevel = 'trace'\n", "log.level: expected one of 'debug', 'info', 'warning', 'error', got"),
    ("[datastore]\ncompression = 'zstd'\n", "datastore.compression: expected one of 'snappy', 'none'"),
    ("[datastore]\ncache_mb = 0\n", "datastore.cache_mb: 0 MiB is outside 1..65536 MiB"),
    ("[libp2p]\nlisten = '/ip4/0.0.0.0/tcp/1'\n", "libp2p.listen: expected an array of strings, got a"),
    ("[libp2p]\nlisten = [1]\n", "libp2p.listen[0]: expected a string, got an integer 1"),
    ("[libp2p]\nlisten = ['']\n", "libp2p.listen[0]: an empty multiaddr"),
    ("[libp2p]\nlisten = ['/ip4/1.2.3.4/tcp/1', 'x']\n", "libp2p.listen[1]: 'x' is not a multiaddr"),
    (f"[libp2p]\nlisten = ['/ip4/1.2.3.4/tcp/1/p2p/{PEER}']\n", "is a peer's address; a listen address has"),
    (
        "[libp2p]\nbootstrap = ['/ip4/1.2.3.4/tcp/1']\n",
        "libp2p.bootstrap[0]: '/ip4/1.2.3.4/tcp/1' does not end",
    ),
    (
        "[libp2p]\nbootstrap = ['/ip4/300.0.0.1/tcp/1']\n",
        "bootstrap[0]: '/ip4/300.0.0.1/tcp/1' is not a multiaddr",
    ),
    (
        "[markets]\nlisten = ['/ip4/1.2.3.4/tcp/x']\n",
        "markets.listen[0]: '/ip4/1.2.3.4/tcp/x' is not a multiaddr",
    ),
    (
        f"[markets]\nannounce = ['/ip4/1.2.3.4/tcp/1/p2p/{PEER}']\n",
        "markets.announce[0]: '/ip4/1.2.3.4/tcp/1/p2p/",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_CONFIGS)
def test_bad_config_is_refused_with_the_key_and_the_reason(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert message in str(caught.value)


def test_errors_from_a_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[api]\nlisten = 7\n")
    with pytest.raises(ConfigError, match=rf"^{path}: api.listen: expected a string"):
        load_config(path)
    path.write_bytes(b"[api]\nlisten = '\xff'\n")
    with pytest.raises(ConfigError, match=rf"^{path}: not UTF-8 text"):
        load_config(path)
    path.write_bytes(b"#" * (1 << 20) + b"\n")
    with pytest.raises(ConfigError, match="more than 1048576 bytes; not a config file"):
        load_config(path)
    with pytest.raises(
        ConfigError, match=rf"^{tmp_path / 'missing.toml'}: cannot read the config: No such file"
    ):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match=rf"^{tmp_path}: cannot read the config: Is a directory"):
        load_config(tmp_path)


def test_overrides_are_checked_like_the_file() -> None:
    assert with_overrides(Config(), {"chain.block_delay": 0}).chain.block_delay == 0
    assert with_overrides(Config(), {}) == Config()
    with pytest.raises(ConfigError, match=re.escape("chain.block_delay: 99 s is outside 0..30 s")):
        with_overrides(Config(), {"chain.block_delay": 99})
    with pytest.raises(ConfigError, match=re.escape("api.listen: expected HOST:PORT")):
        with_overrides(Config(), {"api.listen": "nowhere"})
    with pytest.raises(ConfigError, match=re.escape("apis.listen: unknown section 'apis'")):
        with_overrides(Config(), {"apis.listen": "127.0.0.1:1"})
    with pytest.raises(ConfigError, match=r"api.port: unknown key \(keys of \[api\]"):
        with_overrides(Config(), {"api.port": 1})
    with pytest.raises(ConfigError, match=re.escape("chain.block_delay: mainnet's block delay is 30 s")):
        with_overrides(Config(), {"chain.network": "mainnet"})


def test_host_port() -> None:
    assert parse_host_port("127.0.0.1:1234") == ("127.0.0.1", 1234)
    assert parse_host_port("[::1]:0") == ("::1", 0)
    assert parse_host_port("node-1.example:80") == ("node-1.example", 80)
    for bad in (":1234", "1234", "host:", "host:-1", "host:١٢"):
        with pytest.raises(ValueError):
            parse_host_port(bad)


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    write_config(path, Config())
    first = path.read_bytes()
    changed = with_overrides(Config(), {"api.listen": "127.0.0.1:9999"})
    write_config(path, changed)
    assert load_config(path) == changed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]
    assert first != path.read_bytes()


def test_a_failed_write_keeps_the_old_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.toml"
    write_config(path, Config())

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_config(path, with_overrides(Config(), {"api.listen": "127.0.0.1:9"}))
    monkeypatch.undo()
    assert load_config(path) == Config()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


# A process that rewrites the config as fast as it can, alternating two versions, until killed.
_REWRITER = """
import sys
from pathlib import Path
from node.config import Config, with_overrides, write_config
path = Path(sys.argv[1])
versions = [Config(), with_overrides(Config(), {"api.listen": "127.0.0.1:5555", "log.level": "debug"})]
print("ready", flush=True)
i = 0
while True:
    write_config(path, versions[i % 2])
    i += 1
"""


def test_kill_9_while_writing_never_leaves_a_torn_config(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    write_config(path, Config())
    valid = {Config(), with_overrides(Config(), {"api.listen": "127.0.0.1:5555", "log.level": "debug"})}
    for delay in (0.05, 0.1, 0.2):
        kill_while_writing(_REWRITER, str(path), delay)
        assert load_config(path) in valid
