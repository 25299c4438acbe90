"""The kit's own helpers that the multi-node tests do not already go through."""

import pytest

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
