"""Chain sync between nodes on 127.0.0.1 (tests/kit's in-process ensemble: full nodes with libp2p
hosts and their sync services), on a devnet genesis with one pre-sealed 2 KiB miner and funded
accounts:

1. catch-up: node A mines a 2,000-epoch chain alone (three transfers per block, the miner's Window
   PoSts), then node B starts, connects, hears A's head by hello and syncs it all over chain exchange
   (headers back to the genesis, messages in batches), validating every block in full and executing
   every tipset. Then node C does the same as the node did before this work: its store without the
   cache of decoded blocks, and no checks ahead in a worker process (C is stopped after). Reported
   for both: tipsets/s from connecting to the head equal to A's (target: 200), the CPU it took (the
   machine is shared: tipsets per CPU-second does not depend on what else runs); for B the seconds
   per stage (SyncTimings), the block cache's bytes against its bound and the process's peak RSS
   growth; the same per-tipset work replayed in one thread without the network (without the block
   cache, serial, and with the checks run ahead in a worker process), and a profile of it (cProfile,
   which roughly doubles the time) saying where the time goes.
2. gossip latency: A makes a block, applies it and publishes it; the time until B's head is that
   tipset (B checks it for gossip, validates it in full, executes it, switches head). p50 and p99 over
   50 blocks (target: p50 <= 100 ms).
3. messages/s gossiped: A publishes 2,000 signed transfers (500 senders, 4 nonces each), at most 16
   on the way at once; the rate at which B's message pool takes them in (gossip validation,
   signature, the pool's checks).
"""

import cProfile
import io
import os
import pstats
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Final

import trio

from bench.common import console, report, section
from chain.chainstore.store import ChainStore
from chain.consensus.beacon import MockBeacon
from chain.consensus.fullblock import FullBlock
from chain.consensus.validation import validate_block
from chain.consensus.verified import WORKER_BATCH_CHECKS, Check, VerifierPool, from_wire, run_checks
from chain.crypto.keys import KeyType, PrivateKey
from chain.params import DEVNET
from chain.stmgr.manager import StateManager
from chain.store.blockcache import BlockCache
from chain.store.blockstore import LevelDBBlockstore, MemoryBlockstore
from chain.sync.ahead import CheckAhead
from chain.sync.exchange import ChainExchange
from chain.sync.syncer import Syncer
from chain.types.address import Address
from chain.types.message import SignedMessage
from chain.types.tipset import TipSet
from node.genesis import Genesis, build_genesis
from node.genesis_template import FIL, AccountEntry
from tests.consensus.devchain import devnet_template
from tests.kit.ensemble import Ensemble, KitNode, ensemble, wait_until
from tests.rpc.chain_node import transfer

EPOCHS: Final = 2000
MESSAGES_PER_BLOCK: Final = 3
SYNC_TARGET: Final = 200.0  # tipsets/s
LATENCY_BLOCKS: Final = 50
LATENCY_TARGET_MS: Final = 100.0
SENDERS: Final = 500
NONCES: Final = 4
WINDOW: Final = 16  # messages published and not yet in B's pool
PROFILE_TIPSETS: Final = 300
REPLAY_TIPSETS: Final = 500
GAS_LIMIT: Final = 1_000_000
RECIPIENT: Final = Address.new_id(100)


def _keys() -> list[PrivateKey]:
    return [PrivateKey.derive(KeyType.SECP256K1, f"bench-sync-{i}".encode()) for i in range(SENDERS)]


def _genesis(keys: Sequence[PrivateKey]) -> Genesis:
    template = devnet_template(miners=1, name="bench-sync")
    accounts = (*template.accounts, *(AccountEntry(Address.of_key(k), 1_000 * FIL) for k in keys))
    return build_genesis(replace(template, accounts=accounts))


def _transfer(key: PrivateKey, nonce: int, value: int = 1) -> SignedMessage:
    return transfer(key, nonce, RECIPIENT, value=value, gas_limit=GAS_LIMIT)


async def _build_chain(ens: Ensemble, miner: KitNode, keys: Sequence[PrivateKey]) -> float:
    """EPOCHS tipsets on A alone, each block with MESSAGES_PER_BLOCK transfers; seconds taken."""
    start = time.perf_counter()
    nonces = dict.fromkeys(range(len(keys)), 0)
    sender = 0
    while miner.head.height < EPOCHS:
        for _ in range(MESSAGES_PER_BLOCK):
            i = sender % len(keys)
            miner.node.mpool.push(_transfer(keys[i], nonces[i]))
            nonces[i] += 1
            sender += 1
        await ens.mine_one([miner])
    return time.perf_counter() - start


def _chain(store: ChainStore, head: TipSet) -> list[TipSet]:
    out = [head]
    while out[-1].height > 0:
        out.append(store.load_tipset(out[-1].parents))
    return out[::-1]


def _cpu() -> float:
    """CPU seconds of this process and of its children that have ended (B's check process ends with
    each sync)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a running process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


class _RecordingPool(VerifierPool):
    """A VerifierPool that keeps what it hands its worker (the checks' wire form), to time the worker's
    work again in this process."""

    def __init__(self) -> None:
        self.handed: list[list[tuple[object, ...]]] = []
        super().__init__()

    def run(self, checks: Sequence[Check], done: Callable[[Sequence[bool] | None], None]) -> int:
        if checks:
            self.handed.append([check.wire() for check in checks])
        return super().run(checks, done)


def _worker_work(handed: Sequence[Sequence[tuple[object, ...]]]) -> list[tuple[str, float]]:
    """The CPU ms per hand-off (one tipset) of the worker's work on the recorded hand-offs, run here:
    each check alone (as before the batches), run_checks per hand-off, and in batches of
    WORKER_BATCH_CHECKS checks (what the worker reaches when it is behind)."""

    def one_by_one() -> None:
        for items in handed:
            for item in items:
                from_wire(item).run()

    def per_hand_off() -> None:
        for items in handed:
            run_checks(items)

    def grouped() -> None:
        batch: list[tuple[object, ...]] = []
        for items in handed:
            batch += items
            if len(batch) >= WORKER_BATCH_CHECKS:
                run_checks(batch)
                batch = []
        run_checks(batch)

    out = []
    for name, fn in (
        ("each check alone", one_by_one),
        ("BLS batched per hand-off", per_hand_off),
        (f"BLS batched per {WORKER_BATCH_CHECKS} checks", grouped),
    ):
        start = time.process_time()
        fn()
        out.append((name, (time.process_time() - start) / max(len(handed), 1) * 1e3))
    return out


def _own_cpu() -> float:
    """CPU seconds of this process alone (the nodes' threads, without the check process)."""
    t = os.times()
    return t.user + t.system


def _without_block_cache(store: object) -> None:
    """Decode every block read, as the node did before the store's cache of decoded blocks."""
    assert isinstance(store, LevelDBBlockstore | MemoryBlockstore)
    store.block_cache = None


def _block_cache(store: object) -> BlockCache:
    assert isinstance(store, LevelDBBlockstore | MemoryBlockstore) and store.block_cache is not None
    return store.block_cache


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _fresh_syncer(genesis: Genesis, exchange: ChainExchange, *, cache: bool = True) -> Syncer:
    store = ChainStore.in_memory()
    if not cache:
        _without_block_cache(store.blockstore)
    store.blockstore.put_many(genesis.blocks())
    store.set_genesis(genesis.header)
    beacon = MockBeacon()
    sm = StateManager(store, policy=DEVNET, beacon=beacon)
    return Syncer(store, sm, beacon, exchange)


def _full_tipsets(source: ChainStore, tipsets: Sequence[TipSet]) -> list[tuple[FullBlock, ...]]:
    full = []
    for ts in tipsets:
        blocks = []
        for header in ts.blocks:
            bls, secpk = source.messages_for_block(header)
            blocks.append(FullBlock(header, tuple(bls), tuple(secpk)))
        full.append(tuple(blocks))
    return full


def _replay(
    genesis: Genesis,
    source: ChainStore,
    tipsets: Sequence[TipSet],
    exchange: ChainExchange,
    *,
    ahead: bool,
    cache: bool = True,
    handed: list[list[tuple[object, ...]]] | None = None,
) -> tuple[float, float, float]:
    """The syncer's per-tipset work on the first tipsets of the chain in this thread, without the
    network and without a profiler, as a sync does it (headers stored first, fork choice per batch of
    64): tipsets/s, tipsets per CPU-second of this process (the check process's not counted), and the
    check process's CPU seconds per tipset (0 without it). handed gets the checks handed to it."""
    syncer = _fresh_syncer(genesis, exchange, cache=cache)
    full = _full_tipsets(source, tipsets[1 : REPLAY_TIPSETS + 1])
    for blocks in full:
        syncer.chain.put_tipset(TipSet(tuple(b.header for b in blocks)))
    pool = _RecordingPool() if ahead else None
    started = 0.0 if pool is None or pool.pid is None else _process_cpu(pool.pid)  # its imports
    try:
        checks = None if pool is None else CheckAhead(syncer.sm, pool)
        if checks is not None:
            checks.extend(full)
        start, cpu = time.perf_counter(), time.process_time()
        for i, blocks in enumerate(full):
            if checks is None:
                syncer._apply_full(blocks, ())
            else:
                syncer._apply_full(blocks, (), checks)
            if i % 64 == 63 or i == len(full) - 1:
                syncer._take_heaviest(TipSet(tuple(b.header for b in blocks)))
        took, cpu = time.perf_counter() - start, time.process_time() - cpu
        worker = 0.0 if pool is None or pool.pid is None else (_process_cpu(pool.pid) - started) / len(full)
    finally:
        if pool is not None:
            pool.close()
            if handed is not None:
                handed += pool.handed
    return len(full) / took, len(full) / cpu, worker


def _profile(genesis: Genesis, source: ChainStore, tipsets: Sequence[TipSet], exchange: ChainExchange) -> str:
    """The syncer's per-tipset work (validation, execution, weights) on the first tipsets of the chain,
    in this thread under cProfile: the top functions by cumulative time."""
    syncer = _fresh_syncer(genesis, exchange)
    full = _full_tipsets(source, tipsets[1 : PROFILE_TIPSETS + 1])
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for blocks in full:
        syncer._apply_full(blocks, ())
    syncer._take_heaviest(TipSet(tuple(b.header for b in full[-1])))
    profiler.disable()
    took = time.perf_counter() - start
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(18)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    rate = len(full) / took
    head = f"  one thread, {len(full)} tipsets: {rate:,.0f} tipsets/s ({took / len(full) * 1000:.1f} ms each)"
    return "\n".join(
        [
            head,
            *("    " + line[:150] for line in lines[lines.index(next(x for x in lines if "ncalls" in x)) :]),
        ]
    )


async def _latency(ens: Ensemble, a: KitNode, b: KitNode) -> list[float]:
    """Seconds from A publishing a block to B's head being its tipset, per block."""
    out = []
    miner = a.miners[0]
    node, syncer = a.node, a.sync.syncer
    for _ in range(LATENCY_BLOCKS):
        base = await ens.wait_converged([a, b])
        await miner.pace(base)
        block = None
        epoch = base.height
        while block is None:
            epoch += 1
            block = await miner.produce(base, epoch)
        await node.run_sync(lambda block=block: validate_block(node.state, node.beacon, block))
        await node.run_sync(syncer.note_validated, block)
        await node.run_sync(syncer.take_heaviest, TipSet((block.header,)))
        key = TipSet((block.header,)).key
        changes = b.node.chain.subscribe(buffer=64)
        async with changes:
            start = time.perf_counter()
            await a.p2p.gossip.publish_block(block.block_msg())
            with trio.fail_after(30):
                while b.head.key != key:
                    await changes.receive()
            out.append(time.perf_counter() - start)
    return out


async def _messages(a: KitNode, b: KitNode, keys: Sequence[PrivateKey]) -> tuple[float, int]:
    """Messages/s from A's first publication until B's pool holds them all, with at most WINDOW on the
    way at once: py-libp2p, as go-libp2p-pubsub by default, drops what is published past 32 RPCs
    queued for a peer, so a sender that does not pace itself loses messages, it does not go faster."""
    nonces = [b.node.mpool.get_nonce(Address.of_key(k)) for k in keys]
    wire = [_transfer(k, nonces[i] + n, value=2) for n in range(NONCES) for i, k in enumerate(keys)]
    before = b.node.mpool.size

    def arrived() -> int:
        return b.node.mpool.size - before

    start = time.perf_counter()
    with trio.fail_after(300):
        for sent, signed in enumerate(wire):
            while sent - arrived() >= WINDOW:
                await trio.sleep(0.001)
            await a.p2p.gossip.publish_message(signed)
    await wait_until(lambda: arrived() >= len(wire), what="all messages in B's pool")
    return len(wire) / (time.perf_counter() - start), len(wire)


async def _run() -> None:
    keys = _keys()
    genesis = _genesis(keys)
    async with ensemble(nodes=3, miners=1, start=[0], connect=False, genesis=genesis) as ens:
        a, b, c = ens.nodes
        built = await _build_chain(ens, a, keys)
        tipsets = _chain(a.node.chain, a.head)
        messages = sum(len(a.node.chain.messages_for_tipset(ts)) for ts in tipsets[1:])
        report("chain built on A", built, "s", f"{len(tipsets) - 1} tipsets, {messages} messages")

        # C as the node was before: no cache of decoded blocks, no checks ahead.
        _without_block_cache(c.node.chain.blockstore)
        c.sync.syncer.check_ahead_from = None
        rss = _peak_rss_mib()
        rates: dict[str, float] = {}
        for kit, what in ((b, "after"), (c, "before")):
            await ens.start(kit)
            start, cpu, own = time.perf_counter(), _cpu(), _own_cpu()
            await ens.connect(a, kit)
            await ens.wait_converged([a, kit], timeout=3600)
            took = time.perf_counter() - start
            cpu, own = _cpu() - cpu, _own_cpu() - own
            rate = rates[what] = (len(tipsets) - 1) / took
            name = (
                "B catches up (block cache, checks ahead)"
                if kit is b
                else "C catches up as before (no block cache, serial checks)"
            )
            report(
                name,
                rate,
                "tipsets/s",
                f"{took:.1f} s for {len(tipsets) - 1}; {rate / SYNC_TARGET:.2f}x the target",
            )
            report(
                "  CPU of the nodes and the check process",
                cpu,
                "s",
                f"{(len(tipsets) - 1) / cpu:,.0f} tipsets per CPU-second; {cpu / took:.2f} cores busy",
            )
            report(
                "  CPU of the nodes' process per tipset",
                own / (len(tipsets) - 1) * 1000,
                "ms",
                f"A serving and the syncing node (target: <= 5 ms); the check process"
                f" {(cpu - own) / (len(tipsets) - 1) * 1000:.1f} ms",
            )
            if kit is b:
                cache = _block_cache(b.node.chain.blockstore)
                report(
                    "  B: block cache held",
                    cache.size / (1 << 20),
                    "MiB",
                    f"bound {cache.max_bytes / (1 << 20):.0f} MiB of encoded blocks; {len(cache):,} entries, "
                    f"{cache.hits:,} hits, {cache.misses:,} misses, {cache.evictions:,} evictions",
                )
                report(
                    "  process peak RSS growth during B's catch-up",
                    _peak_rss_mib() - rss,
                    "MiB",
                    f"peak {_peak_rss_mib():,.0f} MiB (nodes A, B and C in one process)",
                )
        ens.stop(c)
        report(
            "catch-up, after / before", rates["after"] / rates["before"], "x", "B's rate over C's, same run"
        )
        t = b.sync.syncer.timings
        took = (len(tipsets) - 1) / rates["after"]
        for name, value in (
            ("header fetch", t.header_fetch),
            ("header checks and storing", t.header_check),
            ("message fetch", t.message_fetch),
            ("validation (without the parent's execution)", t.validation),
            ("execution", t.execution),
            ("fork choice (weights, head switch)", t.fork_choice),
            ("checks ahead (their inputs; the checks run in a worker process)", t.checks_ahead),
        ):
            report(f"  B: {name}", value, "s", f"{value / took * 100:.0f} % of the catch-up")
        report("  B: per block validated", t.validation / max(t.blocks, 1) * 1000, "ms")
        report("  B: checks done ahead by its worker process", b.sync.syncer.checks_ahead, "checks")
        handed: list[list[tuple[object, ...]]] = []
        for ahead, cached, what in (
            (False, False, "serial, no block cache (before)"),
            (False, True, "serial, block cache"),
            (True, True, "block cache, checks ahead in a worker process"),
        ):
            rate, cpu_rate, worker = _replay(
                genesis, a.node.chain, tipsets, b.sync.exchange, ahead=ahead, cache=cached, handed=handed
            )
            report(
                f"  one thread, {REPLAY_TIPSETS} tipsets, {what}",
                rate,
                "tipsets/s",
                f"{cpu_rate:,.0f} per CPU-second of this process",
            )
            if ahead:
                report(
                    "    its check process's CPU per tipset",
                    worker * 1e3,
                    "ms",
                    f"at most {1 / worker:,.0f} tipsets per CPU-second of that process",
                )
                for name, ms in _worker_work(handed):
                    report(
                        f"    its work per tipset run again here: {name}",
                        ms,
                        "ms CPU",
                        f"{len(handed)} hand-offs; at most {1e3 / ms:,.0f} tipsets per CPU-second",
                    )
        console.print(_profile(genesis, a.node.chain, tipsets, b.sync.exchange))

        latencies = sorted(await _latency(ens, a, b))
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        report(
            "gossip latency, A publishes -> B's head",
            p50,
            "ms p50",
            f"p99 {p99:.0f} ms over {len(latencies)} blocks; target p50 <= {LATENCY_TARGET_MS:.0f} ms",
        )

        rate, count = await _messages(a, b, keys)
        report(
            "messages gossiped A -> B's pool", rate, "msgs/s", f"{count} signed transfers, {SENDERS} senders"
        )


def run() -> None:
    section("Sync: catch-up over chain exchange, gossip latency, messages gossiped (nodes on 127.0.0.1)")
    trio.run(_run)
