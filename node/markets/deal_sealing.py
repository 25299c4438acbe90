"""What the storage provider needs of the sealing pipeline: AddingDealToSector, and where the piece is.

The provider hands a published deal's piece over with `add_deal` (Lotus HandleStorageDeal ->
SectorAddPieceToAny: the piece goes into an open sector, or a new one) and later asks `placement` where
it is: the sector, the piece's offset in it, the sector's sealing state (Lotus's state names, e.g.
PreCommit1, Proving) and, once the sector is packed (its layout fixed), the piece's inclusion proof
against the sector's CommD (proofs.pip bytes).

`placement` also answers for a deal the pipeline already took before a restart, so the provider never
adds a piece twice. `SealingRefused` says why the pipeline will not take a piece (nothing recorded).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from actors.market.types import DealProposal
from chain.encoding.cid import CID


class SealingRefused(Exception):
    """The pipeline refused the piece (nothing was recorded); the message says why."""


@dataclass(frozen=True, slots=True)
class PublishedDeal:
    deal_id: int
    proposal: DealProposal
    publish_cid: CID | None


@dataclass(frozen=True, slots=True)
class SectorPlacement:
    sector: int
    offset: int  # padded bytes from the start of the sector
    state: str  # the sector's sealing state
    inclusion_proof: bytes = b""  # proofs.pip bytes; empty until the sector is packed
    failed: str = ""  # the pipeline gave the sector up (FailedUnrecoverable): why


class DealSealer(Protocol):
    async def add_deal(self, deal: PublishedDeal, car: Path) -> SectorPlacement: ...

    async def placement(self, deal_id: int) -> SectorPlacement | None: ...
