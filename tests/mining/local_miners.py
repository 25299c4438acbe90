"""A genesis miner of tests/consensus/devchain.py as a node mines with it: proving from a sector store;
and the record `filpy miner create` leaves for a miner a node serves."""

from pathlib import Path

from chain.types.address import Address
from node.genesis import Genesis
from node.mining.create import LocalMinerRecord
from node.mining.local import LocalMiner
from node.preseal import PresealedMiner, write_presealed
from node.sealing.sectors import SectorStore


def presealed_store(tmp_path: Path, presealed: PresealedMiner) -> SectorStore:
    """A sector store in tmp_path holding the genesis miner's pre-sealed sectors, as a node's repo does."""
    directory = tmp_path / "sectors"
    write_presealed(directory, presealed, "t")
    store = SectorStore.open(directory)
    store.import_presealed(directory, presealed.id_address, "t")
    return store


def local_miner(tmp_path: Path, genesis: Genesis, index: int = 0) -> LocalMiner:
    """A genesis miner proving from a sector store in tmp_path, as a node's repo holds it."""
    presealed = genesis.miners[index]
    store = presealed_store(tmp_path, presealed)
    return LocalMiner.from_store(presealed.id_address, presealed.worker_key, store)


def served_record(miner: Address, worker: Address) -> LocalMinerRecord:
    """The record of a 2 KiB miner, known by its ID and owned by its worker, that a node serves."""
    return LocalMinerRecord(
        id_address=miner, robust_address=miner, owner=worker, worker=worker, sector_size=2048, seal_proof=5
    )
