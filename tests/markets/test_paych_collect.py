"""Both StorageDealCollect routes end to end on a devnet node with mined blocks, for a piece really
sealed into a proven sector of a new miner (tests/markets/deal_sector.py): (a) the client checks the
piece inclusion proof against the sector's CommD on chain and signs the provider's vouchers, which the
provider redeems; (b) the provider redeems a voucher whose condition has the miner actor check the proof
on chain. And the vouchers that must fail: a wrong PIP, a wrong signature, more than the channel holds or
the deal allows, a voucher approved or redeemed twice."""

from dataclasses import dataclass, replace

import pytest
import trio

from actors.miner.types import MinerMethod, PieceInclusionExtra
from actors.paych.types import LaneState, PaychMethod, SignedVoucher, UpdateChannelStateParams
from chain.encoding.cid import CID
from chain.encoding.commcid import commitment_of_v1
from chain.types.address import Address
from chain.types.message import Message
from chain.types.sector import PieceInfo
from chain.vm.exitcode import ExitCode
from node.markets.paych_collect import (
    CollectRefused,
    VoucherDeal,
    conditional_voucher,
    piece_condition,
    redeem_vouchers,
    redeem_with_proof,
    request_vouchers_approval,
    staged,
)
from node.markets.paych_settler import PaychSettler
from node.markets.paych_types import PaychError, VoucherInvalid
from proofs import commp, pip
from tests.markets.conftest import Parties
from tests.markets.deal_sector import SECTOR_SIZE, StoredPiece, store_piece
from tests.markets.devnode import CLIENT_KEY, FIL, PROVIDER, PROVIDER_KEY

PRICE = 6 * FIL


@dataclass
class Deal:
    parties: Parties
    stored: StoredPiece
    deal: VoucherDeal  # staged: with the sector number and the real proof

    @property
    def channel(self) -> Address:
        return self.deal.channel


async def make_deal(parties: Parties, funds: int = 10 * FIL) -> Deal:
    stored = await store_piece(parties.miner, parties.provider, parties.client)
    channel = await parties.open_channel(funds)
    lane = await parties.client.paych.allocate_lane(channel)
    deal = VoucherDeal(
        provider=PROVIDER, miner=stored.miner, piece=stored.piece, channel=channel, lane=lane, price=PRICE
    )
    return Deal(parties, stored, staged(deal, stored.sector_number, stored.proof))


def asked(deal: VoucherDeal, amount: int, **changes: object) -> SignedVoucher:
    """A voucher the provider asks the client to approve: unsigned, on the deal's channel and lane."""
    return replace(SignedVoucher(deal.channel, 0, 0, b"", None, deal.lane, 0, amount, 0), **changes)  # type: ignore[arg-type]


def elsewhere_proof(d: Deal) -> bytes:
    """A real inclusion proof of the same piece, at the other half of a sector: it does not open
    against this sector's CommD."""
    zero = commp.PieceInfo(1024, commp.zero_piece_commitment(1024))
    piece = commp.PieceInfo(d.stored.piece.size, commitment_of_v1(d.stored.piece.piece_cid))
    return pip.prove_piece_inclusion([zero, piece], SECTOR_SIZE, 1).to_bytes()


async def lanes_on_chain(d: Deal) -> dict[int, LaneState]:
    state = await d.parties.client.paych.channel_state(d.channel)
    assert state is not None
    return state.lanes


async def test_collect_via_the_client(parties: Parties) -> None:
    d = await make_deal(parties)
    client, provider, deal = parties.client, parties.provider, d.deal
    sector = client.state.sector_info(d.stored.miner, d.stored.sector_number, client.chain.head())
    assert sector is not None and commitment_of_v1(sector.unsealed_cid) == d.stored.comm_d

    approved = await request_vouchers_approval(client.paych, deal, (asked(deal, 2 * FIL), asked(deal, PRICE)))
    assert [(v.lane, v.nonce, v.amount) for v in approved] == [(deal.lane, 1, 2 * FIL), (deal.lane, 2, PRICE)]
    assert all(v.signature is not None for v in approved)
    (cid,) = await redeem_vouchers(provider.paych, d.channel, approved)
    assert (await parties.miner.land(provider, cid)).receipt.exit_code == 0
    assert await lanes_on_chain(d) == {deal.lane: LaneState(PRICE, 2)}

    # Asking again for what was approved: the client does not sign a second time.
    with pytest.raises(
        CollectRefused, match="voucher 0 cannot be signed: failed to persist voucher: voucher amount is lower"
    ):
        await request_vouchers_approval(client.paych, deal, (asked(deal, PRICE),))


async def test_route_a_refusals(parties: Parties) -> None:
    d = await make_deal(parties)
    client, provider, deal = parties.client, parties.provider, d.deal

    async def refused(deal: VoucherDeal, vouchers: tuple[SignedVoucher, ...], message: str) -> None:
        with pytest.raises(CollectRefused, match=message):
            await request_vouchers_approval(client.paych, deal, vouchers)

    ask = (asked(deal, 2 * FIL),)
    wrong = replace(deal, proof=elsewhere_proof(d))
    await refused(
        wrong,
        ask,
        rf"the piece inclusion proof does not show piece {deal.piece.piece_cid} in sector 1 "
        rf"of miner {deal.miner}",
    )
    await refused(
        replace(deal, proof=b"\x01" * 17),
        ask,
        "cannot check the piece inclusion proof: a piece inclusion proof is 16 header bytes",
    )
    await refused(replace(deal, sector_number=7), ask, f"sector 7 of miner {deal.miner} is not on chain")
    await refused(replace(deal, sector_number=None), ask, "the deal is not staged")
    await refused(replace(deal, miner=Address.new_id(4242)), ask, "cannot read miner t04242: actor not found")
    await refused(
        deal, (asked(deal, PRICE + 1),), f"voucher 0 asks for {PRICE + 1}, more than the deal's price {PRICE}"
    )
    await refused(
        deal,
        (asked(deal, 3 * FIL), asked(deal, 2 * FIL)),
        "voucher 1 asks for 2000000000000000000: amounts must increase",
    )
    await refused(
        deal,
        (asked(deal, FIL, lane=deal.lane + 1),),
        f"the deal pays on channel {deal.channel} lane {deal.lane}",
    )
    condition = piece_condition(deal.miner, 1, deal.piece)
    await refused(deal, (asked(deal, FIL, extra=condition),), "approval signs plain payments")
    await refused(
        replace(deal, provider=Address.new_id(4242)),
        ask,
        f"channel {deal.channel} is not one this node pays t04242 through",
    )
    await refused(deal, (), "no vouchers to approve")
    # A deal priced above what the channel holds: the client will not sign past its funds.
    await refused(
        replace(deal, price=12 * FIL),
        (asked(deal, 12 * FIL),),
        "the channel lacks 2000000000000000000 to cover voucher 0",
    )
    assert await client.paych.list_vouchers(d.channel) == []  # nothing was signed

    # The provider's side refuses what the client did not sign.
    forged = replace(asked(deal, 2 * FIL, nonce=1), signature=None)
    forged = replace(forged, signature=PROVIDER_KEY.sign(forged.signing_bytes()))
    with pytest.raises(VoucherInvalid, match="voucher signature invalid"):
        await redeem_vouchers(provider.paych, d.channel, (forged,))
    # ... and vouchers for more than the channel holds, even signed by the client.
    greedy = replace(asked(deal, 11 * FIL, nonce=1), signature=None)
    greedy = replace(greedy, signature=CLIENT_KEY.sign(greedy.signing_bytes()))
    with pytest.raises(
        VoucherInvalid, match="not enough funds in channel to cover voucher - shortfall: 1000000000000000000"
    ):
        await redeem_vouchers(provider.paych, d.channel, (greedy,))
    assert await lanes_on_chain(d) == {}


async def test_collect_via_the_chain(parties: Parties) -> None:
    d = await make_deal(parties)
    client, provider, miner, deal = parties.client, parties.provider, parties.miner, d.deal
    voucher = await conditional_voucher(client.paych, deal)
    assert voucher.extra == piece_condition(deal.miner, d.stored.sector_number, deal.piece)
    assert voucher.amount == PRICE

    # With a proof of the piece elsewhere, the miner actor's check fails: not spendable, not sent.
    wrong = elsewhere_proof(d)
    with pytest.raises(CollectRefused, match="the chain does not accept the voucher: its condition fails"):
        await redeem_with_proof(provider.paych, replace(deal, proof=wrong), voucher)
    assert not await provider.paych.check_voucher_spendable(d.channel, voucher, b"", wrong)
    with pytest.raises(
        PaychError,
        match=r"submitting voucher: gas estimation failed: .*spend voucher verification failed: exit code 16",
    ):
        await provider.paych.submit_voucher(d.channel, voucher, b"", wrong)
    # Sent anyway (own gas, no estimation), the chain runs the check and refuses it.
    params = UpdateChannelStateParams(voucher, b"", wrong).to_bytes()
    msg = Message(
        to=d.channel,
        from_=PROVIDER,
        nonce=provider.mpool.get_nonce(PROVIDER),
        value=0,
        gas_limit=50_000_000,
        gas_fee_cap=200_000_000,
        gas_premium=1_000,
        method=PaychMethod.UpdateChannelState,
        params=params,
    )
    failed = provider.wallet.sign_message(msg)
    provider.mpool.push(failed)
    lookup = await miner.land(provider, failed.cid())
    assert lookup.receipt.exit_code == ExitCode.ErrIllegalArgument
    assert await lanes_on_chain(d) == {}

    # With the real proof (stored with the voucher), the chain pays.
    cid = await redeem_with_proof(provider.paych, deal, voucher)
    assert (await miner.land(provider, cid)).receipt.exit_code == 0
    assert await lanes_on_chain(d) == {deal.lane: LaneState(PRICE, 1)}
    # Redeemed once: not spendable again, not submitted again.
    assert not await provider.paych.check_voucher_spendable(d.channel, voucher, b"", deal.proof)
    with pytest.raises(PaychError, match="already been submitted"):
        await redeem_with_proof(provider.paych, deal, voucher)

    # A condition for another deal's piece is not this deal's voucher.
    other = replace(voucher, extra=piece_condition(deal.miner, 2, deal.piece))
    with pytest.raises(CollectRefused, match="the voucher's condition is not this deal's piece inclusion"):
        await redeem_with_proof(provider.paych, deal, other)
    with pytest.raises(CollectRefused, match="the deal has no sector number yet"):
        await conditional_voucher(client.paych, replace(deal, sector_number=None))


async def test_the_settler_redeems_a_conditional_voucher_with_its_stored_proof(
    parties: Parties, nursery: trio.Nursery
) -> None:
    d = await make_deal(parties)
    client, provider, miner, deal = parties.client, parties.provider, parties.miner, d.deal
    settler = PaychSettler(provider.paych)
    await nursery.start(settler.run)
    voucher = await conditional_voucher(client.paych, deal)
    assert await provider.paych.add_voucher(d.channel, voucher, deal.proof, 0) == PRICE
    lookup = await miner.land(client, await client.paych.settle(d.channel))
    assert lookup.receipt.exit_code == 0
    for _ in range(6):
        await settler.wait_processed(await miner.mine())
        if await lanes_on_chain(d):
            break
    assert len(settler.submitted) == 1
    assert await lanes_on_chain(d) == {deal.lane: LaneState(PRICE, 1)}
    state = await provider.paych.channel_state(d.channel)
    assert state is not None and client.chain.head().height < state.state.settling_at


def test_piece_condition_names_the_miner_method_and_the_piece() -> None:
    piece = PieceInfo(1024, CID.parse("baga6ea4seaqaroz657zweatmuvkjxuktuwxj7zqndifoks2dcyrn5sbvws3deny"))
    condition = piece_condition(Address.new_id(1002), 3, piece)
    assert (condition.actor, condition.method) == (Address.new_id(1002), MinerMethod.VerifyPieceInclusion)
    assert PieceInclusionExtra.from_bytes(condition.data) == PieceInclusionExtra(3, piece)
