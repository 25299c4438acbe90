"""Sectors the chain terminates for faults, and the committed-capacity sectors sealed in their place.

A sector faulty for longer than the fault max age (`policy.fault_max_age`: 42 proving periods on
mainnet, 3 on the devnet profile) is terminated by the miner actor at a deadline's cron: it pays the
termination fee, its power and pledge go, and the market slashes its deals (OnMinerSectorsTerminate).
The sealing pipeline then seals a new sector to take its place, as the issue's storage-fault flow asks
("the seed's SealSector again").

The pipeline's `FaultFollower` (one task of `SealingPipeline.run`) does this on every head:

1. every faulty sector of the miner (StateMinerFaults) not yet followed is remembered in the sealing
   store with its expiration and deals (`WatchedSector`): once terminated, the chain no longer has them;
2. a followed sector that is live and no longer faulty has recovered: forgotten;
3. a followed sector gone from the chain before its expiration was terminated early while faulty: a
   committed-capacity sector is opened in the same write that records the replacement
   (`ReplacedSector`) and forgets the faulty one, so a crash can neither lose nor double it; the
   terminated sector's files leave the sector store, and its pipeline record (if the pipeline sealed
   it) becomes Removed. One gone at or after its expiration expired: forgotten, not replaced.

Deals: the market slashes the deals of a terminated sector (their state's SlashEpoch is set, then the
deal is removed at the market's cron), so no deal can be sealed again under its deal ID: ActivateDeals
refuses a deal that has been activated once. Their terms never allow the same deal's piece into the
replacement; the provider's and the client's deal trackers see the deal slashed on chain (the deals
code: StorageDealSlashed). The replacement is committed capacity, which restores the power; putting a
piece back takes a new deal. The log names the slashed deals.

A sector is followed from the first head that shows it faulty and must stay faulty `fault_max_age`
epochs before the actor terminates it, so a node that was down for a while still sees it faulty first;
one down for longer than the fault max age never followed it, and does not replace it.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from chain.types.address import Address
from chain.types.tipset import TipSet
from node.sealing.chain import SealingChain
from node.sealing.types import WatchedSector


@dataclass(frozen=True, slots=True)
class FaultChanges:
    """What one head says about the miner's faulty sectors, against those followed."""

    new: tuple[WatchedSector, ...] = ()  # faulty now, not followed yet
    recovered: tuple[int, ...] = ()  # followed, live and no longer faulty
    expired: tuple[WatchedSector, ...] = ()  # followed, gone at or after their expiration
    terminated: tuple[WatchedSector, ...] = ()  # followed, gone before their expiration
    still_faulty: tuple[int, ...] = field(default=(), repr=False)

    @property
    def empty(self) -> bool:
        return not (self.new or self.recovered or self.expired or self.terminated)


def fault_changes(
    chain: SealingChain, miner: Address, head: TipSet, followed: Mapping[int, WatchedSector]
) -> FaultChanges:
    """Compare the miner's faults in the state after head with the followed sectors (reads the chain:
    run it in a worker thread)."""
    faults = chain.miner_faults(miner, head)
    new = []
    for number in faults:
        if number in followed:
            continue
        info = chain.sector_info(miner, number, head)
        if info is not None:
            new.append(WatchedSector(number, info.expiration, tuple(info.deal_ids), head.height))
    recovered, expired, terminated = [], [], []
    for number, watched in sorted(followed.items()):
        if number in faults:
            continue
        if chain.sector_info(miner, number, head) is not None:
            recovered.append(number)
        elif head.height < watched.expiration:
            terminated.append(watched)
        else:
            expired.append(watched)
    return FaultChanges(tuple(new), tuple(recovered), tuple(expired), tuple(terminated), tuple(faults))
