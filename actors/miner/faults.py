"""Sector faults across a deadline: declarations, PoSt results and the end-of-deadline reckoning.

Each function takes a deadline, applies one kind of event to the partitions it names and returns the
updated deadline with the change in the miner's claimed power. At a deadline's end, partitions that
were not proven become faulty (undeclared faults), and sectors due in the expiration queues leave:
on time at their declared expiration, or early once faulty for longer than the fault max age.
"""

from collections.abc import Iterable
from dataclasses import dataclass, replace

from actors.miner.deadlines import Deadline, LoadedSectors, Partition, Partitions
from actors.miner.policy import DeadlineInfo, QuantSpec
from actors.miner.state import SectorOnChainInfo, Sectors
from actors.miner.types import PoStPartition, PowerPair
from chain.store.blockstore import Blockstore
from chain.types.bitfield import BitField
from chain.vm.exitcode import illegal_argument


@dataclass(frozen=True, slots=True)
class DeadlineScope:
    """What applying events to one deadline's partitions takes besides the deadline: the store, the
    miner's sectors and sector size, the deadline's quantisation and the epoch a sector made faulty now
    is terminated at, unless recovered."""

    store: Blockstore
    sectors: Sectors
    sector_size: int
    quant: QuantSpec
    fault_expiration: int

    @classmethod
    def of(
        cls, store: Blockstore, sectors: Sectors, sector_size: int, info: DeadlineInfo, fault_max_age: int
    ) -> "DeadlineScope":
        return cls(store, sectors, sector_size, info.quant_spec(), info.last() + fault_max_age)

    def infos(self, numbers: BitField) -> dict[int, SectorOnChainInfo]:
        return {s.sector_number: s for s in self.sectors.load_all(numbers)}

    def loaded(self, numbers: BitField) -> LoadedSectors:
        return LoadedSectors(self.infos(numbers), self.sector_size)

    def record_faults(self, partition: Partition, numbers: BitField) -> tuple[Partition, PowerPair]:
        """The partition with the live ones of numbers faulty (their infos loaded), and the power newly
        faulty."""
        live = numbers & partition.live()
        return partition.record_faults(self.store, live, self.loaded(live), self.quant, self.fault_expiration)

    def terminate(
        self, partition: Partition, numbers: BitField
    ) -> tuple[Partition, PowerPair, dict[int, SectorOnChainInfo]]:
        """The partition without the (live) sectors numbers, the active power removed and their infos."""
        sectors = self.loaded(numbers)
        partition, active = partition.terminate(self.store, numbers, sectors, self.quant)
        return partition, active, sectors.infos


def _partition_in(partitions: Partitions, index: int, numbers: BitField) -> Partition:
    partition = partitions.must_get(index)
    if not numbers.issubset(partition.sectors):
        raise illegal_argument(f"not all sectors are assigned to partition {index}")
    return partition


def _with_partitions(deadline: Deadline, partitions: Partitions, removed_live: int = 0) -> Deadline:
    faulty = PowerPair()
    for _, partition in partitions.items():
        faulty = faulty + partition.faulty_power
    return replace(
        deadline,
        partitions=partitions.flush(),
        faulty_power=faulty,
        live_sectors=deadline.live_sectors - removed_live,
    )


def declare_faults(
    scope: DeadlineScope, deadline: Deadline, declarations: Iterable[tuple[int, BitField]]
) -> tuple[Deadline, PowerPair]:
    """Mark the declared sectors faulty; returns the deadline and the (non-positive) power change."""
    partitions = deadline.load_partitions(scope.store)
    lost = PowerPair()
    for index, numbers in declarations:
        partition, new_faulty = scope.record_faults(_partition_in(partitions, index, numbers), numbers)
        partitions.set(index, partition)
        lost = lost + new_faulty
    return _with_partitions(deadline, partitions), -lost


def declare_recoveries(
    scope: DeadlineScope, deadline: Deadline, declarations: Iterable[tuple[int, BitField]]
) -> Deadline:
    """Mark declared faulty sectors as recovering (no power changes until a PoSt proves them)."""
    partitions = deadline.load_partitions(scope.store)
    for index, numbers in declarations:
        partition = _partition_in(partitions, index, numbers)
        targets = numbers & partition.faults
        partitions.set(index, partition.declare_recoveries(targets, scope.loaded(targets)))
    return _with_partitions(deadline, partitions)


@dataclass(frozen=True, slots=True)
class PoStResult:
    deadline: Deadline
    power_delta: PowerPair  # regained by recoveries, lost to skipped sectors
    proven: tuple[int, ...]  # the sectors the PoSt must prove, partition by partition


def record_proven_partitions(
    scope: DeadlineScope, deadline: Deadline, posts: Iterable[PoStPartition]
) -> PoStResult:
    """Apply a Window PoSt's partitions: skipped sectors become faulty, declared recoveries are
    restored, and the partitions count as proven this window. Partitions already proven are ignored."""
    partitions = deadline.load_partitions(scope.store)
    posted = deadline.partitions_posted
    delta = PowerPair()
    proven: list[int] = []
    for post in posts:
        if post.index in posted:
            continue
        partition = _partition_in(partitions, post.index, post.skipped)
        partition, lost = scope.record_faults(partition, post.skipped)
        partition, regained = partition.recover_faults(
            scope.store, scope.infos(partition.recoveries), scope.quant
        )
        partitions.set(post.index, partition)
        posted = posted.with_set(post.index)
        delta = delta + regained - lost
        proven.extend(partition.active())
    updated = replace(_with_partitions(deadline, partitions), partitions_posted=posted)
    return PoStResult(updated, delta, tuple(proven))


def terminate_sectors(
    scope: DeadlineScope, deadline: Deadline, declarations: Iterable[tuple[int, BitField]]
) -> tuple[Deadline, PowerPair, list[SectorOnChainInfo]]:
    """Terminate live sectors: returns the deadline, the active power removed and the sectors."""
    partitions = deadline.load_partitions(scope.store)
    removed = PowerPair()
    terminated: list[SectorOnChainInfo] = []
    for index, numbers in declarations:
        partition = _partition_in(partitions, index, numbers)
        if not numbers.issubset(partition.live()):
            raise illegal_argument(f"partition {index}: not all sectors live")
        partition, active, infos = scope.terminate(partition, numbers)
        partitions.set(index, partition)
        removed = removed + active
        terminated.extend(infos.values())
    return _with_partitions(deadline, partitions, len(terminated)), removed, terminated


@dataclass(frozen=True, slots=True)
class DeadlineEnd:
    deadline: Deadline
    power_delta: PowerPair  # lost to missed PoSts and to expiring active sectors (non-positive)
    previously_faulty_power: PowerPair  # faulty before this deadline ended: pays the continued fault fee
    detected_faulty_power: PowerPair  # made faulty now by a missed PoSt
    expired: tuple[SectorOnChainInfo, ...]  # reached their expiration
    fault_terminated: tuple[SectorOnChainInfo, ...]  # faulty longer than the fault max age


def process_deadline_end(scope: DeadlineScope, deadline: Deadline, last_epoch: int) -> DeadlineEnd:
    partitions = deadline.load_partitions(scope.store)
    previously_faulty = deadline.faulty_power
    detected = PowerPair()
    removed_active = PowerPair()
    expired: list[SectorOnChainInfo] = []
    fault_terminated: list[SectorOnChainInfo] = []
    for index, partition in partitions.items():
        if index not in deadline.partitions_posted:
            partition, new_faulty = scope.record_faults(partition, partition.live())
            detected = detected + new_faulty
        partition, on_time, early = partition.pop_expired(scope.store, last_epoch, scope.quant)
        due = (on_time | early) & partition.live()
        if due:
            partition, active, infos = scope.terminate(partition, due)
            removed_active = removed_active + active
            expired.extend(infos[n] for n in due - early)
            fault_terminated.extend(infos[n] for n in due & early)
        partitions.set(index, partition)
    updated = replace(
        _with_partitions(deadline, partitions, len(expired) + len(fault_terminated)),
        partitions_posted=BitField(),
    )
    return DeadlineEnd(
        updated,
        -(detected + removed_active),
        previously_faulty,
        detected,
        tuple(expired),
        tuple(fault_terminated),
    )
