"""HAMT and AMT throughput on state-tree-shaped data (the VM target is >= 2,000 transfers/s)."""

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.common import per_second, report, seconds, section
from chain.encoding.cid import CID
from chain.encoding.varint import encode_uvarint
from chain.state.amt import Amt
from chain.state.hamt import Hamt
from chain.store.blockstore import MemoryBlockstore

_CODE = CID.hash_of(b"account actor code")
_HEAD = CID.hash_of(b"account actor state")


def _actor(i: int) -> list[object]:
    # The state tree's value: Actor {Code, Head, Nonce, Balance}.
    return [_CODE, _HEAD, i, (10**18 + i).to_bytes(9, "big")]


def _address(i: int) -> bytes:
    return b"\x00" + encode_uvarint(1000 + i)  # ID-address bytes, the state tree's keys


def _hamt_section(n: int) -> None:
    section(f"HAMT (bitwidth 5, sha256 keys), {n:,} actor entries")
    keys = [_address(i) for i in range(n)]
    values = [_actor(i) for i in range(n)]
    store = MemoryBlockstore()

    def build() -> Hamt:
        hamt = Hamt.new(store)
        for key, value in zip(keys, values, strict=True):
            hamt.set(key, value)
        return hamt

    start = time.perf_counter()
    hamt = build()
    report("set (insert into a fresh HAMT)", n / (time.perf_counter() - start), "ops/s")
    blocks_before = len(store)
    start = time.perf_counter()
    root = hamt.flush()
    written = len(store) - blocks_before
    report("flush (all nodes new)", time.perf_counter() - start, "s", f"{written:,} blocks")

    rnd = random.Random(1)
    probe = [keys[rnd.randrange(n)] for _ in range(2000)]
    _report_gets(hamt, lambda: Hamt.load(store, root), probe)

    def transfers() -> None:
        _thousand_transfers(Hamt.load(store, root), probe)

    report("transfers, fresh load per 1000 (2 get + 2 set, flush)", 1000 / seconds(transfers), "transfers/s")

    kept = Hamt.load(store, root)

    def transfers_kept_tree() -> None:
        # The same, on a tree kept across tipsets (its decoded nodes stay in memory).
        _thousand_transfers(kept, probe)

    transfers_kept_tree()  # warm-up: decode the nodes once
    report("transfers, tree kept across flushes", 1000 / seconds(transfers_kept_tree), "transfers/s")

    def update_flush() -> None:
        tree = Hamt.load(store, root)
        for key in probe[:100]:
            tree.set(key, _actor(7))
        tree.flush()

    report("100 updates + flush on a fresh load", 1 / seconds(update_flush), "flushes/s")


def _report_gets(tree: Hamt | Amt, load: Callable[[], Hamt | Amt], probe: Sequence[Any]) -> None:
    """Reads of the probe keys on the tree as it is (nodes decoded) and on a fresh load of it."""
    warm = per_second(lambda: [tree.get(k) for k in probe], batch=len(probe))
    report("get (nodes already decoded)", warm, "ops/s")

    def cold_gets() -> None:
        fresh = load()
        for key in probe:
            fresh.get(key)

    report("get (fresh load, decoding nodes)", len(probe) / seconds(cold_gets), "ops/s")

    def short_reads() -> None:
        # As validating a block reads a state: a fresh load and a few gets, the nodes coming from the
        # store's block cache (decoded by an earlier tree), not decoded again.
        for i in range(0, len(probe), 3):
            fresh = load()
            for key in probe[i : i + 3]:
                fresh.get(key)

    report(
        "fresh load + 3 gets, nodes from the block cache", len(probe) // 3 / seconds(short_reads), "loads/s"
    )


def _thousand_transfers(tree: Hamt, keys: list[bytes]) -> None:
    """One tipset's worth of transfers: read and write two actors each (nonce up, balance bytes
    changed), then flush."""
    for i in range(1000):
        a, b = keys[i], keys[-1 - i]
        va, vb = tree.get(a), tree.get(b)
        tree.set(a, [va[0], va[1], va[2] + 1, va[3]])
        tree.set(b, [vb[0], vb[1], vb[2], vb[3] + b"\x01"])
    tree.flush()


def _amt_section(n: int) -> None:
    section(f"AMT (bitwidth 3), {n:,} entries")
    store = MemoryBlockstore()
    values = [_actor(i) for i in range(n)]
    start = time.perf_counter()
    amt = Amt.new(store)
    amt.batch_set(values)
    report("set (sequential indexes)", n / (time.perf_counter() - start), "ops/s")
    start = time.perf_counter()
    root = amt.flush()
    report("flush (all nodes new)", time.perf_counter() - start, "s", f"{len(store):,} blocks")
    rnd = random.Random(2)
    probe = [rnd.randrange(n) for _ in range(2000)]
    _report_gets(amt, lambda: Amt.load(store, root), probe)

    def random_sets() -> None:
        fresh = Amt.load(store, root)
        for index in probe:
            fresh.set(index, 1)
        fresh.flush()

    report("set existing (fresh load) + flush", 2000 / seconds(random_sets), "ops/s")


def run() -> None:
    for n in (10_000, 100_000):
        _hamt_section(n)
    _amt_section(100_000)
