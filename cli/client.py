"""Client commands talk to a running node over JSON-RPC: finding the node, the connection, and errors
as one-line messages.

Which node (the first that applies):
1. `--repo DIR`: the node running on that repo, from its `api` (the RPC multiaddr) and `token` (admin)
   files, read without opening the repo (node/repo.py read_api_info).
2. `FULLNODE_API_INFO=token:multiaddr`, Lotus's variable and form (a bare multiaddr or URL works too).
3. `~/.filpy-devnet`, then `~/.filpy` (`filpy devnet`'s and `filpy daemon`'s default repos): the first
   whose `api` file exists, that is the one a node is running on.

Lotus prefers its environment variable to `--repo`; filpy takes the flag on the command line first, as
the most specific thing the user said. Calls go to `/rpc/v1` over HTTP (ChainExport's channel over a
WebSocket). A node that is not there is said in one line with what to do ("no node at ...: start one
with `filpy devnet`"); an error the node answers is printed as its message; both exit with status 1,
never with a traceback.
"""

import argparse
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import trio

from cli.daemon import DEFAULT_REPO as DAEMON_REPO
from cli.devnet import DEFAULT_REPO as DEVNET_REPO
from cli.output import Output
from node.repo import API, RepoError, read_api_info
from rpc.client import HttpClient, RpcCallError, TransportError, WsClient, endpoint_from_api_info

API_INFO_ENV: Final = "FULLNODE_API_INFO"
DEFAULT_REPOS: Final = (DEVNET_REPO, DAEMON_REPO)
START_HINT: Final = "start one with `filpy devnet`"
# How long one call may take; calls that wait for the chain (StateWaitMsg, MinerCreate, ...) take
# their command's --timeout instead.
CALL_TIMEOUT: Final = 60.0
CONNECT_FAILURES: Final = (httpx.ConnectError, httpx.ConnectTimeout, OSError)


class CliError(Exception):
    """What a command says (on stderr, after its name) before exiting with status 1."""


class NoNode(CliError):
    """No node answers where the command looked for one."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the node's RPC is, with the token to call it with and where both were found."""

    url: str  # http://127.0.0.1:1234/rpc/v1
    token: str | None
    origin: str  # "FULLNODE_API_INFO", or the path of the api file

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")


def _start_hint(repo: Path | None) -> str:
    """What to run to have a node there."""
    if repo is None or repo == DEVNET_REPO:
        return START_HINT
    if repo == DAEMON_REPO:
        return "start one with `filpy daemon`"
    return f"start one with `filpy devnet --repo {repo}` (or `filpy daemon --repo {repo}`)"


def _from_repo(repo: Path) -> Endpoint:
    root = repo.expanduser()
    if not (root / API).exists():
        raise NoNode(f"no node running on the repo {root} (no api file): {_start_hint(repo)}")
    try:
        info = read_api_info(root)
        url, _ = endpoint_from_api_info(info.multiaddr)
    except (RepoError, ValueError) as exc:
        raise CliError(f"{root / API}: {exc}") from None
    return Endpoint(url, info.token, str(root / API))


def find_endpoint(repo: Path | None, environ: Mapping[str, str] = os.environ) -> Endpoint:
    """The node a command talks to (see the module docstring for the order)."""
    if repo is not None:
        return _from_repo(repo)
    info = environ.get(API_INFO_ENV, "").strip()
    if info:
        try:
            url, token = endpoint_from_api_info(info)
        except ValueError as exc:
            raise CliError(f"{API_INFO_ENV}: {exc} (expected token:/ip4/127.0.0.1/tcp/1234/http)") from None
        return Endpoint(url, token, API_INFO_ENV)
    for default in DEFAULT_REPOS:
        if (default.expanduser() / API).exists():
            return _from_repo(default)
    looked = " or ".join(str(p) for p in DEFAULT_REPOS)
    raise NoNode(f"no node running (no api file in {looked}, and {API_INFO_ENV} is not set): {START_HINT}")


class Session:
    """One command's connection to the node, and where it prints."""

    def __init__(self, endpoint: Endpoint, api: HttpClient, out: Output) -> None:
        self.endpoint = endpoint
        self.api = api
        self.out = out

    async def call(self, method: str, *params: Any) -> Any:
        """The result of a method ("WalletList", or "Filpy.MinerList"); CliError with the node's
        message when it answers an error, NoNode when it cannot be reached."""
        try:
            return await self.api.call(method, *params)
        except RpcCallError as exc:
            raise CliError(exc.message) from None
        except TransportError as exc:
            raise transport_error(self.endpoint, exc) from None

    @asynccontextmanager
    async def websocket(self) -> AsyncIterator[WsClient]:
        """A WebSocket connection to the node, for channel methods (ChainExport)."""
        try:
            async with WsClient.connect(self.endpoint.ws_url, token=self.endpoint.token) as ws:
                yield ws
        except TransportError as exc:
            raise transport_error(self.endpoint, exc) from None


def transport_error(endpoint: Endpoint, exc: TransportError) -> CliError:
    cause = exc.__cause__
    if isinstance(cause, CONNECT_FAILURES):
        why = str(cause) or type(cause).__name__
        return NoNode(f"no node at {endpoint.url} (from {endpoint.origin}): {why}: {START_HINT}")
    if isinstance(cause, httpx.TimeoutException):
        return CliError(
            f"the node at {endpoint.url} did not answer in time (--timeout sets how long to wait)"
        )
    if "HTTP 401" in str(exc):
        return CliError(f"{exc} (the token from {endpoint.origin} is not one this node accepts)")
    return CliError(str(exc))


Action = Callable[[Session, argparse.Namespace], Awaitable[None]]


async def _session_run(action: Action, args: argparse.Namespace, endpoint: Endpoint, timeout: float) -> None:
    out = Output(json_mode=bool(getattr(args, "json", False)))
    async with HttpClient(endpoint.url, token=endpoint.token, timeout=timeout) as api:
        await action(Session(endpoint, api, out), args)


def _leaf(exc: BaseException) -> BaseException:
    """The one exception an exception group (trio's nurseries make them) holds, if it holds one."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _as_cli_error(exc: BaseException, endpoint: Endpoint | None) -> CliError | None:
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, RpcCallError):  # a channel call's error (ChainExport over a WebSocket)
        return CliError(exc.message)
    if isinstance(exc, TransportError) and endpoint is not None:
        return transport_error(endpoint, exc)
    return None


def run_action(action: Action, args: argparse.Namespace, command: str) -> int:
    """Run a client command's action against the node; its exit status (1 with a message on stderr
    for what went wrong, 130 on Ctrl-C)."""
    timeout = float(getattr(args, "timeout", None) or CALL_TIMEOUT)
    endpoint: Endpoint | None = None
    try:
        endpoint = find_endpoint(getattr(args, "repo", None))
        trio.run(_session_run, action, args, endpoint, timeout)
    except BaseException as exc:
        leaf = _leaf(exc)
        if isinstance(leaf, KeyboardInterrupt):
            sys.stderr.write(f"\n{command}: interrupted\n")
            return 130
        error = _as_cli_error(leaf, endpoint)
        if error is None:
            raise
        sys.stdout.flush()
        sys.stderr.write(f"{command}: {error}\n")
        return 1
    return 0
