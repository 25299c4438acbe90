"""The Window PoSt scheduler on the node's own parts: the chain store's head-change subscription, the
state manager's queries and randomness, the message pool with MpoolPushMessage (gas estimated on the
state, signed by the wallet), and blocks produced and validated by chain/consensus (election, Winning
PoSt, null rounds) in tests/consensus/devchain.py."""

from pathlib import Path
from typing import Final

import trio

from actors.miner.types import MinerMethod
from chain.mpool.pool import MessagePool
from chain.mpool.push import MessagePusher
from chain.stmgr import miners as miner_queries
from chain.types.message import SignedMessage
from chain.vm.exitcode import ExitCode
from node.keystore import Keystore
from node.mining.wdpost import RunState, WindowPoStScheduler
from node.preseal import write_presealed
from node.sealing.sectors import SectorStore
from node.wallet import Wallet
from tests.consensus.devchain import DevChain

WAIT: Final = 60


async def test_every_deadline_proven_through_the_nodes_parts(tmp_path: Path) -> None:
    dc = DevChain.new(miners=1, sectors=4)  # sectors 0-1 in deadline 0, 2-3 in deadline 1
    dc.auto_post = False
    (miner,) = dc.miners
    write_presealed(tmp_path / "sectors", miner, "t")
    sectors = SectorStore.open(tmp_path / "sectors")
    sectors.import_presealed(tmp_path / "sectors", miner.id_address, "t")
    (tmp_path / "keystore").mkdir(mode=0o700)
    wallet = Wallet(Keystore(tmp_path / "keystore"), "t")
    wallet.ensure_key(miner.worker_key)
    pool = MessagePool(dc.chain, dc.sm, dc.head, policy=dc.policy)
    dc.chain.on_head_change(pool.head_change)
    pusher = MessagePusher(pool, dc.sm, dc.chain, wallet)
    scheduler = WindowPoStScheduler(
        miner.id_address,
        chain=dc.chain,
        state=dc.sm,
        pusher=pusher,
        sectors=sectors,
        policy=dc.policy,
        pending=pool,
    )
    async with trio.open_nursery() as nursery:
        with trio.fail_after(WAIT):
            await nursery.start(scheduler.run)
            await scheduler.wait_processed(dc.head)
        while dc.head.height < 200:  # both deadlines, twice
            ts = await trio.to_thread.run_sync(lambda: dc.next_tipset(pool.select(dc.head)))
            with trio.fail_after(WAIT):
                await scheduler.wait_processed(ts)
        nursery.cancel_scope.cancel()

    tree = dc.sm.tree(dc.sm.state_of(dc.head).state_root)
    assert miner_queries.miner_faults(tree, miner.id_address).is_empty()
    assert miner_queries.miner_power(tree, dc.policy, miner.id_address).miner.raw_byte_power == 4 * 2048
    proven = {(d.index, d.open): d for d in scheduler.status().deadlines if d.state is RunState.POSTED}
    assert set(proven) == {(0, 178), (1, 188)}  # this period's (the last period's have been pruned)
    messages = [cid for d in proven.values() for cid in d.messages]
    for cid in messages:
        found = dc.sm.search_msg(dc.head, cid)
        assert found is not None and found.receipt.exit_code == ExitCode.Ok
        message = dc.chain.get_message(cid)
        unsigned = message.message if isinstance(message, SignedMessage) else message
        assert unsigned.method == MinerMethod.SubmitWindowedPoSt
        assert unsigned.from_ == miner.worker
