"""Gossipsub peer scores with Lotus's parameters (lotus node/modules/lp2p/pubsub.go).

py-libp2p 0.8.1's PeerScorer has one set of topic parameters for all topics and scores invalid messages
linearly. `FilecoinPeerScorer` keeps its counters and hooks but computes the score as go-libp2p-pubsub
does, with Lotus's per-topic parameters:

    score = sum over topics of TopicWeight * (P1 + P2 + P4)       P4 = InvalidWeight * invalid^2
          + AppSpecificWeight * app(peer)                          bootstrap peers: +2500
          + IPColocationWeight * (peers on the IP - 5)^2           when more than 5 share an IP
          + BehaviourWeight * (penalty - 6)^2                      when the penalty is above 6

and decays each counter per heartbeat (one second) so that it falls to 1 % of its value over the
topic's decay time (go's ScoreParameterDecay). Mesh-delivery scores (P3) are off in Lotus and here.
The same total is used for every threshold (gossip -500, publish -1000, graylist -2500), as in go; a
peer's non-positive score is kept for six hours after it disconnects (RetainScore), so that
reconnecting does not wash it clean.

What stays approximate: py-libp2p counts time in mesh as joins, not seconds (P1 weighs at most 0.00003
in Lotus, so this changes nothing that matters).

`pardon_invalid` lets the validator drop a message without a penalty (go's ValidationIgnore, which
py-libp2p's boolean validators cannot express): see gossip.py.
"""

import ipaddress
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from libp2p.filecoin import (
    ACCEPT_PX_SCORE_THRESHOLD,
    GOSSIP_SCORE_THRESHOLD,
    GRAYLIST_SCORE_THRESHOLD,
    PUBLISH_SCORE_THRESHOLD,
)
from libp2p.pubsub.score import PeerScorer, ScoreParams

from node.p2p.protocols import PeerID, block_topic, message_topic

HOUR: Final = 3600.0
DECAY_TO_ZERO: Final = 0.01  # go-libp2p-pubsub DefaultDecayToZero
RETAIN_SCORE: Final = 6 * HOUR
BOOTSTRAP_APP_SCORE: Final = 2500.0
IP_COLOCATION_THRESHOLD: Final = 5
IP_COLOCATION_WEIGHT: Final = -100.0
BEHAVIOUR_THRESHOLD: Final = 6.0
BEHAVIOUR_WEIGHT: Final = -10.0
BEHAVIOUR_DECAY_SECONDS: Final = HOUR


def decay_factor(seconds: float, interval: float = 1.0) -> float:
    """go's ScoreParameterDecay: the per-interval factor that takes a counter to 1 % in `seconds`."""
    return float(DECAY_TO_ZERO ** (interval / seconds))


@dataclass(frozen=True, slots=True)
class TopicScore:
    """go-libp2p-pubsub TopicScoreParams, the fields Lotus sets."""

    topic_weight: float
    time_in_mesh_weight: float
    time_in_mesh_cap: float
    first_deliveries_weight: float
    first_deliveries_decay: float  # seconds to 1 %
    first_deliveries_cap: float
    invalid_weight: float
    invalid_decay: float  # seconds to 1 %


def lotus_topic_scores(network_name: str) -> dict[str, TopicScore]:
    """Lotus's parameters for the blocks and messages topics."""
    return {
        # about 10 blocks a minute; one invalid block costs -100
        block_topic(network_name): TopicScore(0.1, 0.00027, 1.0, 5.0, HOUR, 100.0, -1000.0, HOUR),
        # more than a message a second; one invalid message costs -100
        message_topic(network_name): TopicScore(0.1, 0.0002778, 1.0, 0.5, 10 * 60.0, 100.0, -1000.0, HOUR),
    }


def lotus_drand_topic_score() -> TopicScore:
    """Lotus's parameters for a drand topic: about two beacons a minute, weighing five times a block
    topic; first deliveries capped at 25 and decaying over an hour; one invalid beacon costs -500."""
    return TopicScore(0.5, 0.00027, 1.0, 5.0, HOUR, 25.0, -1000.0, HOUR)


def lotus_thresholds() -> ScoreParams:
    return ScoreParams(
        publish_threshold=PUBLISH_SCORE_THRESHOLD,
        gossip_threshold=GOSSIP_SCORE_THRESHOLD,
        graylist_threshold=GRAYLIST_SCORE_THRESHOLD,
        accept_px_threshold=ACCEPT_PX_SCORE_THRESHOLD,
    )


class FilecoinPeerScorer(PeerScorer):
    def __init__(
        self,
        topics: Mapping[str, TopicScore],
        *,
        app_score: Callable[[PeerID], float] | None = None,
        colocation_whitelist: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(lotus_thresholds())
        self.topics = dict(topics)
        self._app_score = app_score
        self._whitelist = [ipaddress.ip_network(net) for net in colocation_whitelist]
        self._decays = {
            t: (decay_factor(p.first_deliveries_decay), decay_factor(p.invalid_decay))
            for t, p in topics.items()
        }
        self._behaviour_decay = decay_factor(BEHAVIOUR_DECAY_SECONDS)
        self._clock = clock
        self._retained: dict[PeerID, float] = {}  # disconnected peers kept until this time
        self.pardon_invalid = False

    # -- counters ---------------------------------------------------------------------------------------
    def on_heartbeat(self, dt_seconds: float = 1.0) -> None:
        for counters, which in ((self.first_message_deliveries, 0), (self.invalid_messages, 1)):
            for peer in list(counters):
                per_topic = counters[peer]
                for topic in list(per_topic):
                    decays = self._decays.get(topic)
                    value = per_topic[topic] * (decays[which] if decays else DECAY_TO_ZERO)
                    if value < DECAY_TO_ZERO:
                        del per_topic[topic]
                    else:
                        per_topic[topic] = value
        p1_decay = decay_factor(HOUR)
        for peer in list(self.time_in_mesh):
            for topic in list(self.time_in_mesh[peer]):
                self.time_in_mesh[peer][topic] *= p1_decay
        for penalties, _ in self._behaviour_counters():
            for peer in list(penalties):
                value = penalties[peer] * self._behaviour_decay
                if value < DECAY_TO_ZERO:
                    del penalties[peer]
                else:
                    penalties[peer] = value
        now = self._clock()
        for peer, until in list(self._retained.items()):
            if until <= now:
                del self._retained[peer]
                super().remove_peer(peer)

    def on_invalid_message(self, peer: PeerID, topic: str) -> None:
        if self.pardon_invalid:
            return
        super().on_invalid_message(peer, topic)

    def remove_peer(self, peer: PeerID) -> None:
        if self.score(peer, []) <= 0 and self._has_counters(peer):
            self._retained[peer] = self._clock() + RETAIN_SCORE
            self.remove_peer_ip(peer)
            return
        super().remove_peer(peer)

    def _has_counters(self, peer: PeerID) -> bool:
        return (
            any(
                peer in counters and any(counters[peer].values())
                for counters in (self.invalid_messages, self.first_message_deliveries)
            )
            or self._behaviour(peer) > 0
        )

    def _behaviour_counters(self) -> list[tuple[dict[PeerID, float], float]]:
        """py-libp2p's misbehaviour counters and what one event adds to each: go counts one per event
        (GRAFT during backoff, broken IWANT promises), so each is scaled back to that unit."""
        return [
            (self.behavior_penalty, 1.0),
            (self.graft_flood_penalties, 10.0),
            (self.iwant_spam_penalties, 5.0),
            (self.ihave_spam_penalties, 5.0),
        ]

    def _behaviour(self, peer: PeerID) -> float:
        return sum(penalties.get(peer, 0.0) / unit for penalties, unit in self._behaviour_counters())

    def add_peer_ip(self, peer: PeerID, ip_str: str) -> None:
        try:
            ip = ipaddress.ip_address(ip_str)
        except ValueError:
            return
        if any(ip in net for net in self._whitelist):
            return
        self._retained.pop(peer, None)
        super().add_peer_ip(peer, ip_str)

    # -- the score ----------------------------------------------------------------------------------
    def topic_score(self, peer: PeerID, topic: str) -> float:
        params = self.topics.get(topic)
        if params is None:
            return 0.0
        in_mesh = _counter(self.time_in_mesh, peer, topic)
        p1 = params.time_in_mesh_weight * min(in_mesh, params.time_in_mesh_cap)
        first = _counter(self.first_message_deliveries, peer, topic)
        p2 = params.first_deliveries_weight * min(first, params.first_deliveries_cap)
        invalid = _counter(self.invalid_messages, peer, topic)
        p4 = params.invalid_weight * invalid * invalid
        return params.topic_weight * (p1 + p2 + p4)

    def score(self, peer: PeerID, topics: list[str]) -> float:
        """The peer's whole score; like go, over every scored topic whatever `topics` py-libp2p asks for."""
        total = sum(self.topic_score(peer, topic) for topic in self.topics)
        if self._app_score is not None:
            total += self._app_score(peer)
        ip = self.ip_by_peer.get(peer)
        if ip is not None:
            surplus = len(self.peer_ips.get(ip, ())) - IP_COLOCATION_THRESHOLD
            if surplus > 0:
                total += IP_COLOCATION_WEIGHT * surplus * surplus
        excess = self._behaviour(peer) - BEHAVIOUR_THRESHOLD
        if excess > 0:
            total += BEHAVIOUR_WEIGHT * excess * excess
        return total

    def allow_publish(self, peer: PeerID, topics: list[str]) -> bool:
        return self.score(peer, topics) >= self.params.publish_threshold

    def allow_gossip(self, peer: PeerID, topics: list[str]) -> bool:
        return self.score(peer, topics) >= self.params.gossip_threshold

    def is_graylisted(self, peer: PeerID, topics: list[str]) -> bool:
        return self.score(peer, topics) < self.params.graylist_threshold

    def allow_px_from(self, peer: PeerID, topics: list[str]) -> bool:
        return self.score(peer, topics) >= self.params.accept_px_threshold


def _counter(counters: Mapping[PeerID, Mapping[str, float]], peer: PeerID, topic: str) -> float:
    # .get, not [], so that reading a score does not create entries in py-libp2p's defaultdicts
    per_topic = counters.get(peer)
    return 0.0 if per_topic is None else per_topic.get(topic, 0.0)
