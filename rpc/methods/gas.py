"""The GasEstimate* methods (lotus api/api_full.go; node/impl/full/gas.go, node/impl/gasutils): the
arithmetic is chain/mpool/gas_estimate.py's; here the tipset is looked up and failures are answered.

Each estimate is made on the tipset its key names (the head for an empty key). A message that cannot
be estimated (it fails or runs out of gas when run) is an RpcError saying how.
"""

from chain.chainstore.store import ChainStoreError
from chain.encoding.errors import DecodeError
from chain.encoding.schema import BigInt, Int64, Uint64
from chain.mpool import gas_estimate
from chain.mpool.errors import MpoolError
from chain.store.blockstore import BlockNotFound
from chain.types.address import Address
from chain.types.message import Message
from chain.types.tipset import TipSetKey
from node.fullnode import FullNode
from rpc.errors import RpcError
from rpc.methods.mpool_types import MessageSendSpec
from rpc.methods.query import pool_refusal, read_or_answer, reason, tipset_of
from rpc.registry import READ, method

_READ_ERRORS = (BlockNotFound, ChainStoreError, DecodeError)


@method("GasEstimateMessageGas", perm=READ)
async def gas_estimate_message_gas(
    node: FullNode, message: Message, spec: MessageSendSpec | None, tsk: TipSetKey
) -> Message:
    """The message with its zero gas fields estimated (the gas limit with the pool's overestimation)
    and its fees capped at the spec's MaxFee (0 or no spec: 0.07 FIL)."""
    ts = await tipset_of(node, tsk)
    max_fee = spec.max_fee if spec is not None and spec.max_fee else gas_estimate.DEFAULT_MAX_FEE
    maximize = spec is not None and spec.maximize_fee_cap
    try:
        return await node.run_sync(
            lambda: gas_estimate.gas_estimate_message_gas(
                node.mpool, node.state, node.chain, message, ts, max_fee=max_fee, maximize_fee_cap=maximize
            )
        )
    except MpoolError as exc:
        raise pool_refusal(exc) from None
    except _READ_ERRORS as exc:
        raise RpcError(f"estimating gas on tipset {ts.key}: {reason(exc)}") from None


@method("GasEstimateGasLimit", perm=READ)
async def gas_estimate_gas_limit(node: FullNode, message: Message, tsk: TipSetKey) -> Int64:
    """The gas the message uses when run on the tipset after the sender's pending messages."""
    ts = await tipset_of(node, tsk)
    try:
        return await node.run_sync(gas_estimate.gas_estimate_gas_limit, node.mpool, node.state, message, ts)
    except MpoolError as exc:
        raise pool_refusal(exc) from None
    except _READ_ERRORS as exc:
        raise RpcError(f"estimating gas on tipset {ts.key}: {reason(exc)}") from None


@method("GasEstimateFeeCap", perm=READ)
async def gas_estimate_fee_cap(
    node: FullNode, message: Message, max_queue_blocks: Int64, tsk: TipSetKey
) -> BigInt:
    """A fee cap that covers the base fee after max_queue_blocks epochs of the largest rises, plus the
    message's premium."""
    ts = await tipset_of(node, tsk)
    denominator = node.policy.base_fee_max_change_denom
    try:
        return gas_estimate.gas_estimate_fee_cap(message, max_queue_blocks, ts, denominator)
    except OverflowError:
        raise RpcError(f"the base fee after {max_queue_blocks} epochs of rises is too large") from None


@method("GasEstimateGasPremium", perm=READ)
async def gas_estimate_gas_premium(
    node: FullNode, blocks: Uint64, sender: Address, gas_limit: Int64, tsk: TipSetKey
) -> BigInt:
    """A gas premium that gets a message into a block within about `blocks` epochs, from what recent
    messages paid (sender and gas limit are not used, as in Lotus)."""
    ts = await tipset_of(node, tsk)
    target = node.policy.block_gas_target
    doing = f"estimating the gas premium on tipset {ts.key}"
    return await read_or_answer(
        node, doing, _READ_ERRORS, gas_estimate.gas_estimate_gas_premium, node.chain, blocks, ts, target
    )
