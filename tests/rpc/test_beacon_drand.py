"""StateGetBeaconEntry and BeaconGetEntry on a node whose beacon is drand (node/beacon): up to the head
the entries its blocks carry, above it the rounds its beacon service has received; a round that has
not arrived is an RPC error, not a crash."""

from pathlib import Path

import pytest

from chain.chainstore.store import ChainStore
from chain.consensus.drand import DrandBeacon
from chain.consensus.weight import weight_of
from chain.params import DEVNET
from chain.types.tipset import TipSet
from node.beacon.service import BeaconService
from node.beacon.store import BeaconStore
from node.fullnode import FullNode, assemble
from node.keystore import Keystore
from node.wallet import Wallet
from rpc.client import RpcCallError
from tests.consensus.devchain import GENESIS_TIME
from tests.consensus.drandchain import INFO, KEY, drand_genesis
from tests.rpc.chain_node import clients, mine, serving

T = "t"
ROUNDS_OUT = 6  # the beacon node has published rounds 1..6


def drand_node(keystore: Path) -> FullNode:
    genesis = drand_genesis()
    chain = ChainStore.in_memory()
    chain.blockstore.put_many(genesis.blocks())
    chain.set_genesis(genesis.header, weight_of(chain.blockstore, TipSet((genesis.header,))))
    beacon = DrandBeacon(INFO, genesis_time=GENESIS_TIME, block_delay=DEVNET.block_delay_secs)
    service = BeaconService(beacon, BeaconStore.in_memory(INFO.hash))
    entry = INFO.genesis_entry
    for _ in range(ROUNDS_OUT):
        entry = KEY.next_entry(entry)
        service.store.put(entry)
    return assemble(chain, Wallet(Keystore.create(keystore)), policy=DEVNET, persistent=False, beacon=beacon)


def mine_to(node: FullNode, height: int) -> None:
    genesis = drand_genesis()
    while node.chain.head().height < height:
        mine(node, genesis=genesis, with_messages=False)


async def test_beacon_entries_of_a_drand_node(tmp_path: Path) -> None:
    node = drand_node(tmp_path / "keystore")
    mine_to(node, 3)
    head = node.chain.head()
    async with serving(node) as bound, clients(bound) as (v0, v1):
        for epoch in range(1, head.height + 1):
            on_chain = node.state.beacon_entry(head, epoch)
            assert on_chain.round == epoch and len(on_chain.data) == 96
            assert await v1.call("StateGetBeaconEntry", epoch) == on_chain.to_json(T)
            assert await v0.call("BeaconGetEntry", epoch) == on_chain.to_json(T)
        # above the head: what the beacon has received (round e for epoch e on this chain)
        future = node.beacon.entry(ROUNDS_OUT)
        assert await v1.call("StateGetBeaconEntry", ROUNDS_OUT) == future.to_json(T)
        # a round the beacon has not received yet
        with pytest.raises(RpcCallError, match=f"round {ROUNDS_OUT + 1} .* has not arrived"):
            await v1.call("StateGetBeaconEntry", ROUNDS_OUT + 1)
