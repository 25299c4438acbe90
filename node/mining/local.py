"""The miners a node mines blocks with: an ID address, the worker's key, and a way to read its sectors.

Today a node's miners are the pre-sealed genesis miners whose sectors sit in the repo's `sectors/`
(node/preseal.py's layout: what `filpy devnet` and `filpy genesis new --sectors` write). Their replicas
are read, and checked against their commitments, when the node starts (read_presealed); the Winning
PoSt then proves from them.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from actors.miner.state import SectorOnChainInfo
from chain.consensus.producer import SectorReader
from chain.crypto.keys import PrivateKey
from chain.types.address import Address
from node.preseal import PresealedMiner, PresealError, read_presealed
from proofs import post

# pre-seal-<miner>.json, as node/preseal.py names a miner's manifest.
_MANIFEST: Final = re.compile(r"^pre-seal-([tf]0[0-9]+)\.json$")


class LocalMinerError(Exception):
    """A miner the node was asked to mine with but cannot: the message names it and what is missing."""


@dataclass(frozen=True, slots=True)
class LocalMiner:
    """A miner this node mines for."""

    address: Address  # the miner actor's ID address
    worker_key: PrivateKey  # signs the tickets, election proofs and blocks (a BLS key)
    read_sector: SectorReader  # its sealed sectors, for the Winning PoSt

    @classmethod
    def from_presealed(cls, miner: PresealedMiner) -> "LocalMiner":
        by_number = {sector.number: sector for sector in miner.sectors}

        def read_sector(_miner: Address, info: SectorOnChainInfo) -> post.ProvingSector:
            sector = by_number.get(info.sector_number)
            if sector is None:  # the chain has a sector this node never sealed
                return post.ProvingSector(info.sector_number, b"", b"", b"", None)
            return sector.proving_sector()

        return cls(miner.id_address, miner.worker_key, read_sector)


def presealed_miner_addresses(directory: Path) -> list[Address]:
    """The miners whose pre-sealed sectors directory holds a manifest, in ID order."""
    try:
        names = [path.name for path in Path(directory).iterdir()]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise LocalMinerError(
            f"{directory}: cannot list the sectors directory: {exc.strerror or exc}"
        ) from None
    found = [Address.parse(m.group(1)) for name in names if (m := _MANIFEST.match(name))]
    return sorted(found, key=lambda a: a.id)


def presealed_miners(directory: Path, network: str) -> Sequence[PresealedMiner]:
    """Every pre-sealed miner of the sectors directory, read back and checked (LocalMinerError names
    the file that is wrong)."""
    out = []
    for address in presealed_miner_addresses(directory):
        try:
            out.append(read_presealed(directory, address, network))
        except PresealError as exc:
            raise LocalMinerError(f"cannot mine with {address.to_string(network)}: {exc}") from None
    return out
