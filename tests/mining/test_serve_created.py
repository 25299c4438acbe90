"""node/mining/services.py ServeCreated on a running node with no block miner yet (a devnet genesis of
two miners, the node serving neither at start): handed the record of a miner as Filpy.MinerCreate hands
it, it starts the miner's Window PoSt scheduler and sealing pipeline under the running ServiceRunner,
sets the pipeline as node.sealing[miner], starts a block miner with it (blocks by it follow), tells its
callbacks, and everything stops with the node in reverse order of start. Real time: blocks every 4 s
are too slow, so the genesis is mined on demand (block delay 0) through the service's mine_now."""

from dataclasses import replace
from pathlib import Path

import trio

from chain.params import DEVNET
from chain.types.address import Address
from node.daemon import ServiceRunner
from node.fullnode import in_memory_full_node
from node.keystore import Keystore
from node.mining.miner import MiningService
from node.mining.services import ServeCreated
from node.wallet import Wallet
from tests.consensus.devchain import genesis_of
from tests.mining.local_miners import presealed_store, served_record

WALL = 60.0  # seconds the test may take


async def test_a_created_miner_is_served_under_a_running_node_with_a_new_block_miner(tmp_path: Path) -> None:
    genesis = genesis_of(miners=2)
    presealed = genesis.miners[1]
    wallet = Wallet(Keystore.create(tmp_path / "keystore"))
    worker = wallet.ensure_key(presealed.worker_key)
    node = in_memory_full_node(genesis, wallet, policy=replace(DEVNET, block_delay_secs=0))
    store = presealed_store(tmp_path, presealed)
    record = served_record(presealed.id_address, worker)
    told: list[Address] = []

    async def on_served(miner: Address) -> None:
        told.append(miner)

    runner = ServiceRunner([], signals=())
    serve = ServeCreated(node, store, start=runner.add, on_served=[on_served])
    with trio.fail_after(WALL):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(runner.run)
            await trio.sleep(0.05)  # the runner's nursery open
            assert node.mining is None
            await serve(record)
            await serve(record)  # served already: nothing more starts
            assert told == [presealed.id_address]
            assert set(node.sealing) == {presealed.id_address}
            mining = node.mining
            assert isinstance(mining, MiningService)
            assert [m.address for m in mining.miners] == [presealed.id_address]
            mined = None
            while mined is None or not any(b.miner == presealed.id_address for b in mined.blocks):
                mined = await mining.mine_now()  # half the power: it wins most epochs
            names = runner.running
            runner.request_stop("test")
    assert names == ("wdpost", "sealing", "miner")
    assert runner.running == ()
    assert runner.failure is None
