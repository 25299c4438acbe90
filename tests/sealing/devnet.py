"""A devnet for the sealing tests: the assembled node (node/fullnode.py) over an in-memory chain with one
pre-sealed genesis miner that mines every tipset (blocks produced and validated by chain/consensus) and
whose Window PoSt scheduler runs, so that the chain keeps its power and goes on as long as a test needs.

`Devnet.step()` mines one tipset and waits until the node's services have taken it in (the genesis
miner's PoSt scheduler has handled it, the sealing pipelines are idle). `run_until(cond)` steps until
cond() holds. Miners are created for real: power.CreateMiner pushed by the node's pusher and signed by
its wallet (owner ALICE, worker BOB, a BLS key).
"""

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import trio
import trio.testing

from actors.miner.state import SectorOnChainInfo
from chain.params import DEVNET, Policy
from chain.stmgr.search import MsgLookup
from chain.types.address import Address
from chain.types.message import Message, SignedMessage
from chain.types.tipset import TipSet
from node.fullnode import FullNode, in_memory_full_node, open_full_node
from node.genesis import Genesis, write_genesis_car
from node.genesis_template import FIL
from node.keystore import Keystore
from node.mining.create import LocalMiners, MinerCreated, create_miner
from node.mining.wdpost import WindowPoStScheduler
from node.preseal import write_presealed
from node.sealing.config import SealingConfig
from node.sealing.pipeline import SealingPipeline
from node.sealing.sealer import SealedOutput, Sealer
from node.sealing.sectors import SectorStore, SectorStoreError
from node.wallet import Wallet
from proofs import post
from tests.consensus.devchain import ALICE, BOB, genesis_of, presealed_reader
from tests.rpc.chain_node import mine

WAIT: Final = 120  # seconds any one wait of a test may take
OWNER: Final = Address.of_key(ALICE)
WORKER: Final = Address.of_key(BOB)


def fast_config(**changes: object) -> SealingConfig:
    """Devnet settings with short retries, so that failure tests run in seconds."""
    base = SealingConfig.for_policy(DEVNET).with_overrides(
        message_confidence=1, seed_confidence=1, retry_min=0.05, retry_max=0.4
    )
    return base.with_overrides(**changes)


class CountingSealer(Sealer):
    """The real sealer, counting the sectors it really sealed (not found finished on disk)."""

    def __init__(self, store: SectorStore, miner_id: int, counts: dict[int, int]) -> None:
        super().__init__(store, miner_id)
        self.counts = counts

    def seal_sector(self, *args: object, **kwargs: object) -> SealedOutput:
        out = super().seal_sector(*args, **kwargs)  # type: ignore[arg-type]
        if not out.adopted:
            number = args[1]
            assert isinstance(number, int)
            self.counts[number] = self.counts.get(number, 0) + 1
        return out


@dataclass
class Devnet:
    node: FullNode
    genesis: Genesis
    root: Path
    sectors: SectorStore
    miners: LocalMiners
    wdpost: list[WindowPoStScheduler] = field(default_factory=list)
    pipelines: list[SealingPipeline] = field(default_factory=list)
    seals: dict[int, int] = field(default_factory=dict)  # sector -> times really sealed

    @classmethod
    def new(cls, root: Path, policy: Policy = DEVNET) -> "Devnet":
        genesis = genesis_of(miners=1, sectors=2)
        (miner,) = genesis.miners
        wallet = Wallet(Keystore.create(root / "keystore"))
        for key in (ALICE, BOB, miner.worker_key):
            wallet.ensure_key(key)
        node = in_memory_full_node(genesis, wallet, policy=policy)
        write_presealed(root / "sectors", miner, "t")
        sectors = SectorStore.open(root / "sectors")
        sectors.import_presealed(root / "sectors", miner.id_address, "t")
        return cls(node, genesis, root, sectors, LocalMiners.for_chain(node.chain))

    @classmethod
    def open(cls, root: Path) -> "Devnet":
        """The same devnet on disk in root (LevelDB datastore, genesis CAR, keystore, sectors), made on
        first use and reopened as it was left afterwards (a node restarting on its repo)."""
        genesis = genesis_of(miners=1, sectors=2)
        (miner,) = genesis.miners
        car = root / "genesis.car"
        if not car.exists():
            write_genesis_car(genesis, car)
            write_presealed(root / "sectors", miner, "t")
            SectorStore.open(root / "sectors").import_presealed(root / "sectors", miner.id_address, "t")
        wallet = Wallet(Keystore.create(root / "keystore"))
        for key in (ALICE, BOB, miner.worker_key):
            wallet.ensure_key(key)
        node = open_full_node(root / "datastore", car, wallet, policy=DEVNET)
        return cls(node, genesis, root, SectorStore.open(root / "sectors"), LocalMiners.for_chain(node.chain))

    @property
    def head(self) -> TipSet:
        return self.node.chain.head()

    # -- the chain ------------------------------------------------------------------------------------
    def _mine(self) -> TipSet:
        return mine(self.node, genesis=self.genesis, read_sector=self._read_sector)

    def _read_sector(self, miner: Address, sector: SectorOnChainInfo) -> post.ProvingSector:
        """The genesis miner's sector for its Winning PoSt: from the sector store (sectors it sealed
        later are there), or its pre-sealed copy in memory when the store's is gone or damaged (a test
        deleting a replica tests the Window PoSt side, not the block producer's)."""
        try:
            return self.sectors.proving_sector(miner, sector.sector_number, verify=True)
        except SectorStoreError:
            (genesis_miner,) = self.genesis.miners
            return presealed_reader(genesis_miner)(miner, sector)

    async def settle(self) -> None:
        """Wait until the services have taken in the head: PoSt schedulers processed it, pipelines idle."""
        head = self.head
        with trio.fail_after(WAIT):
            for scheduler in self.wdpost:
                await scheduler.wait_processed(head)
            while True:
                await trio.testing.wait_all_tasks_blocked(0.002)
                if all(p.busy == 0 and p.head == head for p in self.pipelines):
                    return
                await trio.sleep(0.005)

    async def step(self) -> TipSet:
        ts = await self.node.run_sync(self._mine)
        await self.settle()
        return ts

    async def run_until(self, cond: Callable[[], bool], *, epochs: int = 400, what: str = "") -> None:
        await self.settle()
        for _ in range(epochs):
            if cond():
                return
            await self.step()
        if not cond():
            raise AssertionError(f"not reached within {epochs} epochs: {what or cond}")

    # -- services -------------------------------------------------------------------------------------
    @asynccontextmanager
    async def running(self) -> AsyncIterator[trio.Nursery]:
        """The genesis miner's Window PoSt scheduler running; yields the nursery for more services."""
        (miner,) = self.genesis.miners
        scheduler = WindowPoStScheduler.for_node(self.node, miner.id_address, self.sectors)
        async with trio.open_nursery() as nursery:
            await nursery.start(scheduler.run)
            self.wdpost.append(scheduler)
            try:
                yield nursery
            finally:
                self.wdpost.remove(scheduler)
                nursery.cancel_scope.cancel()

    def pipeline(self, miner: Address, **options: object) -> SealingPipeline:
        """A sealing pipeline of the miner on this node (records in the node's in-memory store unless
        `store` is given), with the counting sealer."""
        store = options.pop("store", None)
        chain = options.pop("chain", None)
        config = options.pop("config", None) or fast_config()
        pipeline = SealingPipeline.for_node(self.node, miner, self.sectors, store=store, config=config)  # type: ignore[arg-type]
        pipeline.sealer = CountingSealer(self.sectors, miner.id, self.seals)
        if chain is not None:
            pipeline.chain = chain  # type: ignore[assignment]
        return pipeline

    async def start(self, nursery: trio.Nursery, pipeline: SealingPipeline) -> None:
        await nursery.start(pipeline.run)
        self.pipelines.append(pipeline)

    def stop_tracking(self, pipeline: SealingPipeline) -> None:
        if pipeline in self.pipelines:
            self.pipelines.remove(pipeline)

    async def create_miner(
        self, sector_size: int = 2048, pledge: int = 100 * FIL, **options: object
    ) -> MinerCreated:
        """power.CreateMiner through the node, with the chain advancing until it lands."""
        result: list[MinerCreated] = []

        async def create() -> None:
            result.append(
                await create_miner(
                    self.node,
                    self.miners,
                    owner=options.get("owner", OWNER),  # type: ignore[arg-type]
                    worker=options.get("worker", WORKER),  # type: ignore[arg-type]
                    sector_size=sector_size,
                    pledge=pledge,
                    peer_id=options.get("peer_id", ""),  # type: ignore[arg-type]
                    multiaddrs=options.get("multiaddrs", ()),  # type: ignore[arg-type]
                )
            )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(create)
            await trio.testing.wait_all_tasks_blocked(0.01)
            await self.run_until(lambda: bool(result), epochs=20, what="CreateMiner landed")
        return result[0]

    async def send(self, msg: Message) -> MsgLookup:
        """Push msg through the node (MpoolPushMessage) and mine until it has executed; its lookup."""
        signed = await self.node.run_sync(self.node.pusher.push_message, msg, None)
        found: list[MsgLookup] = []

        def landed() -> bool:
            lookup = self.node.state.search_msg(self.head, signed.cid())
            if lookup is not None:
                found.append(lookup)
            return bool(found)

        await self.run_until(landed, epochs=20, what=f"message {signed.cid()} executed")
        return found[-1]

    # -- reading the chain ----------------------------------------------------------------------------
    def messages_to(self, miner: Address, methods: Sequence[int]) -> list[tuple[Message, int]]:
        """Every message to the miner with one of these methods on the chain, with its exit code."""
        node, head = self.node, self.head
        found = []
        ts = head
        while ts.height > 0:
            receipts = node.state.state_of(ts).receipts
            for msg, receipt in reversed(
                list(zip(node.chain.messages_for_tipset(ts), receipts, strict=True))
            ):
                unsigned = msg.message if isinstance(msg, SignedMessage) else msg
                if unsigned.to == miner and unsigned.method in methods:
                    found.append((unsigned, int(receipt.exit_code)))
            ts = node.chain.load_tipset(ts.parents)
        return list(reversed(found))
