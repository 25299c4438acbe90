"""A node for the client commands: the RPC tests' devnet node (tests/rpc/chain_node.py: two genesis
miners, ALICE, BOB and CAROL funded, three tipsets mined with transfers) served on 127.0.0.1, and a repo
directory pointing at it."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from node.fullnode import FullNode
from rpc.client import HttpClient
from rpc.methods import full_node_registry
from rpc.server import BoundAddress, RpcServer
from tests.cli.client_kit import Filpy, fake_repo
from tests.rpc.chain_node import ADMIN_TOKEN, SECRET, Mined, mine, mine_scenario, new_node


@dataclass
class Node:
    node: FullNode
    bound: BoundAddress
    repo: Path
    mined: Mined

    def api(self) -> HttpClient:
        return HttpClient(self.bound.url("/rpc/v1"), token=ADMIN_TOKEN)

    async def mine(self) -> None:
        mine(self.node)


@pytest.fixture
async def served(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Node]:
    node = new_node(tmp_path / "keystore")
    mined = mine_scenario(node)
    server = RpcServer(full_node_registry(), node, secret=SECRET, host="127.0.0.1", port=0)
    bound: BoundAddress = await nursery.start(server.run)
    yield Node(node, bound, fake_repo(tmp_path / "repo", bound), mined)


@pytest.fixture
def filpy(capsys: pytest.CaptureFixture[str], served: Node) -> Filpy:
    return Filpy(capsys, served.repo)
