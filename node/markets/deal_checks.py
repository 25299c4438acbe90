"""The provider's checks of a deal proposal, as Boost's validateDealProposal and its deal filter make
them, plus what filpy's provider needs: one function of the proposal and what the chain and the
provider's books say, giving the reason to refuse (sent to the client) or None.

The order is Boost's, so that a proposal wrong in several ways is refused for the same reason: the
provider, the transfer, the signature, the label, the piece, the epochs, the duration, the collateral,
the ask, the client's escrow; then the provider's own escrow.
"""

from dataclasses import dataclass
from typing import Final

from actors.market.policy import deal_duration_bounds, piece_size_error
from chain.crypto.signature import is_valid
from chain.encoding.errors import DecodeError
from chain.params import Policy
from chain.types.address import Address
from chain.types.sector import is_piece_cid
from node.markets.chain_view import CollateralBounds
from node.markets.storage_types import TRANSFER_HTTP, DealParams, HttpRequest, StorageAsk
from proofs.commp import unpadded_piece_size

# Boost's DealMaxLabelSize.
MAX_LABEL: Final = 256


@dataclass(frozen=True, slots=True)
class ProviderTerms:
    """The provider's own rules beyond the market's (config)."""

    sealing_lead: int  # the start epoch must be at least this many epochs ahead
    collateral_multiplier: int = 2  # Boost's MaxProviderCollateralMultiplier: at most min x this
    add_collateral: bool = True  # top the provider's escrow up from its worker when it falls short


@dataclass(frozen=True, slots=True)
class ChainFacts:
    """What the checks read from the chain (at the head) and the provider's books."""

    epoch: int
    policy: Policy
    sector_size: int
    client_key: Address | None  # the client's key address; None if the chain does not know it
    client_available: int  # client escrow not locked
    collateral: CollateralBounds
    provider_available: int  # provider escrow not locked, less what accepted deals already count on


def check_proposal(
    params: DealParams, *, miner: Address, ask: StorageAsk | None, facts: ChainFacts, terms: ProviderTerms
) -> str | None:
    """Why the provider refuses the proposal, or None to accept it."""
    proposal = params.client_deal_proposal.proposal
    if proposal.provider != miner:
        return (
            f"incorrect provider for deal; proposal.Provider: {proposal.provider}; provider.Address: {miner}"
        )
    transfer = params.transfer
    if not params.is_offline:
        if transfer.type != TRANSFER_HTTP:
            return f"transfer type {transfer.type!r} is not supported: use 'http' or an offline deal"
        try:
            HttpRequest.from_bytes(transfer.params)
        except DecodeError as exc:
            return f"bad transfer parameters: {exc}"
        if transfer.size == 0:
            return "the transfer's size is zero"
    if facts.client_key is None:
        return f"the client {proposal.client} has no key on chain to check the signature with"
    if not is_valid(params.client_deal_proposal.client_signature, facts.client_key, proposal.signing_bytes()):
        return "invalid signature: the proposal is not signed by its client"
    label = proposal.label.encode() if isinstance(proposal.label, str) else proposal.label
    if len(label) > MAX_LABEL:
        return f"deal label can be at most {MAX_LABEL} bytes, is {len(label)}"
    size_error = piece_size_error(proposal.piece_size)
    if size_error is not None:
        return f"proposal piece size is invalid: {size_error}"
    if proposal.piece_size > facts.sector_size:
        return f"piece of {proposal.piece_size} bytes does not fit in a {facts.sector_size}-byte sector"
    if not is_piece_cid(proposal.piece_cid):
        return "proposal PieceCID had wrong prefix"
    if not params.is_offline and transfer.size > unpadded_piece_size(proposal.piece_size):
        return (
            f"the transfer of {transfer.size} bytes does not fit in a piece of {proposal.piece_size} bytes "
            f"({unpadded_piece_size(proposal.piece_size)} bytes of data)"
        )
    if proposal.end_epoch <= proposal.start_epoch:
        return f"proposal end {proposal.end_epoch} before proposal start {proposal.start_epoch}"
    if facts.epoch > proposal.start_epoch:
        return f"deal start epoch {proposal.start_epoch} has already elapsed (current epoch: {facts.epoch})"
    earliest = facts.epoch + terms.sealing_lead
    if proposal.start_epoch < earliest:
        return (
            f"deal start epoch {proposal.start_epoch} is too soon: sealing needs {terms.sealing_lead} "
            f"epochs, so the earliest start is {earliest} (current epoch: {facts.epoch})"
        )
    low, high = deal_duration_bounds(facts.policy)
    if not low <= proposal.duration <= high:
        return f"deal duration out of bounds (min, max, provided): {low}, {high}, {proposal.duration}"
    latest_end = facts.epoch + facts.policy.max_sector_expiration_extension
    if proposal.end_epoch > latest_end:
        return (
            f"invalid deal end epoch {proposal.end_epoch}: cannot be more than "
            f"{facts.policy.max_sector_expiration_extension} past current epoch {facts.epoch}"
        )
    floor = facts.collateral.min
    ceiling = floor * terms.collateral_multiplier
    if proposal.provider_collateral < floor:
        return f"proposed provider collateral {proposal.provider_collateral} below minimum {floor}"
    if proposal.provider_collateral > ceiling:
        return f"proposed provider collateral {proposal.provider_collateral} above maximum {ceiling}"
    if proposal.verified_deal:
        return "verified deals are not accepted: this network has no verified registry"
    if ask is None:
        return "the provider has not set a storage ask: it takes no deals yet"
    if ask.expiry <= facts.epoch:
        return f"the provider's ask expired at epoch {ask.expiry}"
    least = ask.min_price(proposal.piece_size, proposal.verified_deal)
    if proposal.storage_price_per_epoch < least:
        return f"storage price per epoch less than asking price: {proposal.storage_price_per_epoch} < {least}"
    if proposal.piece_size < ask.min_piece_size:
        return f"piece size less than minimum required size: {proposal.piece_size} < {ask.min_piece_size}"
    if proposal.piece_size > ask.max_piece_size:
        return f"piece size more than maximum allowed size: {proposal.piece_size} > {ask.max_piece_size}"
    needed = proposal.client_balance_requirement
    if facts.client_available < needed:
        return (
            f"client available funds in escrow {facts.client_available} not enough to meet storage cost "
            f"for deal {needed}"
        )
    if facts.provider_available < proposal.provider_collateral and not terms.add_collateral:
        return "server error: provider has insufficient funds to accept deal"
    return None
