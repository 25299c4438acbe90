"""The base fee of the next tipset, from how full the parent tipset was (Lotus chain/store/basefee.go,
ComputeNextBaseFee as it runs after the Smoke upgrade, and ComputeNextBaseFeeFromUtilization).

    delta = sum of the gas limits of the tipset's distinct messages / blocks - BlockGasTarget,
            capped to [-BlockGasTarget, +BlockGasTarget]
    next  = max(MinimumBaseFee, base + base * delta / BlockGasTarget / BaseFeeMaxChangeDenom)

so a full tipset raises the fee by 12.5 % and an empty one lowers it by 12.5 %. Messages count once
even when several blocks carry them (by CID). Go's big.Int Div is Euclidean, which for a positive
divisor is Python's floor division: a falling fee rounds down, as in Lotus.
"""

from collections.abc import Iterable

from chain.encoding.cid import CID
from chain.params import Policy
from chain.stmgr.chain import ChainReader
from chain.types.tipset import TipSet


def next_base_fee(base_fee: int, gas_limit_used: int, blocks: int, policy: Policy) -> int:
    if blocks < 1:
        raise ValueError("a tipset has at least one block")
    target = policy.block_gas_target
    delta = gas_limit_used // blocks - target
    delta = max(-target, min(target, delta))
    change = base_fee * delta // target // policy.base_fee_max_change_denom
    return max(policy.minimum_base_fee, base_fee + change)


def unique_gas_limit(messages: Iterable[tuple[CID, int]]) -> int:
    """Sum of gas limits over distinct message CIDs."""
    seen: set[CID] = set()
    total = 0
    for cid, gas_limit in messages:
        if cid not in seen:
            seen.add(cid)
            total += gas_limit
    return total


def compute_base_fee(chain: ChainReader, ts: TipSet, policy: Policy) -> int:
    """The ParentBaseFee of ts's children."""
    used: list[tuple[CID, int]] = []
    for header in ts.blocks:
        bls, secp = chain.block_messages(header)
        used.extend((m.cid(), m.gas_limit) for m in bls)
        used.extend((m.cid(), m.message.gas_limit) for m in secp)
    return next_base_fee(ts.blocks[0].parent_base_fee, unique_gas_limit(used), len(ts.blocks), policy)
