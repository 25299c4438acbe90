"""Chain sync between nodes on 127.0.0.1 (full nodes with libp2p hosts and their sync services, from
tests/kit's ensemble), on a devnet genesis with one pre-sealed 2 KiB miner and funded accounts; the
chain's recipe is bench/sync_peer.py's:

1. catch-up from a peer in another process: node A, in a process of its own (bench/sync_peer.py),
   mines a 2,000-epoch chain alone (three transfers per block, the miner's Window PoSts) while node
   A' in this process mines the same chain (the report says whether the heads are equal).
   Then node B, in this process, starts, dials A by its multiaddr, hears A's head by hello and syncs
   it all over chain exchange (headers back to the genesis, messages in batches), validating every
   block in full and executing every tipset. Then node C does the same as the node did before this
   work: its store without the cache of decoded blocks, and no checks ahead in a worker process. A
   is stopped after; then node D, set up as B, syncs A''s chain from A' in this process (the bench's
   old setup: the peer's serving shares this process's GIL and event loop with the syncing node).
   Reported for each: tipsets/s from connecting to the head equal to the peer's (target: 200); the
   CPU per tipset of this process (the syncing node, the others idle in it, but A' serving D), of
   the syncing node's check process (counted once it has ended) and of A's process serving (from
   /proc); tipsets per CPU-second of this process and the check process (the machine is shared:
   that does not depend on what else runs). For B the seconds per stage (SyncTimings), the block
   cache's bytes against its bound, the cyclic garbage collector's CPU and this process's peak RSS
   growth. B and D (and the replays with the block cache) collect garbage as the daemon does
   (node/gcpolicy.py: its thresholds, the heap frozen once the nodes run, then the sync policy after
   each batch); C
   and the replay without the block cache with the collector's default thresholds and no policy (the
   heap frozen before them stays frozen). Then
   the per-tipset work replayed on A''s chain in one thread without the network (without the block
   cache, serial, and with the checks run ahead in a worker process), and a profile of it (cProfile,
   which roughly doubles the time) saying where the time goes.
2. gossip latency: A' makes a block, applies it and publishes it; the time until D's head is that
   tipset (D checks it for gossip, validates it in full, executes it, switches head). p50 and p99
   over 50 blocks (target: p50 <= 100 ms). Both nodes in this process.
3. messages/s gossiped: A' publishes 2,000 signed transfers (500 senders, 4 nonces each), at most 16
   on the way at once; the rate at which D's message pool takes them in (gossip validation,
   signature, the pool's checks).
"""

import cProfile
import gc
import io
import multiprocessing
import os
import pstats
import resource
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

import trio

from bench.common import console, report, section
from bench.sync_peer import (
    SENDERS,
    bench_genesis,
    bench_transfer,
    build_chain,
    chain_of,
    gossip_aged,
    head_cids,
    peer_process,
    sender_keys,
)
from chain.chainstore.store import ChainStore
from chain.consensus.beacon import MockBeacon
from chain.consensus.fullblock import FullBlock
from chain.consensus.validation import validate_block
from chain.consensus.verified import (
    CHECK_WORKER_NAME,
    WORKER_BATCH_CHECKS,
    Check,
    VerifierPool,
    from_wire,
    run_checks,
)
from chain.crypto.keys import PrivateKey
from chain.params import DEVNET
from chain.stmgr.manager import StateManager
from chain.store.blockcache import BlockCache
from chain.store.blockstore import LevelDBBlockstore, MemoryBlockstore
from chain.sync.ahead import CheckAhead
from chain.sync.exchange import ChainExchange
from chain.sync.syncer import Syncer
from chain.types.address import Address
from chain.types.tipset import TipSet
from node.gcpolicy import DEFAULT_THRESHOLDS, THRESHOLDS, CollectorClock, SyncGcPolicy, configure_collector
from node.genesis import Genesis
from tests.kit.ensemble import Ensemble, KitNode, ensemble
from tests.polling import wait_until

SYNC_TARGET: Final = 200.0  # tipsets/s
LATENCY_BLOCKS: Final = 50
LATENCY_TARGET_MS: Final = 100.0
NONCES: Final = 4
WINDOW: Final = 16  # messages published and not yet in the receiver's pool
PROFILE_TIPSETS: Final = 300
REPLAY_TIPSETS: Final = 500
PEER_WAIT: Final = 1200.0  # seconds A's process may take to build its chain
CATCH_UP_WAIT: Final = 900.0  # seconds a node may take to catch up


def _ended_children_cpu() -> float:
    """CPU seconds of this process's children that have ended and been reaped (a syncing node's check
    process ends with each sync; the peer process runs on until stopped, so it is not in here)."""
    t = os.times()
    return t.children_user + t.children_system


def _check_process_running() -> bool:
    return any(p.name == CHECK_WORKER_NAME for p in multiprocessing.active_children())


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


def _worker_work(handed: Sequence[Sequence[tuple[object, ...]]], tipsets: int) -> list[tuple[str, float]]:
    """The CPU ms per tipset (handed holds the checks of that many) of the worker's work on the recorded
    hand-offs, run here: each check alone (as before the batches), run_checks per hand-off (a tipset's
    checks, or several tipsets' while far ahead: chain/sync/ahead.py), and in batches of
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
        out.append((name, (time.process_time() - start) / max(tipsets, 1) * 1e3))
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
    gc_policy: SyncGcPolicy | None = None,
) -> tuple[float, float, float]:
    """The syncer's per-tipset work on the first tipsets of the chain in this thread, without the
    network and without a profiler, as a sync does it (headers stored first, fork choice per batch of
    64): tipsets/s, tipsets per CPU-second of this process (the check process's not counted), and the
    check process's CPU seconds per tipset (0 without it). handed gets the checks handed to it."""
    gc.set_threshold(*(DEFAULT_THRESHOLDS if gc_policy is None else THRESHOLDS))
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
                if gc_policy is not None:
                    gc_policy.after_batch()
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
    """Seconds from a (a miner's node) publishing a block to b's head being its tipset, per block."""
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
    """Messages/s from a's first publication until b's pool holds them all, with at most WINDOW on the
    way at once: py-libp2p, as go-libp2p-pubsub by default, drops what is published past 32 RPCs
    queued for a peer, so a sender that does not pace itself loses messages, it does not go faster."""
    nonces = [b.node.mpool.get_nonce(Address.of_key(k)) for k in keys]
    wire = [bench_transfer(k, nonces[i] + n, value=2) for n in range(NONCES) for i, k in enumerate(keys)]
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


@dataclass(frozen=True, slots=True)
class _CatchUp:
    """A node's catch-up: wall seconds from connecting to its head equal to the peer's; CPU seconds of
    this process, of the check processes that ended meanwhile, and of the serving peer's process when
    that is another process."""

    took: float
    own: float
    checks: float
    peer: float | None


async def _catch_up(
    ens: Ensemble,
    kit: KitNode,
    connect: Callable[[], Awaitable[object]],
    head: tuple[str, ...],
    peer_pid: int | None,
) -> _CatchUp:
    await ens.start(kit)
    own, checks = _own_cpu(), _ended_children_cpu()
    peer = None if peer_pid is None else _process_cpu(peer_pid)
    start = time.perf_counter()
    await connect()
    await wait_until(
        lambda: head_cids(kit.head) == head,
        timeout=CATCH_UP_WAIT,
        what=f"node {kit.index} catching up (at {kit.head.height})",
    )
    took, own = time.perf_counter() - start, _own_cpu() - own
    if peer_pid is not None and peer is not None:
        peer = _process_cpu(peer_pid) - peer
    # The check process is stopped just after the head moved; its CPU counts once it is reaped.
    await wait_until(lambda: not _check_process_running(), what=f"node {kit.index}'s check process ending")
    return _CatchUp(took, own, _ended_children_cpu() - checks, peer)


def _report_catch_up(name: str, runs: str, run: _CatchUp, tipsets: int) -> float:
    """The catch-up's figures; its tipsets/s."""
    rate = tipsets / run.took
    report(name, rate, "tipsets/s", f"{run.took:.1f} s for {tipsets}; {rate / SYNC_TARGET:.2f}x the target")
    cpu = run.own + run.checks
    report(
        "  CPU of this process and the check process",
        cpu,
        "s",
        f"{tipsets / cpu:,.0f} tipsets per CPU-second; {cpu / run.took:.2f} cores busy",
    )
    report("  CPU per tipset: this process", run.own / tipsets * 1e3, "ms", f"{runs} (target: <= 5 ms)")
    report(
        "  CPU per tipset: the syncing node's check process",
        run.checks / tipsets * 1e3,
        "ms",
        "" if run.checks else "none: it checks in this process",
    )
    if run.peer is not None:
        report("  CPU per tipset: A's process, serving", run.peer / tipsets * 1e3, "ms")
    return rate


async def _run() -> None:
    keys = sender_keys()
    genesis = bench_genesis(keys)
    async with (
        peer_process() as peer,
        ensemble(nodes=4, miners=1, start=[0], connect=False, genesis=genesis) as ens,
    ):
        a, b, c, d = ens.nodes  # a is A': A's chain, built again in this process
        built = await build_chain(ens, a, keys)
        tipsets = chain_of(a.node.chain, a.head)
        messages = sum(len(a.node.chain.messages_for_tipset(ts)) for ts in tipsets[1:])
        report(
            "chain built on A' in this process",
            built,
            "s",
            f"{len(tipsets) - 1} tipsets, {messages} messages",
        )
        info = await peer.ready(PEER_WAIT)
        same = "the same chain as A'" if info.head == head_cids(a.head) else "not A''s head"
        report(
            "chain built on A in its own process meanwhile",
            info.built,
            "s",
            f"{info.tipsets} tipsets; {same}",
        )

        # C as the node was before: no cache of decoded blocks, no checks ahead, no collector policy.
        _without_block_cache(c.node.chain.blockstore)
        c.sync.syncer.check_ahead_from = None
        # B and D collect garbage as the daemon does (cli/daemon.py serve): the node's thresholds, the
        # heap frozen once the nodes run, and the policy after each batch a sync applies.
        gc_policy = SyncGcPolicy()
        gc_policy.attach(b.sync.syncer)
        gc_policy.attach(d.sync.syncer)
        configure_collector()
        rss = _peak_rss_mib()
        with CollectorClock() as collector:
            run = await _catch_up(ens, b, lambda: ens.connect_peer(b, info.multiaddr), info.head, peer.pid)
        after = _report_catch_up(
            "B catches up from A in another process",
            "B syncing; A' idle in it, C not started; the daemon's collector policy",
            run,
            info.tipsets,
        )
        b_took = run.took
        gc_cpu = sum(collector.seconds)
        report(
            "  B: cyclic garbage collector",
            gc_cpu / info.tipsets * 1e3,
            "ms/tipset",
            f"{gc_cpu:.2f} s CPU, {gc_cpu / run.own * 100:.0f} % of this process's; "
            f"{gc_policy.full_collections} of the policy's (frozen {gc.get_freeze_count():,}); per "
            + ", ".join(
                f"gen{g} {n} ({t:.2f} s, {found:,} freed)"
                for g, (n, t, found) in enumerate(
                    zip(collector.collections, collector.seconds, collector.collected, strict=True)
                )
            ),
        )
        cache = _block_cache(b.node.chain.blockstore)
        report(
            "  B: block cache held",
            cache.size / (1 << 20),
            "MiB",
            f"bound {cache.max_bytes / (1 << 20):.0f} MiB of encoded blocks; {len(cache):,} entries, "
            f"{cache.hits:,} hits, {cache.misses:,} misses, {cache.evictions:,} evictions",
        )
        report(
            "  this process's peak RSS growth during B's catch-up",
            _peak_rss_mib() - rss,
            "MiB",
            f"peak {_peak_rss_mib():,.0f} MiB (nodes A', B and C)",
        )
        gc.set_threshold(*DEFAULT_THRESHOLDS)
        run = await _catch_up(ens, c, lambda: ens.connect_peer(c, info.multiaddr), info.head, peer.pid)
        gc.set_threshold(*THRESHOLDS)
        before = _report_catch_up(
            "C catches up from A as before (no block cache, serial checks, no GC policy)",
            "C syncing; A' and B idle in it",
            run,
            info.tipsets,
        )
        ens.stop(c)
        await peer.stop()
        report("catch-up, after / before", after / before, "x", "B's rate over C's, same run, both from A")
        # D, set up as B, syncs from A' in this process (the bench's old setup), then stays for the
        # gossip figures.
        await gossip_aged(a)  # long done by now, as in A's process before it said it was ready
        run = await _catch_up(ens, d, lambda: ens.connect(a, d), head_cids(a.head), None)
        alone = _report_catch_up(
            "D (as B) catches up from A' in this process",
            "A' serving and D syncing; B idle",
            run,
            len(tipsets) - 1,
        )
        report("catch-up, A in another process / in this one", after / alone, "x", "B's rate over D's")

        t = b.sync.syncer.timings
        for name, value in (
            ("header fetch", t.header_fetch),
            ("header checks and storing", t.header_check),
            ("message fetch", t.message_fetch),
            ("validation (without the parent's execution)", t.validation),
            ("execution", t.execution),
            ("fork choice (weights, head switch)", t.fork_choice),
            ("checks ahead (their inputs; the checks run in a worker process)", t.checks_ahead),
        ):
            report(f"  B: {name}", value, "s", f"{value / b_took * 100:.0f} % of the catch-up")
        report("  B: per block validated", t.validation / max(t.blocks, 1) * 1000, "ms")
        report("  B: checks done ahead by its worker process", b.sync.syncer.checks_ahead, "checks")
        handed: list[list[tuple[object, ...]]] = []
        for ahead, cached, what in (
            (False, False, "serial, no block cache, no GC policy (before)"),
            (False, True, "serial, block cache, GC policy"),
            (True, True, "block cache, checks ahead in a worker process, GC policy"),
        ):
            rate, cpu_rate, worker = _replay(
                genesis,
                a.node.chain,
                tipsets,
                b.sync.exchange,
                ahead=ahead,
                cache=cached,
                handed=handed,
                gc_policy=gc_policy if cached else None,
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
                replayed = min(REPLAY_TIPSETS, len(tipsets) - 1)
                for name, ms in _worker_work(handed, replayed):
                    report(
                        f"    its work per tipset run again here: {name}",
                        ms,
                        "ms CPU",
                        f"{replayed} tipsets in {len(handed)} hand-offs; "
                        f"at most {1e3 / ms:,.0f} tipsets per CPU-second",
                    )
        console.print(_profile(genesis, a.node.chain, tipsets, b.sync.exchange))

        policy_full = gc_policy.full_collections
        with CollectorClock() as collector:
            latencies = sorted(await _latency(ens, a, d))
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        report(
            "gossip latency, A' publishes -> D's head",
            p50,
            "ms p50",
            f"p99 {p99:.0f} ms over {len(latencies)} blocks; target p50 <= {LATENCY_TARGET_MS:.0f} ms; "
            f"meanwhile {sum(collector.collections)} collections, the longest "
            f"{collector.longest * 1e3:.0f} ms CPU, "
            f"{gc_policy.full_collections - policy_full} of the policy's",
        )

        rate, sent = await _messages(a, d, keys)
        report(
            "messages gossiped A' -> D's pool", rate, "msgs/s", f"{sent} signed transfers, {SENDERS} senders"
        )


def run() -> None:
    section("Sync: catch-up over chain exchange, gossip latency, messages gossiped (nodes on 127.0.0.1)")
    trio.run(_run)
