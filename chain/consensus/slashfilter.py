"""Consensus faults found among the block headers a node sees (Lotus chain/gen/slashfilter).

The filter remembers, per miner, the first block it saw at each height and for each parent set, and
the first block it saw on a parent at each height; a block that disagrees with what is remembered is
evidence of one of the three faults the miner actor's ReportConsensusFault punishes (the rules are the
VM's, chain/vm/syscalls.py `consensus_fault_type`):

- double-fork mining: a second block of the miner at a height it already mined at;
- time-offset mining: a block on the same parents as another of the miner's, at another height;
- parent grinding: a block whose parents leave out the miner's own block at the parents' height while
  including a sibling of it (same parents, same height): the witness the actor needs as the third
  header. Checked both ways round: when the block comes after the one it leaves out, and when the
  block left out arrives later (Lotus checks only the first order).

Records live in an ordered store (`MetadataStore`: the repo's LevelDB under its own namespace, so they
survive restarts), keyed by height first so that everything below a height is pruned by one scan:
blocks older than `finality` below the chain's head can no longer be reported (the actor's syscall
refuses them), so nothing older is kept, nor checked. The store also holds the faults already claimed
for reporting (`claim`), so that one fault is reported once, also across restarts.

The filter trusts the headers it is given: the caller checks each block's signature by the miner's
worker first (node/slasher.py), so that a forged header can neither take a slot nor become evidence.
Headers of other blocks (the witness, a recorded block) are read through `headers`, the chain store's
blocks. Thread safe; synchronous (LevelDB), so trio callers use trio.to_thread.run_sync.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import structlog

from actors.miner.types import ReportConsensusFaultParams
from chain.chainstore.metadata import MetadataStore
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.types.address import Address, Protocol
from chain.types.block import BlockHeader
from chain.types.sector import ConsensusFaultType
from chain.types.tipset import TipSetKey
from chain.vm.syscalls import consensus_fault_type

# The namespace of the filter's records in the repo's LevelDB.
SLASHFILTER_NAMESPACE: Final = b"/slashfilter/"
_BY_EPOCH: Final = b"e"  # height, miner -> the miner's first block at that height
_BY_PARENTS: Final = b"p"  # parents' height, miner, parents -> the miner's first block on them
_BY_PARENT_HEIGHT: Final = b"c"  # parents' height, miner -> the miner's first block on parents there
_CLAIMED: Final = b"r"  # fault epoch, miner, block 1, block 2 -> claimed for reporting
_TABLES: Final = (_BY_EPOCH, _BY_PARENTS, _BY_PARENT_HEIGHT, _CLAIMED)
# Parent-keyed records are kept this many finalities: a block's parents may lie below its own height
# by up to a finality of null rounds, and its record must outlive the block's own reportable window.
_PARENT_WINDOWS: Final = 2

HeaderSource = Callable[[CID], BlockHeader | None]

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class FaultEvidence:
    """Two headers (and for parent grinding a witness) that prove a consensus fault, in the order
    ReportConsensusFault takes them: block1 not above block2."""

    fault_type: ConsensusFaultType
    block1: BlockHeader
    block2: BlockHeader
    extra: BlockHeader | None = None

    @property
    def miner(self) -> Address:
        return self.block1.miner

    @property
    def epoch(self) -> int:
        """The fault's epoch as the actor records it (the later block's height)."""
        return self.block2.height

    @property
    def oldest(self) -> int:
        """The lower height of the two blocks: the report must execute within finality of it."""
        return self.block1.height

    def params(self) -> ReportConsensusFaultParams:
        """ReportConsensusFault's params: the headers' CBOR (the extra one empty when there is none)."""
        extra = b"" if self.extra is None else self.extra.to_bytes()
        return ReportConsensusFaultParams(self.block1.to_bytes(), self.block2.to_bytes(), extra)

    def log_fields(self) -> dict[str, object]:
        fields: dict[str, object] = {
            "miner": str(self.miner),
            "fault": self.fault_type.name,
            "epoch": self.epoch,
            "block1": str(self.block1.cid()),
            "block1_height": self.block1.height,
            "block2": str(self.block2.cid()),
            "block2_height": self.block2.height,
        }
        if self.extra is not None:
            fields["extra"] = str(self.extra.cid())
        return fields


def evidence_of(
    block1: BlockHeader, block2: BlockHeader, extra: BlockHeader | None = None
) -> FaultEvidence | None:
    """The evidence these headers make by the VM's rules (ordered by height), or None."""
    if block2.height < block1.height:
        block1, block2 = block2, block1
    fault = consensus_fault_type(block1, block2, extra)
    return None if fault is None else FaultEvidence(fault, block1, block2, extra)


def _u64(value: int) -> bytes:
    return value.to_bytes(8, "big")


class SlashFilter:
    """See the module doc. `finality`: how far below the head a block can still be reported."""

    def __init__(self, store: MetadataStore, headers: HeaderSource, *, finality: int) -> None:
        if finality < 1:
            raise ValueError(f"finality must be at least 1, got {finality}")
        self._store = store
        self._headers = headers
        self.finality = finality
        self._lock = threading.Lock()
        self._pruned_below = 0

    def reportable_from(self, head_height: int) -> int:
        """The lowest block height a report sent on a head at head_height can still prove (the report
        executes at head_height + 1 at the earliest; the syscall refuses blocks older than finality)."""
        return head_height + 1 - self.finality

    # -- observing ----------------------------------------------------------------------------------------
    def observe(
        self, header: BlockHeader, *, parent_height: int | None, head_height: int
    ) -> list[FaultEvidence]:
        """Record header (a block whose worker signature the caller checked) and return the faults it
        shows with the blocks seen before. parent_height is the height of its parent tipset (None when
        the parents are unknown: only double-fork mining is checked then); head_height is the chain's
        head, below which blocks older than finality are too old to matter (ignored, and pruned)."""
        floor = self.reportable_from(head_height)
        if header.height < floor:
            return []
        if header.miner.protocol != Protocol.ID:
            _log.debug(
                "slashfilter: not an ID-address miner", block=str(header.cid()), miner=str(header.miner)
            )
            return []
        with self._lock:
            self._prune(floor)
            return self._observe(header, parent_height)

    def _observe(self, header: BlockHeader, parent_height: int | None) -> list[FaultEvidence]:
        cid = header.cid()
        miner = _u64(header.miner.id)
        found: list[FaultEvidence] = []
        writes: list[tuple[bytes, bytes]] = []

        epoch_key = _BY_EPOCH + _u64(header.height) + miner
        other = self._recorded(epoch_key)
        if other is None:
            writes.append((epoch_key, cid.bytes))
        elif other != cid:
            self._add(found, self._header(other), header)  # double-fork mining

        if parent_height is not None:
            parents_key = _BY_PARENTS + _u64(parent_height) + miner + TipSetKey(header.parents).to_bytes()
            other = self._recorded(parents_key)
            if other is None:
                writes.append((parents_key, cid.bytes))
            elif other != cid:
                self._add(found, self._header(other), header)  # time-offset mining (or double-fork)
            # Parent grinding, the block after the one it leaves out.
            own = self._recorded(_BY_EPOCH + _u64(parent_height) + miner)
            if own is not None and own not in header.parents:
                left_out = self._header(own)
                if left_out is not None:
                    self._add(found, left_out, header, self._witness(left_out, header))
            child_key = _BY_PARENT_HEIGHT + _u64(parent_height) + miner
            if self._recorded(child_key) is None:
                writes.append((child_key, cid.bytes))

        # Parent grinding, the block left out arriving after the one that leaves it out.
        child = self._recorded(_BY_PARENT_HEIGHT + _u64(header.height) + miner)
        if child is not None:
            grinder = self._header(child)
            if grinder is not None and cid not in grinder.parents:
                self._add(found, header, grinder, self._witness(header, grinder))

        if writes:
            with self._store.batch() as batch:
                for key, value in writes:
                    batch.put(key, value)
        return found

    def _add(
        self,
        found: list[FaultEvidence],
        a: BlockHeader | None,
        b: BlockHeader,
        extra: BlockHeader | None = None,
    ) -> None:
        if a is None:
            return
        evidence = evidence_of(a, b, extra)
        if evidence is not None and evidence not in found:
            found.append(evidence)

    def _witness(self, left_out: BlockHeader, child: BlockHeader) -> BlockHeader | None:
        """A sibling of left_out (same parents and height) among child's parents: what proves that the
        miner ground its parents rather than never having seen its own block."""
        for cid in child.parents:
            sibling = self._header(cid)
            if (
                sibling is not None
                and sibling.height == left_out.height
                and sibling.parents == left_out.parents
            ):
                return sibling
        return None

    def _recorded(self, key: bytes) -> CID | None:
        raw = self._store.get(key)
        if raw is None:
            return None
        try:
            return CID.decode(raw)
        except DecodeError as exc:
            _log.warning("slashfilter: unreadable record dropped", key=key.hex(), error=str(exc))
            self._store.delete(key)
            return None

    def _header(self, cid: CID) -> BlockHeader | None:
        header = self._headers(cid)
        if header is None:
            _log.info("slashfilter: a block the evidence needs is not in the store", block=str(cid))
        return header

    # -- reporting once --------------------------------------------------------------------------------
    def _claim_key(self, evidence: FaultEvidence) -> bytes:
        pair = sorted((evidence.block1.cid().bytes, evidence.block2.cid().bytes))
        return _CLAIMED + _u64(evidence.epoch) + _u64(evidence.miner.id) + pair[0] + pair[1]

    def claim(self, evidence: FaultEvidence) -> bool:
        """Mark the fault as being reported; False if it was claimed before (then do not report it)."""
        key = self._claim_key(evidence)
        with self._lock:
            if self._store.get(key) is not None:
                return False
            self._store.put(key, b"")
            return True

    def claimed(self, evidence: FaultEvidence) -> bool:
        return self._store.get(self._claim_key(evidence)) is not None

    # -- pruning ---------------------------------------------------------------------------------------
    def _prune(self, floor: int) -> None:
        if floor <= self._pruned_below:
            return
        parents_floor = floor - (_PARENT_WINDOWS - 1) * self.finality
        cutoffs = {
            _BY_EPOCH: floor,
            _CLAIMED: floor,
            _BY_PARENTS: parents_floor,
            _BY_PARENT_HEIGHT: parents_floor,
        }
        stale: list[bytes] = []
        for table in _TABLES:
            cutoff = cutoffs[table]
            for key, _ in self._store.items(table):
                if int.from_bytes(key[1:9], "big") >= cutoff:
                    break
                stale.append(key)
        if stale:
            with self._store.batch() as batch:
                for key in stale:
                    batch.delete(key)
        self._pruned_below = floor

    def __len__(self) -> int:
        """How many records the filter holds (claims included)."""
        return sum(1 for table in _TABLES for _ in self._store.items(table))
