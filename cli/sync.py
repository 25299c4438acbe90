"""`filpy sync status|wait`: what the node's chain sync does, as `lotus sync`.

    status          SyncState, one block per sync worker (base, target, stage, height, elapsed, error)
    wait [--watch]  a progress bar until the node is in sync ("Done!"); --watch keeps following

In sync (`is_sync_done`, also what `filpy wallet balance` checks before trusting a zero balance): no
sync worker is fetching or executing, and the head's timestamp is less than two block delays behind the
wall clock. Lotus allows one block delay; filpy allows one more because its miner makes an epoch's block
a quarter of the delay into the epoch, so the head is briefly a whole delay old at every epoch's start.
A node that mines only on demand (block delay 0) keeps its genesis time on every block: there the
workers alone decide.

The bar counts epochs: the head's height against the sync target's, or the epoch the wall clock is at
when that is higher (a node catching up with the clock after a pause).
"""

import argparse
import time
from typing import TYPE_CHECKING, Any, Final

from cli.subcommands import command, group

if TYPE_CHECKING:
    from cli.client import Session

# SyncStateStage (rpc/methods/sync_types.py): the stages of a worker that is not working.
STAGE_NAMES: Final = {
    0: "idle worker",
    1: "header sync",
    2: "persisting headers",
    3: "message sync",
    4: "complete",
    5: "error",
    6: "fetching messages",
}
IDLE: Final = 0
COMPLETE: Final = 4
ERRORED: Final = 5
RESTING: Final = frozenset({IDLE, COMPLETE, ERRORED})
# Epochs the head may be behind the clock and still count as in sync (see the module docstring).
SYNC_SLACK_EPOCHS: Final = 2
POLL_SECONDS: Final = 0.25


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = group(parser, "sync_command")
    command(sub, "status", status, "the chain sync's workers (SyncState)")
    wait_parser = command(sub, "wait", wait, "wait until the node is in sync, with a progress bar")
    wait_parser.add_argument("--watch", action="store_true", help="do not exit once in sync")


def _working(state: dict[str, Any]) -> dict[str, Any] | None:
    """The worker to show: the last one working, else the last one (Lotus's choice)."""
    workers: list[dict[str, Any]] = state.get("ActiveSyncs") or []
    busy = [w for w in workers if w["Stage"] not in RESTING]
    return (busy or workers)[-1] if workers else None


def _synced(state: dict[str, Any], head: dict[str, Any], block_delay: int, now: float) -> bool:
    if any(w["Stage"] not in RESTING for w in state.get("ActiveSyncs") or []):
        return False
    if block_delay == 0:
        return True
    oldest = min(int(b["Timestamp"]) for b in head["Blocks"])
    return now - oldest < SYNC_SLACK_EPOCHS * block_delay


async def is_sync_done(s: "Session") -> bool:
    version = await s.call("Version")
    return _synced(
        await s.call("SyncState"), await s.call("ChainHead"), int(version["BlockDelay"]), time.time()
    )


async def status(s: "Session", args: argparse.Namespace) -> None:
    from cli.output import duration

    state = await s.call("SyncState")
    if s.out.json(state):
        return
    s.out.line("sync status:")
    for worker in state["ActiveSyncs"] or []:
        base, target = worker["Base"], worker["Target"]
        base_height = base["Height"] if base else 0
        pairs = [
            ("Base", _key(base)),
            ("Target", f"{_key(target)} ({target['Height'] if target else 0})"),
            ("Height diff", str(target["Height"] - base_height if target else 0)),
            ("Stage", STAGE_NAMES.get(worker["Stage"], str(worker["Stage"]))),
            ("Height", str(worker["Height"])),
            ("Elapsed", duration(_elapsed(worker))),
        ]
        if worker["Stage"] == ERRORED:
            pairs.append(("Error", worker["Message"]))
        s.out.fields(pairs, title=f"worker {worker['WorkerID']}:")


def _key(ts: dict[str, Any] | None) -> str:
    return "[" + " ".join(c["/"] for c in ts["Cids"]) + "]" if ts else "[]"


def _elapsed(worker: dict[str, Any]) -> float:
    from datetime import datetime

    def parse(text: str) -> datetime | None:
        if not text or text.startswith("0001-01-01"):
            return None  # Go's zero time
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    start, end = parse(worker["Start"]), parse(worker["End"])
    if start is None:
        return 0.0
    if end is None:
        return time.time() - start.timestamp()
    return (end - start).total_seconds()


async def wait(s: "Session", args: argparse.Namespace) -> None:
    import trio
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    version = await s.call("Version")
    block_delay = int(version["BlockDelay"])
    genesis = await s.call("ChainGetGenesis")
    genesis_time = int(genesis["Blocks"][0]["Timestamp"])
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=s.out.console, disable=s.out.json_mode) as progress:
        task = progress.add_task("sync", total=None)
        while True:
            state, head = await s.call("SyncState"), await s.call("ChainHead")
            now = time.time()
            worker = _working(state)
            target = worker["Target"]["Height"] if worker and worker["Target"] else head["Height"]
            clock_epoch = int(now - genesis_time) // block_delay if block_delay else 0
            goal = max(target, clock_epoch, head["Height"])
            if worker is None:
                doing = "no sync running"
            else:
                doing = f"worker {worker['WorkerID']}: {STAGE_NAMES.get(worker['Stage'], worker['Stage'])}"
            progress.update(
                task,
                total=goal,
                completed=head["Height"],
                description=f"{doing}; head {head['Height']}, target {goal}",
            )
            if _synced(state, head, block_delay, now) and not args.watch:
                break
            await trio.sleep(POLL_SECONDS)
    if not s.out.json(state):
        s.out.line("Done!")
