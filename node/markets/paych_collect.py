"""StorageDealCollect for deals paid by payment-channel vouchers: the two ways a provider gets paid once
its client's piece is in a proven sector.

(a) Via the client. The provider sends RequestVouchersApproval(deal, vouchers): the vouchers it wants,
unsigned, on the deal's lane. The client checks the piece inclusion proof (proofs/pip.py) against the
CommD of the sector on chain (VerifyPIP; the miner actor keeps each sector's unsealed CID) and that the
sector exists and has not expired (VerifySectorExists), checks the vouchers against what it agreed to
pay, and answers with the vouchers signed by its own payment-channel manager; the provider stores them
and redeems them (`redeem_vouchers`).

(b) Via the chain. Once the sector number is known, the client signs a voucher for the deal's price
whose condition (Extra) is the miner actor's VerifyPieceInclusion (method 64) with the sector and the
piece as Data. The provider redeems it with the piece inclusion proof as the redeemer's proof
(`redeem_with_proof`): the payment channel calls the miner, which checks the proof against the sector's
CommD, so the voucher pays only if the piece really is there. The client needs to check nothing.

`VoucherDeal` is what both sides agreed when the deal was made (the storage deal protocol fills it in,
and adds the sector number and proof when the deal is staged). Refusals are `CollectRefused`, whose
message says what did not hold.
"""

from dataclasses import replace
from typing import Final

from actors.miner.types import MinerMethod, PieceInclusionExtra, SectorNumber
from actors.paych.types import ModVerifyParams, RedeemerProof, SignedVoucher
from chain.encoding.cid import CID
from chain.encoding.commcid import commitment_of_v1
from chain.encoding.errors import DecodeError
from chain.encoding.schema import CborTuple, TokenAmount, Uint64
from chain.stmgr.actors import ActorNotFound, StateQueryError
from chain.types.address import Address
from chain.types.sector import PieceInfo
from node.markets.paych import PaychManager
from node.markets.paych_types import Direction, PaychError, VoucherSpec
from node.markets.paych_vouchers import best_by_lane
from proofs import pip

# What a voucher may ask for on route (a): a plain payment, nothing the client did not agree to.
_PLAIN: Final = "approval signs plain payments: no condition, time lock, secret or merge"


class CollectRefused(PaychError):
    """A collect step that must not go ahead; the message says why."""


class VoucherDeal(CborTuple, kw_only=True):
    """A storage deal paid through a payment channel, as both sides recorded it."""

    provider: Address  # who is paid: the channel's To
    miner: Address  # the miner actor storing the piece
    piece: PieceInfo  # the deal's piece (padded size, piece CID)
    channel: Address
    lane: Uint64  # the lane the deal's vouchers use
    price: TokenAmount  # the most the deal's vouchers may reach on the lane
    sector_number: SectorNumber | None = None  # where the provider put the piece, once staged
    proof: RedeemerProof = b""  # the piece inclusion proof against that sector's CommD (proofs.pip bytes)

    def sector_and_proof(self) -> tuple[int, bytes]:
        if self.sector_number is None or not self.proof:
            raise CollectRefused(
                "the deal is not staged: it has no sector number and piece inclusion proof yet"
            )
        return self.sector_number, self.proof


def piece_condition(miner: Address, sector_number: int, piece: PieceInfo) -> ModVerifyParams:
    """A voucher condition that holds only when the piece is in the miner's proven sector (route b)."""
    data = PieceInclusionExtra(sector_number, piece).to_bytes()
    return ModVerifyParams(miner, MinerMethod.VerifyPieceInclusion, data)


# -- route (a): the client approves -----------------------------------------------------------------------


def verify_piece_stored(manager: PaychManager, deal: VoucherDeal) -> int:
    """The client's VerifySectorExists and VerifyPIP, against the state at the head: the sector's
    expiration when both hold. Synchronous (state reads): run it in a worker thread."""
    sector_number, proof_bytes = deal.sector_and_proof()
    state, head = manager.node.state, manager.node.chain.head()
    try:
        info = state.miner_info(deal.miner, head)
        sector = state.sector_info(deal.miner, sector_number, head)
    except (ActorNotFound, StateQueryError) as exc:
        raise CollectRefused(f"cannot read miner {deal.miner}: {exc}") from None
    if sector is None:
        raise CollectRefused(f"sector {sector_number} of miner {deal.miner} is not on chain")
    if sector.expiration < head.height:
        raise CollectRefused(
            f"sector {sector_number} of miner {deal.miner} expired at epoch {sector.expiration}"
        )
    try:
        proof = pip.PieceInclusionProof.from_bytes(proof_bytes)
        comm_p = commitment_of_v1(deal.piece.piece_cid)
        comm_d = commitment_of_v1(sector.unsealed_cid)
    except (pip.MalformedProof, DecodeError) as exc:
        raise CollectRefused(f"cannot check the piece inclusion proof: {exc}") from None
    if not pip.verify_piece_inclusion(
        proof, comm_d=comm_d, sector_size=info.sector_size, comm_p=comm_p, piece_size=deal.piece.size
    ):
        raise CollectRefused(
            f"the piece inclusion proof does not show piece {deal.piece.piece_cid} in sector {sector_number} "
            f"of miner {deal.miner} (CommD {sector.unsealed_cid})"
        )
    return sector.expiration


async def request_vouchers_approval(
    manager: PaychManager, deal: VoucherDeal, vouchers: tuple[SignedVoucher, ...]
) -> tuple[SignedVoucher, ...]:
    """The client's answer to RequestVouchersApproval: the requested vouchers, signed, once the piece is
    shown to be stored and each voucher is one the deal allows (its channel and lane, increasing
    amounts up to the price, a plain payment). Amounts are cumulative on the lane, so a voucher the
    client has signed already is refused rather than signed twice."""
    if not vouchers:
        raise CollectRefused("no vouchers to approve")
    status = await manager.status(deal.channel)
    funds = await manager.available_funds(deal.channel)
    if status.direction != Direction.OUTBOUND or funds.to != deal.provider:
        raise CollectRefused(f"channel {deal.channel} is not one this node pays {deal.provider} through")
    await manager.node.run_sync(verify_piece_stored, manager, deal)
    previous = 0
    for i, sv in enumerate(vouchers):
        if sv.channel_addr != deal.channel or sv.lane != deal.lane:
            raise CollectRefused(
                f"voucher {i} is for channel {sv.channel_addr} lane {sv.lane}; "
                f"the deal pays on channel {deal.channel} lane {deal.lane}"
            )
        if sv.extra is not None or sv.time_lock_min or sv.time_lock_max or sv.secret_hash or sv.merges:
            raise CollectRefused(f"voucher {i}: {_PLAIN}")
        if sv.amount > deal.price:
            raise CollectRefused(f"voucher {i} asks for {sv.amount}, more than the deal's price {deal.price}")
        if sv.amount <= previous:
            raise CollectRefused(f"voucher {i} asks for {sv.amount}: amounts must increase along the lane")
        previous = sv.amount
    approved = []
    for i, sv in enumerate(vouchers):
        spec = VoucherSpec(amount=sv.amount, min_settle=sv.min_settle_height)
        try:
            made = await manager.create_voucher(deal.channel, spec, deal.lane)
        except PaychError as exc:
            raise CollectRefused(f"voucher {i} cannot be signed: {exc}") from None
        if made.voucher is None:
            raise CollectRefused(f"the channel lacks {made.shortfall} to cover voucher {i} of {sv.amount}")
        approved.append(made.voucher)
    return tuple(approved)


async def redeem_vouchers(
    manager: PaychManager, channel: Address, vouchers: tuple[SignedVoucher, ...]
) -> list[CID]:
    """The provider's side of route (a): store the approved vouchers (each checked), then submit the
    best of each lane; the messages sent."""
    for sv in vouchers:
        await manager.add_voucher(channel, sv, b"", 0)
    return [
        await manager.submit_voucher(channel, sv, b"", b"")
        for _, sv in sorted(best_by_lane(vouchers).items())
    ]


# -- route (b): the chain checks -------------------------------------------------------------------------


async def conditional_voucher(manager: PaychManager, deal: VoucherDeal) -> SignedVoucher:
    """The client's voucher for the deal's price that pays only if the chain accepts that the piece is
    in the deal's sector (the sector number must be known; the proof is the provider's to give)."""
    if deal.sector_number is None:
        raise CollectRefused("the deal has no sector number yet: the condition names the sector")
    spec = VoucherSpec(amount=deal.price, extra=piece_condition(deal.miner, deal.sector_number, deal.piece))
    made = await manager.create_voucher(deal.channel, spec, deal.lane)
    if made.voucher is None:
        raise CollectRefused(f"the channel lacks {made.shortfall} to cover the deal's price {deal.price}")
    return made.voucher


async def redeem_with_proof(manager: PaychManager, deal: VoucherDeal, voucher: SignedVoucher) -> CID:
    """The provider's side of route (b): store the conditional voucher with the piece inclusion proof,
    check that the chain accepts it with that proof, and submit it."""
    sector_number, proof = deal.sector_and_proof()
    expected = piece_condition(deal.miner, sector_number, deal.piece)
    if voucher.extra != expected:
        raise CollectRefused("the voucher's condition is not this deal's piece inclusion in its sector")
    await manager.add_voucher(deal.channel, voucher, proof, 0)
    held = await manager.stored_voucher(deal.channel, voucher)
    if held is not None and held.submitted:
        raise CollectRefused("cannot submit voucher that has already been submitted")
    if not await manager.check_voucher_spendable(deal.channel, voucher, b"", proof):
        raise CollectRefused(
            f"the chain does not accept the voucher: its condition fails with this proof of piece "
            f"{deal.piece.piece_cid} in sector {deal.sector_number} of miner {deal.miner}"
        )
    return await manager.submit_voucher(deal.channel, voucher, b"", proof)


def staged(deal: VoucherDeal, sector_number: int, proof: bytes) -> VoucherDeal:
    """The deal once the provider reports where the piece went and its inclusion proof."""
    return replace(deal, sector_number=sector_number, proof=proof)
