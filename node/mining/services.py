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

What one miner gets is declared once, `services_of` (its scheduler and its pipeline); both paths derive
from it: `miner_services` at start, and `ServeCreated` for a miner created while the node runs
(`filpy miner create`, set as the node's `on_miner_created`):

    node.on_miner_created = ServeCreated(node, store, start=runner.add, wait_entry=...)

which starts the new miner's scheduler and pipeline under the running node (`ServiceRunner.add`: they
stop with the node, in reverse order of start), sets its pipeline as `node.sealing[miner]` once it runs
(so `filpy miner sectors pledge` works at once), adds it to the block miner with its scheduler as pacer
(`MiningService.add_miner`), or starts a block miner when the node had none, then tells the callbacks
in `on_served` (the markets: a provider that had no miner, or served a genesis miner only, takes it).
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import structlog

from chain.types.address import Address
from node.daemon import Service, ServiceStartError
from node.fullnode import FullNode
from node.mining.create import LocalMinerRecord, LocalMiners
from node.mining.local import LocalMiner, LocalMinerError, local_miner, local_miners
from node.mining.miner import MiningService, WaitEntry
from node.mining.wdpost import WindowPoStScheduler
from node.sealing.pipeline import SealingPipeline
from node.sealing.sectors import SectorStore

log = structlog.get_logger("miner")

# Starts one service under the running node once the node runs (ServiceRunner.add).
StartService = Callable[[Service], Awaitable[None]]
# Told the ID address of a miner the node has just begun to serve.
OnServed = Callable[[Address], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class MinerServices:
    """What one served miner gets: its Window PoSt scheduler and its sealing pipeline."""

    scheduler: WindowPoStScheduler
    pipeline: SealingPipeline

    def services(self) -> list[Service]:
        """In the order they start: the scheduler follows heads before the block miner waits for it."""
        return [self.scheduler, self.pipeline]


def services_of(node: FullNode, miner: Address, store: SectorStore) -> MinerServices:
    """The services of one miner this node serves (the one declaration of them)."""
    return MinerServices(
        WindowPoStScheduler.for_node(node, miner, store), SealingPipeline.for_node(node, miner, store)
    )


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
        served = services_of(node, miner.address, store)
        node.sealing[miner.address] = served.pipeline
        schedulers.append(served.scheduler)
        services += served.services()
    if mine_blocks and miners:
        mining = MiningService(
            node, miners, pacers=[s.wait_processed for s in schedulers], wait_entry=wait_entry
        )
        node.mining = mining
        services.append(mining)
    return services


@dataclass(slots=True)
class ServeCreated:
    """The node's `on_miner_created`: serves a miner created while the node runs (see the module
    docstring). A miner that cannot be served (its worker key not in the wallet, a service failing to
    start) is logged and left unserved until the next start (Filpy.MinerList says so); the node runs
    on."""

    node: FullNode
    store: SectorStore
    start: StartService
    mine_blocks: bool = True
    wait_entry: WaitEntry | None = None
    on_served: list[OnServed] = field(default_factory=list)

    async def __call__(self, record: LocalMinerRecord) -> None:
        address = record.id_address
        if address in self.node.sealing:
            return  # served already
        try:
            await self._serve(address)
        except (LocalMinerError, ServiceStartError) as exc:
            name = address.to_string(self.node.address_network)
            log.error("created miner not served until the next start", miner=name, error=str(exc))

    async def _serve(self, address: Address) -> None:
        node = self.node
        miner = await node.run_sync(
            local_miner, node.state, node.chain.head(), self.store, node.wallet, address
        )
        served = services_of(node, address, self.store)
        for service in served.services():
            await self.start(service)
        node.sealing[address] = served.pipeline
        if self.mine_blocks:
            if not isinstance(node.mining, MiningService):
                mining = MiningService(
                    node, [miner], pacers=[served.scheduler.wait_processed], wait_entry=self.wait_entry
                )
                await self.start(mining)
                node.mining = mining
            else:
                node.mining.add_miner(miner, pacer=served.scheduler.wait_processed)
        log.info("serving a created miner", miner=address.to_string(node.address_network))
        for callback in self.on_served:
            try:
                await callback(address)
            except Exception as exc:  # the markets failing to take it: the miner is served all the same
                name = address.to_string(node.address_network)
                log.error("created miner not handed on", miner=name, error=str(exc) or type(exc).__name__)
