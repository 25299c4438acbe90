"""The sync benchmark's chain and its serving peer in a process of its own.

The chain: a devnet genesis with one pre-sealed 2 KiB miner and SENDERS funded accounts (keys derived
from fixed seeds), then EPOCHS tipsets mined by that miner alone, MESSAGES_PER_BLOCK transfers in each
block. Keys, signatures, timestamps and the gas premium noise of the miner's Window PoSt messages (the
kit seeds it per node) are fixed, so two processes that build it get the same tipsets.

`python -m bench.sync_peer [EPOCHS]` is the peer: it builds the chain on a kit node listening on
127.0.0.1, waits until its gossip cache has forgotten the build (`gossip_aged`), writes one JSON line
on stdout (PeerInfo: its multiaddr, its head, how long the build took) and serves (hello, chain
exchange, gossip) until SIGINT, or until its stdin ends (the parent died).
`peer_process()` runs it from the parent's trio loop and stops it by its PID.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Final

import trio

from chain.chainstore.store import ChainStore
from chain.crypto.keys import KeyType, PrivateKey
from chain.types.address import Address
from chain.types.message import SignedMessage
from chain.types.tipset import TipSet
from node.genesis import Genesis, build_genesis
from node.genesis_template import FIL, AccountEntry
from node.logs import configure
from tests.consensus.devchain import devnet_template
from tests.kit.ensemble import Ensemble, KitNode, ensemble
from tests.rpc.chain_node import transfer

EPOCHS: Final = 2000
MESSAGES_PER_BLOCK: Final = 3
SENDERS: Final = 500
GAS_LIMIT: Final = 1_000_000
RECIPIENT: Final = Address.new_id(100)
STOP_WAIT: Final = 30.0  # seconds the peer may take to exit on SIGINT, before SIGKILL
# Seconds a builder's gossip cache may take to forget the build (node/p2p/gossip.py keeps 10 heartbeats
# of one second).
GOSSIP_AGE_WAIT: Final = 30.0
ROOT: Final = Path(__file__).resolve().parent.parent  # the checkout, where `-m bench.sync_peer` is found


def sender_keys() -> list[PrivateKey]:
    return [PrivateKey.derive(KeyType.SECP256K1, f"bench-sync-{i}".encode()) for i in range(SENDERS)]


def bench_genesis(keys: Sequence[PrivateKey]) -> Genesis:
    template = devnet_template(miners=1, name="bench-sync")
    accounts = (*template.accounts, *(AccountEntry(Address.of_key(k), 1_000 * FIL) for k in keys))
    return build_genesis(replace(template, accounts=accounts))


def bench_transfer(key: PrivateKey, nonce: int, value: int = 1) -> SignedMessage:
    return transfer(key, nonce, RECIPIENT, value=value, gas_limit=GAS_LIMIT)


async def build_chain(
    ens: Ensemble, miner: KitNode, keys: Sequence[PrivateKey], epochs: int = EPOCHS
) -> float:
    """epochs tipsets on the miner's node alone, each block with MESSAGES_PER_BLOCK transfers; seconds
    taken."""
    start = time.perf_counter()
    nonces = dict.fromkeys(range(len(keys)), 0)
    sender = 0
    while miner.head.height < epochs:
        for _ in range(MESSAGES_PER_BLOCK):
            i = sender % len(keys)
            miner.node.mpool.push(bench_transfer(keys[i], nonces[i]))
            nonces[i] += 1
            sender += 1
        await ens.mine_one([miner])
    return time.perf_counter() - start


async def gossip_aged(node: KitNode, timeout: float = GOSSIP_AGE_WAIT) -> None:
    """Until node's gossip cache holds nothing of what it published while building its chain (bounded).

    A builder publishes each block and message as it mines, ~50 blocks a second here, and gossipsub
    keeps the last 10 seconds of them to offer peers (IHAVE); a node that connects right after the build
    would be offered, fetch and check hundreds of stale blocks and messages during its catch-up. A real
    peer's cache holds the last 10 seconds of a chain with one tipset per 30 s epoch: what the syncing
    node meets there is the catch-up, not that.
    """
    cache = node.p2p.gossip.router.mcache
    with trio.fail_after(timeout):
        while cache.msgs:
            await trio.sleep(0.2)


def chain_of(store: ChainStore, head: TipSet) -> list[TipSet]:
    """The tipsets from the genesis to head."""
    out = [head]
    while out[-1].height > 0:
        out.append(store.load_tipset(out[-1].parents))
    return out[::-1]


def head_cids(ts: TipSet) -> tuple[str, ...]:
    return tuple(str(c) for c in ts.cids)


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """What the peer process tells its parent once its chain is built."""

    multiaddr: str  # ending in /p2p/<peer ID>
    head: tuple[str, ...]  # the CIDs of its head's blocks
    height: int
    tipsets: int  # after the genesis
    built: float  # seconds the chain took to build

    @classmethod
    def from_json(cls, line: bytes) -> "PeerInfo":
        raw = json.loads(line)  # asdict's, written by the peer: JSON made the head a list
        return cls(**{**raw, "head": tuple(raw["head"])})


class PeerProcess:
    """The peer's process, seen from the parent."""

    def __init__(self, proc: trio.Process) -> None:
        self._proc = proc

    @property
    def pid(self) -> int:
        return self._proc.pid

    async def ready(self, timeout: float) -> PeerInfo:
        """Its PeerInfo, once its chain is built (within timeout)."""
        assert self._proc.stdout is not None
        line = b""
        with trio.fail_after(timeout):
            while not line.endswith(b"\n"):
                chunk = await self._proc.stdout.receive_some()
                if not chunk:
                    raise RuntimeError(
                        f"the peer process ended ({self._proc.poll()}) before telling its head"
                    )
                line += chunk
        return PeerInfo.from_json(line)

    async def stop(self) -> None:
        """SIGINT to its PID (it stops as on Ctrl-C, removing its files), SIGKILL if it is still there
        after STOP_WAIT; bounded, also when the caller is being cancelled."""
        with trio.CancelScope(shield=True):
            for sig in (signal.SIGINT, signal.SIGKILL):
                if self._proc.poll() is not None:
                    return
                os.kill(self._proc.pid, sig)
                with trio.move_on_after(STOP_WAIT):
                    await self._proc.wait()


@asynccontextmanager
async def peer_process(epochs: int = EPOCHS) -> AsyncIterator[PeerProcess]:
    """The peer started in a process of its own (building its chain), stopped when the block ends,
    whatever ends it."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "bench.sync_peer", str(epochs)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    peer = PeerProcess(proc)
    try:
        yield peer
    finally:
        await peer.stop()


async def _serve(epochs: int) -> None:
    keys = sender_keys()
    async with ensemble(nodes=1, miners=1, genesis=bench_genesis(keys)) as ens:
        a = ens.nodes[0]
        built = await build_chain(ens, a, keys, epochs)
        await gossip_aged(a)
        tipsets = len(chain_of(a.node.chain, a.head)) - 1
        info = PeerInfo(a.multiaddr, head_cids(a.head), a.head.height, tipsets, built)
        sys.stdout.write(json.dumps(asdict(info)) + "\n")
        sys.stdout.flush()
        # Serve until stopped by SIGINT, or until the parent dies without stopping it (stdin ends).
        await trio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)  # type: ignore[call-arg]


def main(argv: Sequence[str]) -> int:
    configure(level="warning")  # on stderr; stdout carries the PeerInfo line
    try:
        trio.run(_serve, int(argv[0]) if argv else EPOCHS)
    except* KeyboardInterrupt:  # how the parent stops it (trio may raise it in a group)
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
