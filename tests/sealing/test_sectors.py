"""The sector store: importing a genesis miner's pre-sealed sectors, adding sealed ones, reading them back
for PoSt, the index across reopening, and `check` finding missing, damaged or mismatched replicas."""

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Final

import pytest

from chain.types.address import Address
from node.genesis import Genesis
from node.preseal import PresealError, write_presealed
from node.sealing.sectors import (
    IndexCorrupt,
    SectorCorrupt,
    SectorMissing,
    SectorNotFound,
    SectorStore,
    SectorStoreError,
    sector_name,
)
from proofs import post, seal
from proofs.registered import make_prover_id
from tests.mining.vm_node import devnet_genesis

SEAL_PROOF: Final = 5  # 2 KiB V1_1
POST_PROOF: Final = 10
RANDOMNESS: Final = bytes(range(32))


@pytest.fixture(scope="module")
def genesis() -> Genesis:
    return devnet_genesis(4)


def miner_of(genesis: Genesis) -> Address:
    return genesis.miners[0].id_address


def imported(genesis: Genesis, directory: Path) -> SectorStore:
    write_presealed(directory, genesis.miners[0], "t")
    store = SectorStore.open(directory)
    store.import_presealed(directory, miner_of(genesis), "t")
    return store


def test_pre_sealed_sectors_are_indexed_in_place(genesis: Genesis, tmp_path: Path) -> None:
    store = imported(genesis, tmp_path)
    miner = miner_of(genesis)
    held = store.sectors(miner)
    assert [s.number for s in held] == [0, 1, 2, 3]
    for sector, pre in zip(held, genesis.miners[0].sectors, strict=True):
        assert (sector.miner, sector.comm_r, sector.comm_d, sector.seal_proof) == (
            1000,
            pre.comm_r,
            pre.comm_d,
            SEAL_PROOF,
        )
        assert sector.name == f"s-t01000-{pre.number}"
        assert store.sealed_path(miner, pre.number).read_bytes() == pre.replica
    # The index survives a reopen, and importing again changes nothing.
    before = store.index_path.read_bytes()
    again = SectorStore.open(tmp_path)
    assert again.sectors() == held
    assert again.import_presealed(tmp_path, miner, "t") == held
    assert store.index_path.read_bytes() == before
    doc = json.loads(before)
    assert doc["Version"] == 1 and doc["Sectors"][0]["CommR"] == str(held[0].sealed_cid)


def test_pre_sealed_sectors_from_elsewhere_are_copied_in(genesis: Genesis, tmp_path: Path) -> None:
    write_presealed(tmp_path / "preseal", genesis.miners[0], "t")
    store = SectorStore.open(tmp_path / "store")
    store.import_presealed(tmp_path / "preseal", miner_of(genesis), "t")
    assert store.check(miner_of(genesis), range(4)) == []
    assert (tmp_path / "preseal" / "sealed" / "s-t01000-0").exists()  # the source is left alone


def test_a_proving_sector_proves(genesis: Genesis, tmp_path: Path) -> None:
    store = imported(genesis, tmp_path)
    miner = miner_of(genesis)
    sectors = [store.proving_sector(miner, n, verify=True) for n in range(4)]
    proof = post.generate_window_post(POST_PROOF, RANDOMNESS, sectors)
    public = [post.PublicSector(s.number, s.comm_r) for s in store.sectors(miner)]
    assert post.verify_window_post(POST_PROOF, RANDOMNESS, public, proof.to_bytes())


def test_check_finds_each_kind_of_fault_by_number(genesis: Genesis, tmp_path: Path) -> None:
    store = imported(genesis, tmp_path)
    miner = miner_of(genesis)
    assert store.check(miner, range(4)) == []
    store.sealed_path(miner, 0).unlink()  # deleted
    flipped = bytearray(store.sealed_path(miner, 1).read_bytes())
    flipped[77] ^= 0x10
    store.sealed_path(miner, 1).write_bytes(bytes(flipped))  # corrupted in place
    (store.cache_path(miner, 2) / "p_aux").unlink()  # cache lost
    faults = {f.number: f.reason for f in store.check(miner, range(5))}
    assert sorted(faults) == [0, 1, 2, 4]
    assert "replica is missing" in faults[0] and sector_name(1000, 0) in faults[0]
    assert "does not match its CommR" in faults[1]
    assert "p_aux is missing" in faults[2]
    assert "not in the sector store" in faults[4]
    with pytest.raises(SectorMissing, match="replica is missing"):
        store.proving_sector(miner, 0)
    with pytest.raises(SectorCorrupt, match="does not match"):
        store.proving_sector(miner, 1, verify=True)
    with pytest.raises(SectorNotFound):
        store.proving_sector(miner, 4)


def test_check_finds_a_truncated_replica_and_a_commr_unlike_the_chains(
    genesis: Genesis, tmp_path: Path
) -> None:
    store = imported(genesis, tmp_path)
    miner = miner_of(genesis)
    path = store.sealed_path(miner, 3)
    path.write_bytes(path.read_bytes()[:1000])
    other = store.get(miner, 1).comm_r
    faults = {f.number: f.reason for f in store.check(miner, range(4), chain_comm_r={0: other})}
    assert sorted(faults) == [0, 3]
    assert "1000 bytes, expected 2048" in faults[3]
    assert "differs from the one on chain" in faults[0]
    with pytest.raises(SectorCorrupt, match="1000 bytes"):
        store.stat(miner, 3)


def test_a_newly_sealed_sector_is_added_atomically(tmp_path: Path) -> None:
    store = SectorStore.open(tmp_path)
    miner = Address.new_id(1234)
    sealed = seal.seal(SEAL_PROOF, bytes(2048), make_prover_id(1234), 7, bytes(range(32)))
    added = store.add_sealed(sealed, miner)
    assert (added.miner, added.number, added.comm_r) == (1234, 7, sealed.comm_r)
    assert SectorStore.open(tmp_path).get(miner, 7) == added
    assert store.check(miner, [7]) == []
    assert not [p for p in tmp_path.rglob("*.tmp")]  # no temporary file left behind

    # Commitments that do not match the replica: refused, nothing changes.
    before = store.index_path.read_bytes()
    with pytest.raises(SectorCorrupt, match="does not match CommRLast"):
        store.add_sealed(replace(sealed, sector_number=8, replica=bytes(2048)), miner)
    with pytest.raises(SectorCorrupt, match="do not hash to CommR"):
        store.add_sealed(replace(sealed, sector_number=8, comm_r=bytes(32)), miner)
    assert store.index_path.read_bytes() == before
    assert not store.has(miner, 8) and not store.sealed_path(miner, 8).exists()


def test_a_replica_file_is_moved_in(tmp_path: Path) -> None:
    store = SectorStore.open(tmp_path / "store")
    sealed = seal.seal(SEAL_PROOF, bytes(2048), make_prover_id(1000), 3, bytes(32))
    staged = tmp_path / "staged-replica"
    staged.write_bytes(sealed.replica)
    store.add(
        1000,
        3,
        seal_proof=SEAL_PROOF,
        comm_d=sealed.comm_d,
        comm_r=sealed.comm_r,
        comm_c=sealed.comm_c,
        comm_r_last=sealed.comm_r_last,
        replica=staged,
    )
    assert not staged.exists()
    assert store.proving_sector(1000, 3, verify=True).replica == sealed.replica


def test_remove_forgets_the_sector_and_its_files(genesis: Genesis, tmp_path: Path) -> None:
    store = imported(genesis, tmp_path)
    miner = miner_of(genesis)
    store.remove(miner, 2)
    assert [s.number for s in SectorStore.open(tmp_path).sectors(miner)] == [0, 1, 3]
    assert not store.sealed_path(miner, 2).exists() and not store.cache_path(miner, 2).exists()
    with pytest.raises(SectorNotFound):
        store.remove(miner, 2)


def test_a_conflicting_or_broken_import_is_refused(genesis: Genesis, tmp_path: Path) -> None:
    miner = miner_of(genesis)
    write_presealed(tmp_path / "preseal", genesis.miners[0], "t")
    store = SectorStore.open(tmp_path / "store")
    store.import_presealed(tmp_path / "preseal", miner, "t")
    sealed = seal.seal(SEAL_PROOF, bytes(2048), make_prover_id(1000), 0, bytes(range(1, 33)))
    store.remove(miner, 0)
    store.add_sealed(sealed, miner)  # sector 0 now holds another replica than the pre-sealed one
    with pytest.raises(SectorStoreError, match="another CommR"):
        store.import_presealed(tmp_path / "preseal", miner, "t")
    os.remove(tmp_path / "preseal" / "pre-seal-t01000.json")
    with pytest.raises(PresealError):
        store.import_presealed(tmp_path / "preseal", miner, "t")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "not valid JSON"),
        (b'{"Version": 2, "Sectors": []}', "version 1"),
        (b'{"Version": 1, "Sectors": {}}', "Sectors must be a list"),
        (b'{"Version": 1, "Sectors": [{"Miner": 1000}]}', "SectorNumber"),
        (
            b'{"Version": 1, "Sectors": [{"Miner": 1, "SectorNumber": 0, "SealProof": 99, '
            b'"CommD": "x", "CommR": "y"}]}',
            "SealProof",
        ),
        (
            b'{"Version": 1, "Sectors": [{"Miner": 1, "SectorNumber": 0, "SealProof": 5, '
            b'"CommD": "x", "CommR": "y"}]}',
            "bad commitment CID",
        ),
    ],
)
def test_a_damaged_index_is_refused_with_the_reason(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "index.json").write_bytes(content)
    with pytest.raises(IndexCorrupt, match=message) as info:
        SectorStore.open(tmp_path)
    assert "index.json" in str(info.value)


def test_a_sector_listed_twice_is_refused(genesis: Genesis, tmp_path: Path) -> None:
    store = imported(genesis, tmp_path)
    doc = json.loads(store.index_path.read_bytes())
    doc["Sectors"].append(doc["Sectors"][0])
    store.index_path.write_text(json.dumps(doc))
    with pytest.raises(IndexCorrupt, match="listed twice"):
        SectorStore.open(tmp_path)
