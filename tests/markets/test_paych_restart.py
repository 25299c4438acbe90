"""A node on LevelDB (node/fullnode.py open_full_node, the manager built by assemble) stopped and opened
again: channels, vouchers, proofs, submitted flags and lanes are still there, and a create message sent
before the stop is waited for again and lands."""

from pathlib import Path

import trio

from chain.chainstore.metadata import LevelDBMetadata
from chain.params import DEVNET
from chain.store.blockstore import LevelDBBlockstore
from node.fullnode import FullNode, open_full_node
from node.genesis import write_genesis_car
from node.markets.paych_store import PaychStore
from node.markets.paych_types import VoucherSpec
from tests.consensus.devchain import genesis_of
from tests.markets.devnode import (
    CLIENT,
    CLIENT_KEY,
    FIL,
    PROVIDER,
    PROVIDER_KEY,
    WORKER,
    Miner,
    party,
    wallet_of,
)

PROVIDER_NAMESPACE = b"/paych-provider/"  # the provider's own store, in the same LevelDB for the test


def open_node(tmp_path: Path) -> FullNode:
    car = tmp_path / "genesis.car"
    if not car.exists():
        write_genesis_car(genesis_of(), car)
    return open_full_node(
        tmp_path / "datastore", car, wallet_of(tmp_path / "keys", CLIENT_KEY), policy=DEVNET
    )


def provider_of(node: FullNode, tmp_path: Path) -> FullNode:
    assert isinstance(node.chain.blockstore, LevelDBBlockstore)
    store = PaychStore(LevelDBMetadata(node.chain.blockstore.db, namespace=PROVIDER_NAMESPACE))
    return party(node, tmp_path / "provider-keys", PROVIDER_KEY, store=store)


async def test_restart_keeps_channels_and_vouchers_and_resumes_waiting(tmp_path: Path) -> None:
    node = open_node(tmp_path)
    provider = provider_of(node, tmp_path)
    miner = Miner(node)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.paych.run)
        got = await node.paych.get_paych(CLIENT, PROVIDER, 10 * FIL)
        assert got.wait_sentinel is not None
        sentinel = got.wait_sentinel
        channel = await miner.run_until(lambda: node.paych.get_wait_ready(sentinel))
        assert await node.paych.allocate_lane(channel) == 0
        vouchers = []
        for amount in (1 * FIL, 4 * FIL):
            made = await node.paych.create_voucher(channel, VoucherSpec(amount=amount), 0)
            assert made.voucher is not None
            vouchers.append(made.voucher)
            await provider.paych.add_voucher(channel, made.voucher, b"kept proof", 0)
        submitted = await provider.paych.submit_voucher(channel, vouchers[0], b"", b"")
        await miner.land(provider, submitted)
        # A second channel whose create message is sent but not mined before the node stops.
        pending = await node.paych.get_paych(CLIENT, WORKER, 3 * FIL)
        assert pending.channel is None and pending.wait_sentinel is not None
        before = await node.paych.available_funds(channel)
        client_vouchers = await node.paych.list_vouchers(channel)
        provider_vouchers = await provider.paych.list_vouchers(channel)
        nursery.cancel_scope.cancel()
    node.chain.close()

    again = open_node(tmp_path)
    try:
        provider = provider_of(again, tmp_path)
        assert await again.paych.list_channels() == [channel]
        assert await again.paych.list_vouchers(channel) == client_vouchers
        assert await provider.paych.list_vouchers(channel) == provider_vouchers
        assert [(h.proof, h.submitted) for h in provider_vouchers] == [
            (b"kept proof", True),
            (b"kept proof", False),
        ]
        assert await again.paych.available_funds(channel) == before
        assert await again.paych.allocate_lane(channel) == 1
        made = await again.paych.create_voucher(channel, VoucherSpec(amount=5 * FIL), 0)
        assert made.voucher is not None and made.voucher.nonce == 3  # the lane's nonces go on
        # The message pool kept the create message; the manager waits for it again.
        assert [m.cid() for m in again.mpool.pending_for(CLIENT)] == [pending.wait_sentinel]
        async with trio.open_nursery() as nursery:
            await nursery.start(again.paych.run)
            sentinel = pending.wait_sentinel
            second = await Miner(again).run_until(lambda: again.paych.get_wait_ready(sentinel))
            nursery.cancel_scope.cancel()
        assert sorted(await again.paych.list_channels(), key=str) == sorted([channel, second], key=str)
        funds = await again.paych.available_funds_by_from_to(CLIENT, WORKER)
        assert (funds.channel, funds.confirmed_amt) == (second, 3 * FIL)
    finally:
        again.chain.close()
