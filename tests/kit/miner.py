"""A genesis miner run by a kit node: its blocks (chain/consensus/producer.py on the node's state and
message pool), its sectors in a sector store, and its Window PoSt scheduler (node/mining/wdpost.py), as
a devnet's miner has them. Blocks go out through the node's sync service (`submit_block`: validated,
made part of the head, gossiped), as the mining loop's do."""

from dataclasses import dataclass
from pathlib import Path

import trio

from actors.miner.state import SectorOnChainInfo
from chain.consensus.fullblock import FullBlock
from chain.consensus.producer import ProducerError
from chain.types.address import Address
from chain.types.tipset import TipSet
from node.chainsync.service import SyncService
from node.fullnode import FullNode
from node.mining.local import LocalMiner
from node.mining.wdpost import WindowPoStScheduler
from node.preseal import PresealedMiner, write_presealed
from node.sealing.sectors import SectorStore
from proofs import post
from tests.consensus.devchain import presealed_block

ADDRESS_NETWORK = "t"
# How long a miner waits for its Window PoSt scheduler to have handled the base before mining anyway.
PACER_TIMEOUT = 30.0


@dataclass(eq=False)
class KitMiner:
    miner: PresealedMiner
    node: FullNode
    sync: SyncService
    sectors: SectorStore
    scheduler: WindowPoStScheduler

    @classmethod
    def create(cls, miner: PresealedMiner, node: FullNode, sync: SyncService, directory: Path) -> "KitMiner":
        directory.mkdir(parents=True, exist_ok=True)
        write_presealed(directory, miner, ADDRESS_NETWORK)
        sectors = SectorStore.open(directory)
        sectors.import_presealed(directory, miner.id_address, ADDRESS_NETWORK)
        node.wallet.ensure_key(miner.worker_key)
        scheduler = WindowPoStScheduler.for_node(node, miner.id_address, sectors)
        return cls(miner, node, sync, sectors, scheduler)

    @property
    def address(self) -> Address:
        return self.miner.id_address

    def read_sector(self, miner: Address, sector: SectorOnChainInfo) -> post.ProvingSector:
        """As the node's miner reads it (node/mining/local.py): a replica it cannot read makes the
        Winning PoSt fail, so the miner makes no block, instead of the kit failing."""
        reader = LocalMiner.from_store(self.address, self.miner.worker_key, self.sectors).read_sector
        return reader(miner, sector)

    async def pace(self, base: TipSet) -> None:
        """Let the Window PoSt scheduler handle base first, so its proofs can go into the block."""
        with trio.move_on_after(PACER_TIMEOUT):
            await self.scheduler.wait_processed(base)

    async def produce(self, base: TipSet, epoch: int) -> FullBlock | None:
        """This miner's block at epoch on base with the pool's messages, or None if it does not win."""
        node = self.node

        def make() -> FullBlock | None:
            try:
                messages = node.mpool.select(base)
                return presealed_block(
                    node.state, node.beacon, self.miner, base, epoch, messages, self.read_sector
                )
            except ProducerError:  # a lost sector drawn for the Winning PoSt: no block, as the node
                return None

        return await node.run_sync(make)

    async def submit(self, block: FullBlock) -> None:
        await self.sync.submit_block(block)
