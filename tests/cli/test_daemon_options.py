"""What `filpy daemon` and `filpy devnet` take from the command line and config.toml before the node
runs: --api/--listen/--bootstrap over [api] and [libp2p], [log] unless --log-level/--log-json say
otherwise, [datastore]'s LevelDB options, and the beacon a new devnet gets."""

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
import structlog

import chain.store.blockstore
from cli.daemon import configure_logs, node_config
from cli.devnet import new_devnet_beacon
from node import logs
from node.config import Config, ConfigError, DatastoreConfig, LogConfig, with_overrides
from node.devnet import NETWORK_NAME
from node.fullnode import open_chain_store
from node.genesis import build_genesis, write_genesis_car
from node.genesis_template import example_template_json, parse_template
from node.repo import Repo

PEER = "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf"
OTHER = "/ip4/127.0.0.1/tcp/4002/p2p/12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK"


def _args(**values: Any) -> argparse.Namespace:
    defaults: dict[str, Any] = {
        "api": None,
        "listen": None,
        "bootstrap": None,
        "log_level": None,
        "log_json": False,
        "beacon": None,
        "block_delay": None,
        "reset": False,
    }
    return argparse.Namespace(**{**defaults, **values})


def test_network_flags_over_the_config() -> None:
    config = with_overrides(Config(), {"libp2p.bootstrap": (PEER,)})
    assert node_config(config, _args()) is config
    got = node_config(
        config,
        _args(api="127.0.0.1:0", listen=["/ip4/127.0.0.1/tcp/4555"], bootstrap=[OTHER, PEER]),
    )
    assert got.api.listen == "127.0.0.1:0"
    assert got.libp2p.listen == ("/ip4/127.0.0.1/tcp/4555",)
    assert got.libp2p.bootstrap == (PEER, OTHER)  # added to the config's, once each
    with pytest.raises(ConfigError, match=r"libp2p.bootstrap\[1\]: .*does not end with /p2p/"):
        node_config(config, _args(bootstrap=["/ip4/127.0.0.1/tcp/1"]))
    with pytest.raises(ConfigError, match=r"libp2p.listen\[0\]: .*listen address has no /p2p/ part"):
        node_config(config, _args(listen=[PEER]))


def test_log_config_unless_flags_say_otherwise(capsys: pytest.CaptureFixture[str]) -> None:
    config = Config(log=LogConfig(level="warning", json=True))
    try:
        configure_logs(_args(), config)
        log = structlog.get_logger("test")
        log.info("not shown")
        log.warning("shown", key=1)
        lines = capsys.readouterr().err.splitlines()
        assert [json.loads(line)["event"] for line in lines] == ["shown"]
        configure_logs(_args(log_level="info"), Config())  # the flag wins over the config
        structlog.get_logger("test").info("now shown")
        assert "event='now shown'" in capsys.readouterr().err
    finally:
        logs.configure()


def test_datastore_options_reach_leveldb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    genesis = build_genesis(parse_template(json.loads(example_template_json())))
    car = tmp_path / "genesis.car"
    write_genesis_car(genesis, car)
    opened: list[dict[str, Any]] = []
    real = chain.store.blockstore.plyvel.DB

    def spy(path: str, **options: Any) -> Any:
        opened.append(options)
        return real(path, **options)

    monkeypatch.setattr(chain.store.blockstore.plyvel, "DB", spy)
    options = DatastoreConfig(cache_mb=8, write_buffer_mb=2, max_open_files=100, compression="none")
    store = open_chain_store(tmp_path / "datastore", car, options=options)
    try:
        assert store.genesis().cid() == genesis.cid
    finally:
        store.close()
    assert opened == [
        {
            "create_if_missing": True,
            "lru_cache_size": 8 << 20,
            "write_buffer_size": 2 << 20,
            "max_open_files": 100,
            "compression": None,
        }
    ]


def test_the_beacon_of_a_new_devnet(tmp_path: Path) -> None:
    with Repo.open(tmp_path / "repo", network=NETWORK_NAME) as repo:
        assert new_devnet_beacon(_args(), repo) == "drand"
        assert new_devnet_beacon(_args(block_delay=0), repo) == "mock"  # rounds follow the clock
        assert new_devnet_beacon(_args(beacon="mock"), repo) == "mock"
        repo.devnet_path.write_text("{}")
        assert new_devnet_beacon(_args(), repo) is None  # an existing devnet keeps its own
        assert new_devnet_beacon(_args(reset=True), repo) == "drand"


def test_the_daemon_sets_the_sync_gc_policy_on_its_syncer(monkeypatch: pytest.MonkeyPatch) -> None:
    """serve (cli/daemon.py) gives its sync service's syncer the collector policy (node/gcpolicy.py)
    before anything runs; stopped here at the next step, the API's secret."""
    from types import SimpleNamespace

    import cli.daemon
    from node.gcpolicy import SyncGcPolicy
    from node.network import NodeNetwork

    network = SimpleNamespace(sync=SimpleNamespace(syncer=SimpleNamespace(after_batch=None)))

    class Stop(Exception):
        pass

    def stop(repo: object) -> bytes:
        raise Stop

    monkeypatch.setattr(NodeNetwork, "open", classmethod(lambda cls, *a, **k: network))
    monkeypatch.setattr(cli.daemon, "jwt_secret", stop)
    nothing: Any = SimpleNamespace(keystore=None, libp2p=None, service=None)
    with pytest.raises(Stop):
        cli.daemon.serve("daemon", nothing, nothing, nothing, [], lambda started: None, beacon=nothing)
    hook = network.sync.syncer.after_batch
    assert isinstance(getattr(hook, "__self__", None), SyncGcPolicy)
