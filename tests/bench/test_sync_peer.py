"""The sync benchmark's serving peer in a process of its own (bench/sync_peer.py), on a short chain."""

import os

import pytest

from bench.sync_peer import bench_genesis, head_cids, peer_process, sender_keys
from tests.kit.ensemble import ensemble
from tests.polling import wait_until

pytestmark = pytest.mark.slow


async def test_a_node_syncs_from_the_peer_process_which_stops_by_its_pid() -> None:
    async with (
        peer_process(epochs=3) as peer,
        ensemble(nodes=2, miners=1, start=[], connect=False, genesis=bench_genesis(sender_keys())) as ens,
    ):
        info = await peer.ready(timeout=120)
        assert info.height >= 3 and info.built > 0
        kit = ens.nodes[1]  # node 0 holds the genesis miner, which is the peer's: not started
        await ens.start(kit)
        await ens.connect_peer(kit, info.multiaddr)
        await wait_until(lambda: head_cids(kit.head) == info.head, what="the node taking the peer's head")
        pid = peer.pid
        await peer.stop()
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # gone and reaped


async def test_the_peer_process_is_stopped_when_the_block_fails() -> None:
    pid = None
    with pytest.raises(RuntimeError, match="the caller failed"):
        async with peer_process(epochs=3) as peer:
            pid = peer.pid
            raise RuntimeError("the caller failed")  # before the peer has even built its chain
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
