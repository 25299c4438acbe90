"""What a deadline's Window PoSt proves, how it is split into messages, and making the proofs.

For each partition of the deadline not yet proven in this window, the miner actor expects a proof of
its live sectors that are not faulty plus the faulty ones declared recovering (Lotus proves
Live - Faulty + Recovering; the actor's SubmitWindowedPoSt applies the skipped set and the recoveries,
then verifies the proof over what is then active, partition by partition in the order submitted).
Sectors the sector store cannot produce, or whose replica no longer matches its CommR, are skipped: the
actor marks them faulty, and the rest of the partition is still proven.

Partitions are packed into messages (Lotus batchPartitions): at most the actor's limit of partitions per
SubmitWindowedPoSt (ADDRESSED_SECTORS_MAX / partition size, and ADDRESSED_PARTITIONS_MAX), and, as
filpy's proofs are vanilla (kilobytes per sector, not 192 bytes per partition), no more than fits in a
message under the message pool's size limit. The proof size depends only on the proof type and the
number of sectors, so the packing is exact before any proof is made.

`prove_deadline` is synchronous and reads replicas: run it with `trio.to_thread.run_sync`.
"""

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from actors.dispatch import encode_params
from actors.miner.deadlines import Partition
from actors.miner.state import SectorOnChainInfo
from actors.miner.types import PoStPartition, SubmitWindowedPoStParams
from chain.encoding import dagcbor
from chain.params import Policy
from chain.types.address import Address
from chain.types.bitfield import BitField
from chain.types.block import PoStProof
from chain.vm.syscalls import sealed_commitment
from node.sealing.sectors import SectorStore, SectorStoreError
from proofs import post
from proofs.registered import NODE_SIZE, post_params

# Bytes of a signed message besides its params (envelope, addresses, gas fields, a BLS signature),
# with room to spare: the packing keeps params under the size limit minus this.
MESSAGE_OVERHEAD: Final = 512
RANDOMNESS_SIZE: Final = 32


class WindowPoStError(Exception):
    """A Window PoSt could not be made; the message says why."""


def post_entropy(miner_id: Address) -> bytes:
    """The entropy of the miner's PoSt challenge draw: its ID address as CBOR (what the actor uses)."""
    return dagcbor.encode(miner_id.to_cbor())


def provable_sectors(partition: Partition) -> BitField:
    """The sectors a PoSt of the partition proves unless skipped: live and not faulty, or recovering."""
    return (partition.live() - partition.faults) | partition.recoveries


@dataclass(frozen=True, slots=True)
class PartitionTask:
    """A partition to prove: its index in the deadline and the sectors the chain expects proven."""

    index: int
    to_prove: BitField


def partitions_to_prove(partitions: Sequence[Partition], posted: BitField) -> tuple[PartitionTask, ...]:
    """The deadline's partitions not yet proven in this window that have sectors to prove."""
    tasks = []
    for index, partition in enumerate(partitions):
        if index in posted:
            continue
        to_prove = provable_sectors(partition)
        if to_prove:
            tasks.append(PartitionTask(index, to_prove))
    return tuple(tasks)


def max_partitions_per_message(policy: Policy, partition_sectors: int) -> int:
    """The actor's limit on partitions in one SubmitWindowedPoSt."""
    return max(1, min(policy.addressed_sectors_max // partition_sectors, policy.addressed_partitions_max))


def window_post_size(post_proof: int, sectors: int) -> int:
    """Bytes of a Window PoSt proof over that many sectors (proofs/post.py's layout)."""
    params = post_params(post_proof)
    opening = NODE_SIZE * (1 + params.tree_depth)
    per_sector = 2 * NODE_SIZE + params.challenges * opening
    partitions = -(-sectors // params.sectors)
    return 2 + 4 + partitions + sectors * per_sector


@dataclass(frozen=True, slots=True)
class PreparedPoSt:
    """One SubmitWindowedPoSt's worth of proving: its partitions (with the sectors skipped in each),
    the proof, and the sectors it proves in proof order. The chain commitment is added when sent."""

    deadline: int
    partitions: tuple[PoStPartition, ...]
    proof: PoStProof
    proven: tuple[int, ...]

    @property
    def indices(self) -> tuple[int, ...]:
        return tuple(p.index for p in self.partitions)

    def params(self, commit_epoch: int, commit_rand: bytes) -> SubmitWindowedPoStParams:
        return SubmitWindowedPoStParams(
            deadline=self.deadline,
            partitions=self.partitions,
            proofs=(self.proof,),
            chain_commit_epoch=commit_epoch,
            chain_commit_rand=commit_rand,
        )


@dataclass(frozen=True, slots=True)
class DeadlineProofs:
    """A deadline's proofs: the messages' worth of proving, the sectors skipped (with the reason) and
    what they were made for (the tasks as the chain stated them, and the challenge randomness)."""

    deadline: int
    tasks: tuple[PartitionTask, ...]
    randomness: bytes = field(repr=False)
    posts: tuple[PreparedPoSt, ...]
    skipped: Mapping[int, str]
    seconds: float

    def covers(self, tasks: Sequence[PartitionTask]) -> bool:
        """Whether these proofs were made for each of tasks, as stated now."""
        planned = set(self.tasks)
        return all(task in planned for task in tasks)


@dataclass
class _Entry:
    task: PartitionTask
    good: list[int]


def _byte_string_header(length: int) -> int:
    """Bytes of the CBOR header of a byte string of that length."""
    return (
        1
        if length < 24
        else 2
        if length < 1 << 8
        else 3
        if length < 1 << 16
        else 5
        if length < 1 << 32
        else 9
    )


def _params_size(deadline: int, entries: Sequence[_Entry], post_proof: int) -> int:
    """Bytes of the params of a message proving entries (exact: the proof's size is known)."""
    proof_size = window_post_size(post_proof, sum(len(e.good) for e in entries))
    partitions = tuple(
        PoStPartition(index=e.task.index, skipped=e.task.to_prove - BitField.from_bits(e.good))
        for e in entries
    )
    without_proof = SubmitWindowedPoStParams(
        deadline=deadline,
        partitions=partitions,
        proofs=(PoStProof(post_proof, b""),),
        chain_commit_epoch=1 << 62,
        chain_commit_rand=bytes(RANDOMNESS_SIZE),
    )
    return len(encode_params(without_proof)) - 1 + _byte_string_header(proof_size) + proof_size


def _pack(
    deadline: int, entries: Sequence[_Entry], post_proof: int, per_message: int, max_params: int
) -> list[list[_Entry]]:
    """Partitions into messages, in order: each message as full as the limits allow."""
    batches: list[list[_Entry]] = []
    current: list[_Entry] = []
    for entry in entries:
        candidate = [*current, entry]
        if current and (
            len(candidate) > per_message or _params_size(deadline, candidate, post_proof) > max_params
        ):
            batches.append(current)
            candidate = [entry]
        current = candidate
    if current:
        batches.append(current)
    return batches


def prove_deadline(
    store: SectorStore,
    miner: Address,
    deadline: int,
    post_proof: int,
    randomness: bytes,
    tasks: Sequence[PartitionTask],
    chain_sectors: Mapping[int, SectorOnChainInfo],
    *,
    per_message: int,
    max_message_size: int,
) -> DeadlineProofs:
    """Prove tasks (a deadline's partitions) from the sector store with the challenge randomness.

    chain_sectors holds the on-chain info of every sector in tasks (the CommR proofs are checked
    against). Raises WindowPoStError when a proof cannot be made for a reason other than a faulty
    sector (those are skipped, with the reason in `skipped`).
    """
    began = time.monotonic()
    skipped: dict[int, str] = {}
    chain_comm_r: dict[int, bytes] = {}
    entries = []
    for task in tasks:
        good = []
        for number in task.to_prove:
            info = chain_sectors.get(number)
            if info is None:
                skipped[number] = "the sector is not in the miner's state"
                continue
            try:
                stored = store.stat(miner, number)
            except SectorStoreError as exc:
                skipped[number] = str(exc)
                continue
            comm_r = sealed_commitment(info.sealed_cid)
            if stored.comm_r != comm_r:
                skipped[number] = "the stored CommR differs from the one on chain"
                continue
            chain_comm_r[number] = comm_r
            good.append(number)
        if good:
            entries.append(_Entry(task, good))
    max_params = max_message_size - MESSAGE_OVERHEAD
    posts = []
    for batch in _pack(deadline, entries, post_proof, per_message, max_params):
        prepared = _prove_batch(store, miner, deadline, post_proof, randomness, batch, chain_comm_r, skipped)
        if prepared is not None:
            posts.append(prepared)
    return DeadlineProofs(
        deadline, tuple(tasks), randomness, tuple(posts), skipped, round(time.monotonic() - began, 3)
    )


def _prove_batch(
    store: SectorStore,
    miner: Address,
    deadline: int,
    post_proof: int,
    randomness: bytes,
    batch: list[_Entry],
    chain_comm_r: Mapping[int, bytes],
    skipped: dict[int, str],
) -> PreparedPoSt | None:
    """One message's proof; sectors found faulty while proving are skipped and the proof made again
    without them (each round drops at least one sector, so this ends). The proof is made one proof
    partition at a time (the proof type's partition size, in order), so that only that many replicas
    are in memory at once, whatever the number of sectors in the message."""
    size = post_params(post_proof).sectors
    while True:
        entries = [e for e in ((e.task, [n for n in e.good if n not in skipped]) for e in batch) if e[1]]
        if not entries:
            return None
        order = [n for _, good in entries for n in good]
        proven: list[tuple[post.SectorProof, ...]] = []
        for start in range(0, len(order), size):
            part = _prove_chunk(store, miner, post_proof, randomness, order[start : start + size], skipped)
            if part is None:
                break
            proven.extend(part.partitions)
        else:
            proof_bytes = post.WindowPoStProof(post_params(post_proof).proof, tuple(proven)).to_bytes()
            public = [post.PublicSector(n, chain_comm_r[n]) for n in order]
            if not post.verify_window_post(post_proof, randomness, public, proof_bytes):
                raise WindowPoStError(f"deadline {deadline}: the generated proof does not verify")
            partitions = tuple(
                PoStPartition(index=task.index, skipped=task.to_prove - BitField.from_bits(good))
                for task, good in entries
            )
            return PreparedPoSt(deadline, partitions, PoStProof(post_proof, proof_bytes), tuple(order))


def _prove_chunk(
    store: SectorStore,
    miner: Address,
    post_proof: int,
    randomness: bytes,
    numbers: Sequence[int],
    skipped: dict[int, str],
) -> post.WindowPoStProof | None:
    """The proof of one proof partition's sectors; None (with the faulty ones added to skipped) when
    a sector cannot be read or proved."""
    sectors = []
    for number in numbers:
        try:
            sectors.append(store.proving_sector(miner, number))
        except SectorStoreError as exc:
            skipped[number] = str(exc)
    if len(sectors) != len(numbers):
        return None
    try:
        return post.generate_window_post(post_proof, randomness, sectors)
    except post.FaultySectors as exc:
        for number in exc.sector_numbers:
            skipped[number] = "the replica does not match its CommR (found while proving)"
        return None
