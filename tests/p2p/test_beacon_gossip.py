"""drand rounds over gossip between hosts on 127.0.0.1: the producing node publishes each round on
`/drand/pubsub/v0.0.0/<chain hash>`, the other verifies and stores it; a forged round from a third peer
is rejected, logged, not stored and costs that peer its score (Lotus's drand topic weights)."""

import time

import pytest
import trio
from libp2p.filecoin import filecoin_message_id
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service import background_trio_service
from structlog.testing import capture_logs

from chain.consensus.drand import DrandBeacon, DrandKey
from chain.types.beacon import BeaconEntry
from node.beacon.service import BeaconService
from node.beacon.store import BeaconStore
from node.beacon.sync import ROUNDS_PROTOCOL, RoundsServer
from node.beacon.wire import PublishedRound
from node.config import Libp2pConfig
from node.p2p.gossip import FilecoinGossipSub
from node.p2p.host import Libp2pHost
from node.p2p.identity import MemoryIdentity, load_or_create_identity
from tests.p2p.chain_fixtures import build_chain
from tests.p2p.harness import make_node, running, wait_until

KEY = DrandKey.derive(b"tests/p2p/test_beacon_gossip")
GENESIS = 1_800_000_000
PERIOD = 4
INFO = KEY.chain_info(genesis_time=GENESIS, period=PERIOD)
# drand topic weight 0.5 x invalid-message weight -1000: the first invalid round costs this
INVALID_ROUND_PENALTY = 0.5 * -1000


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def beacon_service(clock: Clock, key: DrandKey | None) -> BeaconService:
    beacon = DrandBeacon(INFO, genesis_time=GENESIS, block_delay=PERIOD)
    return BeaconService(beacon, BeaconStore.in_memory(INFO.hash), key=key, clock=clock)


class Forger:
    """A peer with plain pubsub and no validators on the drand topic: it publishes what it likes."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.host = Libp2pHost(Libp2pConfig(), load_or_create_identity(MemoryIdentity()))
        self.router = FilecoinGossipSub(bootstrapper=False)
        self.pubsub = Pubsub(self.host.libp2p, self.router, msg_id_constructor=filecoin_message_id)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with background_trio_service(self.pubsub), background_trio_service(self.router):
            await self.pubsub.wait_until_ready()
            await self.pubsub.subscribe(self.topic)
            async with trio.open_nursery() as nursery:
                await nursery.start(self.host.run)
                task_status.started()
                await trio.sleep_forever()


@pytest.mark.slow
async def test_rounds_travel_and_a_forged_round_is_rejected() -> None:
    chain, _ = build_chain(1)
    clock = Clock(INFO.time_of_round(3))
    producer, listener = beacon_service(clock, KEY), beacon_service(clock, None)
    (a, _), (b, _) = (
        make_node(chain, topics=[producer.gossip_topic()]),
        make_node(chain, topics=[listener.gossip_topic()]),
    )
    producer.attach(a.gossip.publish)
    forger = Forger(producer.topic)
    async with running(a, b), trio.open_nursery() as nursery:
        with trio.fail_after(10):
            await nursery.start(forger.run)
        with trio.fail_after(10):
            await a.host.connect(b.host.addrs_listen())
            await forger.host.connect(b.host.addrs_listen())
        topic_peers = {a.host.peer_id, forger.host.peer_id}
        await wait_until(lambda: topic_peers <= b.gossip.topic_peers(producer.topic), what="b sees both")
        await wait_until(lambda: b.host.peer_id in a.gossip.topic_peers(producer.topic), what="a sees b")

        made = await producer.produce_due()
        assert [e.round for e in made] == [1, 2, 3]
        await wait_until(lambda: len(listener.store) == 3, what="rounds 1-3 reaching b")
        assert [listener.beacon.entry(r) for r in (1, 2, 3)] == made
        assert listener.stats.accepted == 3

        # round 4, now due, signed by another key and chained to the real round 3
        clock.now = INFO.time_of_round(4)
        forged = DrandKey.derive(b"forger").sign_round(4, made[-1].data)
        bad = forger.host.peer_id
        with capture_logs() as logs:
            await forger.pubsub.publish(producer.topic, PublishedRound(4, forged, made[-1].data).to_bytes())
            await wait_until(lambda: b.gossip.score(bad) < -1, what="the forger penalised")
        assert b.gossip.score(bad) == pytest.approx(INVALID_ROUND_PENALTY, abs=0.1)
        rejected = [entry for entry in logs if entry["event"] == "gossip.beacon_rejected"]
        assert len(rejected) == 1 and rejected[0]["peer"] == str(bad)
        assert "round 4: the signature does not verify" in rejected[0]["reason"]
        assert 4 not in listener.store and listener.stats.rejected == 1
        with pytest.raises(LookupError):
            listener.beacon.entry(4)

        # the real round 4 still gets through, and chains to what b holds
        (real,) = await producer.produce_due()
        await wait_until(lambda: 4 in listener.store, what="the real round 4 reaching b")
        assert listener.beacon.entry(4) == real != BeaconEntry(4, forged)
        listener.beacon.verify_chain([listener.beacon.entry(r) for r in (1, 2, 3, 4)], INFO.genesis_entry)
        assert a.gossip.score(b.host.peer_id) >= 0  # the honest relay is never penalised
        nursery.cancel_scope.cancel()


@pytest.mark.slow
async def test_rounds_missed_are_fetched_from_peers_and_forged_ones_refused() -> None:
    """b takes no gossip (as a node that was offline when rounds 1-5 were published): it asks its peers
    for them. c serves another key's rounds and is refused (logged, reported); a serves the real ones,
    which b verifies from round 0."""
    chain, _ = build_chain(1)
    clock = Clock(INFO.time_of_round(5))
    producer, listener = beacon_service(clock, KEY), beacon_service(clock, None)
    forged_store = BeaconStore.in_memory(INFO.hash)
    forged = INFO.genesis_entry
    for _ in range(5):
        forged = DrandKey.derive(b"liar").next_entry(forged)
        forged_store.put(forged)
    (a, _), (b, _), (c, _) = (
        make_node(chain, topics=[producer.gossip_topic()]),
        make_node(chain),
        make_node(chain),
    )
    producer.attach(a.gossip.publish)
    producer.attach_host(a.host)
    penalties: list[tuple[str, str]] = []
    listener.attach_host(b.host, penalize=lambda peer, why: penalties.append((str(peer), why)))
    c.host.set_stream_handler(ROUNDS_PROTOCOL, RoundsServer(forged_store).handle)
    async with running(a, b, c):
        assert [e.round for e in await producer.produce_due()] == [1, 2, 3, 4, 5]  # nobody listening yet
        with trio.fail_after(10):
            await c.host.connect(b.host.addrs_listen())
        await wait_until(lambda: b.host.supports(c.host.peer_id, ROUNDS_PROTOCOL), what="c identified")
        with capture_logs() as logs:
            assert await listener.fill(5) == 0
        assert len(listener.store) == 0
        refused = [entry for entry in logs if entry["event"] == "beacon.sync_rejected"]
        assert len(refused) == 1 and "round 1: the signature does not verify" in refused[0]["reason"]
        assert penalties and penalties[0][0] == str(c.host.peer_id)

        with trio.fail_after(10):
            await a.host.connect(b.host.addrs_listen())
        await wait_until(lambda: b.host.supports(a.host.peer_id, ROUNDS_PROTOCOL), what="a identified")
        entry = await listener.wait_entry(5, timeout=10)  # due and missing: fetched, not waited for
        assert entry == producer.beacon.entry(5)
        fetched = [listener.beacon.entry(r) for r in range(1, 6)]
        assert fetched == [producer.beacon.entry(r) for r in range(1, 6)]
        assert listener.stats.fetched == 5

        # A node whose first rounds came by gossip after rounds 1-5 were published (a container
        # started after the producer): it fetches the early ones too, verified from round 0.
        late = beacon_service(clock, None)
        late.attach_host(b.host)
        clock.now = INFO.time_of_round(7)
        made = await producer.produce_due()
        assert [e.round for e in made] == [6, 7]
        for entry in made:
            late.store.put(entry)
        assert await late.fill(7) == 5
        assert [late.beacon.entry(r) for r in range(1, 8)] == [producer.beacon.entry(r) for r in range(1, 8)]


@pytest.mark.slow
async def test_a_listening_node_fills_its_gaps_on_its_own() -> None:
    """The service's loop (real clock, one-second rounds): a node without the gossip topic still has
    every due round within a period or two, fetched from the producer."""
    genesis = int(time.time()) - 3
    key = DrandKey.derive(b"fills on its own")
    info = key.chain_info(genesis_time=genesis, period=1)
    producer = BeaconService(
        DrandBeacon(info, genesis_time=genesis, block_delay=1), BeaconStore.in_memory(info.hash), key=key
    )
    listener = BeaconService(
        DrandBeacon(info, genesis_time=genesis, block_delay=1), BeaconStore.in_memory(info.hash)
    )
    chain, _ = build_chain(1)
    (a, _), (b, _) = make_node(chain), make_node(chain)
    producer.attach_host(a.host)
    listener.attach_host(b.host)
    async with running(a, b), trio.open_nursery() as nursery:
        await nursery.start(producer.run)
        await nursery.start(listener.run)
        with trio.fail_after(10):
            await a.host.connect(b.host.addrs_listen())
        target = info.current_round(time.time()) + 1
        await wait_until(lambda: target in listener.store, timeout=10, what="the listener catching up")
        assert listener.stats.fetched >= target - 1
        held = [listener.beacon.entry(r) for r in range(1, target + 1)]
        listener.beacon.verify_chain(held, info.genesis_entry)
        nursery.cancel_scope.cancel()
