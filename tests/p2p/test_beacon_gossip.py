"""drand rounds over gossip between hosts on 127.0.0.1: the producing node publishes each round on
`/drand/pubsub/v0.0.0/<chain hash>`, the other verifies and stores it; a forged round from a third peer
is rejected, logged, not stored and costs that peer its score (Lotus's drand topic weights)."""

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
