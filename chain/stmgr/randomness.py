"""Randomness from the chain: tickets and beacon entries as the VM and the consensus rules draw them.

Lotus chain/rand/rand.go at network version >= 14, relative to a tipset ts (the tipset being executed,
or the one a query names):
- chain randomness at epoch e <= ts.height comes from the smallest ticket of the tipset at e on ts's
  chain; over a null round, the first tipset above it (no lookback: GetTipsetByHeight with prev=False).
  A negative epoch draws from the genesis ticket.
- beacon randomness at epoch e comes from the beacon entry for round max_beacon_round_for_epoch(e),
  looked up in the tipset at e (or the first above a null round) and up to 20 tipsets below it, as
  block headers record one entry per epoch. For e <= 0 it is the genesis block's entry; Lotus takes the
  genesis entry for negative epochs only and has no entry to find at epoch 0 with the mock beacon's
  offset rounds, so filpy extends the genesis rule to epoch 0 (as node/genesis.py's GenesisRandomness).
The digest handed to the VM is blake2b-256 of the ticket's VRF proof or of the entry's data; the VM draws
from it (chain/crypto/randomness.py).
"""

from typing import Final, Protocol

from chain.crypto.randomness import blake2b_256, draw_randomness_from_digest
from chain.stmgr.chain import ChainReader
from chain.types.beacon import BeaconEntry
from chain.types.tipset import TipSet

# How many tipsets a beacon entry is searched through (lotus GetLatestBeaconEntry, getBeaconEntryV3).
BEACON_SEARCH_DEPTH: Final = 20


class BeaconRounds(Protocol):
    """The part of a random beacon the chain's randomness needs (chain/consensus/beacon.py has the rest)."""

    def max_beacon_round_for_epoch(self, epoch: int) -> int: ...


class BeaconEntryNotFound(ValueError):
    """No beacon entry where the chain should hold one."""


def latest_beacon_entry(chain: ChainReader, ts: TipSet) -> BeaconEntry:
    """The last beacon entry recorded at or below ts (lotus ChainStore.GetLatestBeaconEntry)."""
    cur = ts
    for _ in range(BEACON_SEARCH_DEPTH):
        entries = cur.blocks[0].beacon_entries
        if entries:
            return entries[-1]
        if cur.height == 0:
            raise BeaconEntryNotFound("reached the genesis without finding a beacon entry")
        cur = chain.load_tipset(cur.parents)
    raise BeaconEntryNotFound(f"no beacon entry in the {BEACON_SEARCH_DEPTH} tipsets up to {ts.key}")


class ChainRandomness:
    """The RandomnessSource (chain/crypto/randomness.py) of the chain ending at ts."""

    __slots__ = ("_beacon", "_beacons", "_chain", "_tickets", "ts")

    def __init__(self, chain: ChainReader, ts: TipSet, beacon: BeaconRounds) -> None:
        self._chain = chain
        self.ts = ts
        self._beacon = beacon
        self._tickets: dict[int, bytes] = {}
        self._beacons: dict[int, BeaconEntry] = {}

    def _check(self, epoch: int) -> None:
        if epoch > self.ts.height:
            raise ValueError(f"cannot draw randomness from the future: epoch {epoch} > {self.ts.height}")

    def chain_digest(self, epoch: int) -> bytes:
        self._check(epoch)
        digest = self._tickets.get(epoch)
        if digest is None:
            rand_ts = self._chain.get_tipset_by_height(max(epoch, 0), self.ts, prev=False)
            digest = self._tickets[epoch] = blake2b_256(rand_ts.min_ticket().vrf_proof)
        return digest

    def beacon_entry(self, epoch: int) -> BeaconEntry:
        self._check(epoch)
        entry = self._beacons.get(epoch)
        if entry is None:
            entry = self._beacons[epoch] = self._find_beacon_entry(epoch)
        return entry

    def _find_beacon_entry(self, epoch: int) -> BeaconEntry:
        if epoch <= 0:
            return latest_beacon_entry(self._chain, self._chain.get_tipset_by_height(0, self.ts, prev=False))
        cur = self._chain.get_tipset_by_height(epoch, self.ts, prev=False)
        wanted = self._beacon.max_beacon_round_for_epoch(epoch)
        for _ in range(BEACON_SEARCH_DEPTH):
            for entry in cur.blocks[0].beacon_entries:
                if entry.round == wanted:
                    return entry
            if cur.height == 0:
                break
            cur = self._chain.load_tipset(cur.parents)
        raise BeaconEntryNotFound(f"no beacon entry for round {wanted} (epoch {epoch}) on the chain")

    def beacon_digest(self, epoch: int) -> bytes:
        return blake2b_256(self.beacon_entry(epoch).data)

    def draw_chain(self, tag: int, epoch: int, entropy: bytes) -> bytes:
        return draw_randomness_from_digest(self.chain_digest(epoch), tag, epoch, entropy)

    def draw_beacon(self, tag: int, epoch: int, entropy: bytes) -> bytes:
        return draw_randomness_from_digest(self.beacon_digest(epoch), tag, epoch, entropy)
