"""Sector faults across a deadline: declarations, PoSt results and the end-of-deadline reckoning.

Each function takes a deadline, applies one kind of event to the partitions it names and returns the
updated deadline with the change in the miner's claimed power. At a deadline's end, partitions that
were not proven become faulty (undeclared faults), and sectors due in the expiration queues leave:
on time at their declared expiration, or early once faulty for longer than the fault max age.
"""

from collections.abc import Iterable
from dataclasses import dataclass, replace

from actors.miner.deadlines import Deadline, Partition, Partitions
from actors.miner.policy import QuantSpec
from actors.miner.state import SectorOnChainInfo, Sectors
from actors.miner.types import PoStPartition, PowerPair
from chain.store.blockstore import Blockstore
from chain.types.bitfield import BitField
from chain.vm.exitcode import illegal_argument, not_found


def _infos(sectors: Sectors, numbers: BitField) -> dict[int, SectorOnChainInfo]:
    return {s.sector_number: s for s in sectors.load_all(numbers)}


def _partition_in(partitions: Partitions, index: int, numbers: BitField) -> Partition:
    partition = partitions.get(index)
    if partition is None:
        raise not_found(f"no such partition {index}")
    if not numbers.issubset(partition.sectors):
        raise illegal_argument(f"not all sectors are assigned to partition {index}")
    return partition


def _record_faults(
    store: Blockstore,
    partition: Partition,
    sectors: Sectors,
    numbers: BitField,
    sector_size: int,
    quant: QuantSpec,
    fault_expiration: int,
) -> tuple[Partition, PowerPair]:
    """The partition with the live ones of numbers faulty (their infos loaded), and the power newly
    faulty."""
    live = numbers & partition.live()
    return partition.record_faults(store, live, _infos(sectors, live), sector_size, quant, fault_expiration)


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
    store: Blockstore,
    deadline: Deadline,
    sectors: Sectors,
    sector_size: int,
    quant: QuantSpec,
    fault_expiration: int,
    declarations: Iterable[tuple[int, BitField]],
) -> tuple[Deadline, PowerPair]:
    """Mark the declared sectors faulty; returns the deadline and the (non-positive) power change."""
    partitions = deadline.load_partitions(store)
    lost = PowerPair()
    for index, numbers in declarations:
        partition = _partition_in(partitions, index, numbers)
        partition, new_faulty = _record_faults(
            store, partition, sectors, numbers, sector_size, quant, fault_expiration
        )
        partitions.set(index, partition)
        lost = lost + new_faulty
    return _with_partitions(deadline, partitions), -lost


def declare_recoveries(
    store: Blockstore,
    deadline: Deadline,
    sectors: Sectors,
    sector_size: int,
    declarations: Iterable[tuple[int, BitField]],
) -> Deadline:
    """Mark declared faulty sectors as recovering (no power changes until a PoSt proves them)."""
    partitions = deadline.load_partitions(store)
    for index, numbers in declarations:
        partition = _partition_in(partitions, index, numbers)
        targets = numbers & partition.faults
        partitions.set(index, partition.declare_recoveries(targets, _infos(sectors, targets), sector_size))
    return _with_partitions(deadline, partitions)


@dataclass(frozen=True, slots=True)
class PoStResult:
    deadline: Deadline
    power_delta: PowerPair  # regained by recoveries, lost to skipped sectors
    proven: tuple[int, ...]  # the sectors the PoSt must prove, partition by partition


def record_proven_partitions(
    store: Blockstore,
    deadline: Deadline,
    sectors: Sectors,
    sector_size: int,
    quant: QuantSpec,
    fault_expiration: int,
    posts: Iterable[PoStPartition],
) -> PoStResult:
    """Apply a Window PoSt's partitions: skipped sectors become faulty, declared recoveries are
    restored, and the partitions count as proven this window. Partitions already proven are ignored."""
    partitions = deadline.load_partitions(store)
    posted = deadline.partitions_posted
    delta = PowerPair()
    proven: list[int] = []
    for post in posts:
        if post.index in posted:
            continue
        partition = _partition_in(partitions, post.index, post.skipped)
        partition, lost = _record_faults(
            store, partition, sectors, post.skipped, sector_size, quant, fault_expiration
        )
        partition, regained = partition.recover_faults(store, _infos(sectors, partition.recoveries), quant)
        partitions.set(post.index, partition)
        posted = posted.with_set(post.index)
        delta = delta + regained - lost
        proven.extend(partition.active())
    updated = replace(_with_partitions(deadline, partitions), partitions_posted=posted)
    return PoStResult(updated, delta, tuple(proven))


def terminate_sectors(
    store: Blockstore,
    deadline: Deadline,
    sectors: Sectors,
    sector_size: int,
    quant: QuantSpec,
    declarations: Iterable[tuple[int, BitField]],
) -> tuple[Deadline, PowerPair, list[SectorOnChainInfo]]:
    """Terminate live sectors: returns the deadline, the active power removed and the sectors."""
    partitions = deadline.load_partitions(store)
    removed = PowerPair()
    terminated: list[SectorOnChainInfo] = []
    for index, numbers in declarations:
        partition = _partition_in(partitions, index, numbers)
        if not numbers.issubset(partition.live()):
            raise illegal_argument(f"partition {index}: not all sectors live")
        infos = _infos(sectors, numbers)
        partition, active = partition.terminate(store, numbers, infos, sector_size, quant)
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


def process_deadline_end(
    store: Blockstore,
    deadline: Deadline,
    sectors: Sectors,
    sector_size: int,
    quant: QuantSpec,
    fault_expiration: int,
    last_epoch: int,
) -> DeadlineEnd:
    partitions = deadline.load_partitions(store)
    previously_faulty = deadline.faulty_power
    detected = PowerPair()
    removed_active = PowerPair()
    expired: list[SectorOnChainInfo] = []
    fault_terminated: list[SectorOnChainInfo] = []
    for index, partition in partitions.items():
        if index not in deadline.partitions_posted:
            partition, new_faulty = _record_faults(
                store, partition, sectors, partition.live(), sector_size, quant, fault_expiration
            )
            detected = detected + new_faulty
        partition, on_time, early = partition.pop_expired(store, last_epoch, quant)
        due = (on_time | early) & partition.live()
        if due:
            infos = _infos(sectors, due)
            partition, active = partition.terminate(store, due, infos, sector_size, quant)
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
