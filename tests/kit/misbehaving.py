"""A misbehaving miner, for tests only (the node never makes these): blocks that break the rules of
expected consensus while each one is a valid, properly signed block on its own.

- `twin_blocks`: two different blocks at one epoch on one parent (double-fork mining): the same
  election, one block with the given messages, the other with one more message (a zero-value send
  from the worker to itself), both signed by the worker key;
- `block_on`: the miner's block at any epoch on any parent, e.g. two epochs on the same parent
  (time-offset mining) or on a tipset leaving out its own block (parent grinding);
- `forced_block`: a block made even when the miner may not mine (barred by a consensus fault), which
  validation must refuse.

`MinerBlocks(sm, beacon, miner)` makes them (and `first_win`, the block at the first epoch the miner
wins) on a state manager and beacon (a FullNode's, a DevChain's) with the miner's pre-sealed sectors.
On a kit network (tests/kit/ensemble.py), `DoubleSigner(kit_miner, ensemble)` is a node's genesis
miner that publishes them: `double_sign(base)` makes twin blocks at the next epoch it wins on base,
submits the first through its node's sync service (validated, made the head, gossiped) and, once every
node has it, gossips the second; `publish_forced(base)` gossips a block made while the miner is barred,
which the other nodes must reject.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from chain.consensus.beacon import RandomBeacon
from chain.consensus.election import compute_ticket, election_proof, mining_base
from chain.consensus.fullblock import FullBlock
from chain.consensus.producer import (
    BlockTemplate,
    block_timestamp,
    create_block,
    winning_post_proof,
)
from chain.stmgr.manager import StateManager
from chain.types.message import Message, SignedMessage, sign_message
from chain.types.tipset import TipSet
from node.preseal import PresealedMiner
from tests.consensus.devchain import presealed_block, presealed_reader
from tests.kit.ensemble import Ensemble, KitNode, wait_until
from tests.kit.miner import KitMiner

# The extra message that tells twin blocks apart.
TWIN_GAS_LIMIT: Final = 10_000_000
TWIN_PREMIUM: Final = 1_000


@dataclass(frozen=True)
class MinerBlocks:
    """The blocks a miner makes on a state manager and beacon from its pre-sealed sectors."""

    sm: StateManager
    beacon: RandomBeacon
    miner: PresealedMiner

    def block_on(
        self, parent: TipSet, epoch: int, messages: Sequence[SignedMessage] = ()
    ) -> FullBlock | None:
        """The miner's honest-looking block at epoch on parent (None when it does not win there)."""
        return presealed_block(self.sm, self.beacon, self.miner, parent, epoch, messages)

    def self_send(self, parent: TipSet, after: Sequence[SignedMessage]) -> SignedMessage:
        """A zero-value send from the miner's worker to itself, next in nonce after `after`'s messages."""
        worker = self.miner.worker
        actor = self.sm.actor_after(worker, parent)
        nonce = (0 if actor is None else actor.nonce) + sum(1 for m in after if m.message.from_ == worker)
        message = Message(
            to=worker,
            from_=worker,
            nonce=nonce,
            value=0,
            gas_limit=TWIN_GAS_LIMIT,
            gas_fee_cap=2 * self.sm.base_fee(parent),
            gas_premium=TWIN_PREMIUM,
            method=0,
        )
        return sign_message(message, self.miner.worker_key)

    def twin_blocks(
        self, parent: TipSet, epoch: int, messages: Sequence[SignedMessage] = ()
    ) -> tuple[FullBlock, FullBlock] | None:
        """Two different valid blocks of the miner at epoch on parent (None when it does not win)."""
        first = self.block_on(parent, epoch, messages)
        if first is None:
            return None
        extra = self.self_send(parent, messages)
        second = self.block_on(parent, epoch, [*messages, extra])
        assert second is not None and second.header.cid() != first.header.cid()
        return first, second

    def forced_block(
        self, parent: TipSet, epoch: int, messages: Sequence[SignedMessage] = ()
    ) -> FullBlock | None:
        """The miner's block at epoch on parent as produce_block makes it, but made also when the miner
        may not mine (produce_block declines then); None only when it does not win."""
        miner, key = self.miner.id_address, self.miner.worker_key
        mbase = mining_base(self.sm, self.beacon, miner, parent, epoch)
        if mbase is None:
            return None
        proof = election_proof(mbase, key)
        if proof is None:
            return None
        template = BlockTemplate(
            miner=miner,
            parent=parent,
            epoch=epoch,
            ticket=compute_ticket(mbase, key),
            election_proof=proof,
            beacon_entries=mbase.beacon_entries,
            win_post_proof=(winning_post_proof(self.sm, mbase, presealed_reader(self.miner)),),
            messages=tuple(messages),
            timestamp=block_timestamp(self.sm, parent, epoch),
        )
        return create_block(self.sm, template, key)

    def first_win(
        self, parent: TipSet, after: int | None = None, *, forced: bool = False, tries: int = 50
    ) -> FullBlock:
        """The miner's block at the first epoch above `after` (default: the parent) it wins on parent."""
        start = parent.height if after is None else after
        make = self.forced_block if forced else self.block_on
        for epoch in range(start + 1, start + 1 + tries):
            block = make(parent, epoch)
            if block is not None:
                return block
        raise AssertionError(
            f"{self.miner.id_address} won no epoch in {tries} after {start} on {parent.height}"
        )


@dataclass(eq=False)
class DoubleSigner:
    kit_miner: KitMiner
    ensemble: Ensemble

    @property
    def node(self) -> KitNode:
        return next(k for k in self.ensemble.nodes if self.kit_miner in k.miners)

    async def double_sign(self, base: TipSet, *, max_nulls: int = 30) -> tuple[FullBlock, FullBlock]:
        """Two valid blocks of the miner at one epoch on base, both gossiped to every node."""
        full = self.kit_miner.node
        blocks = MinerBlocks(full.state, full.beacon, self.kit_miner.miner)
        messages = full.mpool.select(base)
        twins = None
        for epoch in range(base.height + 1, base.height + 2 + max_nulls):
            twins = await full.run_sync(blocks.twin_blocks, base, epoch, messages)
            if twins is not None:
                break
        assert twins is not None, f"{blocks.miner.id_address} won no epoch after {base.height}"
        first, second = twins
        await self.kit_miner.submit(first)
        expected = TipSet((first.header,)).key
        nodes = self.ensemble.running_nodes()
        await wait_until(lambda: all(k.head.key == expected for k in nodes), what="the first twin everywhere")
        await full.run_sync(full.chain.put_block, second.header)  # served to peers asking for it
        await self.node.p2p.gossip.publish_block(second.block_msg())
        return first, second

    async def publish_forced(self, base: TipSet) -> FullBlock:
        """A block of the miner on base made even while it is barred, gossiped (never submitted: its own
        node would refuse it)."""
        full = self.kit_miner.node
        blocks = MinerBlocks(full.state, full.beacon, self.kit_miner.miner)
        block: FullBlock = await full.run_sync(lambda: blocks.first_win(base, forced=True))
        await self.node.p2p.gossip.publish_block(block.block_msg())
        return block
