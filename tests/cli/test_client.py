"""How client commands find the node (--repo, FULLNODE_API_INFO, ~/.filpy-devnet then ~/.filpy) and what
they say when it is not there or refuses them: one line on stderr, status 1, never a traceback."""

import socket
from pathlib import Path

import pytest

from cli.client import CliError, Endpoint, NoNode, find_endpoint
from rpc.auth import create_token, perms_up_to
from tests.cli.client_kit import Filpy, error_line, fake_repo, home
from tests.cli.conftest import Node
from tests.rpc.chain_node import ADMIN_TOKEN, SECRET


def closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_the_repo_flag_comes_first(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "api").write_text("/ip4/127.0.0.1/tcp/2345/http\n")
    (repo / "token").write_text("tok\n")
    env = {"FULLNODE_API_INFO": "other:/ip4/127.0.0.1/tcp/9999/http"}
    assert find_endpoint(repo, env) == Endpoint("http://127.0.0.1:2345/rpc/v1", "tok", str(repo / "api"))
    assert find_endpoint(None, env) == Endpoint("http://127.0.0.1:9999/rpc/v1", "other", "FULLNODE_API_INFO")
    assert find_endpoint(None, {"FULLNODE_API_INFO": "/ip4/10.0.0.1/tcp/1/http"}).token is None


def test_default_repos_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with home(monkeypatch, tmp_path / "home") as where:
        with pytest.raises(NoNode) as none:
            find_endpoint(None, {})
        assert str(none.value) == (
            f"no node running (no api file in {Path('~/.filpy-devnet')} or {Path('~/.filpy')}, and "
            "FULLNODE_API_INFO is not set): start one with `filpy devnet`"
        )
        daemon = where / ".filpy"
        daemon.mkdir()
        (daemon / "api").write_text("/ip4/127.0.0.1/tcp/1111/http")
        assert find_endpoint(None, {}).url == "http://127.0.0.1:1111/rpc/v1"
        devnet = where / ".filpy-devnet"
        devnet.mkdir()
        (devnet / "token").write_text("t")  # a stopped devnet keeps its token, not its api file
        assert find_endpoint(None, {}).url == "http://127.0.0.1:1111/rpc/v1"
        (devnet / "api").write_text("/ip4/127.0.0.1/tcp/2222/http")
        assert find_endpoint(None, {}) == Endpoint("http://127.0.0.1:2222/rpc/v1", "t", str(devnet / "api"))


def test_a_bad_api_info_is_named(tmp_path: Path) -> None:
    with pytest.raises(CliError) as bad:
        find_endpoint(None, {"FULLNODE_API_INFO": "tok:/unix/sock"})
    assert str(bad.value).startswith("FULLNODE_API_INFO: unsupported multiaddr component 'unix'")


async def test_no_node_on_the_repo(filpy: Filpy, tmp_path: Path) -> None:
    empty = tmp_path / "stopped"
    empty.mkdir()
    (empty / "token").write_text(ADMIN_TOKEN)
    said = error_line(await filpy("chain", "head", repo=empty), "chain head")
    assert said == (
        f"no node running on the repo {empty} (no api file): start one with `filpy devnet --repo {empty}` "
        f"(or `filpy daemon --repo {empty}`)"
    )
    (empty / "api").write_text("/unix/socket")
    said = error_line(await filpy("chain", "head", repo=empty), "chain head")
    assert said == f"{empty / 'api'}: unsupported multiaddr component 'unix' in '/unix/socket'"


async def test_a_stale_api_file_means_no_node(filpy: Filpy, tmp_path: Path) -> None:
    # What a node killed with -9 leaves: the api file of an endpoint nobody listens on.
    repo = tmp_path / "killed"
    repo.mkdir()
    port = closed_port()
    (repo / "api").write_text(f"/ip4/127.0.0.1/tcp/{port}/http")
    said = error_line(await filpy("wallet", "list", repo=repo), "wallet list")
    assert said.startswith(f"no node at http://127.0.0.1:{port}/rpc/v1 (from {repo / 'api'}): ")
    assert said.endswith(": start one with `filpy devnet`")


async def test_no_node_anywhere(filpy: Filpy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with home(monkeypatch, tmp_path / "home"):
        filpy.repo = None
        said = error_line(await filpy("sync", "status"), "sync status")
        assert said.startswith("no node running (no api file in ")


async def test_found_through_fullnode_api_info(
    served: Node, filpy: Filpy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with home(monkeypatch, tmp_path / "home"):
        monkeypatch.setenv("FULLNODE_API_INFO", f"{ADMIN_TOKEN}:{served.bound.multiaddr()}")
        filpy.repo = None
        ran = await filpy("chain", "head", "--height")
        assert ran.out == f"{served.node.chain.head().height}\n"


async def test_permissions_and_tokens(served: Node, filpy: Filpy, tmp_path: Path) -> None:
    reader = fake_repo(tmp_path / "reader", served.bound, create_token(SECRET, perms_up_to("read")))
    assert (await filpy("chain", "head", "--height", repo=reader)).code == 0
    refused = error_line(await filpy("wallet", "new", repo=reader), "wallet new")
    assert refused == "missing permission to invoke 'WalletNew' (need 'write')"
    anonymous = fake_repo(tmp_path / "anonymous", served.bound, token=None)
    assert error_line(
        await filpy("auth", "create-token", "--perm", "read", repo=anonymous), "auth create-token"
    )
    forged = fake_repo(tmp_path / "forged", served.bound, create_token(b"x" * 32, perms_up_to("admin")))
    said = error_line(await filpy("wallet", "list", repo=forged), "wallet list")
    assert "HTTP 401" in said and said.endswith(
        f"(the token from {forged / 'api'} is not one this node accepts)"
    )


async def test_node_errors_are_its_messages(filpy: Filpy) -> None:
    cid = "bafy2bzacea3wsdh6y3a36tb3skempjoxqpuyompjbmfeyf34fi3uy6uue42v4"
    said = error_line(await filpy("chain", "get-message", cid), "chain get-message")
    assert said == f"loading message {cid}: block {cid} not found"
    assert error_line(await filpy("chain", "get-block", "nonsense"), "chain get-block").startswith(
        "failed to parse block CID 'nonsense'"
    )


def test_unknown_options_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    from cli import main as cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["wallet", "new", "rsa"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'rsa'" in capsys.readouterr().err
