"""The Window PoSt scheduler on the assembled node (node/fullnode.py): the chain store's head-change
subscription, the state manager's queries and randomness, the message pool with MpoolPushMessage (gas
estimated on the state, signed by the wallet), and blocks produced and validated by chain/consensus
(election, Winning PoSt, null rounds)."""

from functools import partial
from pathlib import Path
from typing import Final

import trio

from actors.miner.types import MinerMethod
from chain.params import DEVNET
from chain.stmgr import miners as miner_queries
from chain.types.message import SignedMessage
from chain.vm.exitcode import ExitCode
from node.fullnode import in_memory_full_node
from node.keystore import Keystore
from node.mining.wdpost import RunState, WindowPoStScheduler
from node.preseal import write_presealed
from node.sealing.sectors import SectorStore
from node.wallet import Wallet
from tests.consensus.devchain import genesis_of
from tests.rpc.chain_node import mine

WAIT: Final = 60


async def test_every_deadline_proven_on_the_assembled_node(tmp_path: Path) -> None:
    genesis = genesis_of(miners=1, sectors=4)  # sectors 0-1 in deadline 0, 2-3 in deadline 1
    (miner,) = genesis.miners
    wallet = Wallet(Keystore.create(tmp_path / "keystore"))
    wallet.ensure_key(miner.worker_key)
    node = in_memory_full_node(genesis, wallet, policy=DEVNET)
    write_presealed(tmp_path / "sectors", miner, "t")
    sectors = SectorStore.open(tmp_path / "sectors")
    sectors.import_presealed(tmp_path / "sectors", miner.id_address, "t")
    scheduler = WindowPoStScheduler.for_node(node, miner.id_address, sectors)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(WAIT):
            await nursery.start(scheduler.run)
            await scheduler.wait_processed(node.chain.head())
        while node.chain.head().height < 200:  # both deadlines, twice
            ts = await node.run_sync(partial(mine, node, genesis=genesis))
            with trio.fail_after(WAIT):
                await scheduler.wait_processed(ts)
        nursery.cancel_scope.cancel()

    head = node.chain.head()
    tree = node.state.tree(node.state.state_of(head).state_root)
    assert miner_queries.miner_faults(tree, miner.id_address).is_empty()
    assert miner_queries.miner_power(tree, DEVNET, miner.id_address).miner.raw_byte_power == 4 * 2048
    proven = {(d.index, d.open): d for d in scheduler.status().deadlines if d.state is RunState.POSTED}
    assert set(proven) == {(0, 178), (1, 188)}  # this period's (the last period's have been pruned)
    for deadline in proven.values():
        (cid,) = deadline.messages
        found = node.state.search_msg(head, cid)
        assert found is not None and found.receipt.exit_code == ExitCode.Ok
        included = node.chain.load_tipset(found.tipset.parents)  # found.tipset is the one executing it
        assert deadline.open <= included.height < deadline.close
        message = node.chain.get_message(cid)
        unsigned = message.message if isinstance(message, SignedMessage) else message
        assert unsigned.method == MinerMethod.SubmitWindowedPoSt
        assert unsigned.from_ == miner.worker
