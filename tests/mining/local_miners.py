"""A genesis miner of tests/consensus/devchain.py as a node mines with it: proving from a sector store."""

from pathlib import Path

from node.genesis import Genesis
from node.mining.local import LocalMiner
from node.preseal import write_presealed
from node.sealing.sectors import SectorStore


def local_miner(tmp_path: Path, genesis: Genesis, index: int = 0) -> LocalMiner:
    """A genesis miner proving from a sector store in tmp_path, as a node's repo holds it."""
    presealed = genesis.miners[index]
    directory = tmp_path / "sectors"
    write_presealed(directory, presealed, "t")
    store = SectorStore.open(directory)
    store.import_presealed(directory, presealed.id_address, "t")
    return LocalMiner.from_store(presealed.id_address, presealed.worker_key, store)
