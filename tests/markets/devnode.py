"""An in-memory devnet node for the market tests, the parties that use it, and a way to mine it.

`make_node` is a FullNode over the devnet genesis of tests/consensus/devchain.py (two pre-sealed 2 KiB
miners, ALICE, BOB and CAROL funded). `party` gives another party on the same chain: its own wallet,
message pusher and payment-channel store, sharing the chain, state and message pool (as two nodes
that see the same blocks and gossip the same messages). `Miner` produces the chain's tipsets with the
genesis miners, Window PoSts included so that they keep their power; it runs in a worker thread, so the
node's services keep running while a tipset is made.
"""

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final, TypeVar

import trio

from chain.crypto.keys import PrivateKey
from chain.encoding.cid import CID
from chain.mpool.push import MessagePusher
from chain.params import DEVNET
from chain.stmgr.search import MsgLookup
from chain.types.address import Address
from chain.types.tipset import TipSet
from node.fullnode import FullNode, in_memory_full_node
from node.keystore import Keystore
from node.markets.paych import PaychManager
from node.markets.paych_store import PaychStore
from node.wallet import Wallet
from tests.consensus.devchain import ALICE, BOB, CAROL, DevChain, genesis_of

T = TypeVar("T")
FIL: Final = 10**18
CLIENT_KEY: Final = ALICE  # pays: the channels' From
PROVIDER_KEY: Final = CAROL  # is paid: the channels' To, and owns the provider's miner
WORKER_KEY: Final = BOB  # the provider's miner's worker (a worker key is BLS)
CLIENT: Final = Address.of_key(CLIENT_KEY)
PROVIDER: Final = Address.of_key(PROVIDER_KEY)
WORKER: Final = Address.of_key(WORKER_KEY)
# How long watchers get to see a new head before the next tipset is mined (polled in small steps).
SETTLE_STEPS: Final = 10
SETTLE_STEP: Final = 0.01


def wallet_of(directory: Path, *keys: PrivateKey) -> Wallet:
    wallet = Wallet(Keystore.create(directory))
    for key in keys:
        wallet.ensure_key(key)
    return wallet


def make_node(directory: Path, key: PrivateKey = CLIENT_KEY) -> FullNode:
    """The client's node: its wallet holds key."""
    return in_memory_full_node(genesis_of(), wallet_of(directory / "client-keys", key), policy=DEVNET)


def party(node: FullNode, directory: Path, *keys: PrivateKey, store: PaychStore | None = None) -> FullNode:
    """Another party on node's chain (see the module doc), with its own payment-channel manager."""
    wallet = wallet_of(directory, *keys)
    other = dataclasses.replace(
        node, wallet=wallet, pusher=MessagePusher(node.mpool, node.state, node.chain, wallet)
    )
    other.paych = PaychManager(other, store or PaychStore.in_memory())
    return other


class Miner:
    def __init__(self, node: FullNode) -> None:
        genesis = genesis_of()
        self.node = node
        self.dev = DevChain(
            genesis, node.chain, node.state, node.beacon, DEVNET, {m.id_address for m in genesis.miners}
        )

    def _mine_sync(self) -> TipSet:
        head = self.node.chain.head()
        ts = self.dev.next_tipset(self.node.mpool.select(head))
        self.node.state.state_of(ts)
        return ts

    async def mine(self) -> TipSet:
        """The next tipset (its messages from the pool), made the head."""
        return await trio.to_thread.run_sync(self._mine_sync)

    async def mine_until(self, done: Callable[[], bool], max_tipsets: int = 20) -> None:
        """Mine until done() holds, giving watchers time to see each head; at most max_tipsets."""
        for _ in range(max_tipsets + 1):
            for _ in range(SETTLE_STEPS):
                if done():
                    return
                await trio.sleep(SETTLE_STEP)
            await self.mine()
        raise AssertionError(f"not done after {max_tipsets} tipsets")

    async def land(self, node: FullNode, cid: CID, confidence: int = 0, max_tipsets: int = 20) -> MsgLookup:
        """Mine until the message has executed (and has `confidence` tipsets on top); its lookup."""
        found: list[MsgLookup] = []

        async def wait() -> None:
            found.append(await node.wait_msg(cid, confidence))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait)
            await self.mine_until(lambda: bool(found), max_tipsets)
        return found[0]

    async def run_until(self, call: Callable[[], Awaitable[T]], max_tipsets: int = 20) -> T:
        """Run call() while mining, until it returns; what it returned."""
        result: list[T] = []

        async def run() -> None:
            result.append(await call())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(run)
            await self.mine_until(lambda: bool(result), max_tipsets)
        return result[0]
