"""node/fullnode.py: the assembled node over a devnet chain: a pushed message is mined and wait_msg
returns it once confident; a LevelDB node restarts on its chain and refuses another genesis."""

from pathlib import Path

import pytest
import trio

from chain.mpool.push import message_to_push
from chain.params import DEVNET
from chain.types.address import Address
from node.fullnode import NodeError, in_memory_full_node, open_full_node
from node.genesis import write_genesis_car
from node.keystore import Keystore
from node.wallet import Wallet
from tests.consensus.devchain import ALICE, genesis_of
from tests.rpc.chain_node import mine


def _wallet(tmp_path: Path) -> Wallet:
    wallet = Wallet(Keystore.create(tmp_path / "keystore"))
    wallet.ensure_key(ALICE)
    return wallet


async def test_pushed_message_is_mined_and_waited_for(tmp_path: Path) -> None:
    node = in_memory_full_node(genesis_of(), _wallet(tmp_path), policy=DEVNET)
    alice = Address.of_key(ALICE)
    to = Address.new_id(100)
    msg = message_to_push(to, alice, value=1234)
    signed = await node.run_sync(node.pusher.push_message, msg)
    assert node.mpool.pending_for(alice) == [signed]

    result = []

    async def wait() -> None:
        result.append(await node.wait_msg(signed.cid(), 2))

    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait)
            await trio.sleep(0.05)
            mined = mine(node)
            for _ in range(3):
                await trio.sleep(0.05)
                assert not result or node.chain.head().height - mined.height >= 2
                mine(node)
    (lookup,) = result
    assert lookup.receipt.exit_code == 0
    assert node.chain.is_on_heaviest_chain(lookup.tipset)
    assert node.mpool.pending_for(alice) == []
    balance = node.state.get_actor(to, node.chain.head())
    assert balance is not None and balance.balance >= 1234


def test_leveldb_node_restarts_on_its_chain(tmp_path: Path) -> None:
    genesis = genesis_of()
    car = tmp_path / "genesis.car"
    write_genesis_car(genesis, car)
    node = open_full_node(tmp_path / "datastore", car, _wallet(tmp_path), policy=DEVNET)
    mined = mine(node)
    node.chain.close()

    again = open_full_node(tmp_path / "datastore", car, _wallet(tmp_path), policy=DEVNET)
    assert again.chain.head() == mined
    assert again.genesis.cid() == genesis.cid
    again.chain.close()

    other = tmp_path / "other.car"
    write_genesis_car(genesis_of(name="another"), other)
    with pytest.raises(NodeError, match="holds the chain of genesis"):
        open_full_node(tmp_path / "datastore", other, _wallet(tmp_path), policy=DEVNET)
