"""Checking a deadline's sectors on disk before its fault declaration cutoff, and what to declare.

Before each deadline the miner looks at the sectors the deadline's next PoSt would cover, as Lotus's
Window PoSt scheduler does (storage/wdpost: declareRecoveries, and the checkNextFaults / declareFaults
of Lotus before 1.11):

- a sector the PoSt is to prove (live and not faulty, or faulty and declared recovering) whose replica
  is missing, damaged or no longer matches its CommR is a new fault: DeclareFaults (method 10) takes
  its power away now, and the PoSt leaves it out;
- a faulty sector not yet declared recovering whose replica is fine again (the file came back, was
  restored or re-fetched) is a recovery: DeclareFaultsRecovered (method 11) marks it, and the next PoSt
  proves it and gives its power back.

Both must reach the chain before the deadline's fault declaration cutoff (the actor refuses them after
it). A deadline is checked when the deadline two before it is challenged (Lotus checks deadline
`current + 2` at the start of each PoSt cycle), which on the devnet profile leaves 16 epochs to the
cutoff and on mainnet 69. Faults found later are the PoSt's business: it skips what it cannot prove and
the actor marks those sectors faulty.

Declarations are batched as the actor takes them: one SectorDeclaration per partition, at most
`declarations_max` declarations and `addressed_sectors_max` sectors per message (a partition with more
sectors than that is split over messages).

The functions here are pure, or synchronous and reading replicas (`check_deadline_sectors`: run it in
a worker thread); node/mining/wdpost.py sends and follows the messages.
"""

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from actors.miner.deadlines import Partition
from actors.miner.policy import DeadlineInfo
from actors.miner.state import SectorOnChainInfo
from actors.miner.types import (
    DeclareFaultsParams,
    DeclareFaultsRecoveredParams,
    MinerMethod,
    SectorDeclaration,
)
from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.mpool.push import message_to_push
from chain.params import Policy
from chain.types.address import Address
from chain.types.bitfield import BitField
from chain.types.message import Message
from chain.vm.syscalls import sealed_commitment
from node.mining.wdpost_proofs import provable_sectors
from node.sealing.sectors import SectorStore

# A deadline is checked when the deadline this many before it is challenged (Lotus: current + 2).
CHECK_DEADLINES_AHEAD: Final = 2


class DeclarationKind(StrEnum):
    FAULTS = "faults"
    RECOVERIES = "recoveries"

    @property
    def method(self) -> MinerMethod:
        if self is DeclarationKind.FAULTS:
            return MinerMethod.DeclareFaults
        return MinerMethod.DeclareFaultsRecovered


def next_deadline(policy: Policy, info: DeadlineInfo) -> DeadlineInfo:
    """The deadline after info (the first of the next proving period after the last one)."""
    index, start = info.index + 1, info.period_start
    if index == policy.wpost_period_deadlines:
        index, start = 0, start + policy.wpost_proving_period
    return DeadlineInfo.of(policy, start, index, info.current_epoch)


def check_epoch(policy: Policy, info: DeadlineInfo, challenge_confidence: int) -> int:
    """The first head height at which the deadline's sectors are checked: the challenge of the
    deadline CHECK_DEADLINES_AHEAD before it, plus the challenge confidence."""
    return (
        info.open
        - CHECK_DEADLINES_AHEAD * policy.wpost_challenge_window
        - policy.wpost_challenge_lookback
        + challenge_confidence
    )


def can_declare(info: DeadlineInfo, height: int) -> bool:
    """Whether a declaration for the deadline sent at head height can still run before its cutoff (a
    message sent at h runs at h + 1 at the earliest; the actor refuses it from the cutoff on)."""
    return height + 1 < info.fault_cutoff


def unrecovered_faults(partition: Partition) -> BitField:
    """Faulty live sectors not declared recovering: what a recovery declaration may name."""
    return (partition.faults - partition.recoveries) & partition.live()


@dataclass(frozen=True, slots=True)
class FaultCheck:
    """What a check of one deadline's sectors on disk found, by partition index."""

    deadline: int
    faults: Mapping[int, BitField]  # sectors the PoSt is to prove that cannot be proven
    recoveries: Mapping[int, BitField]  # faulty sectors, not declared recovering, that are fine now
    reasons: Mapping[int, str]  # sector -> why it cannot be proven
    checked: BitField  # every sector checked
    seconds: float

    def wanted(self, kind: DeclarationKind) -> Mapping[int, BitField]:
        return self.faults if kind is DeclarationKind.FAULTS else self.recoveries

    @property
    def fault_count(self) -> int:
        return sum(s.count() for s in self.faults.values())

    @property
    def recovery_count(self) -> int:
        return sum(s.count() for s in self.recoveries.values())


def check_deadline_sectors(
    store: SectorStore,
    miner: Address,
    deadline: int,
    partitions: Sequence[Partition],
    chain_sectors: Mapping[int, SectorOnChainInfo],
) -> FaultCheck:
    """Check the sectors of a deadline's partitions with `SectorStore.check` (every replica read and
    its tree hashed, CommRs compared with the chain's): the PoSt's sectors for new faults, the faulty
    ones not declared recovering for recoveries. chain_sectors holds the chain's info of those sectors;
    one missing from it (terminated meanwhile) is left alone."""
    began = time.monotonic()
    to_prove = {i: provable_sectors(p) for i, p in enumerate(partitions)}
    unrecovered = {i: unrecovered_faults(p) for i, p in enumerate(partitions)}
    numbers = [n for sets in (to_prove, unrecovered) for s in sets.values() for n in s if n in chain_sectors]
    comm_r = {n: sealed_commitment(chain_sectors[n].sealed_cid) for n in numbers}
    reasons = {f.number: f.reason for f in store.check(miner, numbers, chain_comm_r=comm_r)}
    bad = BitField.from_bits(reasons)
    checked = BitField.from_bits(numbers)
    faults = {i: s & bad for i, s in to_prove.items() if s & bad}
    recoveries = {i: (s & checked) - bad for i, s in unrecovered.items() if (s & checked) - bad}
    return FaultCheck(
        deadline,
        faults,
        recoveries,
        {n: r for n, r in sorted(reasons.items())},
        checked,
        round(time.monotonic() - began, 3),
    )


def still_needed(
    kind: DeclarationKind, wanted: Mapping[int, BitField], partitions: Sequence[Partition]
) -> dict[int, BitField]:
    """What of wanted the chain does not show yet: faults not yet faulty (or still declared
    recovering), recoveries not yet declared (of sectors still faulty and live)."""
    needed = {}
    for index, sectors in sorted(wanted.items()):
        if index >= len(partitions):
            continue
        partition = partitions[index]
        now = provable_sectors(partition) if kind is DeclarationKind.FAULTS else unrecovered_faults(partition)
        left = sectors & now
        if left:
            needed[index] = left
    return needed


def declaration_batches(
    policy: Policy, deadline: int, sectors: Mapping[int, BitField]
) -> list[tuple[SectorDeclaration, ...]]:
    """The declarations of sectors (by partition) as messages the actor takes: partitions in order, at
    most `declarations_max` declarations and `addressed_sectors_max` sectors in each."""
    batches: list[tuple[SectorDeclaration, ...]] = []
    current: list[SectorDeclaration] = []
    room = policy.addressed_sectors_max
    for index, numbers in sorted(sectors.items()):
        left = list(numbers)
        while left:
            if len(current) == policy.declarations_max or room == 0:
                batches.append(tuple(current))
                current, room = [], policy.addressed_sectors_max
            take, left = left[:room], left[room:]
            current.append(SectorDeclaration(deadline, index, BitField.from_bits(take)))
            room -= len(take)
    if current:
        batches.append(tuple(current))
    return batches


def declaration_message(
    kind: DeclarationKind, miner: Address, worker: Address, declarations: Sequence[SectorDeclaration]
) -> Message:
    """The DeclareFaults or DeclareFaultsRecovered message, for the message pusher to complete."""
    params: DeclareFaultsParams | DeclareFaultsRecoveredParams
    if kind is DeclarationKind.FAULTS:
        params = DeclareFaultsParams(tuple(declarations))
    else:
        params = DeclareFaultsRecoveredParams(tuple(declarations))
    return message_to_push(miner, worker, method=kind.method, params=params)


def declared_in(kind: DeclarationKind, message: Message) -> tuple[SectorDeclaration, ...] | None:
    """The declarations a message of this kind carries (None: not one, or unreadable)."""
    if message.method != kind.method:
        return None
    try:
        raw = dagcbor.decode(message.params)
        if kind is DeclarationKind.FAULTS:
            return DeclareFaultsParams.from_cbor(raw).faults
        return DeclareFaultsRecoveredParams.from_cbor(raw).recoveries
    except (DecodeError, ValueError):
        return None


def covered(
    declarations: Iterable[SectorDeclaration], deadline: int, sectors: Mapping[int, BitField]
) -> bool:
    """Whether the declarations name every sector of `sectors` (by partition) of the deadline."""
    named: dict[int, BitField] = {}
    for d in declarations:
        if d.deadline == deadline:
            named[d.partition] = named.get(d.partition, BitField()) | d.sectors
    return all(numbers.issubset(named.get(index, BitField())) for index, numbers in sectors.items())


@dataclass
class SentDeclaration:
    """A DeclareFaults or DeclareFaultsRecovered pushed for one deadline instance."""

    kind: DeclarationKind
    message: Message = field(repr=False)
    cid: CID
    declarations: tuple[SectorDeclaration, ...]
    pushed_at: int  # head height when pushed (or adopted from the pool)
    outcome: str | None = None  # None while in flight; "ok" or the failure once executed

    @property
    def sectors(self) -> BitField:
        return BitField().union(*(d.sectors for d in self.declarations))

    def by_partition(self) -> dict[int, BitField]:
        out: dict[int, BitField] = {}
        for d in self.declarations:
            out[d.partition] = out.get(d.partition, BitField()) | d.sectors
        return out
