"""Helpers the miner's methods share: its calls to other actors and address resolution."""

from typing import Final

from actors import builtin
from actors.account.types import AccountMethod
from actors.dispatch import METHOD_SEND
from actors.market.types import MarketMethod, OnMinerSectorsTerminateParams
from actors.miner.state import MinerInfo, MinerState
from actors.miner.types import CronEventPayload, PowerPair
from actors.power.types import (
    CurrentTotalPowerReturn,
    EnrollCronEventParams,
    PowerMethod,
    UpdateClaimedPowerParams,
)
from actors.reward.types import RewardMethod, ThisEpochRewardReturn
from actors.sends import call, send_or_abort
from actors.util.resolve import resolve_existing
from chain.encoding import dagcbor
from chain.encoding.bigint import encode_bigint
from chain.types.address import Address, Protocol
from chain.vm.exitcode import illegal_argument
from chain.vm.runtime import Runtime

# Randomness domain separation tags (go-state-types crypto/randomness.go).
TAG_WINDOW_POST_CHALLENGE_SEED: Final = 4
TAG_SEAL_RANDOMNESS: Final = 5
TAG_INTERACTIVE_SEAL_CHALLENGE_SEED: Final = 6
TAG_POST_CHAIN_COMMIT: Final = 9
# Deal IDs per OnMinerSectorsTerminate call (builtin-actors request_terminate_deals chunking).
MARKET_TERMINATE_CHUNK: Final = 8192


def load(rt: Runtime) -> tuple[MinerState, MinerInfo]:
    state = rt.state(MinerState)
    return state, state.get_info(rt.store)


def receiver_entropy(rt: Runtime) -> bytes:
    """The miner's address as CBOR: the entropy of its seal and PoSt randomness draws."""
    return dagcbor.encode(rt.receiver.to_cbor())


def resolve_control_address(rt: Runtime, raw: Address) -> Address:
    """The ID address of an owner or control address, which must be an account or multisig."""
    resolved, code = resolve_existing(rt, raw)
    if code not in builtin.CALLER_TYPES_SIGNABLE:
        raise illegal_argument(f"owner actor type must be a principal, was {code}")
    return resolved


def resolve_worker_address(rt: Runtime, raw: Address) -> Address:
    """The ID address of a worker: an account whose key is BLS (the worker signs blocks and VRFs)."""
    resolved, code = resolve_existing(rt, raw)
    if code != builtin.ACCOUNT_ACTOR_CODE:
        raise illegal_argument(f"worker actor type must be an account, was {code}")
    if raw.protocol != Protocol.BLS:
        key = call(rt, resolved, AccountMethod.PubkeyAddress, None, Address)
        if key.protocol != Protocol.BLS:
            raise illegal_argument(f"worker account {resolved} must have a BLS key")
    return resolved


def reward_stats(rt: Runtime) -> ThisEpochRewardReturn:
    return call(rt, builtin.REWARD_ACTOR_ADDR, RewardMethod.ThisEpochReward, None, ThisEpochRewardReturn)


def power_stats(rt: Runtime) -> CurrentTotalPowerReturn:
    return call(
        rt, builtin.STORAGE_POWER_ACTOR_ADDR, PowerMethod.CurrentTotalPower, None, CurrentTotalPowerReturn
    )


def burn(rt: Runtime, amount: int) -> None:
    if amount > 0:
        send_or_abort(rt, builtin.BURNT_FUNDS_ACTOR_ADDR, METHOD_SEND, None, amount, "burn")


def notify_pledge_changed(rt: Runtime, delta: int) -> None:
    if delta != 0:
        # UpdatePledgeTotal takes the bare big integer (abi.TokenAmount).
        send_or_abort(
            rt, builtin.STORAGE_POWER_ACTOR_ADDR, PowerMethod.UpdatePledgeTotal, encode_bigint(delta), 0
        )


def update_power(rt: Runtime, delta: PowerPair) -> None:
    if not delta.is_zero():
        params = UpdateClaimedPowerParams(delta.raw, delta.qa)
        send_or_abort(rt, builtin.STORAGE_POWER_ACTOR_ADDR, PowerMethod.UpdateClaimedPower, params, 0)


def enroll_cron_event(rt: Runtime, epoch: int, event_type: int) -> None:
    params = EnrollCronEventParams(epoch, CronEventPayload(event_type).to_bytes())
    send_or_abort(rt, builtin.STORAGE_POWER_ACTOR_ADDR, PowerMethod.EnrollCronEvent, params, 0)


def terminate_deals(rt: Runtime, epoch: int, deal_ids: list[int]) -> None:
    for start in range(0, len(deal_ids), MARKET_TERMINATE_CHUNK):
        chunk = tuple(deal_ids[start : start + MARKET_TERMINATE_CHUNK])
        params = OnMinerSectorsTerminateParams(epoch, chunk)
        send_or_abort(rt, builtin.STORAGE_MARKET_ACTOR_ADDR, MarketMethod.OnMinerSectorsTerminate, params, 0)


def validate_control_caller(rt: Runtime, info: MinerInfo) -> None:
    rt.validate_immediate_caller_is(*info.control_set())
