"""Peer scores with Lotus's parameters: per-topic weights, squared penalties, decay, retention."""

import pytest
from libp2p.peer.id import ID

from node.p2p.protocols import block_topic, message_topic
from node.p2p.score import (
    BOOTSTRAP_APP_SCORE,
    DECAY_TO_ZERO,
    HOUR,
    RETAIN_SCORE,
    FilecoinPeerScorer,
    decay_factor,
    lotus_topic_scores,
)

BLOCKS, MSGS = block_topic("devnet"), message_topic("devnet")


def peer(n: int) -> ID:
    return ID(bytes([0, 36, 8, 1, 18, 32]) + bytes([n]) * 32)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def scorer(clock: Clock | None = None, **kwargs: object) -> FilecoinPeerScorer:
    return FilecoinPeerScorer(lotus_topic_scores("devnet"), clock=clock or Clock(), **kwargs)  # type: ignore[arg-type]


def test_decay_reaches_one_percent_over_the_decay_time() -> None:
    assert decay_factor(HOUR) ** HOUR == pytest.approx(DECAY_TO_ZERO)
    assert decay_factor(600) ** 600 == pytest.approx(DECAY_TO_ZERO)


def test_topic_weights_and_squared_invalid_penalty() -> None:
    s = scorer()
    p = peer(1)
    s.on_first_delivery(p, BLOCKS)
    s.on_first_delivery(p, MSGS)
    assert s.score(p, []) == pytest.approx(0.1 * 5 + 0.1 * 0.5)  # a block counts ten times a message
    for _ in range(150):
        s.on_first_delivery(p, BLOCKS)
    assert s.score(p, []) == pytest.approx(0.1 * 5 * 100 + 0.1 * 0.5)  # capped at 100 deliveries
    q = peer(2)
    for n, expected in ((1, -100), (2, -400), (5, -2500)):
        while s.invalid_messages[q][BLOCKS] < n:
            s.on_invalid_message(q, BLOCKS)
        assert s.score(q, []) == pytest.approx(expected)
    assert not s.allow_gossip(q, [BLOCKS]) and not s.allow_publish(q, [MSGS])
    s.on_invalid_message(q, MSGS)
    assert s.is_graylisted(q, [])  # below -2500
    s.pardon_invalid = True
    s.on_invalid_message(peer(3), BLOCKS)
    assert s.score(peer(3), []) == 0


def test_counters_decay_away() -> None:
    s = scorer()
    p = peer(1)
    s.on_invalid_message(p, MSGS)
    s.penalize_behavior(p, 10)
    for _ in range(int(2 * HOUR)):  # down to 1e-4 of what they were, below go's DecayToZero
        s.on_heartbeat()
    assert s.score(p, []) == 0
    assert MSGS not in s.invalid_messages[p] and p not in s.behavior_penalty


def test_negative_scores_outlive_a_disconnect_for_six_hours() -> None:
    clock = Clock()
    s = scorer(clock)
    bad, good = peer(1), peer(2)
    s.on_invalid_message(bad, BLOCKS)
    s.on_first_delivery(good, BLOCKS)
    s.remove_peer(bad)
    s.remove_peer(good)
    assert s.score(bad, []) == pytest.approx(-100) and s.score(good, []) == 0
    clock.now = RETAIN_SCORE + 1
    s.on_heartbeat()
    assert s.score(bad, []) == 0


def test_ip_colocation_beyond_five_peers_except_whitelisted_networks() -> None:
    s = scorer(colocation_whitelist=("127.0.0.0/8",))
    for n in range(7):
        s.add_peer_ip(peer(n), "10.1.2.3")
        s.add_peer_ip(peer(10 + n), "127.0.0.1")
    assert s.score(peer(0), []) == pytest.approx(-100 * 2 * 2)
    assert s.score(peer(10), []) == 0


def test_bootstrap_peers_are_favoured() -> None:
    s = scorer(app_score=lambda p: BOOTSTRAP_APP_SCORE if p == peer(9) else 0.0)
    assert s.score(peer(9), []) == BOOTSTRAP_APP_SCORE and s.allow_px_from(peer(9), [])
    assert s.score(peer(8), []) == 0 and not s.allow_px_from(peer(8), [])
