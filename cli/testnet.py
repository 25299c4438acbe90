"""`filpy testnet`: a local network of filpy daemons on 127.0.0.1, from one shared genesis.

    filpy testnet up [--dir DIR] [--nodes N] [--miners M] [--block-delay S] [--beacon drand|mock]
                     [--accounts K] [--api-port P] [--p2p-port P] [--reset] [--timeout S]
    filpy testnet status [--dir DIR]
    filpy testnet down [--dir DIR]
    filpy testnet init ...        (as up, without starting anything: for docker-compose)

`up` makes the testnet's directory when there is none (node/testnet.py: the genesis with M miners, one
repo per node, configs wiring every node to the ones before it, node0 the bootstrap node), starts one
`filpy daemon` per node that is not running yet, as a process of its own (its own session: closing the
terminal does not stop it; its output in DIR/nodeI/daemon.log, its PID in DIR/nodeI/pid), and returns
once every node's RPC answers and every node is connected to all the others, or fails saying which node
did not come up (with the end of its log) after stopping what it started. It prints each node's RPC
URL, token path, miners and libp2p address. Run again, it starts the stopped nodes of the same testnet
(the chain resumes; the ports are kept). `status` asks every node over RPC for its head, height, peers
and sync, as a table (also the nodes started otherwise, as docker-compose does: those with an `api`
file). `down` stops every node by the PID in its pid file (SIGTERM, SIGKILL after STOP_TIMEOUT seconds)
and says what it stopped.
"""

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cli.daemon import CliError, fail

if TYPE_CHECKING:
    from node.testnet import Testnet, TestnetNode

DEFAULT_DIR: Final = Path("~/.filpy-testnet")
UP_TIMEOUT: Final = 120.0
STOP_TIMEOUT: Final = 10.0
KILL_WAIT: Final = 5.0  # for the kernel to end a process sent SIGKILL
RPC_TIMEOUT: Final = 5.0
POLL: Final = 0.2
CONNECT_EVERY: Final = 2.0
LOG_TAIL: Final = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="testnet_command", required=True, metavar="SUBCOMMAND")
    up = sub.add_parser("up", help="make (once) and start the testnet; returns once every node is up")
    _spec_arguments(up)
    up.add_argument(
        "--timeout",
        type=float,
        default=UP_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for every node to be up and connected (default {UP_TIMEOUT:.0f})",
    )
    up.set_defaults(handler=run_up)
    init = sub.add_parser("init", help="make the testnet's genesis and repos without starting them")
    _spec_arguments(init)
    init.set_defaults(handler=run_init)
    status = sub.add_parser("status", help="each node's head, height, peers and sync, over RPC")
    _dir_argument(status)
    status.set_defaults(handler=run_status)
    down = sub.add_parser("down", help="stop every node of the testnet (SIGTERM, then SIGKILL)")
    _dir_argument(down)
    down.set_defaults(handler=run_down)


def _dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_DIR,
        metavar="DIR",
        help="the testnet's directory (~/.filpy-testnet)",
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _spec_arguments(parser: argparse.ArgumentParser) -> None:
    _dir_argument(parser)
    parser.add_argument("--nodes", type=_positive, metavar="N", help="nodes of a new testnet (default 3)")
    parser.add_argument(
        "--miners", type=_positive, metavar="M", help="genesis miners of a new testnet (default 2)"
    )
    parser.add_argument(
        "--block-delay", type=_positive, metavar="SECONDS", help="seconds between epochs (default 4)"
    )
    parser.add_argument(
        "--beacon",
        choices=("drand", "mock"),
        help="drand (default: produced by node0, checked by every node) or Lotus's mock",
    )
    parser.add_argument(
        "--accounts", type=_positive, metavar="K", help="prefunded accounts in the genesis (default 10)"
    )
    parser.add_argument(
        "--api-port",
        type=_positive,
        default=0,
        metavar="PORT",
        help="node i's RPC on PORT+i (default: free ports)",
    )
    parser.add_argument(
        "--p2p-port",
        type=_positive,
        default=0,
        metavar="PORT",
        help="node i's libp2p on PORT+i (default: free ports)",
    )
    parser.add_argument("--reset", action="store_true", help="remove the testnet in DIR and make a new one")


# -- the directory -----------------------------------------------------------------------------------------


def _prepare(args: argparse.Namespace) -> "Testnet":
    from node.devnet import RichSealProgress
    from node.testnet import (
        DEFAULT_ACCOUNTS,
        DEFAULT_BLOCK_DELAY,
        DEFAULT_MINERS,
        DEFAULT_NODES,
        TestnetSpec,
        prepare_testnet,
        read_testnet,
    )

    directory = Path(args.dir).expanduser().absolute()
    found = None if args.reset else read_testnet(directory)
    if found is not None:
        asked = {
            "--block-delay": (args.block_delay, found.block_delay),
            "--beacon": (args.beacon, found.beacon),
            "--accounts": (args.accounts, found.accounts),
        }
        for flag, (wanted, has) in asked.items():
            if wanted is not None and wanted != has:
                raise CliError(
                    f"the testnet in {directory} was made with {flag} {has}, not {wanted}: run without "
                    f"{flag} to start it again, or with --reset to make a new one"
                )
    elif args.reset:
        running = [n.name for n in _nodes_of(directory) if _running_pid(n) is not None]
        if running:
            raise CliError(f"nodes {', '.join(running)} of {directory} run: `filpy testnet down` first")
    spec = TestnetSpec(
        nodes=DEFAULT_NODES if args.nodes is None else args.nodes,
        miners=DEFAULT_MINERS if args.miners is None else args.miners,
        block_delay=DEFAULT_BLOCK_DELAY if args.block_delay is None else args.block_delay,
        beacon=args.beacon or "drand",
        accounts=DEFAULT_ACCOUNTS if args.accounts is None else args.accounts,
        api_port=args.api_port,
        p2p_port=args.p2p_port,
    )
    if found is not None:
        spec = TestnetSpec(
            nodes=len(found.nodes) if args.nodes is None else args.nodes,
            miners=found.miners if args.miners is None else args.miners,
            block_delay=found.block_delay,
            beacon=found.beacon,
            accounts=found.accounts,
        )
    with RichSealProgress(description="sealing the genesis miners' sectors") as progress:
        return prepare_testnet(directory, spec, reset=args.reset, progress=progress)


def _nodes_of(directory: Path) -> list["TestnetNode"]:
    from node.testnet import read_testnet

    testnet = read_testnet(directory)
    return [] if testnet is None else list(testnet.nodes)


def _load(args: argparse.Namespace) -> "Testnet":
    from node.testnet import read_testnet

    directory = Path(args.dir).expanduser().absolute()
    testnet = read_testnet(directory)
    if testnet is None:
        raise CliError(f"no testnet in {directory}: `filpy testnet up --dir {args.dir}` makes one")
    return testnet


def _handled(command: str, body: Any, args: argparse.Namespace) -> int:
    from node.testnet import TestnetError

    try:
        result: int = body(args)
        return result
    except (CliError, TestnetError) as exc:
        return fail(f"testnet {command}", str(exc))
    except KeyboardInterrupt:
        return 130


# -- processes ---------------------------------------------------------------------------------------------


def _read_pid(node: "TestnetNode") -> int | None:
    try:
        text = node.pid_path.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CliError(f"{node.pid_path}: cannot read: {exc.strerror or exc}") from None
    return int(text) if text.isdigit() else None


def _is_our_daemon(pid: int, node: "TestnetNode") -> bool:
    """Whether pid is alive and is the daemon of this node's repo (not a process that reused the PID)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: not ours
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():
        return True  # no /proc (not Linux): the PID is alive, trust the pid file
    try:
        args = cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    return b"daemon" in args and str(node.repo).encode() in args


def _running_pid(node: "TestnetNode") -> int | None:
    pid = _read_pid(node)
    return pid if pid is not None and _is_our_daemon(pid, node) else None


def _start(node: "TestnetNode") -> int:
    """Start the node's daemon in a session of its own; its PID (also in its pid file)."""
    from node.atomic import write_atomic

    command = [sys.executable, "-m", "cli", "daemon", "--repo", str(node.repo)]
    with node.log_path.open("ab") as log:
        proc = subprocess.Popen(
            command,
            cwd=node.repo,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    write_atomic(node.pid_path, f"{proc.pid}\n".encode(), 0o644)
    return proc.pid


@dataclass
class _Stopped:
    node: "TestnetNode"
    pid: int | None
    how: str  # "SIGTERM", "SIGKILL", "not running", "stale pid file"
    seconds: float = 0.0


def _stop_all(nodes: list["TestnetNode"], timeout: float = STOP_TIMEOUT) -> list[_Stopped]:
    """SIGTERM to every running node, SIGKILL to those still running after timeout; pid files removed."""
    results: list[_Stopped] = []
    pending: dict[int, _Stopped] = {}
    began = time.monotonic()
    for node in nodes:
        pid = _read_pid(node)
        if pid is None:
            results.append(_Stopped(node, None, "not running"))
            continue
        if not _is_our_daemon(pid, node):
            node.pid_path.unlink(missing_ok=True)
            results.append(_Stopped(node, pid, "stale pid file"))
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        stopped = _Stopped(node, pid, "SIGTERM")
        results.append(stopped)
        pending[pid] = stopped
    deadline = began + timeout
    while pending and time.monotonic() < deadline:
        for pid, stopped in list(pending.items()):
            if not _alive(pid):
                stopped.seconds = time.monotonic() - began
                del pending[pid]
        time.sleep(0.05)
    for pid, stopped in pending.items():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        stopped.how = "SIGKILL"
    killed_by = time.monotonic() + KILL_WAIT
    while any(_alive(pid) for pid in pending) and time.monotonic() < killed_by:
        time.sleep(0.05)
    for stopped in pending.values():
        stopped.seconds = time.monotonic() - began
    for stopped in results:
        if stopped.how in ("SIGTERM", "SIGKILL"):
            stopped.node.pid_path.unlink(missing_ok=True)
    return results


def _alive(pid: int) -> bool:
    """Whether pid still runs (reaping it if it is our child that exited)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child (started by an earlier `filpy testnet up`)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().split(b") ")[1][:1] != b"Z"  # a zombie has exited
    except (OSError, IndexError):
        return True


def _log_tail(node: "TestnetNode", lines: int = LOG_TAIL) -> str:
    try:
        text = node.log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(f"  | {line}" for line in text.splitlines()[-lines:])


# -- talking to the nodes ----------------------------------------------------------------------------------


@dataclass
class NodeView:
    """What status shows of one node (None where it did not answer)."""

    node: "TestnetNode"
    pid: int | None
    height: int | None = None
    head: list[str] | None = None
    blocks: int | None = None
    peers: list[str] | None = None
    syncing: int | None = None  # workers not idle, complete or failed
    error: str = ""


async def _view(node: "TestnetNode", pid: int | None) -> NodeView:
    from rpc.client import HttpClient, RpcCallError, TransportError

    view = NodeView(node, pid)
    if pid is None and not (node.repo / "api").exists():
        # no pid file, and no api file either: a daemon started otherwise (docker-compose) writes one
        view.error = "not running"
        return view
    try:
        async with HttpClient(node.api_url, timeout=RPC_TIMEOUT) as api:
            head = await api.call("ChainHead")
            view.height = int(head["Height"])
            view.head = [c["/"] for c in head["Cids"]]
            view.blocks = len(head["Blocks"])
            view.peers = [p["ID"] for p in await api.call("NetPeers")]
            syncs = (await api.call("SyncState"))["ActiveSyncs"] or []
            view.syncing = sum(1 for s in syncs if s["Stage"] not in (0, 4, 5))
    except (RpcCallError, TransportError, OSError, KeyError, TypeError, ValueError) as exc:
        view.error = f"RPC: {exc}"
    return view


async def _views(testnet: "Testnet") -> list[NodeView]:
    import trio

    views: list[NodeView | None] = [None] * len(testnet.nodes)

    async def one(i: int, node: "TestnetNode") -> None:
        views[i] = await _view(node, _running_pid(node))

    async with trio.open_nursery() as nursery:
        for i, node in enumerate(testnet.nodes):
            nursery.start_soon(one, i, node)
    return [v for v in views if v is not None]


def _up(view: NodeView, testnet: "Testnet") -> bool:
    """RPC answering and connected to every other node."""
    if view.peers is None:
        return False
    others = {n.peer_id for n in testnet.nodes if n.index != view.node.index}
    return others <= set(view.peers)


async def _connect_missing(views: list[NodeView], asked: dict[tuple[int, int], float]) -> None:
    """NetConnect for every pair of answering nodes not connected yet (the later node dials the earlier,
    as its bootstrap list says; asking over RPC spares the wait of its redial backoff when the earlier
    node started after it). Each pair at most once every CONNECT_EVERY seconds."""
    from rpc.client import HttpClient, RpcCallError, TransportError

    now = time.monotonic()
    answering = [v for v in views if v.peers is not None]
    for view in answering:
        missing = [
            other.node
            for other in answering
            if other.node.index < view.node.index and other.node.peer_id not in (view.peers or [])
        ]
        for other in missing:
            pair = (view.node.index, other.index)
            if now - asked.get(pair, -CONNECT_EVERY) < CONNECT_EVERY:
                continue
            asked[pair] = now
            info = {"ID": other.peer_id, "Addrs": [other.listen]}
            try:
                token = view.node.token_path.read_text().strip()
                async with HttpClient(view.node.api_url, token=token, timeout=RPC_TIMEOUT) as api:
                    await api.call("NetConnect", info)
            except (RpcCallError, TransportError, OSError):
                pass  # not listening yet: the next round asks again


async def _wait_up(testnet: "Testnet", pids: dict[int, int], timeout: float) -> list[NodeView]:
    import trio

    deadline = time.monotonic() + timeout
    asked: dict[tuple[int, int], float] = {}
    while True:
        for node in testnet.nodes:
            pid = pids.get(node.index)
            if pid is not None and not _alive(pid):
                raise _NodeDown(node, f"{node.name} exited while starting")
        views = await _views(testnet)
        if all(_up(v, testnet) for v in views):
            return views
        await _connect_missing(views, asked)
        if time.monotonic() >= deadline:
            late = next(v for v in views if not _up(v, testnet))
            what = late.error or f"connected to {len(late.peers or [])} of {len(testnet.nodes) - 1} nodes"
            raise _NodeDown(late.node, f"{late.node.name} not up within {timeout:.0f} s ({what})")
        await trio.sleep(POLL)


class _NodeDown(Exception):
    def __init__(self, node: "TestnetNode", message: str) -> None:
        super().__init__(message)
        self.node = node


# -- the subcommands ---------------------------------------------------------------------------------------


def run_init(args: argparse.Namespace) -> int:
    def body(args: argparse.Namespace) -> int:
        testnet = _prepare(args)
        made = "made" if testnet.created else "found"
        sys.stdout.write(
            f"testnet {made} in {testnet.directory}: {len(testnet.nodes)} nodes, {testnet.miners} miners, "
            f"genesis {testnet.genesis}\n"
        )
        for node in testnet.nodes:
            sys.stdout.write(f"  {node.name}  RPC {node.api_url}  libp2p {node.peer_address}\n")
        return 0

    return _handled("init", body, args)


def run_up(args: argparse.Namespace) -> int:
    def body(args: argparse.Namespace) -> int:
        import trio

        testnet = _prepare(args)
        began = time.monotonic()
        started: dict[int, int] = {}
        for node in testnet.nodes:
            if _running_pid(node) is None:
                started[node.index] = _start(node)
        try:
            views = trio.run(_wait_up, testnet, started, args.timeout)
        except _NodeDown as exc:
            sys.stderr.write(f"filpy testnet up: {exc}; its log ({exc.node.log_path}) ends:\n")
            sys.stderr.write(_log_tail(exc.node) + "\n")
            stopped = _stop_all([n for n in testnet.nodes if n.index in started])
            names = ", ".join(s.node.name for s in stopped if s.pid is not None)
            sys.stderr.write(f"stopped the nodes this command started: {names or 'none'}\n")
            return 1
        _print_up(testnet, views, started, time.monotonic() - began)
        return 0

    return _handled("up", body, args)


def _print_up(testnet: "Testnet", views: list[NodeView], started: dict[int, int], seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 240, highlight=False)
    made = "new testnet" if testnet.created else "testnet"
    beacon = "drand beacon produced by node0" if testnet.beacon == "drand" else "mock beacon"
    console.print(
        f"{made} in {testnet.directory}: {len(testnet.nodes)} nodes, {testnet.miners} miners, block delay "
        f"{testnet.block_delay} s, {beacon}, genesis {testnet.genesis}"
    )
    table = Table(box=None, padding=(0, 2))
    for column in ("node", "pid", "RPC", "token", "miners", "libp2p"):
        table.add_column(column, no_wrap=True)
    for view in views:
        node = view.node
        miners = " ".join(m.to_string("t") for m in node.miners) or "-"
        pid = started.get(node.index) or view.pid
        table.add_row(node.name, str(pid), node.api_url, str(node.token_path), miners, node.peer_address)
    console.print(table)
    fresh = len(started)
    console.print(
        f"{fresh} started, {len(testnet.nodes) - fresh} already running; every node up and connected to the "
        f"{len(testnet.nodes) - 1} others in {seconds:.1f} s. Logs: <node>/daemon.log. `filpy testnet status"
        f" --dir {testnet.directory}` shows the heads, `filpy testnet down --dir {testnet.directory}` stops "
        "them."
    )
    node0 = testnet.nodes[0]
    console.print(f'export FULLNODE_API_INFO="$(cat {node0.token_path}):$(cat {node0.repo / "api"})"')
    sys.stdout.flush()


def run_status(args: argparse.Namespace) -> int:
    def body(args: argparse.Namespace) -> int:
        import trio
        from rich.console import Console
        from rich.table import Table

        testnet = _load(args)
        views = trio.run(_views, testnet)
        console = Console(width=None if sys.stdout.isatty() else 240, highlight=False)
        table = Table(box=None, padding=(0, 2))
        for column in ("node", "pid", "height", "head", "blocks", "peers", "syncing", "RPC"):
            table.add_column(column, no_wrap=True)
        for view in views:
            if view.error:
                table.add_row(
                    view.node.name, str(view.pid or "-"), "-", view.error, "", "", "", view.node.api_url
                )
                continue
            head = ",".join(c[-8:] for c in view.head or [])
            table.add_row(
                view.node.name,
                str(view.pid or "-"),
                str(view.height),
                f"…{head}",
                str(view.blocks),
                str(len(view.peers or [])),
                str(view.syncing),
                view.node.api_url,
            )
        console.print(table)
        answered = [v for v in views if not v.error]
        heads = {tuple(v.head or []) for v in answered}
        if not answered:
            console.print(f"no node of {testnet.directory} runs: `filpy testnet up --dir {args.dir}`")
            return 1
        if len(heads) == 1:
            console.print(
                f"{len(answered)} of {len(views)} nodes answer, on one head at height {answered[0].height}"
            )
        else:
            console.print(
                f"{len(answered)} of {len(views)} nodes answer; their heads differ (syncing, or forked)"
            )
        return 0 if len(answered) == len(views) else 1

    return _handled("status", body, args)


def run_down(args: argparse.Namespace) -> int:
    def body(args: argparse.Namespace) -> int:
        testnet = _load(args)
        results = _stop_all(list(testnet.nodes), STOP_TIMEOUT)
        for result in results:
            name = result.node.name
            if result.how == "not running":
                sys.stdout.write(f"{name}: not running\n")
            elif result.how == "stale pid file":
                sys.stdout.write(f"{name}: not running (removed a stale pid file naming PID {result.pid})\n")
            else:
                sys.stdout.write(f"{name}: stopped PID {result.pid} ({result.how}, {result.seconds:.1f} s)\n")
        stopped = sum(1 for r in results if r.how in ("SIGTERM", "SIGKILL"))
        sys.stdout.write(f"stopped {stopped} of {len(results)} nodes of {testnet.directory}\n")
        return 0

    return _handled("down", body, args)
