"""The base fee of the next tipset, from how full the parent tipset was (Lotus chain/store/basefee.go,
ComputeNextBaseFee as it runs after the Smoke upgrade, and ComputeNextBaseFeeFromUtilization).

    delta = sum of the gas limits of the tipset's distinct messages / blocks - BlockGasTarget,
            capped to [-BlockGasTarget, +BlockGasTarget]
    next  = max(MinimumBaseFee, base + base * delta / BlockGasTarget / BaseFeeMaxChangeDenom)

so a full tipset raises the fee by 12.5 % and an empty one lowers it by 12.5 % (the arithmetic is
chain/vm/gas.py compute_next_base_fee). Messages count once even when several blocks carry them (by
CID, as Lotus), not once per sender nonce as the tipset applies them.
"""

from collections.abc import Iterable, Sequence

from chain.encoding.cid import CID
from chain.params import Policy
from chain.stmgr.chain import ChainReader
from chain.store.blockcache import cache_of
from chain.store.blockstore import Blockstore
from chain.types.message import Message, SignedMessage
from chain.types.tipset import TipSet
from chain.vm.gas import compute_next_base_fee

# A block's BLS and secp256k1 messages.
BlockMessages = tuple[Sequence[Message], Sequence[SignedMessage]]


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
    """The ParentBaseFee of ts's children (remembered when the syncer computed it from the messages it
    validated: see remember_base_fee)."""
    cache = cache_of(chain.blockstore)
    if cache is not None:
        found = cache.derived(_kind(ts, policy), ts.blocks[0].messages)
        if isinstance(found, int):
            return found
    return base_fee_of(ts, [chain.messages_for_block(header) for header in ts.blocks], policy)


def base_fee_of(ts: TipSet, messages: Sequence[BlockMessages], policy: Policy) -> int:
    """compute_base_fee(chain, ts, policy) from the messages of each of ts's blocks (in any order)."""
    used: list[tuple[CID, int]] = []
    for bls, secp in messages:
        used.extend((m.cid(), m.gas_limit) for m in bls)
        used.extend((m.cid(), m.message.gas_limit) for m in secp)
    return compute_next_base_fee(ts.blocks[0].parent_base_fee, unique_gas_limit(used), len(ts.blocks), policy)


def remember_base_fee(
    store: Blockstore, ts: TipSet, messages: Sequence[BlockMessages], policy: Policy
) -> None:
    """Remember ts's base fee from its blocks' messages in hand (each block's checked against its
    header's Messages root: validated, or from a store that reads them by that root), so that
    validating ts's children does not read and decode them again."""
    cache = cache_of(store)
    if cache is not None:
        cache.remember(_kind(ts, policy), ts.blocks[0].messages, base_fee_of(ts, messages, policy))


def _kind(ts: TipSet, policy: Policy) -> tuple[object, ...]:
    return ("base-fee", ts.key, policy)
