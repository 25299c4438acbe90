"""The kit's own helpers that the multi-node tests do not already go through."""

import random

import pytest

from chain.mpool.push import message_to_push
from chain.types.address import Address
from chain.types.tipset import TipSetKey
from tests.consensus.devchain import ALICE
from tests.kit.ensemble import ensemble

pytestmark = pytest.mark.slow


async def test_connect_peer_dials_a_multiaddr_and_the_node_syncs_from_it() -> None:
    async with ensemble(nodes=2, miners=1, connect=False) as ens:
        miner, other = ens.nodes
        await ens.mine(3, [miner])
        assert miner.multiaddr.endswith(f"/p2p/{miner.peer_id.to_base58()}")
        assert await ens.connect_peer(other, miner.multiaddr) == miner.peer_id
        assert other.connected_to(miner) and miner.connected_to(other)
        head = await ens.wait_converged()  # hello told the new node the head, and it synced it
        assert head.key == miner.head.key and head.height >= 3


async def test_a_chain_mined_with_pushed_messages_is_the_same_in_every_run() -> None:
    """The pusher's gas premium noise is seeded per node, whatever the global generator does."""

    async def mined() -> tuple[TipSetKey, int]:
        random.seed()  # as another process would be
        async with ensemble(nodes=1, miners=1) as ens:
            kit = ens.nodes[0]
            signed = await kit.push(message_to_push(Address.new_id(100), Address.of_key(ALICE), value=5))
            await ens.mine_until_executed(kit, signed)
            return kit.head.key, signed.message.gas_premium

    first, second = await mined(), await mined()
    assert first == second
