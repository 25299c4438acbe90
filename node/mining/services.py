"""The services of a node that serves storage miners: for each miner its Window PoSt scheduler and its
sealing pipeline, then the block miner for all of them.

    store = SectorStore.open(repo.sectors_path)          # one per node, shared by all three
    miners = serving_miners(node, store)                  # genesis miners and those created here
    services = miner_services(node, miners, store, wait_entry=beacon_service.wait_entry)

`serving_miners` lists every miner this node serves: the miners the repo's sector store holds sectors of
(a genesis miner's pre-sealed sectors, indexed there before the node starts) and the miners created from
this node (`filpy miner create`: node/mining/create.py's LocalMiners, maybe without a sector yet), each
with its worker's key from the wallet and its sectors read from the shared store. `miner_services`
makes their services in the order they start: each miner's Window PoSt scheduler (it must follow heads
before the block miner waits for it) and sealing pipeline (after the message pool: it sends messages),
then the block miner, which waits for the schedulers to have handled a head before mining on it and,
on a chain running drand, for the beacon round of its epoch. The pipelines are set as
`node.sealing[miner]` and the block miner as `node.mining`.
"""

from collections.abc import Sequence

from node.daemon import Service
from node.fullnode import FullNode
from node.mining.create import LocalMiners
from node.mining.local import LocalMiner, local_miners
from node.mining.miner import MiningService, WaitEntry
from node.mining.wdpost import WindowPoStScheduler
from node.sealing.pipeline import SealingPipeline
from node.sealing.sectors import SectorStore


def serving_miners(node: FullNode, store: SectorStore) -> Sequence[LocalMiner]:
    """The miners this node serves (see the module docstring); LocalMinerError names one that cannot
    be served (not a miner on this chain, its worker key not in the wallet)."""
    created = [record.id_address for record in LocalMiners.for_chain(node.chain).list()]
    return local_miners(node.state, node.chain.head(), store, node.wallet, also=created)


def miner_services(
    node: FullNode,
    miners: Sequence[LocalMiner],
    store: SectorStore,
    *,
    mine_blocks: bool = True,
    wait_entry: WaitEntry | None = None,
) -> list[Service]:
    """Each miner's Window PoSt scheduler and sealing pipeline, then (mine_blocks) the block miner."""
    services: list[Service] = []
    schedulers = []
    for miner in miners:
        scheduler = WindowPoStScheduler.for_node(node, miner.address, store)
        pipeline = SealingPipeline.for_node(node, miner.address, store)
        node.sealing[miner.address] = pipeline
        schedulers.append(scheduler)
        services += [scheduler, pipeline]
    if mine_blocks and miners:
        mining = MiningService(
            node, miners, pacers=[s.wait_processed for s in schedulers], wait_entry=wait_entry
        )
        node.mining = mining
        services.append(mining)
    return services
