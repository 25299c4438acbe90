"""Gas estimates for messages about to be sent (lotus node/impl/gasutils/gasutils.go, full/gas.go).

- GasEstimateGasLimit: run the message on the state after the tipset, after the sender's pending
  messages, with the block gas limit and no fees; the gas it used (an out-of-gas or failing run is an
  error saying why).
- GasEstimateFeeCap: the tipset's ParentBaseFee grown as if it rose by the maximum (1/8) in each of
  the next max_queue_blocks epochs, plus the message's premium.
- GasEstimateGasPremium: the premium that the messages of the last 2 x n_blocks tipsets paid at about
  the median of their gas (weighted by gas limit), at least Lotus's minimum, with 0.5% noise so that
  clients do not all pick the same value.
- GasEstimateMessageGas fills what the message leaves at zero (the gas limit with the pool's
  overestimation factor, 1.25), then caps the total fee at max_fee (Lotus's default 0.07 FIL).
"""

import math
import random
from collections.abc import Sequence
from dataclasses import replace
from typing import Final

from chain.crypto.signature import Signature, SigType
from chain.mpool.errors import MpoolError
from chain.mpool.pool import MessagePool
from chain.mpool.provider import ChainAccess, GasStateAccess
from chain.types.address import Protocol
from chain.types.message import Message, SignedMessage
from chain.types.tipset import TipSet
from chain.vm.exitcode import ExitCode

MIN_GAS_PREMIUM: Final = 100_000
MAX_GAS_HISTORY: Final = 128
# Lotus's DefaultMaxFee (0.07 FIL): the most GasEstimateMessageGas lets a message pay in total fees.
DEFAULT_MAX_FEE: Final = 7 * 10**16
_SECP_SIGNATURE_PLACEHOLDER: Final = Signature(SigType.SECP256K1, bytes(65))


class GasEstimationError(MpoolError):
    """The message cannot be estimated: it runs out of gas or fails; the message says how."""


def gas_estimate_gas_limit(pool: MessagePool, state: GasStateAccess, msg: Message, ts: TipSet) -> int:
    """The gas msg uses when run now (Lotus GasEstimateGasLimit, without the overestimation)."""
    # The sender's pending messages run first, up to the one this message would replace; the message
    # then takes the nonce it would have (Lotus sets it from the state after the prior messages).
    prior: list[SignedMessage] = []
    nonce = None
    for pending in pool.pending_for(msg.from_):
        if pending.message.nonce == msg.nonce:
            nonce = msg.nonce
            break
        prior.append(pending)
    if nonce is None:
        nonce = pool.get_nonce(msg.from_)
    probe = replace(msg, nonce=nonce, gas_limit=pool.policy.block_gas_limit, gas_fee_cap=0, gas_premium=0)
    run: Message | SignedMessage = probe
    if msg.from_.protocol == Protocol.SECP256K1:
        run = SignedMessage(probe, _SECP_SIGNATURE_PLACEHOLDER)
    ret = state.call_with_gas(run, prior, ts)
    if ret.exit_code == ExitCode.SysErrOutOfGas:
        raise GasEstimationError(f"gas estimation failed: message execution ran out of gas: {ret.error}")
    if ret.exit_code != ExitCode.Ok:
        code = ret.exit_code
        name = ExitCode(code).name if code in ExitCode._value2member_map_ else str(code)
        raise GasEstimationError(
            f"gas estimation failed: message execution failed (exit=[{name}({code})], vm error=[{ret.error}])"
        )
    return ret.receipt.gas_used


def gas_estimate_fee_cap(
    msg: Message, max_queue_blocks: int, ts: TipSet, base_fee_max_change_denom: int
) -> int:
    """A fee cap that still covers the base fee after max_queue_blocks epochs of maximal rises."""
    increase = math.pow(1 + 1 / base_fee_max_change_denom, max_queue_blocks)
    parent_base_fee = ts.blocks[0].parent_base_fee
    return parent_base_fee * int(increase * (1 << 8)) // (1 << 8) + msg.gas_premium


def median_gas_premium(prices: Sequence[tuple[int, int]], blocks: int, block_gas_target: int) -> int:
    """The premium at about the 47.5th percentile of gas (from the top), over (premium, gas limit)
    pairs of `blocks` blocks (Lotus medianGasPremium)."""
    ordered = sorted(prices, key=lambda p: p[0], reverse=True)
    at = block_gas_target * blocks // 2 + block_gas_target * blocks // (2 * 20)
    prev1 = prev2 = 0
    for premium, limit in ordered:
        prev1, prev2 = premium, prev1
        at -= limit
        if at < 0:
            break
    return (prev1 + prev2) // 2 if prev2 != 0 else prev1


def gas_estimate_gas_premium(
    chain: ChainAccess,
    n_blocks: int,
    ts: TipSet,
    block_gas_target: int,
    rng: random.Random | None = None,
) -> int:
    """A premium that gets a message in within about n_blocks epochs (Lotus GasEstimateGasPremium)."""
    n_blocks = min(max(n_blocks, 1), MAX_GAS_HISTORY)
    prices: list[tuple[int, int]] = []
    blocks = 0
    current = ts
    for _ in range(n_blocks * 2):
        if current.height == 0:
            break
        parent = chain.load_tipset(current.parents)
        blocks += len(parent.blocks)
        for cmsg in chain.messages_for_tipset(parent):
            m = cmsg.message if isinstance(cmsg, SignedMessage) else cmsg
            prices.append((m.gas_premium, m.gas_limit))
        current = parent
    premium = median_gas_premium(prices, blocks, block_gas_target)
    if premium < MIN_GAS_PREMIUM:
        premium = {1: 2 * MIN_GAS_PREMIUM, 2: MIN_GAS_PREMIUM * 3 // 2}.get(n_blocks, MIN_GAS_PREMIUM)
    # Mean 1, standard deviation 0.005: 95% of estimates within 1% of the value.
    noise = 1 + (rng or random).gauss(0, 0.005)
    precision = 32
    return premium * (int(noise * (1 << precision)) + 1) // (1 << precision)


def cap_gas_fee(msg: Message, max_fee: int, *, maximize_fee_cap: bool = False) -> Message:
    """Lower the fee cap so that GasFeeCap * GasLimit stays within max_fee (or set it to exactly that
    with maximize_fee_cap), and keep the premium under the fee cap (Lotus CapGasFee)."""
    fee_cap = msg.gas_fee_cap
    if maximize_fee_cap or fee_cap * msg.gas_limit > max_fee:
        fee_cap = max_fee // msg.gas_limit
    return replace(msg, gas_fee_cap=fee_cap, gas_premium=min(fee_cap, msg.gas_premium))


def gas_estimate_message_gas(
    pool: MessagePool,
    state: GasStateAccess,
    chain: ChainAccess,
    msg: Message,
    ts: TipSet,
    *,
    max_fee: int = DEFAULT_MAX_FEE,
    maximize_fee_cap: bool = False,
    rng: random.Random | None = None,
) -> Message:
    """msg with its zero gas fields estimated and its fee capped (Lotus GasEstimateMessageGas)."""
    policy = pool.policy
    if msg.gas_limit == 0:
        used = gas_estimate_gas_limit(pool, state, msg, ts)
        limit = int(used * pool.config.gas_limit_overestimation)
        msg = replace(msg, gas_limit=min(limit, policy.block_gas_limit))
    if msg.gas_premium == 0:
        premium = gas_estimate_gas_premium(chain, 10, ts, policy.block_gas_target, rng)
        msg = replace(msg, gas_premium=premium)
    if msg.gas_fee_cap == 0:
        msg = replace(msg, gas_fee_cap=gas_estimate_fee_cap(msg, 20, ts, policy.base_fee_max_change_denom))
    return cap_gas_fee(msg, max_fee, maximize_fee_cap=maximize_fee_cap)
