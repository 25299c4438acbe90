"""kill -9 of a real node process while it seals (tests/sealing/sealing_node.py), three times at three
points of the pipeline, then a restart that runs to the end: the sector resumes where it was each time,
is sealed once, and is pre-committed and proven by exactly one message each."""

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.miner.types import MinerMethod
from chain.params import DEVNET
from chain.stmgr import miners as miner_queries
from chain.types.address import Address
from chain.vm.exitcode import ExitCode
from node.sealing.states import HAPPY_PATH
from tests.processes import JsonLinesChild, killed_at_end
from tests.sealing.devnet import Devnet

TIMEOUT = 120.0


class Node(JsonLinesChild):
    """The node process; its JSON lines (stdout) read with a deadline."""

    def __init__(self, repo: Path) -> None:
        super().__init__([sys.executable, "-m", "tests.sealing.sealing_node", str(repo)], on_stderr=False)

    def wait_for(self, key: str, value: object = None) -> dict[str, Any]:
        return self.first(
            lambda line: key in line and value in (None, line[key]), TIMEOUT, f"{key}={value!r}"
        )


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    yield from killed_at_end(Node.kill)


@pytest.mark.slow
def test_kill_9_while_sealing_then_restart(tmp_path: Path, nodes: list[Node]) -> None:
    order = [s.value for s in HAPPY_PATH]
    resumed_at = []
    for kill_at in ("PreCommit2", "PreCommitWait", "CommitWait"):
        node = Node(tmp_path)
        nodes.append(node)
        resumed = node.wait_for("resumed")["resumed"]
        resumed_at.append(resumed.get("0"))
        node.wait_for("state", kill_at)
        node.kill()  # SIGKILL right after the transition was recorded: whatever runs then dies with it

    final = Node(tmp_path)
    nodes.append(final)
    resumed_at.append(final.wait_for("resumed")["resumed"]["0"])
    assert final.wait_for("done")["done"] == "Proving"
    assert final.proc.wait(timeout=TIMEOUT) == 0

    # each restart took the sector up no earlier than where it was killed
    assert resumed_at[0] == "Packing"
    for state, killed_at in zip(resumed_at[1:], ("PreCommit2", "PreCommitWait", "CommitWait"), strict=True):
        assert order.index(state) >= order.index(killed_at), resumed_at
    assert (tmp_path / "seals.log").read_text() == "sector 0\n"  # sealed once across four processes

    net = Devnet.open(tmp_path)
    try:
        miner = Address.parse(final.wait_for("miner")["miner"])
        landed = net.messages_to(
            miner,
            (
                MinerMethod.PreCommitSector,
                MinerMethod.PreCommitSectorBatch,
                MinerMethod.ProveCommitSector,
                MinerMethod.ProveCommitAggregate,
            ),
        )
        assert [(m.method, code) for m, code in landed] == [
            (MinerMethod.PreCommitSector, ExitCode.Ok),
            (MinerMethod.ProveCommitSector, ExitCode.Ok),
        ]
        tree = net.node.state.tree(net.node.state.state_of(net.head).state_root)
        assert miner_queries.miner_power(tree, DEVNET, miner).miner.raw_byte_power == 2048
        assert net.sectors.check(miner, [0]) == []
    finally:
        net.node.chain.close()
