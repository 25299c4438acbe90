"""The beacon of a node running a drand chain: entries in from gossip (checked first), rounds out from
the producer when this node holds the key, and the chain's RandomBeacon answering from what arrived.

    store = BeaconStore(LevelDBMetadata(db, namespace=NAMESPACE), info.hash)
    beacon = DrandBeacon(info, genesis_time=genesis.timestamp, block_delay=policy.block_delay_secs)
    service = BeaconService(beacon, store, key=key_or_none)     # beacon.entries is now the store
    p2p = P2PNode(..., topics=[service.gossip_topic()])
    service.attach(p2p.gossip.publish)
    service.attach_host(p2p.host, penalize=p2p.gossip.penalize)    # serve and fetch missed rounds
    await nursery.start(p2p.run); await nursery.start(service.run)

**Coming in (gossip, `/drand/pubsub/v0.0.0/<chain hash>`)**, each payload is judged before it is
forwarded, as drand's own gossip validator does:

- not a PublicRandResponse: Reject;
- a round not yet due (its time more than `max_drift` seconds ahead of our clock): Reject (drand
  relays nothing from the future);
- a round already stored: Ignore when it is the same, Reject when it differs;
- a previous signature that is not the stored round before it (the group hash before round 1): Reject;
- a signature that does not verify over sha256(previous signature || round): Reject;
- else the entry is stored and anyone waiting for the round is woken.

Every rejection is logged (`gossip.beacon_rejected`, with the peer and the reason) and costs the peer
its score (Lotus's drand topic parameters: -500 for the first invalid round).

**Going out (the producer)**: at each round's time (`time_of_round`: genesis + (round-1) x period)
the key signs the round after the newest stored one, stores it and publishes it; after a stop it signs
every round it missed first, in order, so that miners can fill the gap. A round is never signed twice
differently: signatures are deterministic, and the chain continues from the stored entries (or from
round 0, the group hash).

**Rounds missed** (the node was offline when they were published): with a host attached
(`attach_host`), the service serves its rounds to peers and, once per period and whenever
`wait_entry` asks for a due round it lacks, fetches what is missing after the consecutive rounds it
holds (or after round 0 on a young chain, also when gossip brought later rounds first: those a
producer published before this node was connected never come by gossip), verified as a chain from
there (node/beacon/sync.py).

**The mining contract**: the chain's beacon (`DrandBeacon.entry`) answers only from the store and
raises LookupError for a round that has not arrived; produce_block / mining_base let it through, and
the mining loop skips that epoch (no block without its beacon entries, as on Filecoin, where a miner
that cannot reach drand does not mine). `await service.wait_entry(round, timeout=...)` waits for a
round instead (the mining loop may call it with the time left before its block is due; RPC's
BeaconGetEntry for a future epoch may too); it raises LookupError when the time runs out.
"""

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import structlog
import trio

from chain.consensus.beacon import InvalidBeaconEntry
from chain.consensus.drand import DrandBeacon, DrandKey
from chain.encoding.errors import DecodeError
from chain.types.beacon import BeaconEntry
from node.beacon.store import BeaconStore
from node.beacon.sync import ROUNDS_PROTOCOL, RoundsServer, fetch_rounds
from node.beacon.wire import PublishedRound, drand_topic
from node.p2p.gossip import GossipTopic, Ignore, Reject
from node.p2p.host import Libp2pHost
from node.p2p.protocols import PeerID
from node.p2p.score import lotus_drand_topic_score

if TYPE_CHECKING:
    from trio_typing import TaskStatus

log = structlog.get_logger("beacon")

# How far ahead of our clock a round may be due and still be taken (Lotus's AllowableClockDriftSecs).
MAX_DRIFT: Final = 1.0
# Rounds signed per worker-thread call when catching up after a stop.
CATCH_UP_BATCH: Final = 256

Publish = Callable[[str, bytes], Awaitable[None]]
Penalize = Callable[[PeerID, str], None]


@dataclass
class BeaconStats:
    accepted: int = 0  # from gossip, verified and stored
    ignored: int = 0
    rejected: int = 0
    produced: int = 0  # signed here
    fetched: int = 0  # from peers, rounds missed


class BeaconService:
    name = "beacon"

    def __init__(
        self,
        beacon: DrandBeacon,
        store: BeaconStore,
        *,
        key: DrandKey | None = None,
        clock: Callable[[], float] = time.time,
        max_drift: float = MAX_DRIFT,
    ) -> None:
        if store is not beacon.entries and beacon.entries is not None:
            raise ValueError("the beacon already answers from another store")
        if key is not None and key.public_key != beacon.info.public_key:
            raise ValueError("the drand key given is not the key of this beacon's chain")
        beacon.entries = store
        self.beacon = beacon
        self.info = beacon.info
        self.store = store
        self.key = key
        self.topic = drand_topic(beacon.chain_hash)
        self.stats = BeaconStats()
        self._clock = clock
        self._max_drift = max_drift
        self._publish: Publish | None = None
        self._host: Libp2pHost | None = None
        self._penalize: Penalize | None = None
        self._fill_lock = trio.Lock()
        self._arrived: dict[int, trio.Event] = {}

    @property
    def producing(self) -> bool:
        return self.key is not None

    def gossip_topic(self) -> GossipTopic:
        """The topic to give the P2P node (its validator is this service's check)."""
        return GossipTopic(self.topic, "beacon", self._check_gossip, lotus_drand_topic_score())

    def attach(self, publish: Publish) -> None:
        """Where produced rounds go (the gossip service's publish)."""
        self._publish = publish

    def attach_host(self, host: Libp2pHost, *, penalize: Penalize | None = None) -> None:
        """Serve our rounds to peers and fetch the ones we missed from them (before the host runs)."""
        host.set_stream_handler(ROUNDS_PROTOCOL, RoundsServer(self.store).handle)
        self._host = host
        self._penalize = penalize

    # -- entries ------------------------------------------------------------------------------------------
    def _add(self, entry: BeaconEntry) -> bool:
        """Store a verified entry and wake whoever waits for it (event loop only)."""
        added = self.store.put(entry)
        event = self._arrived.pop(entry.round, None)
        if event is not None:
            event.set()
        return added

    async def wait_entry(self, round_: int, *, timeout: float) -> BeaconEntry:
        """The entry of a round, waiting up to timeout seconds for it to arrive; LookupError after."""
        deadline = trio.current_time() + max(timeout, 0.0)
        asked = False
        while True:
            try:
                return self.beacon.entry(round_)
            except LookupError:
                if trio.current_time() >= deadline:
                    raise
            with trio.move_on_at(deadline):
                if not asked and self.info.time_of_round(round_) <= self._clock():
                    asked = True  # due and missing: ask the peers once
                    await self.fill(round_)
                    continue
                await self._arrived.setdefault(round_, trio.Event()).wait()

    # -- rounds missed ------------------------------------------------------------------------------------
    async def fill(self, last: int) -> int:
        """Fetch from peers the rounds missing after the consecutive ones held, up to last; how many
        were added. Nothing without a host, or when no trusted round precedes the gap."""
        if self._host is None:
            return 0
        async with self._fill_lock:
            anchor = self.store.contiguous_end()
            if last <= self.store.limit and self._gap_before_oldest():
                # Nothing held, or gossip brought later rounds first (those published before this node
                # was connected never come by gossip): from round 0, which the genesis vouches for.
                anchor = self.info.genesis_entry
            if anchor is None:
                return 0  # an old chain and nothing held: gossip and the blocks will bring rounds
            if anchor.round >= last:
                return 0
            last = min(last, anchor.round + self.store.limit)
            fetched = await fetch_rounds(
                self._host, anchor, last, self._verify_fetched, penalize=self._penalize
            )
            added = sum(self._add(entry) for entry in fetched)
            self.stats.fetched += added
            if added:
                log.info("beacon.rounds_fetched", first=fetched[0].round, last=fetched[-1].round, added=added)
            return added

    def _gap_before_oldest(self) -> bool:
        """Whether rounds are missing before the oldest one held (none held, or the oldest is not round 1
        while the store has not pruned any)."""
        oldest = next(self.store.rounds(), None)
        return oldest is None or (oldest > 1 and len(self.store) < self.store.limit)

    def _verify_fetched(self, entries: list[BeaconEntry], trusted: BeaconEntry) -> None:
        self.beacon.verify_chain(entries, trusted)

    # -- gossip in ------------------------------------------------------------------------------------------
    async def _check_gossip(self, data: bytes, source: PeerID, local: bool) -> BeaconEntry:
        try:
            published = PublishedRound.from_bytes(data)
        except DecodeError as exc:
            self.stats.rejected += 1
            raise Reject(f"undecodable beacon round: {exc}") from None
        entry = BeaconEntry(published.round, published.signature)
        if local:
            return entry  # signed and stored here before it was published
        try:
            verdict = await self._judge(published)
        except Reject:
            self.stats.rejected += 1
            raise
        except Ignore:
            self.stats.ignored += 1
            raise
        self._add(verdict)
        self.stats.accepted += 1
        log.debug("beacon.round_received", round=entry.round, peer=str(source))
        return verdict

    async def _judge(self, published: PublishedRound) -> BeaconEntry:
        round_ = published.round
        due = self.info.time_of_round(round_)
        if due > self._clock() + self._max_drift:
            raise Reject(f"drand round {round_} is not due until {due}")
        stored = self.store.get(round_)
        if stored is not None:
            if stored.data == published.signature:
                raise Ignore(f"drand round {round_} is already here")
            raise Reject(f"drand round {round_} differs from the verified round stored here")
        before = self.info.genesis_entry if round_ == 1 else self.store.get(round_ - 1)
        if before is not None and before.data != published.previous_signature:
            raise Reject(f"drand round {round_} is not chained to round {round_ - 1}'s signature")
        try:
            await trio.to_thread.run_sync(
                self.beacon.verify_linked, round_, published.previous_signature, published.signature
            )
        except InvalidBeaconEntry as exc:
            raise Reject(str(exc)) from None
        return BeaconEntry(round_, published.signature)

    # -- rounds out (the producer) -------------------------------------------------------------------------
    async def run(self, *, task_status: "TaskStatus[None]" = trio.TASK_STATUS_IGNORED) -> None:
        log.info(
            "beacon.started",
            chain=self.info.hash.hex(),
            producing=self.producing,
            stored=len(self.store),
            latest=(latest.round if (latest := self.store.latest()) is not None else 0),
        )
        task_status.started()
        if self.key is None:
            await self._keep_filled()
        while True:
            await self.produce_due()
            next_round = self.info.current_round(self._clock()) + 1
            await trio.sleep(max(self.info.time_of_round(next_round) - self._clock(), 0.0) + 0.001)

    async def _keep_filled(self) -> None:
        """Half a period after each round falls due, fetch whatever is still missing up to the round
        before it (the newest may still be on its way through gossip)."""
        while True:
            now = self._clock()
            next_round = self.info.current_round(now) + 1
            await trio.sleep(max(self.info.time_of_round(next_round) - now, 0.0) + self.info.period / 2)
            due = self.info.current_round(self._clock())
            if due > 1:
                try:
                    await self.fill(due - 1)
                except Exception:  # a fetch that goes wrong must not stop the beacon
                    log.exception("beacon.fill_failed", upto=due - 1)

    async def produce_due(self) -> list[BeaconEntry]:
        """Sign, store and publish every round due by now after the newest stored one."""
        key = self.key
        if key is None:
            raise RuntimeError("this node does not hold the beacon's key")
        target = self.info.current_round(self._clock())
        made: list[BeaconEntry] = []
        previous = self.store.latest() or self.info.genesis_entry
        if previous.round >= target:
            return made
        if target - previous.round > 1:
            log.info("beacon.catching_up", since=previous.round, to=target)
        while previous.round < target:
            count = min(CATCH_UP_BATCH, target - previous.round)
            batch = await trio.to_thread.run_sync(_sign_rounds, key, previous, count)
            for entry in batch:
                self.beacon.remember(entry)
                self._add(entry)
                self.stats.produced += 1
                await self._send(entry, previous)
                previous = entry
            made.extend(batch)
        log.debug("beacon.produced", round=previous.round)
        return made

    async def _send(self, entry: BeaconEntry, previous: BeaconEntry) -> None:
        if self._publish is None:
            return
        payload = PublishedRound(entry.round, entry.data, previous.data).to_bytes()
        try:
            await self._publish(self.topic, payload)
        except Exception:  # the round is stored: a failed publication must not stop the beacon
            log.exception("beacon.publish_failed", round=entry.round)


def _sign_rounds(key: DrandKey, previous: BeaconEntry, count: int) -> list[BeaconEntry]:
    out = []
    for _ in range(count):
        previous = key.next_entry(previous)
        out.append(previous)
    return out
