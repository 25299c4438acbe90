"""The slash filter (chain/consensus/slashfilter.py): each fault type found from the headers a node sees,
in either order of arrival; honest chains, unwitnessed grinding and old blocks give nothing; records
survive a restart, are pruned below finality, and a fault is claimed once."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pytest

from actors.miner.types import ReportConsensusFaultParams
from chain.chainstore.metadata import LevelDBMetadata, MemoryMetadata, MetadataStore
from chain.consensus.slashfilter import FaultEvidence, SlashFilter, evidence_of
from chain.crypto.keys import KeyType, PrivateKey
from chain.encoding.cid import CID
from chain.store.blockstore import LevelDBBlockstore
from chain.types.address import Address
from chain.types.block import BlockHeader
from chain.types.sector import ConsensusFaultType
from chain.vm.syscalls import consensus_fault_type
from tests.chain.chain_helpers import signed_header

FINALITY: Final = 20
M1: Final = Address.new_id(1001)
M2: Final = Address.new_id(1002)
M3: Final = Address.new_id(1003)
KEY: Final = PrivateKey.derive(KeyType.BLS, b"slashfilter")
GENESIS: Final = (CID.hash_of(b"genesis"),)


def block(miner: Address, height: int, parents: tuple[CID, ...], stamp: int = 0) -> BlockHeader:
    """A signed header; `stamp` tells apart two blocks of one miner at one height."""
    messages = CID.hash_of(stamp.to_bytes(8, "big"))
    return signed_header(miner, height, parents, KEY, messages=messages, timestamp=1_700_000_000 + 4 * height)


@dataclass
class Seen:
    """A filter and the headers it can look up (what the chain store holds)."""

    store: MetadataStore
    headers: dict[CID, BlockHeader] = field(default_factory=dict)
    head: int = 0

    def __post_init__(self) -> None:
        self.filter = SlashFilter(self.store, self.headers.get, finality=FINALITY)

    def see(self, header: BlockHeader, *, know_parents: bool = True) -> list[FaultEvidence]:
        self.headers[header.cid()] = header
        parent_height = self.parent_height(header) if know_parents else None
        return self.filter.observe(header, parent_height=parent_height, head_height=self.head)

    def parent_height(self, header: BlockHeader) -> int:
        parent = self.headers.get(header.parents[0])
        return 0 if parent is None else parent.height


@pytest.fixture(params=["memory", "leveldb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    if request.param == "memory":
        yield MemoryMetadata()
        return
    with LevelDBBlockstore(tmp_path / "db") as db:
        yield LevelDBMetadata(db.db, namespace=b"/slashfilter/")


@pytest.fixture
def seen(store: MetadataStore) -> Seen:
    return Seen(store)


def check(evidence: FaultEvidence) -> None:
    """What the filter reports is what the VM's rule finds, and the params carry the headers' CBOR."""
    assert consensus_fault_type(evidence.block1, evidence.block2, evidence.extra) == evidence.fault_type
    assert evidence.block1.height <= evidence.block2.height
    params = ReportConsensusFaultParams.from_bytes(evidence.params().to_bytes())
    assert BlockHeader.from_bytes(params.header1) == evidence.block1
    assert BlockHeader.from_bytes(params.header2) == evidence.block2
    extra = b"" if evidence.extra is None else evidence.extra.to_bytes()
    assert params.header_extra == extra


def honest_chain(seen: Seen, heights: int, miners: tuple[Address, ...] = (M1, M2, M3)) -> tuple[CID, ...]:
    """Every miner mines every height on the full tipset below (its own block included)."""
    parents = GENESIS
    for height in range(1, heights + 1):
        seen.head = height - 1
        blocks = [block(m, height, parents) for m in miners]
        for b in blocks:
            assert seen.see(b) == []
        parents = tuple(b.cid() for b in blocks)
    seen.head = heights
    return parents


def test_an_honest_chain_shows_nothing(seen: Seen) -> None:
    honest_chain(seen, 30)
    # Null rounds: a block above a gap, on the full tipset, is honest too.
    parents = tuple(seen.headers)[-3:]
    assert seen.see(block(M1, 34, parents)) == []


def test_double_fork_mining_in_either_order(seen: Seen) -> None:
    parents = honest_chain(seen, 3)
    a, b = block(M1, 4, parents, stamp=1), block(M1, 4, parents, stamp=2)
    assert seen.see(a) == []
    (evidence,) = seen.see(b)
    assert evidence == FaultEvidence(ConsensusFaultType.DoubleForkMining, a, b)
    check(evidence)
    assert evidence.miner == M1 and evidence.epoch == 4
    assert seen.see(b) == [evidence]  # seen again: found again (claim() keeps it to one report)
    assert seen.see(a) == [] and seen.see(block(M2, 4, parents)) == []


def test_double_fork_on_different_parents_and_without_known_parents(seen: Seen) -> None:
    parents = honest_chain(seen, 3)
    a = block(M1, 4, parents)
    b = block(M1, 4, parents[:1])  # a smaller tipset at the same height
    assert seen.see(a, know_parents=False) == []
    (evidence,) = seen.see(b, know_parents=False)
    assert evidence.fault_type == ConsensusFaultType.DoubleForkMining
    check(evidence)


def test_time_offset_mining_in_either_order(store: MetadataStore) -> None:
    for first_low in (True, False):
        seen = Seen(MemoryMetadata()) if not first_low else Seen(store)
        parents = honest_chain(seen, 3)
        low, high = block(M2, 4, parents), block(M2, 6, parents)  # the same parents, two heights
        seen.head = 5
        first, second = (low, high) if first_low else (high, low)
        assert seen.see(first) == []
        (evidence,) = seen.see(second)
        assert evidence == FaultEvidence(ConsensusFaultType.TimeOffsetMining, low, high)
        check(evidence)


def parent_grinding_setup(seen: Seen) -> tuple[BlockHeader, BlockHeader, BlockHeader]:
    """M1 and M2 mine at 4 on the same parents; M1 then mines at 5 on M2's block alone."""
    parents = honest_chain(seen, 3)
    own, sibling = block(M1, 4, parents), block(M2, 4, parents)
    grinder = block(M1, 5, (sibling.cid(),))
    seen.headers[own.cid()] = own
    seen.headers[sibling.cid()] = sibling
    seen.head = 4
    return own, sibling, grinder


def test_parent_grinding(seen: Seen) -> None:
    own, sibling, grinder = parent_grinding_setup(seen)
    assert seen.see(own) == [] and seen.see(sibling) == []
    (evidence,) = seen.see(grinder)
    assert evidence == FaultEvidence(ConsensusFaultType.ParentGrinding, own, grinder, sibling)
    check(evidence)


def test_parent_grinding_found_when_the_left_out_block_comes_last(seen: Seen) -> None:
    own, sibling, grinder = parent_grinding_setup(seen)
    assert seen.see(sibling) == []
    assert seen.see(grinder) == []
    (evidence,) = seen.see(own)
    assert evidence == FaultEvidence(ConsensusFaultType.ParentGrinding, own, grinder, sibling)
    check(evidence)


def test_no_parent_grinding_without_a_witness_or_with_the_own_block(seen: Seen) -> None:
    parents = honest_chain(seen, 3)
    own, sibling = block(M1, 4, parents), block(M2, 4, parents)
    other_fork = block(M3, 4, parents[2:])  # M3 on its own block alone: other parents, no sibling
    for b in (own, sibling, other_fork):
        assert seen.see(b) == []
    seen.head = 4
    assert seen.see(block(M1, 5, (other_fork.cid(),))) == []  # switched forks: not provable
    assert seen.see(block(M1, 6, (own.cid(), sibling.cid()))) == []  # includes its own block
    # M2 leaving out its own block while including M1's, a sibling of it, is grinding by M2.
    grinder = block(M2, 5, (own.cid(),))
    (evidence,) = seen.see(grinder)
    assert evidence == FaultEvidence(ConsensusFaultType.ParentGrinding, sibling, grinder, own)


def test_old_blocks_are_ignored_and_records_pruned(seen: Seen) -> None:
    honest_chain(seen, 3)
    records = len(seen.filter)
    seen.head = 100
    parents = GENESIS
    old = block(M1, 100 - FINALITY, parents)  # a report on head 100 executes at 101: too old
    assert seen.see(old) == [] and seen.see(block(M1, 100 - FINALITY, parents, stamp=9)) == []
    assert seen.filter.reportable_from(100) == 101 - FINALITY
    fresh = block(M1, 101 - FINALITY, parents)
    assert seen.see(fresh) == []
    assert len(seen.filter) < records  # the early records are gone
    for height in range(101 - FINALITY, 200):
        seen.head = height
        seen.see(block(M2, height, parents))
    # Bounded: one block per height for the last finality, parent records for two finalities.
    assert len(seen.filter) <= 5 * FINALITY


def test_records_and_claims_survive_a_restart(tmp_path: Path) -> None:
    with LevelDBBlockstore(tmp_path / "db") as db:
        seen = Seen(LevelDBMetadata(db.db, namespace=b"/slashfilter/"))
        parents = honest_chain(seen, 3)
        a, b = block(M1, 4, parents, stamp=1), block(M1, 4, parents, stamp=2)
        seen.see(a)
        (evidence,) = seen.see(b)
        assert seen.filter.claim(evidence)
        assert not seen.filter.claim(evidence)
    with LevelDBBlockstore(tmp_path / "db") as db:
        again = Seen(LevelDBMetadata(db.db, namespace=b"/slashfilter/"), headers=seen.headers, head=seen.head)
        assert again.filter.claimed(evidence)
        assert not again.filter.claim(evidence)
        (found,) = again.see(block(M1, 4, parents, stamp=3))  # a third block meets the first
        assert found.block1 == a


def test_claims_are_per_fault_and_symmetric(seen: Seen) -> None:
    parents = honest_chain(seen, 3)
    a, b, c = (block(M1, 4, parents, stamp=i) for i in (1, 2, 3))
    ab, ba, ac = evidence_of(a, b), evidence_of(b, a), evidence_of(a, c)
    assert ab is not None and ba is not None and ac is not None
    assert seen.filter.claim(ab)
    assert not seen.filter.claim(ba)  # the same pair the other way round
    assert seen.filter.claim(ac)


def test_non_id_miners_are_ignored(seen: Seen) -> None:
    robust = Address.of_key(KEY)
    seen.head = 3
    assert seen.see(block(robust, 4, GENESIS, stamp=1)) == []
    assert seen.see(block(robust, 4, GENESIS, stamp=2)) == []
