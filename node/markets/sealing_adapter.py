"""The storage provider's DealSealer over the miner's sealing pipeline (node/sealing/pipeline.py).

`add_deal` is the pipeline's `add_piece` (Lotus SectorAddPieceToAny) with the deal's info, the CAR as the
piece's data; `placement` reads the pipeline's sector records: the sector holding the deal, the piece's
offset in it (the layout's order: each piece at the next offset aligned to its size), the sector's
state, the piece's inclusion proof once the sector is packed, and the reason when the pipeline gave the
sector up.
"""

from pathlib import Path

from chain.encoding.commcid import commitment_of_v1
from node.markets.deal_sealing import PublishedDeal, SealingRefused, SectorPlacement
from node.sealing.pipeline import PipelineError, SealingPipeline
from node.sealing.states import SectorState
from node.sealing.types import DealSchedule, PieceDealInfo, SectorRecord
from proofs import commp


class PipelineSealer:
    def __init__(self, pipeline: SealingPipeline) -> None:
        self.pipeline = pipeline

    async def add_deal(self, deal: PublishedDeal, car: Path) -> SectorPlacement:
        proposal = deal.proposal
        info = PieceDealInfo(
            publish_cid=deal.publish_cid,
            deal_id=deal.deal_id,
            deal_proposal=proposal,
            deal_schedule=DealSchedule(proposal.start_epoch, proposal.end_epoch),
        )
        try:
            location = await self.pipeline.add_piece(info, Path(car), proposal.piece_size, proposal.piece_cid)
        except PipelineError as exc:
            raise SealingRefused(str(exc)) from None
        found = await self.placement(deal.deal_id)
        return found or SectorPlacement(location.sector, location.offset, SectorState.WAIT_DEALS.value)

    async def placement(self, deal_id: int) -> SectorPlacement | None:
        for number in reversed(self.pipeline.sectors_list()):
            record = self.pipeline.record(number)
            found = _placement_in(record, deal_id)
            if found is not None:
                return found
        return None


def _placement_in(record: SectorRecord, deal_id: int) -> SectorPlacement | None:
    infos = [commp.PieceInfo(p.piece.size, commitment_of_v1(p.piece.piece_cid)) for p in record.pieces]
    offset = 0
    for piece, info in zip(record.pieces, infos, strict=True):
        offset = -(-offset // info.padded_size) * info.padded_size
        if piece.deal_info is not None and piece.deal_info.deal_id == deal_id:
            failed = ""
            if record.state == SectorState.FAILED_UNRECOVERABLE:
                failed = record.last_error or "the pipeline gave the sector up"
            return SectorPlacement(record.sector_number, offset, record.state, piece.inclusion_proof, failed)
        offset += info.padded_size
    return None
