"""The storage power actor on MockRuntime."""

import pytest

from actors import builtin
from actors.dispatch import encode_params
from actors.init.types import ExecParams as InitExecParams
from actors.init.types import InitMethod
from actors.miner.types import CronEventPayload, DeferredCronEventParams, MinerConstructorParams, MinerMethod
from actors.power import types as power
from actors.power.actor import ACTOR
from actors.power.state import Claim, ClaimsTable, CronQueue, PowerState
from actors.reward.types import RewardMethod, ThisEpochRewardReturn
from actors.smoothing import FilterEstimate
from chain.encoding import dagcbor
from chain.encoding.bigint import encode_bigint
from chain.types.address import Address
from chain.vm.exitcode import ActorError, ExitCode
from tests.actors.aborts import aborts
from tests.actors.mock_runtime import MockRuntime

OWNER = Address.new_id(101)
WORKER = Address.new_id(102)
MINER = Address.new_id(1000)
MINER2 = Address.new_id(1001)
ROBUST = Address.new_actor(b"miner")
WPOST_2K = 10  # StackedDRGWindow2KiBV1_1
REWARD_RET = ThisEpochRewardReturn(FilterEstimate.of(10**18, 0), 1 << 50)


def constructed() -> MockRuntime:
    rt = MockRuntime(receiver=builtin.STORAGE_POWER_ACTOR_ADDR)
    rt.expect_validate_caller_addr(builtin.SYSTEM_ACTOR_ADDR)
    rt.call(ACTOR, power.PowerMethod.Constructor)
    rt.verify()
    return rt


def create_miner(rt: MockRuntime, miner: Address = MINER, value: int = 0) -> power.CreateMinerReturn:
    params = power.CreateMinerParams(OWNER, WORKER, WPOST_2K, b"peer", (b"/ip4/127.0.0.1",))
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, OWNER)
    rt.value_received = value
    rt.balance += value
    ctor = MinerConstructorParams(OWNER, WORKER, (), WPOST_2K, b"peer", (b"/ip4/127.0.0.1",))
    created = power.CreateMinerReturn(miner, ROBUST)
    rt.expect_validate_caller_type(*builtin.CALLER_TYPES_SIGNABLE)
    rt.expect_send(
        builtin.INIT_ACTOR_ADDR,
        InitMethod.Exec,
        InitExecParams(builtin.MINER_ACTOR_CODE, encode_params(ctor)),
        value,
        created,
    )
    ret = power.CreateMinerReturn.from_cbor(rt.call_decoded(ACTOR, power.PowerMethod.CreateMiner, params))
    rt.verify()
    rt.value_received = 0
    return ret


def claim_of(rt: MockRuntime, miner: Address) -> Claim | None:
    return ClaimsTable.load(rt.store, rt.state(PowerState).claims).get(miner)


def as_miner(rt: MockRuntime, miner: Address = MINER) -> None:
    rt.set_caller(builtin.MINER_ACTOR_CODE, miner)


def miner_call(rt: MockRuntime, method: power.PowerMethod, params: object, miner: Address) -> None:
    """A call of the power actor by a miner actor (the caller type the method validates)."""
    as_miner(rt, miner)
    rt.expect_validate_caller_type(builtin.MINER_ACTOR_CODE)
    rt.call(ACTOR, method, params)
    rt.verify()


def update_power(rt: MockRuntime, raw: int, qa: int, miner: Address = MINER) -> None:
    miner_call(rt, power.PowerMethod.UpdateClaimedPower, power.UpdateClaimedPowerParams(raw, qa), miner)


def test_constructor() -> None:
    rt = constructed()
    state = rt.state(PowerState)
    assert state.miner_count == 0
    assert state.proof_validation_batch is None
    assert PowerState.from_cbor(dagcbor.decode(dagcbor.encode(state.to_cbor()))) == state
    rt2 = MockRuntime(receiver=builtin.STORAGE_POWER_ACTOR_ADDR, caller=OWNER)
    rt2.expect_validate_caller_addr(builtin.SYSTEM_ACTOR_ADDR)
    with aborts(ExitCode.SysErrForbidden):
        rt2.call(ACTOR, power.PowerMethod.Constructor)


def test_create_miner_opens_a_claim() -> None:
    rt = constructed()
    ret = create_miner(rt, value=500)
    assert ret == power.CreateMinerReturn(MINER, ROBUST)
    assert claim_of(rt, MINER) == Claim(WPOST_2K, 0, 0)
    assert rt.state(PowerState).miner_count == 1
    assert rt.balance == 0  # the value went on to the init actor


def test_create_miner_rejects_non_signable_callers_and_failed_exec() -> None:
    rt = constructed()
    rt.set_caller(builtin.MINER_ACTOR_CODE, MINER)
    rt.expect_validate_caller_type(*builtin.CALLER_TYPES_SIGNABLE)
    params = power.CreateMinerParams(OWNER, WORKER, WPOST_2K, b"", ())
    with aborts(ExitCode.SysErrForbidden):
        rt.call(ACTOR, power.PowerMethod.CreateMiner, params)

    rt = constructed()
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, OWNER)
    rt.expect_validate_caller_type(*builtin.CALLER_TYPES_SIGNABLE)
    ctor = MinerConstructorParams(OWNER, WORKER, (), WPOST_2K, b"", ())
    exec_params = InitExecParams(builtin.MINER_ACTOR_CODE, encode_params(ctor))
    rt.expect_send(
        builtin.INIT_ACTOR_ADDR, InitMethod.Exec, exec_params, 0, None, ExitCode.ErrIllegalArgument
    )
    with aborts(ExitCode.ErrIllegalArgument):
        rt.call(ACTOR, power.PowerMethod.CreateMiner, params)
    assert rt.state(PowerState).miner_count == 0


def test_update_claimed_power_and_the_consensus_minimum() -> None:
    rt = constructed()
    create_miner(rt)
    update_power(rt, 1024, 1024)
    state = rt.state(PowerState)
    assert claim_of(rt, MINER) == Claim(WPOST_2K, 1024, 1024)
    # below the devnet minimum of 2048 bytes: committed but not counted in the consensus totals
    assert (state.total_bytes_committed, state.total_raw_byte_power) == (1024, 0)
    assert state.miner_meets_consensus_minimum(rt.store, rt.policy, MINER)  # fewer than 4 miners above
    update_power(rt, 2048, 20480)
    state = rt.state(PowerState)
    assert state.miner_above_min_power_count == 1
    assert (state.total_raw_byte_power, state.total_quality_adj_power) == (3072, 21504)
    update_power(rt, -2048, -20480)
    state = rt.state(PowerState)
    assert (state.miner_above_min_power_count, state.total_raw_byte_power, state.total_bytes_committed) == (
        0,
        0,
        1024,
    )


def test_update_claimed_power_rejects() -> None:
    rt = constructed()
    create_miner(rt)
    as_miner(rt, MINER2)
    rt.expect_validate_caller_type(builtin.MINER_ACTOR_CODE)
    with aborts(ExitCode.ErrNotFound):
        rt.call(ACTOR, power.PowerMethod.UpdateClaimedPower, power.UpdateClaimedPowerParams(1, 1))
    as_miner(rt)
    rt.expect_validate_caller_type(builtin.MINER_ACTOR_CODE)
    with aborts(ExitCode.ErrIllegalState):
        rt.call(ACTOR, power.PowerMethod.UpdateClaimedPower, power.UpdateClaimedPowerParams(-1, 0))
    rt.set_caller(builtin.ACCOUNT_ACTOR_CODE, OWNER)
    rt.expect_validate_caller_type(builtin.MINER_ACTOR_CODE)
    with aborts(ExitCode.SysErrForbidden):
        rt.call(ACTOR, power.PowerMethod.UpdateClaimedPower, power.UpdateClaimedPowerParams(1, 1))


def enroll(rt: MockRuntime, epoch: int, payload: bytes, miner: Address = MINER) -> None:
    miner_call(rt, power.PowerMethod.EnrollCronEvent, power.EnrollCronEventParams(epoch, payload), miner)


def test_enroll_cron_event() -> None:
    rt = constructed()
    create_miner(rt)
    enroll(rt, 5, b"\x81\x01")
    enroll(rt, 5, b"\x81\x02")
    queue = CronQueue.load(rt.store, rt.state(PowerState).cron_event_queue)
    assert [e.callback_payload for e in queue.events_at(5)] == [b"\x81\x01", b"\x81\x02"]
    as_miner(rt)
    rt.expect_validate_caller_type(builtin.MINER_ACTOR_CODE)
    with aborts(ExitCode.ErrIllegalArgument):
        rt.call(ACTOR, power.PowerMethod.EnrollCronEvent, power.EnrollCronEventParams(-1, b""))


def tick(rt: MockRuntime, deliveries: list[tuple[Address, bytes, ExitCode]], raw_power: int) -> None:
    rt.caller = builtin.CRON_ACTOR_ADDR
    smoothed = rt.state(PowerState).this_epoch_qa_power_smoothed
    rt.expect_validate_caller_addr(builtin.CRON_ACTOR_ADDR)
    rt.expect_send(builtin.REWARD_ACTOR_ADDR, RewardMethod.ThisEpochReward, None, 0, REWARD_RET)
    for miner, payload, code in deliveries:
        params = DeferredCronEventParams(payload, REWARD_RET.this_epoch_reward_smoothed, smoothed)
        rt.expect_send(miner, MinerMethod.OnDeferredCronEvent, params, 0, None, code)
    rt.expect_send(builtin.REWARD_ACTOR_ADDR, RewardMethod.UpdateNetworkKPI, encode_bigint(raw_power), 0)
    rt.call(ACTOR, power.PowerMethod.OnEpochTickEnd)
    rt.verify()


def test_on_epoch_tick_end_delivers_due_events_and_updates_reward() -> None:
    rt = constructed()
    create_miner(rt)
    create_miner(rt, MINER2)
    update_power(rt, 4096, 4096)
    payload = dagcbor.encode(CronEventPayload(1).to_cbor())
    enroll(rt, 2, payload)
    enroll(rt, 3, payload, MINER2)
    rt.curr_epoch = 1
    tick(rt, [], 4096)
    rt.curr_epoch = 2
    tick(rt, [(MINER, payload, ExitCode.Ok)], 4096)
    # MINER2's cron fails at epoch 3: its claim is removed
    rt.curr_epoch = 3
    tick(rt, [(MINER2, payload, ExitCode.ErrIllegalState)], 4096)
    state = rt.state(PowerState)
    assert claim_of(rt, MINER2) is None
    assert state.miner_count == 1
    assert state.first_cron_epoch == 4
    assert state.this_epoch_raw_byte_power == 4096
    rt.expect_validate_caller_any()
    ret = power.CurrentTotalPowerReturn.from_cbor(rt.call_decoded(ACTOR, power.PowerMethod.CurrentTotalPower))
    assert ret == power.CurrentTotalPowerReturn(4096, 4096, 0, state.this_epoch_qa_power_smoothed)


def test_on_epoch_tick_end_catches_up_a_long_gap_and_skips_unknown_miners() -> None:
    rt = constructed()
    create_miner(rt)
    payload = dagcbor.encode(CronEventPayload(1).to_cbor())
    enroll(rt, 10, payload)
    enroll(rt, 5000, payload, MINER2)  # MINER2 has no claim
    rt.curr_epoch = 6000
    tick(rt, [(MINER, payload, ExitCode.Ok)], 0)
    assert list(CronQueue.load(rt.store, rt.state(PowerState).cron_event_queue).epochs()) == []


def test_on_epoch_tick_end_only_from_cron() -> None:
    rt = constructed()
    rt.caller = OWNER
    rt.expect_validate_caller_addr(builtin.CRON_ACTOR_ADDR)
    with aborts(ExitCode.SysErrForbidden):
        rt.call(ACTOR, power.PowerMethod.OnEpochTickEnd)


def test_update_pledge_total() -> None:
    rt = constructed()
    create_miner(rt)
    as_miner(rt)
    rt.expect_validate_caller_type(builtin.MINER_ACTOR_CODE)
    rt.call(ACTOR, power.PowerMethod.UpdatePledgeTotal, encode_bigint(700))
    assert rt.state(PowerState).total_pledge_collateral == 700
    rt.expect_validate_caller_type(builtin.MINER_ACTOR_CODE)
    with aborts(ExitCode.ErrIllegalState):
        rt.call(ACTOR, power.PowerMethod.UpdatePledgeTotal, encode_bigint(-701))
    as_miner(rt, MINER2)
    rt.expect_validate_caller_type(builtin.MINER_ACTOR_CODE)
    with aborts(ExitCode.ErrForbidden):
        rt.call(ACTOR, power.PowerMethod.UpdatePledgeTotal, encode_bigint(1))


def test_total_power_counts_only_miners_above_minimum_once_enough_are() -> None:
    rt = constructed()
    miners = [Address.new_id(2000 + i) for i in range(5)]
    for miner in miners:
        create_miner(rt, miner)
    for miner in miners[:4]:
        update_power(rt, 4096, 4096, miner)
    update_power(rt, 1024, 1024, miners[4])
    state = rt.state(PowerState)
    assert state.current_total_power(rt.policy) == (4 * 4096, 4 * 4096)
    assert not state.miner_meets_consensus_minimum(rt.store, rt.policy, miners[4])
    assert state.miner_meets_consensus_minimum(rt.store, rt.policy, miners[0])
    with pytest.raises(ActorError):
        state.miner_meets_consensus_minimum(rt.store, rt.policy, MINER)
