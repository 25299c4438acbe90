"""The storage market actor's methods (builtin-actors v9 numbering and semantics, simplified as
docs/actors.md records): escrow, deal publication, activation by miners, termination and the cron
that pays providers, expires deals and slashes those whose sectors were terminated.
"""

import structlog

from actors import builtin
from actors.abi import EPOCH_UNDEFINED, WithdrawBalanceReturn
from actors.dispatch import METHOD_SEND, ActorDef, exported, exports
from actors.market.policy import (
    deal_client_collateral_bounds,
    deal_duration_bounds,
    deal_price_per_epoch_bounds,
    deal_provider_collateral_bounds,
    gen_rand_next_epoch,
    piece_size_error,
    seal_proof_sector_size,
)
from actors.market.state import MarketState, MarketTables
from actors.market.types import (
    ActivateDealsParams,
    ActivateDealsResult,
    ClientDealProposal,
    ComputeDataCommitmentParams,
    ComputeDataCommitmentReturn,
    DealProposal,
    DealState,
    MarketMethod,
    OnMinerSectorsTerminateParams,
    PublishStorageDealsParams,
    PublishStorageDealsReturn,
    SectorDealData,
    VerifyDealsForActivationParams,
    VerifyDealsForActivationReturn,
    WithdrawBalanceParams,
    deal_cid_from_digest,
)
from actors.miner.types import GetControlAddressesReturn, MinerMethod
from actors.power.types import CurrentTotalPowerReturn, PowerMethod
from actors.reward.types import RewardMethod, ThisEpochRewardReturn
from actors.sends import call, send_or_abort
from actors.util.resolve import resolve_existing
from chain.encoding.cid import CID
from chain.encoding.schema import replace
from chain.types.address import Address
from chain.types.bitfield import BitField
from chain.types.sector import PieceInfo, is_piece_cid
from chain.vm.exitcode import ActorError, ExitCode, forbidden, illegal_argument, illegal_state, not_found
from chain.vm.runtime import Runtime

log = structlog.get_logger(__name__)


@exports(MarketMethod.Constructor)
def constructor(rt: Runtime) -> None:
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    rt.set_state(MarketState.new(rt.store))


@exports(MarketMethod.AddBalance)
def add_balance(rt: Runtime, provider_or_client: Address) -> None:
    """Deposit the message value into the escrow of provider_or_client."""
    value = rt.value_received
    if value <= 0:
        raise illegal_argument(f"balance to add must be greater than zero, was {value}")
    # Only signing parties can add balance, for clients and providers alike.
    rt.validate_immediate_caller_type(*builtin.CALLER_TYPES_SIGNABLE)
    nominal, _, _ = _escrow_address(rt, provider_or_client)
    tables = MarketTables(rt.store, rt.state(MarketState))
    tables.escrow.add(nominal, value)
    rt.set_state(tables.commit())


@exports(MarketMethod.WithdrawBalance)
def withdraw_balance(rt: Runtime, params: WithdrawBalanceParams) -> WithdrawBalanceReturn:
    """Withdraw up to params.amount of the unlocked escrow; a miner's goes to its owner."""
    if params.amount < 0:
        raise illegal_argument(f"negative amount: {params.amount}")
    nominal, recipient, approved = _escrow_address(rt, params.provider_or_client)
    # A provider's owner or worker may withdraw; a client only for itself.
    rt.validate_immediate_caller_is(*approved)
    tables = MarketTables(rt.store, rt.state(MarketState))
    # What cron has not yet released stays locked, so a little less than the nominal may be free.
    withdrawn = tables.escrow.subtract_with_minimum(nominal, params.amount, tables.locked.get(nominal))
    rt.set_state(tables.commit())
    send_or_abort(rt, recipient, METHOD_SEND, None, withdrawn, "withdrawal")
    return withdrawn


@exports(MarketMethod.PublishStorageDeals)
def publish_storage_deals(rt: Runtime, params: PublishStorageDealsParams) -> PublishStorageDealsReturn:
    """Publish client-signed deals of one provider, sent by the provider's worker or a control address.

    Invalid deals are dropped (the return's bitfield says which were kept); the call fails only if
    none is valid. The client's payment plus collateral and the provider's collateral are locked.
    """
    # The message comes from the provider's side, so only the client's signature needs checking.
    rt.validate_immediate_caller_type(*builtin.CALLER_TYPES_SIGNABLE)
    if not params.deals:
        raise illegal_argument("empty deals parameter")

    provider_raw = params.deals[0].proposal.provider
    provider, code = resolve_existing(rt, provider_raw, ExitCode.ErrNotFound)
    if code != builtin.MINER_ACTOR_CODE:
        raise illegal_argument("deal provider is not a storage miner actor")
    controls = _request_miner_control_addrs(rt, provider)
    if rt.caller != controls.worker and rt.caller not in controls.control_addresses:
        raise forbidden(f"caller {rt.caller} is not worker or control address of provider {provider}")

    baseline_power = _request_baseline_power(rt)
    network_raw_power = _request_network_raw_power(rt)

    tables = MarketTables(rt.store, rt.state(MarketState))
    accepted: list[tuple[int, DealProposal, CID]] = []
    client_lockups: dict[Address, int] = {}
    provider_lockup = 0
    seen: set[CID] = set()
    for index, deal in enumerate(params.deals):
        reason = _deal_rejection(rt, deal, network_raw_power, baseline_power)
        if reason is None and deal.proposal.provider not in (provider, provider_raw):
            reason = "cannot publish deals from multiple providers in one batch"
        client = rt.resolve_address(deal.proposal.client) if reason is None else None
        if reason is None and client is None:
            reason = f"failed to resolve client address {deal.proposal.client}"
        if reason is not None or client is None:
            log.debug("market.deal_dropped", index=index, reason=reason)
            continue

        client_lockup = client_lockups.get(client, 0) + deal.proposal.client_balance_requirement
        if not tables.balance_covered(client, client_lockup):
            log.debug("market.deal_dropped", index=index, reason="insufficient client funds")
            continue
        new_provider_lockup = provider_lockup + deal.proposal.provider_collateral
        if not tables.balance_covered(provider, new_provider_lockup):
            log.debug("market.deal_dropped", index=index, reason="insufficient provider funds")
            continue

        # Stored proposals name both parties by ID; the signature was checked over the original.
        proposal = replace(deal.proposal, provider=provider, client=client)
        pcid = _deal_cid(rt, proposal)
        if pcid in seen or tables.pending.has(pcid.bytes):
            log.debug("market.deal_dropped", index=index, reason="duplicate deal proposal")
            continue
        if proposal.verified_deal:
            # No verified registry or datacap actor here to allocate against.
            log.debug("market.deal_dropped", index=index, reason="verified deals are not supported")
            continue

        provider_lockup = new_provider_lockup
        client_lockups[client] = client_lockup
        seen.add(pcid)
        accepted.append((index, proposal, pcid))

    if not accepted:
        raise illegal_argument("all deal proposals invalid")

    ids: list[int] = []
    for _, proposal, pcid in accepted:
        tables.lock_client_and_provider_balances(proposal)
        tables.pending.put(pcid.bytes)
        deal_id = tables.generate_deal_id()
        tables.proposals.set(deal_id, proposal.to_cbor())
        # A pseudo-random first epoch per deal so that no cron tick can be loaded with many deals.
        tables.deal_ops.put(gen_rand_next_epoch(rt.policy, proposal.start_epoch, deal_id), deal_id)
        ids.append(deal_id)
    rt.set_state(tables.commit())
    return PublishStorageDealsReturn(tuple(ids), BitField.from_bits(index for index, _, _ in accepted))


@exports(MarketMethod.VerifyDealsForActivation)
def verify_deals_for_activation(
    rt: Runtime, params: VerifyDealsForActivationParams
) -> VerifyDealsForActivationReturn:
    """Check that each sector's deals may go into it (pre-commit) and return each sector's CommD."""
    rt.validate_immediate_caller_type(builtin.MINER_ACTOR_CODE)
    miner = rt.caller
    tables = MarketTables(rt.store, rt.state(MarketState))
    sectors = []
    for sector in params.sectors:
        sector_size = seal_proof_sector_size(sector.sector_type)
        if sector_size is None:
            raise illegal_argument(f"sector size unknown for seal proof {sector.sector_type}")
        _validate_deal_space(tables, sector.deal_ids, miner, sector.sector_expiry, rt.curr_epoch, sector_size)
        commd = (
            _compute_data_commitment(rt, tables, sector.sector_type, sector.deal_ids)
            if sector.deal_ids
            else None
        )
        sectors.append(SectorDealData(commd))
    return VerifyDealsForActivationReturn(tuple(sectors))


@exports(MarketMethod.ActivateDeals)
def activate_deals(rt: Runtime, params: ActivateDealsParams) -> ActivateDealsResult:
    """Mark deals as active in a sector proven now (prove-commit); returns their total size."""
    rt.validate_immediate_caller_type(builtin.MINER_ACTOR_CODE)
    curr_epoch = rt.curr_epoch
    tables = MarketTables(rt.store, rt.state(MarketState))
    deal_space, _ = _validate_deal_space(
        tables, params.deal_ids, rt.caller, params.sector_expiry, curr_epoch, None
    )
    for deal_id in params.deal_ids:
        if tables.deal_state(deal_id) is not None:
            raise illegal_argument(f"deal {deal_id} already activated")
        proposal = tables.proposal(deal_id)
        if proposal is None:
            raise not_found(f"no such deal proposal {deal_id}")
        # The proposal stays pending until its first cron update removes it.
        pcid = _deal_cid(rt, proposal)
        if not tables.pending.has(pcid.bytes):
            raise illegal_state(f"tried to activate deal that was not in the pending set ({pcid})")
        tables.states.set(deal_id, DealState(curr_epoch, EPOCH_UNDEFINED, EPOCH_UNDEFINED).to_cbor())
    rt.set_state(tables.commit())
    return ActivateDealsResult(deal_space)


@exports(MarketMethod.OnMinerSectorsTerminate)
def on_miner_sectors_terminate(rt: Runtime, params: OnMinerSectorsTerminateParams) -> None:
    """Mark the active deals of terminated sectors as slashed at params.epoch; cron settles them."""
    rt.validate_immediate_caller_type(builtin.MINER_ACTOR_CODE)
    miner = rt.caller
    tables = MarketTables(rt.store, rt.state(MarketState))
    for deal_id in params.deal_ids:
        deal = tables.proposal(deal_id)
        if deal is None:
            continue  # expired and cleaned up before its sector was terminated
        if deal.provider != miner:
            raise illegal_state(f"caller {miner} is not the provider {deal.provider} of deal {deal_id}")
        if deal.end_epoch <= params.epoch:
            continue  # expired deals are not slashed
        state = tables.deal_state(deal_id)
        if state is None:
            # Not activated, so it cannot be in a sector that is terminating.
            raise illegal_argument(f"no state for deal {deal_id}")
        if state.slash_epoch != EPOCH_UNDEFINED:
            continue
        tables.states.set(deal_id, replace(state, slash_epoch=params.epoch).to_cbor())
    rt.set_state(tables.commit())


@exports(MarketMethod.ComputeDataCommitment)
def compute_data_commitment(rt: Runtime, params: ComputeDataCommitmentParams) -> ComputeDataCommitmentReturn:
    """The unsealed CID (CommD) of a sector holding the given deals' pieces, per input."""
    rt.validate_immediate_caller_type(builtin.MINER_ACTOR_CODE)
    tables = MarketTables(rt.store, rt.state(MarketState))
    return ComputeDataCommitmentReturn(
        tuple(_compute_data_commitment(rt, tables, spec.sector_type, spec.deal_ids) for spec in params.inputs)
    )


@exports(MarketMethod.CronTick)
def cron_tick(rt: Runtime) -> None:
    """Process the deals scheduled for every epoch since the last tick: time out deals never activated,
    pay providers, expire finished deals and settle slashed ones; burn what was slashed."""
    rt.validate_immediate_caller_is(builtin.CRON_ACTOR_ADDR)
    curr_epoch = rt.curr_epoch
    state = rt.state(MarketState)
    tables = MarketTables(rt.store, state)
    amount_slashed = 0
    reschedule: dict[int, list[int]] = {}
    for epoch in range(state.last_cron + 1, curr_epoch + 1):
        for deal_id in tables.deal_ops.get(epoch):
            amount_slashed += _process_deal(rt, tables, deal_id, curr_epoch, reschedule)
        tables.deal_ops.remove_all(epoch)
    for epoch in sorted(reschedule):
        tables.deal_ops.put_many(epoch, reschedule[epoch])
    rt.set_state(tables.commit(last_cron=curr_epoch))
    if amount_slashed:
        send_or_abort(rt, builtin.BURNT_FUNDS_ACTOR_ADDR, METHOD_SEND, None, amount_slashed, "burn")


def _process_deal(
    rt: Runtime, tables: MarketTables, deal_id: int, curr_epoch: int, reschedule: dict[int, list[int]]
) -> int:
    """One scheduled deal at cron; returns the collateral it slashed."""
    deal = tables.proposal(deal_id)
    if deal is None:
        raise not_found(f"proposal doesn't exist ({deal_id})")
    dcid = _deal_cid(rt, deal)
    state = tables.deal_state(deal_id)
    if state is None:
        # Published but never activated: it has timed out.
        if curr_epoch < deal.start_epoch:
            raise illegal_state(f"deal {deal_id} processed before start epoch {deal.start_epoch}")
        slashed = tables.process_deal_init_timed_out(deal)
        if not tables.proposals.delete(deal_id):
            raise illegal_state(f"failed to delete deal {deal_id} proposal {dcid}: does not exist")
        if not tables.pending.delete(dcid.bytes):
            raise illegal_state(f"failed to delete pending proposal {dcid}: does not exist")
        return slashed

    if state.last_updated_epoch == EPOCH_UNDEFINED and not tables.pending.delete(dcid.bytes):
        raise illegal_state(f"failed to delete pending proposal {dcid}: does not exist")

    update = tables.update_pending_deal_state(rt.policy, state, deal, curr_epoch)
    if update.slashed < 0:
        raise illegal_state(f"computed negative slash amount {update.slashed} for deal {deal_id}")
    if update.remove:
        if update.next_epoch != EPOCH_UNDEFINED:
            raise illegal_state(f"removed deal {deal_id} should have no scheduled epoch")
        if not tables.states.delete(deal_id):
            raise illegal_state(f"failed to delete deal state {deal_id}: does not exist")
        if not tables.proposals.delete(deal_id):
            raise illegal_state(f"failed to delete deal proposal {deal_id}: does not exist")
        return update.slashed
    if update.next_epoch <= curr_epoch:
        raise illegal_state(
            f"continuing deal {deal_id} next epoch {update.next_epoch} should be in the future"
        )
    if update.slashed:
        raise illegal_state(f"continuing deal {deal_id} should not be slashed")
    tables.states.set(deal_id, replace(state, last_updated_epoch=curr_epoch).to_cbor())
    reschedule.setdefault(update.next_epoch, []).append(deal_id)
    return 0


# -- checks -----------------------------------------------------------------------------------------------


def _deal_rejection(
    rt: Runtime, deal: ClientDealProposal, network_raw_power: int, baseline_power: int
) -> str | None:
    """Why a deal cannot be published (None if it can): signature, label, piece, epochs, prices."""
    proposal = deal.proposal
    try:
        signed = rt.verify_signature(deal.client_signature, proposal.client, proposal.signing_bytes())
    except ActorError as exc:
        # The client has no key to check against (v9 drops such a deal rather than the message).
        return f"client signature cannot be checked: {exc.message}"
    if not signed:
        return "client signature is invalid"
    policy = rt.policy
    label_size = len(proposal.label.encode()) if isinstance(proposal.label, str) else len(proposal.label)
    if label_size > policy.market_deal_max_label_size:
        return f"deal label can be at most {policy.market_deal_max_label_size} bytes, is {label_size}"
    size_error = piece_size_error(proposal.piece_size)
    if size_error is not None:
        return f"proposal piece size is invalid: {size_error}"
    if not is_piece_cid(proposal.piece_cid):
        return "proposal PieceCID is not a piece commitment CID"
    if proposal.end_epoch <= proposal.start_epoch:
        return "proposal end before proposal start"
    if rt.curr_epoch > proposal.start_epoch:
        return "deal start epoch has already elapsed"
    min_duration, max_duration = deal_duration_bounds(policy)
    if not min_duration <= proposal.duration <= max_duration:
        return f"deal duration {proposal.duration} out of bounds [{min_duration}, {max_duration}]"
    min_price, max_price = deal_price_per_epoch_bounds()
    if not min_price <= proposal.storage_price_per_epoch <= max_price:
        return "storage price out of bounds"
    min_pcoll, max_pcoll = deal_provider_collateral_bounds(
        policy, proposal.piece_size, network_raw_power, baseline_power, rt.total_fil_circ_supply()
    )
    if not min_pcoll <= proposal.provider_collateral <= max_pcoll:
        return f"provider collateral {proposal.provider_collateral} out of bounds [{min_pcoll}, {max_pcoll}]"
    min_ccoll, max_ccoll = deal_client_collateral_bounds()
    if not min_ccoll <= proposal.client_collateral <= max_ccoll:
        return "client collateral out of bounds"
    return None


def _validate_deal_space(
    tables: MarketTables,
    deal_ids: tuple[int, ...],
    miner: Address,
    sector_expiry: int,
    curr_epoch: int,
    sector_size: int | None,
) -> tuple[int, int]:
    """Check that the deals can be activated by miner in a sector expiring at sector_expiry; return
    (deal space, verified deal space) in bytes."""
    seen: set[int] = set()
    deal_space = verified_space = 0
    for deal_id in deal_ids:
        if deal_id in seen:
            raise illegal_argument(f"deal id {deal_id} present multiple times")
        seen.add(deal_id)
        proposal = tables.proposal(deal_id)
        if proposal is None:
            raise not_found(f"no such deal {deal_id}")
        if proposal.provider != miner:
            raise forbidden(f"cannot activate deal {deal_id}: provider is {proposal.provider}, not {miner}")
        if curr_epoch > proposal.start_epoch:
            raise illegal_argument(
                f"cannot activate deal {deal_id}: start epoch {proposal.start_epoch} passed at {curr_epoch}"
            )
        if proposal.end_epoch > sector_expiry:
            raise illegal_argument(
                f"cannot activate deal {deal_id}: it ends at {proposal.end_epoch}, after its sector"
                f" ({sector_expiry})"
            )
        if proposal.verified_deal:
            verified_space += proposal.piece_size
        else:
            deal_space += proposal.piece_size
    if sector_size is not None and deal_space + verified_space > sector_size:
        raise illegal_argument(
            f"deals too large to fit in sector {deal_space + verified_space} > {sector_size}"
        )
    return deal_space, verified_space


def _compute_data_commitment(
    rt: Runtime, tables: MarketTables, seal_proof: int, deal_ids: tuple[int, ...]
) -> CID:
    pieces = []
    for deal_id in deal_ids:
        proposal = tables.proposal(deal_id)
        if proposal is None:
            raise not_found(f"proposal doesn't exist ({deal_id})")
        pieces.append(PieceInfo(proposal.piece_size, proposal.piece_cid))
    return rt.compute_unsealed_sector_cid(seal_proof, pieces)


def _deal_cid(rt: Runtime, proposal: DealProposal) -> CID:
    return deal_cid_from_digest(rt.hash_blake2b(proposal.signing_bytes()))


# -- asking other actors ------------------------------------------------------------------------------


def _request_miner_control_addrs(rt: Runtime, miner: Address) -> GetControlAddressesReturn:
    return call(rt, miner, MinerMethod.ControlAddresses, None, GetControlAddressesReturn)


def _request_baseline_power(rt: Runtime) -> int:
    reward = call(rt, builtin.REWARD_ACTOR_ADDR, RewardMethod.ThisEpochReward, None, ThisEpochRewardReturn)
    return reward.this_epoch_baseline_power


def _request_network_raw_power(rt: Runtime) -> int:
    power = call(
        rt, builtin.STORAGE_POWER_ACTOR_ADDR, PowerMethod.CurrentTotalPower, None, CurrentTotalPowerReturn
    )
    return power.raw_byte_power


def _escrow_address(rt: Runtime, address: Address) -> tuple[Address, Address, tuple[Address, ...]]:
    """(the ID address holding the balance, who receives withdrawals, who may withdraw)."""
    nominal, code = resolve_existing(rt, address)
    if code == builtin.MINER_ACTOR_CODE:
        # A miner's escrow is withdrawn to its owner, by the owner or the worker.
        controls = _request_miner_control_addrs(rt, nominal)
        return nominal, controls.owner, (controls.owner, controls.worker)
    return nominal, nominal, (nominal,)


ACTOR = ActorDef.of(
    builtin.MARKET_ACTOR_CODE, "storagemarket", MarketState, exported(MarketMethod, globals())
)
