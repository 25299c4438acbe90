"""Running client commands against a real node in the test's process.

`Filpy(capsys)` runs `filpy ARGS --repo DIR` through `cli.main.main` in a worker thread (the command
makes its own trio run there, as it does from a shell) while the test's trio loop serves the node's RPC
(tests/rpc/chain_node.py), and returns the exit status with what it printed. DIR is a repo directory
holding only the `api` and `token` files a running node writes (`fake_repo`), which is all a client
reads. `mining(...)` runs a command that waits for the chain while tipsets are mined for it.
"""

import json
import shutil
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
import trio

from cli import main as cli
from node import logs
from rpc.server import BoundAddress
from tests.rpc.chain_node import ADMIN_TOKEN

WAIT: Final = 120.0  # the longest a command may take in these tests
SETTLE: Final = 0.05  # seconds between two tipsets mined for a waiting command


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    def table(self) -> list[list[str]]:
        """The rows of the one table printed (header first), split on runs of two or more spaces."""
        import re

        rows = [line.strip() for line in self.lines if line.strip() and not set(line.strip()) <= {"─"}]
        return [re.split(r"\s{2,}", row) for row in rows]

    def fields(self) -> dict[str, str]:
        """Key-value lines (`Key  value`) as a dict."""
        import re

        out = {}
        for line in self.lines:
            parts = re.split(r"\s{2,}", line.strip(), maxsplit=1)
            if len(parts) == 2:
                out[parts[0]] = parts[1]
        return out


def fake_repo(directory: Path, bound: BoundAddress, token: str | None = ADMIN_TOKEN) -> Path:
    """A directory with the `api` (and `token`) files of the node served at bound."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "api").write_text(bound.multiaddr())
    if token is not None:
        (directory / "token").write_text(token)
    return directory


def _main(argv: list[str]) -> int:
    """cli.main's exit status, usage errors (argparse's SystemExit 2) included."""
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


class Filpy:
    """`filpy ...` against one node (its fake repo), output captured by pytest's capsys."""

    def __init__(self, capsys: pytest.CaptureFixture[str], repo: Path | None = None) -> None:
        # The node's services log in this process too: to stderr, as `filpy` configures it, from the
        # start (structlog's default would print to stdout until the first command configures it).
        logs.configure(json=False, level="info")
        self.capsys = capsys
        self.repo = repo

    async def __call__(self, *args: str, repo: Path | None = None) -> Ran:
        argv = list(args)
        target = repo or self.repo
        if target is not None:
            argv += ["--repo", str(target)]
        self.capsys.readouterr()
        with trio.fail_after(WAIT):
            code = await trio.to_thread.run_sync(_main, argv, abandon_on_cancel=True)
        captured = self.capsys.readouterr()
        assert "Traceback" not in captured.err, captured.err
        return Ran(code, captured.out, captured.err)

    async def mining(self, mine: Callable[[], Awaitable[object]], *args: str, max_tipsets: int = 40) -> Ran:
        """Run the command while mine() makes a tipset every SETTLE seconds, until the command ends."""
        result: list[Ran] = []

        async def run() -> None:
            result.append(await self(*args))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(run)
            for _ in range(max_tipsets):
                await trio.sleep(SETTLE)
                if result:
                    break
                await mine()
            with trio.fail_after(WAIT):
                while not result:
                    await trio.sleep(SETTLE)
        return result[0]


def error_line(ran: Ran, command: str) -> str:
    """The one line a failed command printed about its failure."""
    assert ran.code == 1, (ran.out, ran.err)
    lines = [line for line in ran.err.splitlines() if line.startswith(f"filpy {command}: ")]
    assert len(lines) == 1, ran.err
    return lines[0].removeprefix(f"filpy {command}: ")


@contextmanager
def home(monkeypatch: pytest.MonkeyPatch, directory: Path) -> Iterator[Path]:
    """HOME set to directory (so ~/.filpy-devnet and ~/.filpy are in it) and FULLNODE_API_INFO unset."""
    directory.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HOME", str(directory))
    monkeypatch.delenv("FULLNODE_API_INFO", raising=False)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
