"""The base fee of the next tipset, from how full the parent tipset was (Lotus chain/store/basefee.go,
ComputeNextBaseFee as it runs after the Smoke upgrade, and ComputeNextBaseFeeFromUtilization).

    delta = sum of the gas limits of the tipset's distinct messages / blocks - BlockGasTarget,
            capped to [-BlockGasTarget, +BlockGasTarget]
    next  = max(MinimumBaseFee, base + base * delta / BlockGasTarget / BaseFeeMaxChangeDenom)

so a full tipset raises the fee by 12.5 % and an empty one lowers it by 12.5 % (the arithmetic is
chain/vm/gas.py compute_next_base_fee). Messages count once even when several blocks carry them (by
CID, as Lotus), not once per sender nonce as the tipset applies them.
"""

from collections.abc import Iterable

from chain.encoding.cid import CID
from chain.params import Policy
from chain.stmgr.chain import ChainReader
from chain.types.tipset import TipSet
from chain.vm.gas import compute_next_base_fee


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
        bls, secp = chain.messages_for_block(header)
        used.extend((m.cid(), m.gas_limit) for m in bls)
        used.extend((m.cid(), m.message.gas_limit) for m in secp)
    return compute_next_base_fee(ts.blocks[0].parent_base_fee, unique_gas_limit(used), len(ts.blocks), policy)
