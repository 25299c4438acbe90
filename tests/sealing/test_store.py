"""node/sealing/store.py: records and the next sector number per miner, in LevelDB, written in one batch
and read back after the database is reopened; a damaged record is named."""

from pathlib import Path

import plyvel
import pytest

from chain.chainstore.metadata import LevelDBMetadata
from node.sealing.store import SEALING_NAMESPACE, SealingStore, SealingStoreError
from node.sealing.types import SealTicket, SectorRecord


def _record(number: int, state: str = "Packing") -> SectorRecord:
    return SectorRecord(
        sector_number=number,
        state=state,
        seal_proof=5,
        created=1_700_000_000,
        ticket=SealTicket(b"t" * 32, 7),
    )


def test_records_survive_reopening_the_database(tmp_path: Path) -> None:
    db = plyvel.DB(str(tmp_path / "db"), create_if_missing=True)
    store = SealingStore.for_db(db, 1001)
    store.write([_record(0), _record(300, "WaitSeed")], next_number=301)
    SealingStore.for_db(db, 1002).write([_record(0, "Proving")], next_number=1)  # another miner
    db.close()

    db = plyvel.DB(str(tmp_path / "db"))
    again = SealingStore.for_db(db, 1001)
    assert [(r.sector_number, r.state) for r in again.all()] == [(0, "Packing"), (300, "WaitSeed")]
    assert again.next_number() == 301
    assert again.get(300) == _record(300, "WaitSeed")
    assert again.get(5) is None
    assert [r.state for r in SealingStore.for_db(db, 1002).all()] == ["Proving"]
    db.close()


def test_a_batch_lands_whole_or_not_at_all(tmp_path: Path) -> None:
    db = plyvel.DB(str(tmp_path / "db"), create_if_missing=True)
    store = SealingStore.for_db(db, 1001)
    store.put(_record(0))

    class Unwritable(SectorRecord):
        def to_bytes(self) -> bytes:
            raise OSError("disk full (test)")

    bad = Unwritable(sector_number=1, state="Packing", seal_proof=5, created=0)
    with pytest.raises(OSError, match="disk full"):
        store.write([_record(0, "GetTicket"), bad], next_number=2)
    assert [(r.sector_number, r.state) for r in store.all()] == [(0, "Packing")]
    assert store.next_number() == 0
    db.close()


def test_a_damaged_record_is_named(tmp_path: Path) -> None:
    db = plyvel.DB(str(tmp_path / "db"), create_if_missing=True)
    meta = LevelDBMetadata(db, namespace=SEALING_NAMESPACE)
    store = SealingStore(meta, 1001)
    store.put(_record(4))
    meta.put(b"1001/sector/" + (4).to_bytes(8, "big"), b"\xa1\x61x\x01")
    with pytest.raises(SealingStoreError, match="sector 4 of miner t01001 is damaged"):
        store.all()
    db.close()
