"""Deadlines and partitions: where proven sectors live between Window PoSts.

A proving period has policy.wpost_period_deadlines deadlines (Deadlines holds one Deadline block per
index); a deadline's sectors are grouped into partitions of the proof type's partition size, each
proven as a unit. A Partition tracks its sectors' lifecycle as bitfields (live, faulty, recovering,
terminated), their power, and an expiration queue: an AMT (bitwidth 4) from epoch (rounded up to
the deadline's last epoch) to the sectors due then, on time (their declared expiration) or early
(faulty for longer than the fault max age).

Simplified from builtin-actors v9 (see docs/actors.md): sectors have power from activation (no
"unproven" state), PoSts are verified when submitted (no optimistic acceptance, so no PoSt snapshots
or disputes), and expiration sets hold only sector numbers (power and pledge are recomputed from the
sector infos when they are popped).
"""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Annotated, Final

from actors.miner.policy import QuantSpec
from actors.miner.state import SectorOnChainInfo, sectors_power
from actors.miner.types import PowerPair
from actors.util.stored import reading
from actors.util.tables import ArrayOf
from chain.encoding.cid import CID
from chain.encoding.schema import CborTuple, MaxLen, Name, Uint64
from chain.state.amt import Amt
from chain.store.blockstore import Blockstore, get_decoded, put_cbor, put_declared
from chain.types.bitfield import BitField
from chain.vm.exitcode import illegal_argument, illegal_state

DEADLINE_PARTITIONS_AMT_BITWIDTH: Final = 3
PARTITION_EXPIRATION_AMT_BITWIDTH: Final = 4
MAX_DEADLINES: Final = 1024  # bounds decoding; a profile has at most a few dozen


class ExpirationSet(CborTuple):
    on_time_sectors: BitField
    early_sectors: BitField

    def is_empty(self) -> bool:
        return self.on_time_sectors.is_empty() and self.early_sectors.is_empty()


@dataclass(frozen=True, slots=True)
class LoadedSectors:
    """The infos of the sectors a partition change touches, by number, and the miner's sector size: what
    the change's power is computed from."""

    infos: dict[int, SectorOnChainInfo]
    sector_size: int

    def power(self, numbers: Iterable[int]) -> PowerPair:
        return sectors_power(self.sector_size, [self.infos[n] for n in numbers])


class ExpirationQueue:
    """A partition's expiration queue. It holds at most one entry per epoch at which one of the
    partition's few sectors is due, so scanning it whole is cheap."""

    __slots__ = ("_amt", "_quant")

    def __init__(self, amt: Amt, quant: QuantSpec) -> None:
        self._amt = amt
        self._quant = quant

    @classmethod
    def load(cls, store: Blockstore, root: CID, quant: QuantSpec) -> "ExpirationQueue":
        with reading("expiration queue"):
            return cls(Amt.load(store, root, PARTITION_EXPIRATION_AMT_BITWIDTH), quant)

    def _entries(self) -> list[tuple[int, ExpirationSet]]:
        with reading("expiration set"):
            return [(epoch, ExpirationSet.from_cbor(raw)) for epoch, raw in self._amt.items()]

    def _put(self, epoch: int, entry: ExpirationSet) -> None:
        if entry.is_empty():
            self._amt.delete(epoch)
        else:
            self._amt.set(epoch, entry.to_cbor())

    def _add(self, epoch: int, on_time: BitField, early: BitField) -> None:
        at = self._quant.quantize_up(epoch)
        if at < 0:
            raise illegal_state(f"expiration epoch {at} is negative")
        raw = self._amt.get(at)
        entry = ExpirationSet(BitField(), BitField()) if raw is None else ExpirationSet.from_cbor(raw)
        self._put(at, ExpirationSet(entry.on_time_sectors | on_time, entry.early_sectors | early))

    def add_on_time(self, sectors: Iterable[SectorOnChainInfo]) -> None:
        for sector in sectors:
            self._add(sector.expiration, BitField.from_bits([sector.sector_number]), BitField())

    def remove(self, numbers: BitField) -> None:
        for epoch, entry in self._entries():
            updated = ExpirationSet(entry.on_time_sectors - numbers, entry.early_sectors - numbers)
            if updated != entry:
                self._put(epoch, updated)

    def reschedule_as_faults(self, fault_expiration: int, sectors: list[SectorOnChainInfo]) -> None:
        """Faulty sectors expire at fault_expiration unless their own expiration comes first."""
        cutoff = self._quant.quantize_up(fault_expiration)
        early = BitField.from_bits(
            s.sector_number for s in sectors if self._quant.quantize_up(s.expiration) > cutoff
        )
        if early.is_empty():
            return
        self.remove(early)
        self._add(fault_expiration, BitField(), early)

    def reschedule_recovered(self, sectors: list[SectorOnChainInfo]) -> None:
        self.remove(BitField.from_bits(s.sector_number for s in sectors))
        self.add_on_time(sectors)

    def pop_until(self, epoch: int) -> tuple[BitField, BitField]:
        """Remove every entry at or before epoch; return (on-time, early) sector numbers."""
        on_time, early = BitField(), BitField()
        for at, entry in self._entries():
            if at <= epoch:
                on_time = on_time | entry.on_time_sectors
                early = early | entry.early_sectors
                self._amt.delete(at)
        return on_time, early

    def flush(self) -> CID:
        return self._amt.flush()


class Partition(CborTuple):
    sectors: BitField  # every sector ever assigned here, including terminated ones
    faults: BitField  # subset of live sectors
    recoveries: BitField  # subset of faults, declared recovering
    terminated: BitField
    expirations_epochs: CID
    live_power: PowerPair
    faulty_power: PowerPair
    recovering_power: PowerPair

    @classmethod
    def new(cls, store: Blockstore) -> "Partition":
        empty = BitField()
        root = Amt.new(store, PARTITION_EXPIRATION_AMT_BITWIDTH).flush()
        return cls(empty, empty, empty, empty, root, PowerPair(), PowerPair(), PowerPair())

    def live(self) -> BitField:
        return self.sectors - self.terminated

    def active(self) -> BitField:
        return self.live() - self.faults

    def active_power(self) -> PowerPair:
        return self.live_power - self.faulty_power

    def _queue(self, store: Blockstore, quant: QuantSpec) -> ExpirationQueue:
        return ExpirationQueue.load(store, self.expirations_epochs, quant)

    def add_sectors(
        self, store: Blockstore, sectors: list[SectorOnChainInfo], sector_size: int, quant: QuantSpec
    ) -> tuple["Partition", PowerPair]:
        numbers = BitField.from_bits(s.sector_number for s in sectors)
        if not numbers.isdisjoint(self.sectors):
            raise illegal_state("sectors already assigned to the partition")
        queue = self._queue(store, quant)
        queue.add_on_time(sectors)
        power = sectors_power(sector_size, sectors)
        updated = replace(
            self,
            sectors=self.sectors | numbers,
            expirations_epochs=queue.flush(),
            live_power=self.live_power + power,
        )
        return updated, power

    def record_faults(
        self,
        store: Blockstore,
        numbers: BitField,
        sectors: LoadedSectors,
        quant: QuantSpec,
        fault_expiration: int,
    ) -> tuple["Partition", PowerPair]:
        """Mark live sectors faulty (already faulty and terminated ones are ignored), retracting any
        recovery declared for them. Returns the power newly faulty, which the miner no longer claims."""
        live = numbers & self.live()
        new_faults = live - self.faults
        retracted = live & self.recoveries
        new_power = sectors.power(new_faults)
        retracted_power = sectors.power(retracted)
        queue = self._queue(store, quant)
        queue.reschedule_as_faults(fault_expiration, [sectors.infos[n] for n in new_faults])
        updated = replace(
            self,
            faults=self.faults | new_faults,
            recoveries=self.recoveries - retracted,
            expirations_epochs=queue.flush(),
            faulty_power=self.faulty_power + new_power,
            recovering_power=self.recovering_power - retracted_power,
        )
        return updated, new_power

    def declare_recoveries(self, numbers: BitField, sectors: LoadedSectors) -> "Partition":
        """Mark faulty sectors as recovering; they regain power when the next PoSt proves them."""
        new = (numbers & self.faults) - self.recoveries - self.terminated
        power = sectors.power(new)
        return replace(self, recoveries=self.recoveries | new, recovering_power=self.recovering_power + power)

    def recover_faults(
        self, store: Blockstore, infos: dict[int, SectorOnChainInfo], quant: QuantSpec
    ) -> tuple["Partition", PowerPair]:
        """A PoSt proved the recovering sectors: they are no longer faulty. Returns the power regained."""
        recovered = self.recoveries
        if recovered.is_empty():
            return self, PowerPair()
        queue = self._queue(store, quant)
        queue.reschedule_recovered([infos[n] for n in recovered])
        power = self.recovering_power
        updated = replace(
            self,
            faults=self.faults - recovered,
            recoveries=BitField(),
            expirations_epochs=queue.flush(),
            faulty_power=self.faulty_power - power,
            recovering_power=PowerPair(),
        )
        return updated, power

    def terminate(
        self, store: Blockstore, numbers: BitField, sectors: LoadedSectors, quant: QuantSpec
    ) -> tuple["Partition", PowerPair]:
        """Terminate live sectors (ErrIllegalArgument unless all live); returns the active power removed."""
        if not numbers.issubset(self.live()):
            raise illegal_argument("can only terminate live sectors")
        faulty = numbers & self.faults
        recovering = numbers & self.recoveries
        removed_live = sectors.power(numbers)
        removed_faulty = sectors.power(faulty)
        removed_recovering = sectors.power(recovering)
        queue = self._queue(store, quant)
        queue.remove(numbers)
        updated = replace(
            self,
            terminated=self.terminated | numbers,
            faults=self.faults - numbers,
            recoveries=self.recoveries - numbers,
            expirations_epochs=queue.flush(),
            live_power=self.live_power - removed_live,
            faulty_power=self.faulty_power - removed_faulty,
            recovering_power=self.recovering_power - removed_recovering,
        )
        return updated, removed_live - removed_faulty

    def pop_expired(
        self, store: Blockstore, until: int, quant: QuantSpec
    ) -> tuple["Partition", BitField, BitField]:
        """Take the sectors due by `until` out of the queue: (on-time expirations, fault-age expirations)."""
        queue = self._queue(store, quant)
        on_time, early = queue.pop_until(until)
        return replace(self, expirations_epochs=queue.flush()), on_time, early


class Deadline(CborTuple):
    partitions: CID  # AMT (bitwidth 3) of Partition
    partitions_posted: Annotated[BitField, Name("PartitionsPoSted")]  # proven in the current window
    live_sectors: Uint64
    total_sectors: Uint64
    faulty_power: PowerPair

    @classmethod
    def new(cls, store: Blockstore) -> "Deadline":
        return cls(Amt.new(store, DEADLINE_PARTITIONS_AMT_BITWIDTH).flush(), BitField(), 0, 0, PowerPair())

    def load_partitions(self, store: Blockstore) -> "Partitions":
        return Partitions.load(store, self.partitions)


class Partitions(ArrayOf[Partition]):
    """A deadline's partitions AMT, by partition index."""

    bitwidth = DEADLINE_PARTITIONS_AMT_BITWIDTH
    value_type = Partition
    what = "partitions"
    missing = "no such partition {}"


class Deadlines(CborTuple):
    due: Annotated[tuple[CID, ...], MaxLen(MAX_DEADLINES)]

    @classmethod
    def new(cls, store: Blockstore, count: int) -> "Deadlines":
        empty = put_cbor(store, Deadline.new(store).to_cbor())
        return cls((empty,) * count)

    @classmethod
    def load(cls, store: Blockstore, root: CID) -> "Deadlines":
        with reading("deadlines"):
            return get_decoded(store, root, cls.from_cbor)

    def save(self, store: Blockstore) -> CID:
        return put_declared(store, self)

    def get(self, store: Blockstore, index: int) -> Deadline:
        if not 0 <= index < len(self.due):
            raise illegal_argument(f"invalid deadline {index}")
        with reading(f"deadline {index}"):
            return get_decoded(store, self.due[index], Deadline.from_cbor)

    def with_deadline(self, store: Blockstore, index: int, deadline: Deadline) -> "Deadlines":
        due = list(self.due)
        due[index] = put_declared(store, deadline)
        return Deadlines(tuple(due))


def add_sectors_to_deadline(
    store: Blockstore,
    deadline: Deadline,
    sectors: list[SectorOnChainInfo],
    partition_size: int,
    max_partitions: int,
    sector_size: int,
    quant: QuantSpec,
) -> tuple[Deadline, PowerPair]:
    """Fill the deadline's last partition, then open new ones. Returns the deadline and the power added."""
    partitions = deadline.load_partitions(store)
    remaining = sorted(sectors, key=lambda s: s.sector_number)
    added = PowerPair()
    index = max(partitions.count() - 1, 0)
    while remaining:
        if index >= max_partitions:
            raise illegal_state(f"deadline has reached its limit of {max_partitions} partitions")
        partition = partitions.get(index) or Partition.new(store)
        space = partition_size - partition.sectors.count()
        if space > 0:
            batch, remaining = remaining[:space], remaining[space:]
            partition, power = partition.add_sectors(store, batch, sector_size, quant)
            partitions.set(index, partition)
            added = added + power
        index += 1
    updated = replace(
        deadline,
        partitions=partitions.flush(),
        live_sectors=deadline.live_sectors + len(sectors),
        total_sectors=deadline.total_sectors + len(sectors),
    )
    return updated, added


def load_infos(sectors_by_number: Iterable[SectorOnChainInfo]) -> dict[int, SectorOnChainInfo]:
    return {s.sector_number: s for s in sectors_by_number}
