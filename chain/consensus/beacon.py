"""The random beacon blocks carry: which rounds a block records, and checking the entries it carries.

Lotus chain/beacon: a block at height h on a parent at height p carries one entry per epoch p+1..h, the
entry of round max_beacon_round_for_epoch(e) for each e, oldest first (BeaconEntriesForBlock). Devnets
use the mock beacon (chain/beacon/mock.go): round = epoch + 100, entry data = blake2b-256 of the round as
a big-endian uint64, so no network is needed. A drand beacon implements the same RandomBeacon protocol
(entries fetched ahead of time; entry() answers from what has arrived).

Checking (Lotus ValidateBlockValues) is stricter here: every entry must be the one for its epoch, in
order, whatever the beacon, also on top of the genesis (Lotus skips a chained beacon's checks there),
since that is exactly what BeaconEntriesForBlock produces.
"""

from collections.abc import Sequence
from typing import Final, Protocol

from chain.crypto.randomness import mock_beacon_data
from chain.types.beacon import BeaconEntry

# Lotus MockBeacon.MaxBeaconRoundForEpoch: "offset for better testing".
MOCK_ROUND_OFFSET: Final = 100


class InvalidBeaconEntry(ValueError):
    """A beacon entry that is not the beacon's entry for its round."""


class RandomBeacon(Protocol):
    def max_beacon_round_for_epoch(self, epoch: int) -> int:
        """The beacon round whose entry an epoch uses."""
        ...

    def entry(self, round_: int) -> BeaconEntry:
        """The entry of a round (LookupError if the beacon does not have it yet)."""
        ...

    def verify_entry(self, entry: BeaconEntry, previous: BeaconEntry) -> None:
        """Raise InvalidBeaconEntry if entry is not the beacon's entry for its round."""
        ...


class MockBeacon:
    """Lotus's mock beacon: every round's entry is computable by anyone."""

    __slots__ = ("offset",)

    def __init__(self, offset: int = MOCK_ROUND_OFFSET) -> None:
        self.offset = offset

    def max_beacon_round_for_epoch(self, epoch: int) -> int:
        return epoch + self.offset

    def entry(self, round_: int) -> BeaconEntry:
        if round_ < 0:
            raise LookupError(f"no beacon round {round_}")
        return BeaconEntry(round_, mock_beacon_data(round_))

    def verify_entry(self, entry: BeaconEntry, previous: BeaconEntry) -> None:
        if entry.data != mock_beacon_data(entry.round):
            raise InvalidBeaconEntry(f"beacon entry of round {entry.round} has the wrong data")


def beacon_entries_for_block(beacon: RandomBeacon, epoch: int, parent_epoch: int) -> tuple[BeaconEntry, ...]:
    """The entries a block at epoch on a parent at parent_epoch carries, oldest first."""
    if epoch <= parent_epoch:
        raise ValueError(f"block epoch {epoch} must be above its parent's {parent_epoch}")
    return tuple(
        beacon.entry(beacon.max_beacon_round_for_epoch(e)) for e in range(parent_epoch + 1, epoch + 1)
    )


def check_beacon_entries(
    beacon: RandomBeacon,
    entries: Sequence[BeaconEntry],
    epoch: int,
    parent_epoch: int,
    previous: BeaconEntry,
) -> None:
    """Raise InvalidBeaconEntry unless entries are exactly the ones for epochs parent_epoch+1..epoch
    and each verifies (previous: the last entry on the chain below the block)."""
    expected = [beacon.max_beacon_round_for_epoch(e) for e in range(parent_epoch + 1, epoch + 1)]
    rounds = [entry.round for entry in entries]
    if rounds != expected:
        raise InvalidBeaconEntry(
            f"expected beacon entries for rounds {_span(expected)} (epochs {parent_epoch + 1}..{epoch}),"
            f" got {_span(rounds)}"
        )
    for entry in entries:
        beacon.verify_entry(entry, previous)
        previous = entry


def _span(rounds: Sequence[int]) -> str:
    if not rounds:
        return "none"
    if len(rounds) > 3 and list(rounds) == list(range(rounds[0], rounds[0] + len(rounds))):
        return f"{rounds[0]}..{rounds[-1]}"
    return ", ".join(map(str, rounds))
