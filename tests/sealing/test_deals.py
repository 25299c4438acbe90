"""Deal pieces through the pipeline: two published deals' pieces go into one sector in order (with the
alignment gap between them), the sector's CommD is the one the market computes for its deals, each
piece's inclusion proof verifies against it (and on chain, through the miner's VerifyPieceInclusion),
the deals turn active, and bad hand-overs are refused with nothing recorded."""

import os
from pathlib import Path

import pytest

from actors import builtin
from actors.market.types import (
    ClientDealProposal,
    DealProposal,
    MarketMethod,
    PublishStorageDealsParams,
    PublishStorageDealsReturn,
)
from actors.miner.types import MinerMethod, PieceInclusionExtra, VerifyPieceInclusionParams
from actors.reward.state import RewardState
from chain.encoding.cid import CID
from chain.encoding.commcid import commitment_of_v1, piece_cid_v1
from chain.mpool.push import PushRefused, SendSpec, message_to_push
from chain.params import DEVNET
from chain.stmgr import market as market_queries
from chain.stmgr import miners as miner_queries
from chain.stmgr.actors import read_actor_state
from chain.types.address import Address
from chain.types.message import Message, SignedMessage
from chain.types.sector import PieceInfo as ChainPieceInfo
from chain.vm.circulating import circulating_supply
from chain.vm.exitcode import ExitCode
from node.fullnode import FullNode
from node.sealing.chain import NodeChain
from node.sealing.pipeline import PipelineError
from node.sealing.states import SectorState
from node.sealing.types import DealSchedule, PieceDealInfo
from proofs import commp, pip
from tests.sealing.devnet import OWNER, WORKER, Devnet, fast_config

S = SectorState
PRICE = 1000  # attoFIL per epoch


async def _publish(
    net: Devnet, miner: Address, pieces: list[commp.PieceCommitment], *, duration: int = 320
) -> list[PieceDealInfo]:
    """Publish one deal per piece (client ALICE, provider the miner), starting 80 epochs from now and
    lasting `duration`, and return their deal infos."""
    head = net.head
    start = head.height + 80
    end = start + duration
    tree = net.node.state.tree(net.node.state.state_of(head).state_root)
    reward: RewardState = read_actor_state(tree, builtin.REWARD_ACTOR_ADDR, RewardState)
    power = miner_queries.power_state(tree)
    supply = circulating_supply(tree)
    proposals = []
    for piece in pieces:
        share = max(power.total_raw_byte_power, reward.this_epoch_baseline_power, piece.padded_size)
        collateral = (
            2
            * supply
            * DEVNET.market_prov_collateral_percent_supply_num
            * piece.padded_size
            // (share * DEVNET.market_prov_collateral_percent_supply_denom)
        )
        proposals.append(
            DealProposal(
                piece_cid=piece_cid_v1(piece.commitment),
                piece_size=piece.padded_size,
                verified_deal=False,
                client=OWNER,
                provider=miner,
                label="sealing test",
                start_epoch=start,
                end_epoch=end,
                storage_price_per_epoch=PRICE,
                provider_collateral=collateral + 1,
                client_collateral=0,
            )
        )
    market = builtin.STORAGE_MARKET_ACTOR_ADDR
    client_funds = sum(p.client_balance_requirement for p in proposals)
    provider_funds = sum(p.provider_collateral for p in proposals)
    for who, funds in ((OWNER, client_funds), (miner, provider_funds)):
        landed = await net.send(
            message_to_push(market, OWNER, value=funds, method=MarketMethod.AddBalance, params=who)
        )
        assert landed.receipt.exit_code == ExitCode.Ok
    signed = [ClientDealProposal(p, net.node.wallet.sign(OWNER, p.signing_bytes())) for p in proposals]
    params = PublishStorageDealsParams(tuple(signed))
    landed = await net.send(
        message_to_push(market, WORKER, method=MarketMethod.PublishStorageDeals, params=params)
    )
    assert landed.receipt.exit_code == ExitCode.Ok
    ids = PublishStorageDealsReturn.from_bytes(landed.receipt.return_data).ids
    return [
        PieceDealInfo(
            landed.message, deal_id, proposal, DealSchedule(proposal.start_epoch, proposal.end_epoch)
        )
        for deal_id, proposal in zip(ids, proposals, strict=True)
    ]


async def test_deal_pieces_get_the_sectors_commd_and_verifying_inclusion_proofs(tmp_path: Path) -> None:
    net = Devnet.new(tmp_path)
    small, large = os.urandom(500), os.urandom(1000)  # a 512-byte and a 1024-byte piece
    pieces = [commp.commp_of_bytes(small), commp.commp_of_bytes(large)]
    assert [p.padded_size for p in pieces] == [512, 1024]
    async with net.running() as nursery:
        miner = (await net.create_miner()).id_address
        pipeline = net.pipeline(miner)
        await net.start(nursery, pipeline)
        deals = await _publish(net, miner, pieces)

        # bad hand-overs, refused before anything is written or recorded
        with pytest.raises(PipelineError, match="not the piece's data"):
            await pipeline.add_piece(deals[0], os.urandom(500), 512, deals[0].deal_proposal.piece_cid)  # type: ignore[union-attr]
        with pytest.raises(PipelineError, match="is for piece"):
            await pipeline.add_piece(deals[0], small, 1024, deals[1].deal_proposal.piece_cid)  # type: ignore[union-attr]
        with pytest.raises(PipelineError, match="not published"):
            await pipeline.add_piece(
                PieceDealInfo(None, 999, None, deals[0].deal_schedule),
                small,
                512,
                deals[0].deal_proposal.piece_cid,
            )  # type: ignore[union-attr]
        assert pipeline.sectors_list() == []

        first = await pipeline.add_piece(deals[0], small, 512, _cid(deals[0]))
        assert (first.sector, first.offset) == (0, 0)
        with pytest.raises(PipelineError, match="already in a sector"):
            await pipeline.add_piece(deals[0], small, 512, _cid(deals[0]))
        assert pipeline.record(0).state == S.WAIT_DEALS
        with pytest.raises(PipelineError, match="not packed yet"):
            pipeline.piece_proof(deals[0].deal_id)
        source = tmp_path / "large"
        source.write_bytes(large)  # the deals code hands over a file (the transferred CAR, say)
        second = await pipeline.add_piece(deals[1], source, 1024, _cid(deals[1]))
        assert (second.sector, second.offset) == (0, 1024)  # aligned to its size: a zero gap at 512..1024

        # full: sealed at once, and proven before the deals start
        await net.run_until(lambda: pipeline.record(0).state == S.PROVING, what="the deal sector proving")
        record = pipeline.record(0)
        assert record.deal_ids == (deals[0].deal_id, deals[1].deal_id)
        infos = [commp.PieceInfo(p.padded_size, p.commitment) for p in pieces]
        expected = commp.comm_d(infos, 2048)
        assert record.comm_d is not None and commitment_of_v1(record.comm_d) == expected
        head = net.head
        tree = net.node.state.tree(net.node.state.state_of(head).state_root)
        on_chain = miner_queries.sector_info(tree, miner, 0)
        assert on_chain is not None and on_chain.unsealed_cid == record.comm_d
        assert on_chain.deal_ids == record.deal_ids
        for deal in deals:
            state = market_queries.storage_deal(tree, deal.deal_id)
            assert state is not None and state.state.sector_start_epoch == on_chain.activation

        for index, deal in enumerate(deals):
            number, proof = pipeline.piece_proof(deal.deal_id)
            assert number == 0
            assert pip.verify_piece_inclusion(
                proof,
                comm_d=expected,
                sector_size=2048,
                comm_p=pieces[index].commitment,
                piece_size=pieces[index].padded_size,
            )
            assert not pip.verify_piece_inclusion(
                proof,
                comm_d=expected,
                sector_size=2048,
                comm_p=pieces[1 - index].commitment,
                piece_size=pieces[index].padded_size,
            )
            # the miner actor accepts it against the proven sector (what a payment voucher checks)
            extra = PieceInclusionExtra(0, ChainPieceInfo(pieces[index].padded_size, _cid(deal)))
            params = VerifyPieceInclusionParams(extra.to_bytes(), proof.to_bytes())
            call = await net.node.run_sync(
                net.node.state.call,
                message_to_push(miner, OWNER, method=MinerMethod.VerifyPieceInclusion, params=params),
                head,
            )
            assert call.receipt.exit_code == ExitCode.Ok, call.error

        # the unsealed copy is kept for retrieval (the deals asked for it): the pieces read back
        assert pipeline.read_piece(0, 0, 512) == small + bytes(508 - 500)
        assert pipeline.read_piece(0, 1024, 1024) == large + bytes(1016 - 1000)
        assert net.seals == {0: 1}


def _cid(deal: PieceDealInfo) -> CID:
    assert deal.deal_proposal is not None
    return deal.deal_proposal.piece_cid


async def test_a_deal_that_can_no_longer_start_fails_its_sector_for_good(tmp_path: Path) -> None:
    """The sector waits for more deals until the deal's start epoch (no sealing buffer): by pre-commit
    time the deal can no longer be activated, so the sector is given up with that reason, and nothing is
    sent (no deposit paid)."""
    net = Devnet.new(tmp_path)
    data = os.urandom(500)
    piece = commp.commp_of_bytes(data)
    async with net.running() as nursery:
        miner = (await net.create_miner()).id_address
        pipeline = net.pipeline(
            miner, config=fast_config(start_epoch_sealing_buffer=0, wait_deals_delay=3600.0)
        )
        await net.start(nursery, pipeline)
        (deal,) = await _publish(net, miner, [piece])
        await pipeline.add_piece(deal, data, 512, _cid(deal))
        await net.run_until(lambda: pipeline.record(0).state == S.FAILED_UNRECOVERABLE, epochs=200)
        record = pipeline.record(0)
        assert (
            f"deal {deal.deal_id} should have started at epoch {deal.deal_schedule.start_epoch}"
            in record.last_error
        )
        assert record.log[-1].kind == "error;FailedUnrecoverable"
        assert net.messages_to(miner, (MinerMethod.PreCommitSector, MinerMethod.PreCommitSectorBatch)) == []


class LateCommitChain(NodeChain):
    """The node's chain, whose message pool refuses the miner's proofs until epoch `until` (a prover
    that fell behind): what reaches the chain after that is too late for a deal starting before it."""

    def __init__(self, node: FullNode, until: int) -> None:
        super().__init__(node)
        self.until = until
        self.refused = 0

    def push(self, msg: Message, spec: SendSpec) -> SignedMessage:
        proof = msg.method in (MinerMethod.ProveCommitSector, MinerMethod.ProveCommitAggregate)
        if proof and self.node.chain.head().height <= self.until:
            self.refused += 1
            raise PushRefused("mpool is full (test)")
        return super().push(msg, spec)


async def test_a_deal_whose_start_passes_before_the_proof_fails_its_sector_for_good(tmp_path: Path) -> None:
    """The proof cannot be sent until after the deal's start epoch: the commit is not retried forever
    (the market would refuse the late deal each time) but the sector is given up, the reason kept."""
    net = Devnet.new(tmp_path)
    data = os.urandom(500)
    piece = commp.commp_of_bytes(data)
    async with net.running() as nursery:
        miner = (await net.create_miner()).id_address
        (deal,) = await _publish(net, miner, [piece])
        start = deal.deal_schedule.start_epoch
        chain = LateCommitChain(net.node, until=start)
        # retries without limit: under load the short backoffs could use up max_retries before the start
        # epoch is mined, and give the sector up for that instead of for the expired deal
        pipeline = net.pipeline(miner, chain=chain, config=fast_config(max_retries=1_000_000))
        await net.start(nursery, pipeline)
        await pipeline.add_piece(deal, data, 512, _cid(deal))
        pipeline.start_sealing(0)
        await net.run_until(lambda: pipeline.record(0).state == S.FAILED_UNRECOVERABLE, what="given up")
        record = pipeline.record(0)
        assert chain.refused > 0 and net.head.height >= start
        # the market's cron dropped the deal at its start epoch (or the chain says it should have started)
        assert record.last_error.startswith(f"deal {deal.deal_id} "), record.last_error
        assert record.last_error.endswith("the sector cannot be proven with it (DealsExpired)")
        assert record.log[-1].kind == "error;FailedUnrecoverable"
        sent = net.messages_to(miner, (MinerMethod.ProveCommitSector, MinerMethod.ProveCommitAggregate))
        for _ in range(10):  # and it stays so: no more proofs sent
            await net.step()
        assert pipeline.record(0).state == S.FAILED_UNRECOVERABLE
        assert (
            net.messages_to(miner, (MinerMethod.ProveCommitSector, MinerMethod.ProveCommitAggregate)) == sent
        )
