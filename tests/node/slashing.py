"""A FullNode on a devnet chain with its slasher running, for the slasher's tests.

The node (in-memory chain store, state manager, message pool, wallet holding the accounts' and the
miners' keys) mines through a DevChain over its own chain store and state manager (tests/consensus/
devchain.py: blocks validated before they become the head, Window PoSts on time), carrying the pool's
pending messages; every block it mines goes to `slasher.observe`, as the syncer hands over the blocks
it receives. The misbehaving miner's blocks (tests/kit/misbehaving.py) are observed the same way.
"""

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import trio

from actors.builtin import REWARD_ACTOR_ADDR
from actors.reward.state import RewardState
from chain.consensus.fullblock import FullBlock
from chain.params import DEVNET
from chain.stmgr.manager import StateManager
from chain.types.address import Address
from chain.types.block import BlockHeader
from chain.types.tipset import TipSet
from node.config import SlasherConfig
from node.fullnode import FullNode, in_memory_full_node
from node.keystore import Keystore
from node.preseal import PresealedMiner
from node.slasher import ReportOutcome, Slasher
from node.wallet import Wallet
from tests.consensus.devchain import ALICE, BOB, CAROL, DevChain, genesis_of
from tests.kit.misbehaving import MinerBlocks
from tests.polling import wait_until

REPORTER: Final = Address.of_key(CAROL)


@dataclass
class SlashingNode:
    node: FullNode
    dc: DevChain
    slasher: Slasher

    @property
    def offender(self) -> PresealedMiner:
        return self.dc.miners[0]

    @property
    def honest(self) -> PresealedMiner:
        return self.dc.miners[1]

    def blocks_of(self, miner: PresealedMiner) -> MinerBlocks:
        """The miner's blocks made on this node's state (tests/kit/misbehaving.py)."""
        return MinerBlocks(self.node.state, self.node.beacon, miner)

    @property
    def head(self) -> TipSet:
        return self.node.chain.head()

    def observe(self, *blocks: FullBlock | BlockHeader, store: bool = True) -> None:
        """Hand blocks to the slasher as the syncer does: stored first (unless not `store`), then
        observed."""
        for b in blocks:
            header = b.header if isinstance(b, FullBlock) else b
            if store:
                self.node.chain.put_block(header)
            self.slasher.observe(header)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.node.run_sync(fn, *args)

    async def mine(self, miners: Iterable[PresealedMiner] | None = None) -> TipSet:
        """The next tipset (by these miners, default both) with the pool's pending messages; observed."""
        chosen = None if miners is None else {m.id_address for m in miners}

        def make() -> TipSet:
            return self.dc.next_tipset(self.node.mpool.select(self.head), miners=chosen)

        ts: TipSet = await self.run(make)
        self.observe(*ts.blocks)
        return ts

    async def mine_until(self, height: int, miners: Iterable[PresealedMiner] | None = None) -> TipSet:
        while self.head.height < height:
            await self.mine(miners)
        return self.head

    async def wait_pending(self, sender: Address = REPORTER, count: int = 1) -> None:
        await wait_until(
            lambda: len(self.node.mpool.pending_for(sender)) >= count, what=f"{count} from {sender}"
        )

    async def wait_outcomes(self, count: int) -> list[ReportOutcome]:
        await wait_until(lambda: len(self.slasher.outcomes) >= count, what=f"{count} outcomes")
        return list(self.slasher.outcomes)

    def balance(self, address: Address, ts: TipSet) -> int:
        """The balance in the state after ts."""
        actor = self.node.state.actor_after(address, ts)
        return 0 if actor is None else actor.balance

    def reward_estimate(self, ts: TipSet) -> int:
        return reward_estimate(self.node.state, ts)


def reward_estimate(sm: StateManager, ts: TipSet) -> int:
    """The reward actor's smoothed per-epoch reward in ts's parent state (what a message in ts reads
    when no null round precedes ts)."""
    _, state = sm.read_state(REWARD_ACTOR_ADDR, ts)
    assert isinstance(state, RewardState)
    return state.this_epoch_reward_smoothed.estimate()


def new_node(directory: Path) -> FullNode:
    genesis = genesis_of()
    wallet = Wallet(Keystore.create(directory / "keystore"))
    for key in (ALICE, BOB, CAROL, *(m.worker_key for m in genesis.miners)):
        wallet.ensure_key(key)
    return in_memory_full_node(genesis, wallet, policy=DEVNET)


@asynccontextmanager
async def slashing_node(
    directory: Path, *, node: FullNode | None = None, slasher: Slasher | None = None
) -> AsyncIterator[SlashingNode]:
    """A node (new unless given) with its slasher (reporting from CAROL unless given) running."""
    node = new_node(directory) if node is None else node
    genesis = genesis_of()
    dc = DevChain(
        genesis, node.chain, node.state, node.beacon, DEVNET, {m.id_address for m in genesis.miners}
    )
    if slasher is None:
        slasher = Slasher(node, SlasherConfig(enabled=True, address=str(REPORTER)))
    async with trio.open_nursery() as nursery:
        await nursery.start(slasher.run)
        try:
            yield SlashingNode(node, dc, slasher)
        finally:
            nursery.cancel_scope.cancel()
