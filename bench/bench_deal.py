"""A storage deal from proposal to StorageDealActive on the in-process kit, and paid retrieval beside free.

Two kit nodes (tests/markets/deal_net.py: a provider and a client, each with its own chain, wallet,
libp2p host and RPC server on 127.0.0.1; blocks every 50 ms, each tipset waiting for the sealing pipeline
to go idle first), the provider's real sealing pipeline (SDR with vanilla proofs). One deal into the
genesis miner's 2 KiB sectors, then one into the 8 MiB sectors of a miner created on the provider's
node (power.CreateMiner). Each deal's time is split where the provider's and the pipeline's records put
the boundaries:

- transfer: the client's proposal, the provider's HTTP pull of the CAR and its CommP check (until the
  provider's deal leaves StorageDealVerifyData);
- publish: provider funds, PublishStorageDeals batched (0.3 s here) and landed, the piece handed to the
  pipeline (until StorageDealStaged);
- seal: packing, SDR, the trial proof and the pre-commit landed (until the sector waits for its seed);
- prove-commit: the seed, the seal proof, ProveCommitSector landed and the client's own checks (until
  the client's deal is StorageDealActive).

Then the 8 MiB deal's payload (a CAR of about 8 MB) retrieved from the provider three ways, interleaved,
median of ROUNDS: a retrieval deal paid by payment-channel vouchers (1 MiB payment interval growing by 1
MiB, the channel made beforehand, a lane per retrieval), the same deal with a price of zero (the same
transport, no payments: the price of paying), and the free HTTP gateway (`/ipfs/<root>?format=car`).
Every client verifies each block as it arrives.
"""

import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import trio

from bench.common import report, section
from chain.chainstore.metadata import MemoryMetadata
from chain.params import DEVNET
from chain.types.address import Address
from node.markets.deal_states import StorageDealStatus as S
from node.markets.paych_retrieval import voucher_source
from node.markets.piecestore import FREE_ASK, RetrievalAsk
from node.markets.retrieval_client import retrieve_http
from node.markets.retrieval_deals import retrieve_paid
from node.markets.retrieval_payment import ClientPayments, DealProposal, RetrievalParams
from node.markets.sealing_adapter import PipelineSealer
from node.markets.storage_client import DealRequest
from node.mining.create import LocalMiners, create_miner
from node.mining.wdpost import WindowPoStScheduler
from node.preseal import PresealedMiner
from node.sealing.config import SealingConfig
from node.sealing.pipeline import SealingPipeline
from node.sealing.sectors import SectorStore
from node.sealing.states import SectorState
from tests.kit.miner import KitMiner
from tests.markets.deal_net import CLIENT, FIL, DealNet, deal_net

ROUNDS: Final = 3
_MB: Final = 1e6
FAST: Final = SealingConfig.for_policy(DEVNET).with_overrides(
    message_confidence=1, seed_confidence=1, retry_min=0.05, retry_max=0.4
)
PAID_ASK: Final = RetrievalAsk(
    price_per_byte=1000, payment_interval=1 << 20, payment_interval_increase=1 << 20
)


def _settled(net: DealNet, pipeline: SealingPipeline) -> Callable[[Any], Awaitable[None]]:
    """The next tipset waits for the pipeline to go idle and for the genesis miner's Window PoSt
    scheduler to have handled this one (on a loaded machine, sealing 8 MiB could otherwise starve the
    scheduler past its deadline, and the only miner with power would lose it)."""

    async def settle(ts: Any) -> None:
        for miner in net.provider_kit.miners:
            await miner.scheduler.wait_processed(ts)
        while pipeline.busy or pipeline.head != ts:
            await trio.sleep(0.005)

    return settle


async def _serve(net: DealNet, nursery: trio.Nursery, pipeline: SealingPipeline) -> None:
    net.use_sealer(PipelineSealer(pipeline))
    await nursery.start(pipeline.run)
    net.settles.append(_settled(net, pipeline))


async def _timed_deal(
    net: DealNet, pipeline: SealingPipeline, path: Path, piece_size: int
) -> dict[str, float]:
    imported = net.import_file(path)
    changes = pipeline.subscribe()
    seen: dict[str, float] = {}

    async def watch() -> None:
        async for change in changes:
            seen.setdefault(change.new, time.time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        start = time.time()
        ask = await net.client.query_ask(None, net.miner)
        proposal = await net.client.start_deal(
            DealRequest(
                root=imported.root,
                wallet=CLIENT,
                miner=net.miner,
                epoch_price=ask.min_price(piece_size),
                min_blocks_duration=200,
                add_funds=True,
            )
        )
        with trio.fail_after(600):
            record = await net.client.wait_for(proposal, S.StorageDealActive)
        end = time.time()
        nursery.cancel_scope.cancel()
    if record.state != S.StorageDealActive:
        raise RuntimeError(f"the {piece_size}-byte deal ended {record.state.name}: {record.message}")
    (deal,) = net.provider.deals()  # each deal has a provider of its own here
    at = {e.state: e.time / 1000 for e in deal.events}
    transferred = min(t for state, t in at.items() if state.value not in _BEFORE_VERIFIED)
    staged = at[S.StorageDealStaged]
    seeded = seen[SectorState.WAIT_SEED]
    return {
        "transfer": transferred - start,
        "publish": staged - transferred,
        "seal": seeded - staged,
        "prove-commit": end - seeded,
        "total": end - start,
    }


_BEFORE_VERIFIED: Final = frozenset(
    s.value
    for s in (
        S.StorageDealProposalAccepted,
        S.StorageDealTransferring,
        S.StorageDealVerifyData,
        S.StorageDealUnknown,
    )
)


def _report_deal(size: str, phases: dict[str, float]) -> None:
    total = phases["total"]
    report(f"{size} deal: proposal to StorageDealActive", total, "s")
    for name in ("transfer", "publish", "seal", "prove-commit"):
        report(f"  {name}", phases[name], "s", f"{phases[name] / total:.0%}")


async def _new_8mib_miner(net: DealNet, nursery: trio.Nursery, work: Path) -> SealingPipeline:
    """An 8 MiB miner created on the provider's node, its provider and pipeline serving deals."""
    worker = net.genesis.miners[0].worker_key
    worker_address = Address.of_key(worker)
    created = await create_miner(
        net.provider_node,
        LocalMiners(MemoryMetadata()),
        owner=worker_address,
        worker=worker_address,
        sector_size=8 << 20,
        pledge=100 * FIL,
        confidence=1,
    )
    await net.kill_provider()
    net.served_miner = created.id_address
    sectors = SectorStore.open(work / "sectors-8m")
    # The new miner mines from the provider's node as well: once its 8 MiB sector proves it holds nearly
    # all the power, and the genesis miner alone would rarely win a block.
    kit = net.provider_kit
    seal_proof = created.seal_proof
    as_kit = PresealedMiner(created.id_address, worker, worker, seal_proof, 0, ())
    scheduler = WindowPoStScheduler.for_node(net.provider_node, created.id_address, sectors)
    await nursery.start(scheduler.run)
    kit.miners.append(KitMiner(as_kit, net.provider_node, kit.sync, sectors, scheduler))
    pipeline = SealingPipeline.for_node(net.provider_node, created.id_address, sectors, config=FAST)
    net.sealer = PipelineSealer(pipeline)
    await net.restart_provider(nursery, MemoryMetadata())
    await _serve(net, nursery, pipeline)
    await net.announce()
    await net.post_ask(max_piece_size=8 << 20)
    return pipeline


async def _retrievals(net: DealNet, root: Any, work: Path) -> dict[str, list[float]]:
    node, host = net.client_node, net.client_host
    info = net.provider_node.state.miner_info(net.miner, net.head)
    got = await node.paych.get_paych(CLIENT, info.worker, FIL)
    channel = got.channel
    if got.wait_sentinel is not None:
        channel = await node.paych.get_wait_ready(got.wait_sentinel)
    assert channel is not None
    assert net.provider_rpc is not None
    base = net.provider_rpc.url("")
    rates: dict[str, list[float]] = {"paid": [], "free deal": [], "http": []}
    deal_ids = iter(range(1, 1000))
    peer = net.provider_host.peer_id

    async def by_deal(ask: RetrievalAsk) -> int:
        net.prov.retrieval_ask = ask
        deal_id = next(deal_ids)
        lane = await node.paych.allocate_lane(channel)
        params = RetrievalParams(
            price_per_byte=ask.price_per_byte,
            payment_interval=ask.payment_interval,
            payment_interval_increase=ask.payment_interval_increase,
        )
        payer = ClientPayments(params, voucher_source(node.paych, channel, lane, deal_id), max_total=FIL)
        done = await retrieve_paid(
            host, peer, DealProposal(root, deal_id, params), payer, work / f"{deal_id}.car"
        )
        if ask.price_per_byte and payer.paid != ask.price_per_byte * done.bytes_received:
            raise RuntimeError(f"paid {payer.paid} for {done.bytes_received} bytes")
        return done.bytes_received

    async def by_http() -> int:
        net.prov.retrieval_ask = FREE_ASK
        done = await retrieve_http(base, root, work / "http.car", car=True)
        return done.bytes_received

    for _ in range(ROUNDS):
        for name, fetch in (
            ("paid", lambda: by_deal(PAID_ASK)),
            ("free deal", lambda: by_deal(FREE_ASK)),
            ("http", by_http),
        ):
            start = time.perf_counter()
            received = await fetch()
            rates[name].append(received / (time.perf_counter() - start) / _MB)
    return rates


async def _main(work: Path) -> None:
    net = deal_net(work)
    async with net.running() as nursery:
        pipeline = SealingPipeline.for_node(net.provider_node, net.miner, net.sectors, config=FAST)
        await _serve(net, nursery, pipeline)
        (work / "small").write_bytes(os.urandom(1900))
        small = await _timed_deal(net, pipeline, work / "small", 2048)

        big_pipeline = await _new_8mib_miner(net, nursery, work)
        (work / "big").write_bytes(os.urandom(8_000_000))
        big = await _timed_deal(net, big_pipeline, work / "big", 8 << 20)
        rates = await _retrievals(net, net.cli.imports.imports()[-1].root, work)
        nursery.cancel_scope.cancel()

    section("storage deal on the kit (2 nodes, 50 ms blocks, real sealing), proposal to active")
    _report_deal("2 KiB", small)
    _report_deal("8 MiB", big)
    section(f"retrieval of the 8 MiB deal's payload (CAR about 8 MB), median of {ROUNDS}, interleaved")
    paid, free, http = (statistics.median(rates[k]) for k in ("paid", "free deal", "http"))
    report(
        "paid retrieval deal (vouchers every 1 MiB, growing)", paid, "MB/s", f"{paid / free:.2f} x free deal"
    )
    report("free retrieval deal (same transport, no payments)", free, "MB/s")
    report("free HTTP gateway /ipfs/ CAR", http, "MB/s", f"paid = {paid / http:.2f} x HTTP")


def run() -> None:
    with tempfile.TemporaryDirectory(prefix="filpy-bench-deal-") as tmp:
        trio.run(_main, Path(tmp))
