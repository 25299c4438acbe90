"""The storage power actor: creates miners, keeps the power table and runs the miners' cron events.

Methods, numbers and shapes as builtin-actors v9 `actors/power`. CreateMiner has the init actor create
a miner actor and opens a claim for it; miners report power changes (UpdateClaimedPower) and pledge
changes (UpdatePledgeTotal) and enroll deferred cron events (EnrollCronEvent) that OnEpochTickEnd,
called by the cron actor at the end of each epoch, delivers as miner.OnDeferredCronEvent. The epoch's
network power then goes to the reward actor (UpdateNetworkKPI). Seal proofs are verified by the
miner at ProveCommitSector, so SubmitPoRepForBulkVerify (8) is not offered; see docs/actors.md.
"""

from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any, Final

from actors import builtin
from actors.dispatch import ActorDef, MethodDef, encode_params
from actors.init import METHOD_EXEC, ExecParams, ExecReturn
from actors.miner.types import DeferredCronEventParams, MinerConstructorParams, MinerMethod
from actors.power_state import Claim, ClaimsTable, CronEvent, CronQueue, PowerState
from actors.reward import RewardMethod, ThisEpochRewardReturn
from actors.sends import call, decode_return
from actors.smoothing import FilterEstimate
from chain.encoding.bigint import encode_bigint
from chain.encoding.expect import (
    expect_bigint,
    expect_bytes,
    expect_int,
    expect_list,
    expect_tuple,
)
from chain.types.address import Address
from chain.vm.exitcode import ActorError, ExitCode
from chain.vm.runtime import Runtime

MAX_MULTIADDRS: Final = 256
MAX_CONSTRUCTOR_PARAMS: Final = 1 << 16
# Past this many epochs without a tick, the cron queue is scanned by key instead of epoch by epoch.
CRON_SCAN_BY_EPOCH_MAX: Final = 1024


class PowerMethod(IntEnum):
    Constructor = 1
    CreateMiner = 2
    UpdateClaimedPower = 3
    EnrollCronEvent = 4
    OnEpochTickEnd = 5
    UpdatePledgeTotal = 6
    SubmitPoRepForBulkVerify = 8
    CurrentTotalPower = 9


@dataclass(frozen=True, slots=True)
class CreateMinerParams:
    owner: Address
    worker: Address
    window_post_proof_type: int
    peer: bytes
    multiaddrs: tuple[bytes, ...]

    def to_cbor(self) -> list[Any]:
        return [
            self.owner.to_cbor(),
            self.worker.to_cbor(),
            self.window_post_proof_type,
            self.peer,
            list(self.multiaddrs),
        ]

    @classmethod
    def from_cbor(cls, raw: Any) -> "CreateMinerParams":
        w = "CreateMinerParams"
        owner, worker, proof, peer, addrs = expect_tuple(raw, 5, w)
        return cls(
            Address.from_cbor(owner, f"{w}.Owner"),
            Address.from_cbor(worker, f"{w}.Worker"),
            expect_int(proof, f"{w}.WindowPoStProofType"),
            expect_bytes(peer, f"{w}.Peer", max_len=4096),
            tuple(
                expect_bytes(a, f"{w}.Multiaddrs", max_len=4096)
                for a in expect_list(addrs, f"{w}.Multiaddrs", MAX_MULTIADDRS)
            ),
        )


@dataclass(frozen=True, slots=True)
class CreateMinerReturn:
    id_address: Address
    robust_address: Address

    def to_cbor(self) -> list[Any]:
        return [self.id_address.to_cbor(), self.robust_address.to_cbor()]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "CreateMinerReturn") -> "CreateMinerReturn":
        id_address, robust = expect_tuple(raw, 2, what)
        return cls(
            Address.from_cbor(id_address, f"{what}.IDAddress"),
            Address.from_cbor(robust, f"{what}.RobustAddress"),
        )


@dataclass(frozen=True, slots=True)
class UpdateClaimedPowerParams:
    raw_byte_delta: int
    quality_adjusted_delta: int

    def to_cbor(self) -> list[Any]:
        return [encode_bigint(self.raw_byte_delta), encode_bigint(self.quality_adjusted_delta)]

    @classmethod
    def from_cbor(cls, raw: Any) -> "UpdateClaimedPowerParams":
        w = "UpdateClaimedPowerParams"
        raw_delta, qa_delta = expect_tuple(raw, 2, w)
        return cls(
            expect_bigint(raw_delta, f"{w}.RawByteDelta"),
            expect_bigint(qa_delta, f"{w}.QualityAdjustedDelta"),
        )


@dataclass(frozen=True, slots=True)
class EnrollCronEventParams:
    event_epoch: int
    payload: bytes

    def to_cbor(self) -> list[Any]:
        return [self.event_epoch, self.payload]

    @classmethod
    def from_cbor(cls, raw: Any) -> "EnrollCronEventParams":
        epoch, payload = expect_tuple(raw, 2, "EnrollCronEventParams")
        return cls(
            expect_int(epoch, "EnrollCronEventParams.EventEpoch"),
            expect_bytes(payload, "EnrollCronEventParams.Payload", max_len=1024),
        )


@dataclass(frozen=True, slots=True)
class CurrentTotalPowerReturn:
    raw_byte_power: int
    quality_adj_power: int
    pledge_collateral: int
    quality_adj_power_smoothed: FilterEstimate

    def to_cbor(self) -> list[Any]:
        return [
            encode_bigint(self.raw_byte_power),
            encode_bigint(self.quality_adj_power),
            encode_bigint(self.pledge_collateral),
            self.quality_adj_power_smoothed.to_cbor(),
        ]

    @classmethod
    def from_cbor(cls, raw: Any) -> "CurrentTotalPowerReturn":
        w = "CurrentTotalPowerReturn"
        raw_power, qa_power, pledge, smoothed = expect_tuple(raw, 4, w)
        return cls(
            expect_bigint(raw_power, f"{w}.RawBytePower"),
            expect_bigint(qa_power, f"{w}.QualityAdjPower"),
            expect_bigint(pledge, f"{w}.PledgeCollateral"),
            FilterEstimate.from_cbor(smoothed, f"{w}.QualityAdjPowerSmoothed"),
        )


def decode_pledge_delta(raw: Any) -> int:
    """UpdatePledgeTotal's params: a token amount (big integer) on its own."""
    return expect_bigint(raw, "PledgeDelta")


def constructor(rt: Runtime) -> None:
    rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    rt.set_state(PowerState.new(rt.store))


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
    exec_params = ExecParams(builtin.MINER_ACTOR_CODE, encode_params(constructor_params))
    sent = rt.send(builtin.INIT_ACTOR_ADDR, METHOD_EXEC, encode_params(exec_params), rt.value_received)
    if not sent.ok:
        raise ActorError(
            sent.exit_code, f"init.Exec of the miner failed with exit code {int(sent.exit_code)}"
        )
    executed = decode_return(sent.return_data, ExecReturn.from_cbor, "init.Exec")
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


def update_claimed_power(rt: Runtime, params: UpdateClaimedPowerParams) -> None:
    rt.validate_immediate_caller_type(builtin.MINER_ACTOR_CODE)
    state = rt.state(PowerState)
    claims = ClaimsTable.load(rt.store, state.claims)
    state = state.add_to_claim(
        rt.policy, claims, rt.caller, params.raw_byte_delta, params.quality_adjusted_delta
    )
    rt.set_state(replace(state, claims=claims.flush()))


def enroll_cron_event(rt: Runtime, params: EnrollCronEventParams) -> None:
    rt.validate_immediate_caller_type(builtin.MINER_ACTOR_CODE)
    if params.event_epoch < 0:
        raise ActorError(
            ExitCode.ErrIllegalArgument, f"cron event epoch {params.event_epoch} cannot be less than zero"
        )
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


def on_epoch_tick_end(rt: Runtime) -> None:
    """Deliver the due miner cron events, snapshot this epoch's totals and update the reward actor."""
    rt.validate_immediate_caller_is(builtin.CRON_ACTOR_ADDR)
    reward = call(
        rt,
        builtin.REWARD_ACTOR_ADDR,
        RewardMethod.ThisEpochReward,
        None,
        ThisEpochRewardReturn.from_cbor,
        "reward.ThisEpochReward",
    )
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
    sent = rt.send(
        builtin.REWARD_ACTOR_ADDR, RewardMethod.UpdateNetworkKPI, encode_params(encode_bigint(raw_power)), 0
    )
    if not sent.ok:
        raise ActorError(sent.exit_code, "failed to update network KPI with reward actor")


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


def update_pledge_total(rt: Runtime, pledge_delta: int) -> None:
    rt.validate_immediate_caller_type(builtin.MINER_ACTOR_CODE)
    state = rt.state(PowerState)
    if not ClaimsTable.load(rt.store, state.claims).contains(rt.caller):
        raise ActorError(
            ExitCode.ErrForbidden, f"unknown miner {rt.caller} forbidden to interact with power actor"
        )
    total = state.total_pledge_collateral + pledge_delta
    if total < 0:
        raise ActorError(ExitCode.ErrIllegalState, f"negative total pledge collateral {total}")
    rt.set_state(replace(state, total_pledge_collateral=total))


def current_total_power(rt: Runtime) -> CurrentTotalPowerReturn:
    rt.validate_immediate_caller_accept_any()
    state = rt.state(PowerState)
    return CurrentTotalPowerReturn(
        state.this_epoch_raw_byte_power,
        state.this_epoch_quality_adj_power,
        state.this_epoch_pledge_collateral,
        state.this_epoch_qa_power_smoothed,
    )


ACTOR = ActorDef(
    code=builtin.POWER_ACTOR_CODE,
    name="storagepower",
    state_type=PowerState,
    methods=(
        MethodDef(PowerMethod.Constructor, "Constructor", constructor),
        MethodDef(PowerMethod.CreateMiner, "CreateMiner", create_miner, CreateMinerParams.from_cbor),
        MethodDef(
            PowerMethod.UpdateClaimedPower,
            "UpdateClaimedPower",
            update_claimed_power,
            UpdateClaimedPowerParams.from_cbor,
        ),
        MethodDef(
            PowerMethod.EnrollCronEvent, "EnrollCronEvent", enroll_cron_event, EnrollCronEventParams.from_cbor
        ),
        MethodDef(PowerMethod.OnEpochTickEnd, "OnEpochTickEnd", on_epoch_tick_end),
        MethodDef(
            PowerMethod.UpdatePledgeTotal, "UpdatePledgeTotal", update_pledge_total, decode_pledge_delta
        ),
        MethodDef(PowerMethod.CurrentTotalPower, "CurrentTotalPower", current_total_power),
    ),
)
