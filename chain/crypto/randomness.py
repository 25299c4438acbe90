"""Chain randomness: Filecoin's DrawRandomness and the source of per-epoch digests the VM draws from.

A draw is blake2b-256(int64-BE tag || digest || int64-BE round || entropy), where digest is the
blake2b-256 of the randomness base: a ticket's VRF proof (chain randomness) or a drand beacon entry's
data (beacon randomness). Tags are go-state-types' DomainSeparationTag values. This follows lotus
chain/rand/rand.go (DrawRandomnessFromBase, DrawRandomnessFromDigest) as recorded in
vectors/ref/randomness.json.

The VM asks a RandomnessSource for the 32-byte digest of an epoch and draws from it; the chain (which
knows tickets and beacon entries) implements the source. DeterministicRandomness is the source for
tests and for building genesis state, where no chain exists yet.
"""

import hashlib
import struct
from enum import IntEnum
from typing import Final, Protocol

DIGEST_SIZE: Final = 32
_INT64 = struct.Struct(">q")


class DomainSeparationTag(IntEnum):
    """go-state-types crypto.DomainSeparationTag (1 + iota)."""

    TicketProduction = 1
    ElectionProofProduction = 2
    WinningPoStChallengeSeed = 3
    WindowedPoStChallengeSeed = 4
    SealRandomness = 5
    InteractiveSealChallengeSeed = 6
    WindowedPoStDeadlineAssignment = 7
    MarketDealCronSeed = 8
    PoStChainCommit = 9


def blake2b_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE).digest()


def draw_randomness_from_digest(digest: bytes, tag: int, round_: int, entropy: bytes) -> bytes:
    """32 bytes of randomness for (tag, round, entropy) from an epoch's 32-byte digest."""
    if len(digest) != DIGEST_SIZE:
        raise ValueError(f"a randomness digest is {DIGEST_SIZE} bytes, got {len(digest)}")
    h = hashlib.blake2b(digest_size=DIGEST_SIZE)
    h.update(_INT64.pack(tag))
    h.update(digest)
    h.update(_INT64.pack(round_))
    h.update(entropy)
    return h.digest()


def draw_randomness(base: bytes, tag: int, round_: int, entropy: bytes) -> bytes:
    """DrawRandomnessFromBase: the base (a VRF proof or beacon data) is hashed to the digest first."""
    return draw_randomness_from_digest(blake2b_256(base), tag, round_, entropy)


class RandomnessSource(Protocol):
    """Per-epoch randomness digests, as lotus rand.Rand's GetChainRandomness / GetBeaconRandomness.

    chain_digest(epoch) is blake2b-256 of the VRF proof of the smallest ticket at that epoch (over a
    null round, of the first tipset above it, as Lotus since network version 13); beacon_digest(epoch)
    is blake2b-256 of the beacon entry for it. chain/stmgr/randomness.py is the chain's source.
    """

    def chain_digest(self, epoch: int) -> bytes: ...

    def beacon_digest(self, epoch: int) -> bytes: ...


def mock_beacon_data(round_: int) -> bytes:
    """The mock drand beacon's entry data for a round: blake2b-256(uint64-BE round) (lotus beacon/mock.go)."""
    return blake2b_256(round_.to_bytes(8, "big"))


class DeterministicRandomness:
    """A RandomnessSource without a chain: digests derived from a seed and the epoch.

    chain_digest(e) = blake2b-256(blake2b-256(seed || int64-BE e)), i.e. as if the epoch's ticket VRF
    proof were blake2b-256(seed || e); beacon_digest(e) = blake2b-256(mock beacon data of round e), the
    mock beacon devnets use (its round for an epoch is taken to be the epoch itself here).
    """

    __slots__ = ("_seed",)

    def __init__(self, seed: bytes = b"filpy") -> None:
        self._seed = seed

    def chain_digest(self, epoch: int) -> bytes:
        return blake2b_256(blake2b_256(self._seed + _INT64.pack(epoch)))

    def beacon_digest(self, epoch: int) -> bytes:
        if epoch < 0:
            raise ValueError(f"no beacon round for negative epoch {epoch}")
        return blake2b_256(mock_beacon_data(epoch))
