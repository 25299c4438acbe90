"""DrawRandomness as vectors/ref/randomness.json defines it, and the deterministic source."""

import hashlib
import struct

import pytest

from chain.crypto.randomness import (
    DeterministicRandomness,
    DomainSeparationTag,
    draw_randomness,
    draw_randomness_from_digest,
    mock_beacon_data,
)
from tests.vectors import load


def _b2b(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def test_draw_follows_the_recorded_definition() -> None:
    base, entropy = b"vrf proof bytes", bytes.fromhex("00020304")
    tag, round_ = DomainSeparationTag.WinningPoStChallengeSeed, 1234
    expected = _b2b(struct.pack(">q", tag) + _b2b(base) + struct.pack(">q", round_) + entropy)
    assert draw_randomness(base, tag, round_, entropy) == expected
    assert draw_randomness_from_digest(_b2b(base), tag, round_, entropy) == expected


def test_negative_rounds_are_int64_big_endian() -> None:
    digest = bytes(32)
    out = draw_randomness_from_digest(digest, 1, -1, b"")
    assert out == _b2b(struct.pack(">q", 1) + digest + b"\xff" * 8)


def test_tags_match_the_vectors() -> None:
    ref = load("ref/randomness.json")
    if ref is None:
        pytest.skip("ref/randomness.json not in the vectors")
    tags = next(v for k, v in ref["definitions"].items() if k.startswith("DomainSeparationTag"))
    assert {name: int(DomainSeparationTag[name]) for name in tags} == tags


def test_mock_beacon_and_deterministic_source() -> None:
    assert mock_beacon_data(7) == _b2b((7).to_bytes(8, "big"))
    source = DeterministicRandomness(b"seed")
    assert source.beacon_digest(7) == _b2b(mock_beacon_data(7))
    assert source.chain_digest(7) == DeterministicRandomness(b"seed").chain_digest(7)
    assert source.chain_digest(7) != source.chain_digest(8)
    assert source.chain_digest(7) != DeterministicRandomness(b"other").chain_digest(7)
    with pytest.raises(ValueError):
        source.beacon_digest(-1)
    with pytest.raises(ValueError, match="32 bytes"):
        draw_randomness_from_digest(b"short", 1, 0, b"")
