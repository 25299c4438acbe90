"""The repo: layout and modes, one process per repo (the PID named, released by kill -9), refusals of
paths that are not a repo of this network (each with its message), crash-safe creation and reset."""

import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.config import Config, with_overrides, write_config
from node.keystore import KeyInfo
from node.repo import ApiInfo, Repo, RepoError, RepoLocked, api_multiaddr, read_api_info
from tests.processes import python_child


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    with Repo.open(tmp_path / "repo", network="devnet") as opened:
        yield opened


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# What a new repo holds, sorted.
NEW_REPO = ["config.toml", "datastore", "keystore", "repo.json", "repo.lock", "sectors"]


def test_a_new_repo_has_the_layout(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b"  # parents are made too
    with Repo.open(path, network="devnet") as repo:
        assert repo.path == path and repo.network == "devnet" and repo.config == Config()
        assert sorted(p.name for p in path.iterdir()) == NEW_REPO
        assert json.loads((path / "repo.json").read_text()) == {"Version": 1, "Network": "devnet"}
        assert mode(path) == 0o700 and mode(path / "keystore") == 0o700
        assert (path / "config.toml").read_text().startswith("# filpy node configuration")
        assert (path / "repo.lock").read_text() == f"{os.getpid()}\n"


def test_mainnet_repo_gets_mainnet_defaults(tmp_path: Path) -> None:
    with Repo.open(tmp_path / "main", network="mainnet") as repo:
        assert repo.config.chain.network == "mainnet" and repo.config.chain.block_delay == 30


def test_reopen_keeps_config_and_keys(tmp_path: Path) -> None:
    path = tmp_path / "repo"
    custom = with_overrides(Config(), {"api.listen": "127.0.0.1:4321"})
    with Repo.open(path, network="devnet", config=custom) as repo:
        repo.keystore.put("libp2p-host", KeyInfo(type="libp2p-host", private_key=b"k" * 32))
        repo.write_token("header.payload.signature")
    with Repo.open(path, network="devnet", config=Config()) as repo:  # config only applies when made
        assert repo.config == custom
        assert repo.keystore.get("libp2p-host").private_key == b"k" * 32
        assert repo.read_token() == "header.payload.signature"
        assert mode(repo.token_path) == 0o600


def test_config_changes_are_written_atomically(repo: Repo) -> None:
    changed = with_overrides(repo.config, {"mining.enabled": True})
    repo.write_config(changed)
    assert repo.config == changed
    repo.close()
    with Repo.open(repo.path, network="devnet") as again:
        assert again.config.mining.enabled


def test_a_second_open_names_the_pid_holding_the_lock(repo: Repo) -> None:
    with pytest.raises(RepoLocked) as locked:
        Repo.open(repo.path, network="devnet")
    assert locked.value.pid == os.getpid()
    assert str(locked.value) == (
        f"{repo.path} is in use by another filpy process (PID {os.getpid()}): "
        "stop it first, or use another --repo"
    )
    repo.close()
    Repo.open(repo.path, network="devnet").close()  # released


_HOLDER = """
import sys, time
from node import logs
from node.repo import Repo
logs.configure()
repo = Repo.open(sys.argv[1], network="devnet")
print("locked", flush=True)
time.sleep(60)
"""


def test_another_process_holding_the_repo_and_kill_9_releasing_it(tmp_path: Path) -> None:
    path = tmp_path / "repo"
    with (
        python_child(_HOLDER, str(path), ready=b"locked") as proc,
        pytest.raises(RepoLocked, match=f"in use by another filpy process \\(PID {proc.pid}\\)"),
    ):
        Repo.open(path, network="devnet")
    # the kernel dropped the lock with the process; the stale PID in repo.lock does not matter
    with Repo.open(path, network="devnet") as repo:
        assert (repo.path / "repo.lock").read_text() == f"{os.getpid()}\n"


def test_a_path_that_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("hello")
    with pytest.raises(RepoError, match=f"^{path} is a file, not a repo directory$"):
        Repo.open(path, network="devnet")
    with pytest.raises(RepoError, match=f"^{path / 'sub' / 'repo'}: {path} is a file, not a directory$"):
        Repo.open(path / "sub" / "repo", network="devnet")
    assert path.read_text() == "hello"


def test_a_broken_symlink(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    with pytest.raises(RepoError, match="is a broken symbolic link"):
        Repo.open(tmp_path / "link", network="devnet")


def test_a_directory_of_other_files_is_never_taken_over(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "photos").mkdir()
    with pytest.raises(RepoError) as refused:
        Repo.open(tmp_path, network="devnet")
    assert str(refused.value) == (
        f"{tmp_path} is not empty and is not a filpy repo (no repo.json; it holds notes.txt, photos): "
        "choose a new or empty directory"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "photos"]  # nothing written


def test_a_repo_of_another_network(tmp_path: Path) -> None:
    Repo.open(tmp_path / "r", network="mainnet").close()
    with pytest.raises(RepoError, match="is a mainnet repo, not a devnet one: use another --repo for devnet"):
        Repo.open(tmp_path / "r", network="devnet")
    with pytest.raises(RepoError, match="unknown network 'calibnet'"):
        Repo.open(tmp_path / "r", network="calibnet")


def test_a_config_for_another_network_than_the_repo(repo: Repo) -> None:
    write_config(repo.config_path, Config.for_network("mainnet"))
    repo.close()
    with pytest.raises(
        RepoError, match=re.escape("chain.network is 'mainnet', but this repo was made for 'devnet'")
    ):
        Repo.open(repo.path, network="devnet")


def test_a_bad_config_is_reported_and_the_lock_released(repo: Repo) -> None:
    repo.config_path.write_text("[api]\nlisten = 5\n")
    repo.close()
    with pytest.raises(RepoError, match=f"{repo.config_path}: api.listen: expected a string"):
        Repo.open(repo.path, network="devnet")
    repo.config_path.write_text("")
    Repo.open(repo.path, network="devnet").close()  # the failed open did not keep the lock


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("{", "repo.json is not valid JSON: the repo is damaged"),
        ('{"Network": "devnet"}', 'repo.json: expected {"Version": n, "Network": name}'),
        ('{"Version": 2, "Network": "devnet"}', "is a version 2 repo; this filpy reads version 1"),
        ('{"Version": 1, "Network": "moon"}', "repo.json: unknown network 'moon'"),
    ],
)
def test_a_damaged_marker(repo: Repo, marker: str, message: str) -> None:
    (repo.path / "repo.json").write_text(marker)
    repo.close()
    with pytest.raises(RepoError) as refused:
        Repo.open(repo.path, network="devnet")
    assert message in str(refused.value)


def test_open_without_create(tmp_path: Path) -> None:
    with pytest.raises(
        RepoError, match=re.escape("is not a filpy repo (no repo.json); run the daemon once to make it")
    ):
        Repo.open(tmp_path / "none", network="devnet", create=False)
    assert not (tmp_path / "none").exists()


def test_a_creation_interrupted_after_the_marker_is_completed(tmp_path: Path) -> None:
    path = tmp_path / "repo"
    path.mkdir()
    (path / "repo.lock").write_text("999999\n")  # a crashed creator's lock file
    (path / "repo.json").write_text(json.dumps({"Version": 1, "Network": "devnet"}))
    with Repo.open(path, network="devnet") as repo:
        assert repo.config == Config()
        assert {"config.toml", "datastore", "keystore", "sectors"} <= {p.name for p in path.iterdir()}


def test_a_directory_this_user_cannot_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "repo"
    Repo.open(path, network="devnet").close()
    # The tests run as root, whom permissions do not stop; os.access answers as it would for a user
    # without rights on the directory.
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if Path(p) == path else real_access(p, m))
    with pytest.raises(RepoError) as refused:
        Repo.open(path, network="devnet")
    assert (
        str(refused.value)
        == f"{path}: permission denied: the repo directory must be readable and writable by you"
    )


def test_api_file_and_client_view(repo: Repo) -> None:
    with pytest.raises(RepoError, match="api does not exist: is a node running on the repo"):
        read_api_info(repo.path)
    repo.write_api(api_multiaddr("127.0.0.1:1234"))
    repo.write_token("tok")
    assert read_api_info(repo.path) == ApiInfo("/ip4/127.0.0.1/tcp/1234/http", "tok")
    assert repo.read_api() == "/ip4/127.0.0.1/tcp/1234/http"
    repo.close()  # a stopped node's endpoint is gone, as Lotus removes its api file
    assert not repo.api_path.exists()
    with pytest.raises(RepoError, match="the repo was closed"):
        repo.write_api("/ip4/127.0.0.1/tcp/1/http")


def test_api_multiaddr_forms() -> None:
    assert api_multiaddr("0.0.0.0:1") == "/ip4/0.0.0.0/tcp/1/http"
    assert api_multiaddr("[::1]:1234") == "/ip6/::1/tcp/1234/http"
    assert api_multiaddr("localhost:1234") == "/dns/localhost/tcp/1234/http"


def test_reset_removes_the_chain_and_nothing_else(repo: Repo) -> None:
    repo.keystore.put("default", KeyInfo(type="bls", private_key=b"\x01" * 32))
    repo.write_token("tok")
    (repo.datastore_path / "000001.log").write_bytes(b"chain")
    (repo.sectors_path / "sealed").mkdir()
    (repo.sectors_path / "sealed" / "s-t01000-0").write_bytes(b"replica")
    repo.genesis_path.write_bytes(b"car")
    repo.devnet_path.write_text("{}")

    assert repo.reset_chain() == ["devnet.json", "genesis.car", "datastore", "sectors"]
    assert sorted(p.name for p in repo.path.iterdir()) == sorted([*NEW_REPO, "token"])
    assert list(repo.datastore_path.iterdir()) == [] and list(repo.sectors_path.iterdir()) == []
    assert repo.keystore.has("default") and repo.read_token() == "tok"
    assert repo.reset_chain() == ["datastore", "sectors"]  # nothing else left to remove


def test_reset_removes_links_without_following_them(tmp_path: Path, repo: Repo) -> None:
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    repo.sectors_path.rmdir()
    repo.sectors_path.symlink_to(outside, target_is_directory=True)
    repo.genesis_path.symlink_to(outside / "keep")
    repo.reset_chain()
    assert (outside / "keep").read_text() == "keep"
    assert not repo.genesis_path.exists() and not repo.sectors_path.is_symlink()


def test_trash_left_by_an_interrupted_reset_is_cleared_on_open(repo: Repo) -> None:
    trash = repo.path / ".trash-deadbeef"
    (trash / "datastore").mkdir(parents=True)
    (trash / "datastore" / "000001.log").write_bytes(b"old chain")
    repo.close()
    with Repo.open(repo.path, network="devnet"):
        assert not trash.exists()
