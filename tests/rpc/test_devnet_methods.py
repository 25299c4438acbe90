"""The devnet controls (rpc/methods/devnet.py) and ChainHead over HTTP, on an assembled node over a
devnet genesis that mines on demand (block delay 0): Filpy.MineTipset, Filpy.SetMining and Filpy.Faucet,
their permissions, and their errors on a node that does not mine or has no faucet."""

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import pytest
import trio

from chain.params import DEVNET
from chain.types.address import Address
from node.fullnode import FullNode, in_memory_full_node
from node.genesis_template import FIL
from node.keystore import Keystore
from node.mining.miner import MiningService
from node.wallet import Wallet
from rpc.auth import create_token, new_secret, perms_up_to
from rpc.client import HttpClient, RpcCallError
from rpc.methods import full_node_registry
from rpc.server import RpcServer
from tests.consensus.devchain import ALICE, genesis_of
from tests.mining.local_miners import local_miner

SECRET: Final = new_secret()
WAIT: Final = 60


@dataclass
class Devnet:
    node: FullNode
    miner: MiningService
    url: str

    def client(self, perm: str | None = "admin") -> HttpClient:
        return HttpClient(self.url, token=None if perm is None else create_token(SECRET, perms_up_to(perm)))


def node_at(tmp_path: Path) -> FullNode:
    wallet = Wallet(Keystore.create(tmp_path / "keystore"))
    wallet.ensure_key(ALICE)
    return in_memory_full_node(genesis_of(miners=1), wallet, policy=replace(DEVNET, block_delay_secs=0))


@pytest.fixture
async def devnet(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Devnet]:
    node = node_at(tmp_path)
    miner = MiningService(node, [local_miner(tmp_path, genesis_of(miners=1))])
    node.mining = miner
    node.faucet = Address.of_key(ALICE)
    await nursery.start(miner.run)
    server = RpcServer(full_node_registry(), node, secret=SECRET, host="127.0.0.1", port=0)
    bound = await nursery.start(server.run)
    yield Devnet(node, miner, bound.url("/rpc/v1"))


def height_of(tipset_json: Any) -> int:
    height = tipset_json["Height"]
    assert isinstance(height, int)
    return height


async def test_chain_head_and_mine_tipset(devnet: Devnet) -> None:
    async with devnet.client(None) as anyone, devnet.client("write") as writer:
        head = await anyone.call("ChainHead")
        assert height_of(head) == 0 and head == devnet.node.chain.head().to_json("t")
        with pytest.raises(RpcCallError, match=r"missing permission to invoke 'MineTipset' \(need 'write'\)"):
            await anyone.call("Filpy.MineTipset")
        mined = await writer.call("Filpy.MineTipset")
        assert height_of(mined) == 1 and mined == await anyone.call("ChainHead")
        assert mined["Blocks"][0]["Miner"] == "t01000"


async def test_set_mining_and_faucet(devnet: Devnet) -> None:
    to = Address.new_id(100)  # ALICE's account is 100..102; any actor or new address takes FIL
    async with devnet.client("admin") as admin, devnet.client("write") as writer:
        with pytest.raises(RpcCallError, match="need 'admin'"):
            await writer.call("Filpy.SetMining", False)
        with pytest.raises(RpcCallError, match="need 'admin'"):
            await writer.call("Filpy.Faucet", "t0100", str(FIL))

        assert await admin.call("Filpy.SetMining", False) is None
        assert not devnet.miner.enabled
        sent = await admin.call("Filpy.Faucet", to.to_string("t"), str(3 * FIL))
        assert set(sent) == {"/"}
        await trio.sleep(0.5)
        assert devnet.node.chain.head().height == 0  # paused: the message waits in the pool
        (pending,) = devnet.node.mpool.pending_for(Address.of_key(ALICE))
        assert str(pending.cid()) == sent["/"] and pending.message.value == 3 * FIL

        assert await admin.call("Filpy.SetMining", True) is None  # resumed: the pool's message is mined
        with trio.fail_after(WAIT):
            while devnet.node.chain.head().height < 2:  # included at 1, executed in 2's parent state
                await admin.call("Filpy.MineTipset")
        head = devnet.node.chain.head()
        assert devnet.node.state.get_actor(to, head).balance >= 3 * FIL
        assert devnet.node.mpool.pending_for(Address.of_key(ALICE)) == []


async def test_faucet_errors(devnet: Devnet) -> None:
    async with devnet.client("admin") as admin:
        with pytest.raises(RpcCallError, match="the amount must be positive, got 0 attoFIL"):
            await admin.call("Filpy.Faucet", "t0100", "0")
        with pytest.raises(RpcCallError, match=r"faucet: .*exceeds its balance"):
            await admin.call("Filpy.Faucet", "t0100", str(10**9 * FIL))
        with pytest.raises(RpcCallError) as bad:
            await admin.call("Filpy.Faucet", "not an address", "1")
        assert bad.value.code == -32602


async def test_a_node_without_mining_or_faucet(tmp_path: Path, nursery: trio.Nursery) -> None:
    node = node_at(tmp_path)
    server = RpcServer(full_node_registry(), node, secret=SECRET, host="127.0.0.1", port=0)
    bound = await nursery.start(server.run)
    async with HttpClient(bound.url(), token=create_token(SECRET, perms_up_to("admin"))) as admin:
        with pytest.raises(RpcCallError, match="this node does not mine: run `filpy devnet`"):
            await admin.call("Filpy.MineTipset")
        with pytest.raises(RpcCallError, match="this node does not mine"):
            await admin.call("Filpy.SetMining", True)
        with pytest.raises(RpcCallError, match="this node has no faucet"):
            await admin.call("Filpy.Faucet", "t0100", "1")
