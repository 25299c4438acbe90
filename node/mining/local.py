"""The miners a node mines blocks with: an ID address, the worker's key, and a way to read its sectors.

A local miner proves its Winning PoSts from the repo's sector store (node/sealing/sectors.py, under
`sectors/`), as its Window PoSts are: a sector the store does not hold, or whose files are missing or
damaged, makes that block impossible (the miner logs it, the epoch is a null round for it), never a
wrong proof. `local_miners` finds the miners of a `filpy daemon` repo: every miner the sector store
holds sectors of (pre-sealed genesis miners are indexed first, their keys imported from their key
files), each with its worker's key from the wallet.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog

from actors.miner.state import SectorOnChainInfo
from chain.consensus.producer import SectorReader
from chain.crypto.keys import PrivateKey
from chain.stmgr.actors import ActorNotFound, StateQueryError
from chain.stmgr.manager import StateManager
from chain.types.address import Address
from chain.types.tipset import TipSet
from node.preseal import PresealError, read_presealed
from node.sealing.sectors import SectorStore, SectorStoreError
from node.wallet import Wallet, WalletError
from proofs import post

# pre-seal-<miner>.json, as node/preseal.py names a miner's manifest.
_MANIFEST: Final = re.compile(r"^pre-seal-([tf]0[0-9]+)\.json$")

log = structlog.get_logger("miner")


class LocalMinerError(Exception):
    """A miner the node was asked to mine with but cannot: the message names it and what is missing."""


@dataclass(frozen=True, slots=True)
class LocalMiner:
    """A miner this node mines for."""

    address: Address  # the miner actor's ID address
    worker_key: PrivateKey  # signs the tickets, election proofs and blocks (a BLS key)
    read_sector: SectorReader  # its sealed sectors, for the Winning PoSt

    @classmethod
    def from_store(cls, address: Address, worker_key: PrivateKey, store: SectorStore) -> "LocalMiner":
        def read_sector(miner: Address, info: SectorOnChainInfo) -> post.ProvingSector:
            try:
                return store.proving_sector(miner, info.sector_number)
            except SectorStoreError as exc:
                # No replica: the producer reports the Winning PoSt as failing for this sector.
                log.error(
                    "cannot read a sector for the Winning PoSt", sector=info.sector_number, error=str(exc)
                )
                return post.ProvingSector(info.sector_number, b"", b"", b"", None)

        return cls(address, worker_key, read_sector)


def presealed_miner_addresses(directory: Path) -> list[Address]:
    """The miners whose pre-sealed sectors directory holds a manifest, in ID order."""
    try:
        names = [path.name for path in Path(directory).iterdir()]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise LocalMinerError(f"{directory}: cannot list the sectors: {exc.strerror or exc}") from None
    found = [Address.parse(m.group(1)) for name in names if (m := _MANIFEST.match(name))]
    return sorted(found, key=lambda a: a.id)


def index_presealed(store: SectorStore, wallet: Wallet, network: str) -> None:
    """The pre-sealed miners of the store's directory: their sectors indexed in the store (once), their
    owner and worker keys (the manifest's key files) in the wallet."""
    for address in presealed_miner_addresses(store.root):
        try:
            presealed = read_presealed(store.root, address, network)
            if not all(store.has(address, s.number) for s in presealed.sectors):
                store.import_presealed(store.root, address, network)
        except (PresealError, SectorStoreError) as exc:
            raise LocalMinerError(f"pre-sealed miner {address.to_string(network)}: {exc}") from None
        wallet.ensure_key(presealed.owner_key)
        wallet.ensure_key(presealed.worker_key)


def local_miners(
    state: StateManager,
    head: TipSet,
    store: SectorStore,
    wallet: Wallet,
    also: Iterable[Address] = (),
) -> Sequence[LocalMiner]:
    """Every miner the store holds sectors of, and the miners in `also` (created by this node, maybe
    without a sector yet: node/mining/create.py's LocalMiners), in ID order, each with its worker's key
    from the wallet (LocalMinerError when the chain has no such miner or the wallet lacks the key)."""
    ids = {s.miner for s in store.sectors()} | {a.id for a in also}
    return [local_miner(state, head, store, wallet, Address.new_id(i)) for i in sorted(ids)]


def local_miner(
    state: StateManager, head: TipSet, store: SectorStore, wallet: Wallet, address: Address
) -> LocalMiner:
    """One miner this node serves, with its worker's key from the wallet (LocalMinerError as
    local_miners)."""
    name = address.to_string(wallet.network)
    try:
        worker = state.account_key(state.miner_info(address, head).worker, head)
    except (ActorNotFound, StateQueryError) as exc:
        raise LocalMinerError(f"{name} is not a miner on this chain: {exc}") from None
    try:
        key = wallet.key(worker)
    except WalletError:
        worker_name = worker.to_string(wallet.network)
        raise LocalMinerError(
            f"cannot mine with {name}: its worker key {worker_name} is not in the keystore"
        ) from None
    return LocalMiner.from_store(address, key, store)
