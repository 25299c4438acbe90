"""Helpers the miner's methods share: its calls to other actors and address resolution."""

from typing import Final

from actors import builtin
from actors.dispatch import METHOD_SEND, encode_params
from actors.market.types import OnMinerSectorsTerminateParams
from actors.miner import ext
from actors.miner.state import MinerInfo, MinerState
from actors.miner.types import CronEventPayload, PowerPair
from actors.power import CurrentTotalPowerReturn, EnrollCronEventParams, PowerMethod, UpdateClaimedPowerParams
from actors.reward import RewardMethod, ThisEpochRewardReturn
from actors.sends import call, send_or_abort
from chain.encoding import dagcbor
from chain.encoding.bigint import encode_bigint
from chain.types.address import Address, Protocol
from chain.vm.exitcode import ActorError, ExitCode
from chain.vm.runtime import Runtime

# Randomness domain separation tags (go-state-types crypto/randomness.go).
TAG_WINDOW_POST_CHALLENGE_SEED: Final = 4
TAG_SEAL_RANDOMNESS: Final = 5
TAG_INTERACTIVE_SEAL_CHALLENGE_SEED: Final = 6
TAG_POST_CHAIN_COMMIT: Final = 9


def load(rt: Runtime) -> tuple[MinerState, MinerInfo]:
    state = rt.state(MinerState)
    return state, state.get_info(rt.store)


def receiver_entropy(rt: Runtime) -> bytes:
    """The miner's address as CBOR: the entropy of its seal and PoSt randomness draws."""
    return dagcbor.encode(rt.receiver.to_cbor())


def resolve_control_address(rt: Runtime, raw: Address) -> Address:
    """The ID address of an owner or control address, which must be an account or multisig."""
    resolved = rt.resolve_address(raw)
    if resolved is None:
        raise ActorError(ExitCode.ErrIllegalArgument, f"unable to resolve address: {raw}")
    code = rt.get_actor_code_cid(resolved)
    if code is None:
        raise ActorError(ExitCode.ErrIllegalArgument, f"no code for address: {resolved}")
    if code not in builtin.CALLER_TYPES_SIGNABLE:
        raise ActorError(ExitCode.ErrIllegalArgument, f"owner actor type must be a principal, was {code}")
    return resolved


def resolve_worker_address(rt: Runtime, raw: Address) -> Address:
    """The ID address of a worker: an account whose key is BLS (the worker signs blocks and VRFs)."""
    resolved = rt.resolve_address(raw)
    if resolved is None:
        raise ActorError(ExitCode.ErrIllegalArgument, f"unable to resolve address: {raw}")
    code = rt.get_actor_code_cid(resolved)
    if code is None:
        raise ActorError(ExitCode.ErrIllegalArgument, f"no code for address: {resolved}")
    if code != builtin.ACCOUNT_ACTOR_CODE:
        raise ActorError(ExitCode.ErrIllegalArgument, f"worker actor type must be an account, was {code}")
    if raw.protocol != Protocol.BLS:
        key = call(rt, resolved, ext.ACCOUNT_PUBKEY_ADDRESS, None, _address, "account.PubkeyAddress")
        if key.protocol != Protocol.BLS:
            raise ActorError(ExitCode.ErrIllegalArgument, f"worker account {resolved} must have a BLS key")
    return resolved


def _address(raw: object) -> Address:
    return Address.from_cbor(raw, "PubkeyAddress return")


def reward_stats(rt: Runtime) -> ThisEpochRewardReturn:
    return call(
        rt,
        builtin.REWARD_ACTOR_ADDR,
        RewardMethod.ThisEpochReward,
        None,
        ThisEpochRewardReturn.from_cbor,
        "reward.ThisEpochReward",
    )


def power_stats(rt: Runtime) -> CurrentTotalPowerReturn:
    return call(
        rt,
        builtin.STORAGE_POWER_ACTOR_ADDR,
        PowerMethod.CurrentTotalPower,
        None,
        CurrentTotalPowerReturn.from_cbor,
        "power.CurrentTotalPower",
    )


def burn(rt: Runtime, amount: int) -> None:
    if amount > 0:
        send_or_abort(rt, builtin.BURNT_FUNDS_ACTOR_ADDR, METHOD_SEND, None, amount, "burn")


def notify_pledge_changed(rt: Runtime, delta: int) -> None:
    if delta != 0:
        send_or_abort(
            rt,
            builtin.STORAGE_POWER_ACTOR_ADDR,
            PowerMethod.UpdatePledgeTotal,
            encode_bigint(delta),
            0,
            "power.UpdatePledgeTotal",
        )


def update_power(rt: Runtime, delta: PowerPair) -> None:
    if not delta.is_zero():
        send_or_abort(
            rt,
            builtin.STORAGE_POWER_ACTOR_ADDR,
            PowerMethod.UpdateClaimedPower,
            UpdateClaimedPowerParams(delta.raw, delta.qa),
            0,
            f"power.UpdateClaimedPower({delta})",
        )


def enroll_cron_event(rt: Runtime, epoch: int, event_type: int) -> None:
    payload = encode_params(CronEventPayload(event_type))
    send_or_abort(
        rt,
        builtin.STORAGE_POWER_ACTOR_ADDR,
        PowerMethod.EnrollCronEvent,
        EnrollCronEventParams(epoch, payload),
        0,
        "power.EnrollCronEvent",
    )


def terminate_deals(rt: Runtime, epoch: int, deal_ids: list[int]) -> None:
    for start in range(0, len(deal_ids), ext.MARKET_TERMINATE_CHUNK):
        chunk = tuple(deal_ids[start : start + ext.MARKET_TERMINATE_CHUNK])
        send_or_abort(
            rt,
            builtin.STORAGE_MARKET_ACTOR_ADDR,
            ext.MARKET_ON_MINER_SECTORS_TERMINATE,
            OnMinerSectorsTerminateParams(epoch, chunk),
            0,
            "market.OnMinerSectorsTerminate",
        )


def validate_control_caller(rt: Runtime, info: MinerInfo) -> None:
    rt.validate_immediate_caller_is(*info.control_set())
