"""The storage power actor: creates miners, keeps the power table and runs the miners' cron events.

Methods, numbers and shapes as builtin-actors v9 `actors/power`. CreateMiner has the init actor create
a miner actor and opens a claim for it; miners report power changes (UpdateClaimedPower) and pledge
changes (UpdatePledgeTotal) and enroll deferred cron events (EnrollCronEvent) that OnEpochTickEnd,
called by the cron actor at the end of each epoch, delivers as miner.OnDeferredCronEvent. The epoch's
network power then goes to the reward actor (UpdateNetworkKPI). Seal proofs are verified by the
miner at ProveCommitSector, so SubmitPoRepForBulkVerify (8) is not offered; see docs/actors.md.
"""

from typing import Final

from actors import builtin
from actors.dispatch import ActorDef, encode_params, exported, exports
from actors.init.types import ExecParams, ExecReturn, InitMethod
from actors.miner.types import DeferredCronEventParams, MinerConstructorParams, MinerMethod
from actors.power.state import Claim, ClaimsTable, CronEvent, CronQueue, PowerState
from actors.power.types import (
    CreateMinerParams,
    CreateMinerReturn,
    CurrentTotalPowerReturn,
    EnrollCronEventParams,
    PowerMethod,
    UpdateClaimedPowerParams,
)
from actors.reward.types import RewardMethod, ThisEpochRewardReturn
from actors.sends import call, send_or_abort
from chain.encoding.bigint import encode_bigint
from chain.encoding.schema import TokenAmount, replace
from chain.types.address import Address
from chain.vm.exitcode import forbidden, illegal_argument, illegal_state
from chain.vm.runtime import Runtime

# Past this many epochs without a tick, the cron queue is scanned by key instead of epoch by epoch.
CRON_SCAN_BY_EPOCH_MAX: Final = 1024


@exports(PowerMethod.Constructor)
def constructor(rt: Runtime) -> None:
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    rt.set_state(PowerState.new(rt.store))


@exports(PowerMethod.CreateMiner)
def create_miner(rt: Runtime, params: CreateMinerParams) -> CreateMinerReturn:
    """Have the init actor create a miner (with the message's value as its balance) and open its claim."""
    rt.validate_immediate_caller_type(*builtin.CALLER_TYPES_SIGNABLE)
    constructor_params = MinerConstructorParams(
        owner=params.owner,
        worker=params.worker,
        control_addresses=(),
        window_post_proof_type=params.window_post_proof_type,
        peer_id=params.peer,
        multi_addresses=params.multiaddrs,
    )
    exec_params = ExecParams(builtin.MINER_ACTOR_CODE, constructor_params.to_bytes())
    executed = call(
        rt, builtin.INIT_ACTOR_ADDR, InitMethod.Exec, exec_params, ExecReturn, value=rt.value_received
    )
    created = CreateMinerReturn(executed.id_address, executed.robust_address)

    state = rt.state(PowerState)
    claims = ClaimsTable.load(rt.store, state.claims)
    claims.set(created.id_address, Claim(params.window_post_proof_type, 0, 0))
    above = state.miner_above_min_power_count + (1 if rt.policy.consensus_miner_min_power <= 0 else 0)
    rt.set_state(
        replace(
            state, claims=claims.flush(), miner_count=state.miner_count + 1, miner_above_min_power_count=above
        )
    )
    return created


@exports(PowerMethod.UpdateClaimedPower)
def update_claimed_power(rt: Runtime, params: UpdateClaimedPowerParams) -> None:
    rt.validate_immediate_caller_type(builtin.MINER_ACTOR_CODE)
    state = rt.state(PowerState)
    claims = ClaimsTable.load(rt.store, state.claims)
    state = state.add_to_claim(
        rt.policy, claims, rt.caller, params.raw_byte_delta, params.quality_adjusted_delta
    )
    rt.set_state(replace(state, claims=claims.flush()))


@exports(PowerMethod.EnrollCronEvent)
def enroll_cron_event(rt: Runtime, params: EnrollCronEventParams) -> None:
    rt.validate_immediate_caller_type(builtin.MINER_ACTOR_CODE)
    if params.event_epoch < 0:
        raise illegal_argument(f"cron event epoch {params.event_epoch} cannot be less than zero")
    state = rt.state(PowerState)
    queue = CronQueue.load(rt.store, state.cron_event_queue)
    queue.add(params.event_epoch, CronEvent(rt.caller, params.payload))
    rt.set_state(
        replace(
            state,
            cron_event_queue=queue.flush(),
            first_cron_epoch=min(state.first_cron_epoch, params.event_epoch),
        )
    )


@exports(PowerMethod.OnEpochTickEnd)
def on_epoch_tick_end(rt: Runtime) -> None:
    """Deliver the due miner cron events, snapshot this epoch's totals and update the reward actor."""
    rt.validate_immediate_caller_is(builtin.CRON_ACTOR_ADDR)
    reward = call(rt, builtin.REWARD_ACTOR_ADDR, RewardMethod.ThisEpochReward, None, ThisEpochRewardReturn)
    _process_deferred_cron_events(rt, reward)

    state = rt.state(PowerState)
    raw_power, qa_power = state.current_total_power(rt.policy)
    state = replace(
        state,
        this_epoch_pledge_collateral=state.total_pledge_collateral,
        this_epoch_quality_adj_power=qa_power,
        this_epoch_raw_byte_power=raw_power,
        this_epoch_qa_power_smoothed=state.this_epoch_qa_power_smoothed.next(qa_power, 1),
    )
    rt.set_state(state)
    # UpdateNetworkKPI takes the bare big integer (abi.StoragePower).
    send_or_abort(rt, builtin.REWARD_ACTOR_ADDR, RewardMethod.UpdateNetworkKPI, encode_bigint(raw_power), 0)


def _due_epochs(queue: CronQueue, first: int, now: int) -> list[int]:
    if now - first <= CRON_SCAN_BY_EPOCH_MAX:
        return list(range(first, now + 1))
    return sorted(epoch for epoch in queue.epochs() if epoch <= now)


def _process_deferred_cron_events(rt: Runtime, reward: ThisEpochRewardReturn) -> None:
    now = rt.curr_epoch
    state = rt.state(PowerState)
    queue = CronQueue.load(rt.store, state.cron_event_queue)
    claims = ClaimsTable.load(rt.store, state.claims)
    due: list[CronEvent] = []
    for epoch in _due_epochs(queue, state.first_cron_epoch, now):
        events = queue.events_at(epoch)
        if not events:
            continue
        # Events of miners whose claim is gone (a failed cron removed it) are dropped.
        due.extend(e for e in events if claims.contains(e.miner_addr))
        queue.remove_all(epoch)
    rt.set_state(replace(state, first_cron_epoch=now + 1, cron_event_queue=queue.flush()))

    failed: list[Address] = []
    for event in due:
        params = DeferredCronEventParams(
            event.callback_payload, reward.this_epoch_reward_smoothed, state.this_epoch_qa_power_smoothed
        )
        sent = rt.send(event.miner_addr, MinerMethod.OnDeferredCronEvent, encode_params(params), 0)
        if not sent.ok:
            failed.append(event.miner_addr)
    if failed:
        # A miner whose cron fails loses its claim: its power no longer counts towards the network.
        state = rt.state(PowerState)
        claims = ClaimsTable.load(rt.store, state.claims)
        for miner in failed:
            if claims.contains(miner):
                state = state.delete_claim(rt.policy, claims, miner)
                state = replace(state, miner_count=state.miner_count - 1)
        rt.set_state(replace(state, claims=claims.flush()))


@exports(PowerMethod.UpdatePledgeTotal)
def update_pledge_total(rt: Runtime, pledge_delta: TokenAmount) -> None:
    rt.validate_immediate_caller_type(builtin.MINER_ACTOR_CODE)
    state = rt.state(PowerState)
    if not ClaimsTable.load(rt.store, state.claims).contains(rt.caller):
        raise forbidden(f"unknown miner {rt.caller} forbidden to interact with power actor")
    total = state.total_pledge_collateral + pledge_delta
    if total < 0:
        raise illegal_state(f"negative total pledge collateral {total}")
    rt.set_state(replace(state, total_pledge_collateral=total))


@exports(PowerMethod.CurrentTotalPower)
def current_total_power(rt: Runtime) -> CurrentTotalPowerReturn:
    rt.validate_immediate_caller_accept_any()
    state = rt.state(PowerState)
    return CurrentTotalPowerReturn(
        state.this_epoch_raw_byte_power,
        state.this_epoch_quality_adj_power,
        state.this_epoch_pledge_collateral,
        state.this_epoch_qa_power_smoothed,
    )


ACTOR = ActorDef.of(builtin.POWER_ACTOR_CODE, "storagepower", PowerState, exported(PowerMethod, globals()))
