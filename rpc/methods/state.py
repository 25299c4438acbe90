"""State methods about the network, actors and messages (lotus node/impl/full/state.go, api/v0api).

Queries "at a tipset" read its parent state, as Lotus's (the empty key is the head). Every query runs
in a worker thread (rpc/methods/query.py). The miner and market queries are in state_miner.py and
state_market.py.

Where filpy departs from Lotus: every query that does not find an actor answers with the
ActorNotFound code (Lotus gives it only from StateLookupID; its other methods answer code 1 with the
same words), and a null `limit` of StateWaitMsg/StateSearchMsg means "no limit" (Go reads null as 0,
then relies on its message index to find older messages; filpy searches the chain instead).
"""

import time
from typing import Final

import structlog

from actors.dispatch import METHOD_SEND, MethodDef
from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.schema import BigInt, Bytes, ChainEpoch, Int64, Uint64, kind_of
from chain.state.tree import Actor
from chain.stmgr import search
from chain.stmgr.actors import ActorNotFound
from chain.stmgr.chain import LOOKBACK_NO_LIMIT
from chain.stmgr.manager import MessageNotFound
from chain.types.address import Address
from chain.types.message import Message, SignedMessage
from chain.types.receipt import MessageReceipt
from chain.types.tipset import EMPTY_TSK, TipSet, TipSetKey
from chain.vm.gas import GasOutputs
from node.fullnode import FullNode
from rpc.errors import RpcError, answer_errors
from rpc.methods.query import DrawFn, at_tipset, load_tipset, state_errors
from rpc.methods.state_types import (
    ActorState,
    Decoded,
    ExecutionTrace,
    ForkUpgradeParams,
    InvocResult,
    MessageTrace,
    MsgGasCost,
    MsgLookup,
    NetworkParams,
    ReturnTrace,
)
from rpc.registry import READ, method

_log = structlog.get_logger(__name__)

# The multicodec of DAG-CBOR: what an ExecutionTrace gives as the codec of non-empty params and returns.
DAG_CBOR_CODEC: Final = 0x51
# Lotus's epoch for an upgrade a network has not scheduled (buildconstants: 9999999999).
UNSCHEDULED: Final = 9_999_999_999
# Each network upgrade in ForkUpgradeParams and the network version it brought (Lotus
# chain/stmgr/forks.go): an upgrade at or below the node's version happened before its genesis, and
# is written -1, -2, ... in order as Lotus's devnets write them.
UPGRADES: Final = (
    ("upgrade_breeze_height", 1),
    ("upgrade_smoke_height", 2),
    ("upgrade_ignition_height", 3),
    ("upgrade_refuel_height", 3),
    ("upgrade_assembly_height", 4),
    ("upgrade_tape_height", 5),
    ("upgrade_liftoff_height", 5),
    ("upgrade_kumquat_height", 6),
    ("upgrade_calico_height", 7),
    ("upgrade_persian_height", 8),
    ("upgrade_orange_height", 9),
    ("upgrade_claus_height", 9),
    ("upgrade_trust_height", 10),
    ("upgrade_norwegian_height", 11),
    ("upgrade_turbo_height", 12),
    ("upgrade_hyperdrive_height", 13),
    ("upgrade_chocolate_height", 14),
    ("upgrade_oh_snap_height", 15),
    ("upgrade_skyr_height", 16),
    ("upgrade_shark_height", 17),
    ("upgrade_hygge_height", 18),
    ("upgrade_lightning_height", 19),
    ("upgrade_thunder_height", 20),
    ("upgrade_watermelon_height", 21),
    ("upgrade_dragon_height", 22),
    ("upgrade_phoenix_height", 22),
    ("upgrade_waffle_height", 23),
    ("upgrade_tuktuk_height", 24),
    ("upgrade_teep_height", 25),
    ("upgrade_tock_height", 26),
    ("upgrade_golden_week_height", 27),
    ("upgrade_fire_horse_height", 28),
    ("upgrade_xx_height", 29),
)

# -- the network ----------------------------------------------------------------------------------------


@method("StateNetworkName", perm=READ)
async def state_network_name(node: FullNode) -> str:
    """The name of the network the node follows (from the init actor at the head)."""
    return await at_tipset(node, EMPTY_TSK, node.state.network_name)


@method("StateNetworkVersion", perm=READ)
async def state_network_version(node: FullNode, tsk: TipSetKey) -> Uint64:
    """The network version at a tipset's epoch."""
    return await at_tipset(node, tsk, lambda ts: node.state.network_version_at(ts.height))


def fork_upgrade_params(network_version: int) -> ForkUpgradeParams:
    """The upgrades up to network_version happened before the genesis (-1, -2, ... in order); the
    later ones are not scheduled."""
    heights = {}
    for index, (name, version) in enumerate(UPGRADES, 1):
        heights[name] = -index if version <= network_version else UNSCHEDULED
    return ForkUpgradeParams(breeze_gas_tamping_duration=0, **heights)


@method("StateGetNetworkParams", perm=READ)
async def state_get_network_params(node: FullNode) -> NetworkParams:
    """The network's parameters: name, block delay, consensus minimum power, upgrade epochs."""
    policy = node.policy

    def read() -> NetworkParams:
        head = node.chain.head()
        return NetworkParams(
            network_name=node.state.network_name(head),
            block_delay_secs=policy.block_delay_secs,
            consensus_miner_min_power=policy.consensus_miner_min_power,
            pre_commit_challenge_delay=policy.pre_commit_challenge_delay,
            fork_upgrade_params=fork_upgrade_params(node.state.network_version_at(head.height)),
            eip155_chain_id=policy.eip155_chain_id,
            genesis_timestamp=node.chain.genesis().timestamp,
        )

    return await node.run_sync(read)


@method("StateCirculatingSupply", perm=READ)
async def state_circulating_supply(node: FullNode, tsk: TipSetKey) -> BigInt:
    """The FIL in circulation at a tipset (vested, mined and released funds less burnt and locked)."""
    return await at_tipset(node, tsk, node.state.circulating_supply)


@method("StateGetRandomnessFromTickets", perm=READ)
async def state_get_randomness_from_tickets(
    node: FullNode, personalization: Int64, rand_epoch: ChainEpoch, entropy: Bytes, tsk: TipSetKey
) -> Bytes:
    """Randomness drawn from the chain's tickets at an epoch, on the chain ending at a tipset."""
    return await _randomness(
        node, node.state.draw_chain_randomness, tsk, personalization, rand_epoch, entropy
    )


@method("StateGetRandomnessFromBeacon", perm=READ)
async def state_get_randomness_from_beacon(
    node: FullNode, personalization: Int64, rand_epoch: ChainEpoch, entropy: Bytes, tsk: TipSetKey
) -> Bytes:
    """Randomness drawn from the beacon entry of an epoch, on the chain ending at a tipset."""
    return await _randomness(
        node, node.state.draw_beacon_randomness, tsk, personalization, rand_epoch, entropy
    )


async def _randomness(
    node: FullNode, draw: DrawFn, tsk: TipSetKey, tag: int, epoch: int, entropy: bytes
) -> bytes:
    def run(ts: TipSet) -> bytes:
        with answer_errors(ValueError):  # an epoch after the tipset, a beacon entry the chain lacks
            return draw(ts, tag, epoch, entropy)

    return await at_tipset(node, tsk, run)


# -- actors ---------------------------------------------------------------------------------------------


@method("StateGetActor", perm=READ)
async def state_get_actor(node: FullNode, actor: Address, tsk: TipSetKey) -> Actor:
    """An actor's code, state root, nonce and balance."""
    return await at_tipset(node, tsk, lambda ts: node.state.get_actor(actor, ts))


@method("StateLookupID", perm=READ)
async def state_lookup_id(node: FullNode, address: Address, tsk: TipSetKey) -> Address:
    """The ID address of an address."""
    return await at_tipset(node, tsk, lambda ts: node.state.lookup_id(address, ts))


@method("StateLookupRobustAddress", perm=READ, api="v1")
async def state_lookup_robust_address(node: FullNode, address: Address, tsk: TipSetKey) -> Address:
    """The robust (key or actor) address an ID address was created with."""
    return await at_tipset(node, tsk, lambda ts: node.state.lookup_robust_address(address, ts))


@method("StateAccountKey", perm=READ)
async def state_account_key(node: FullNode, address: Address, tsk: TipSetKey) -> Address:
    """The key address (secp256k1 or BLS) of an account."""
    return await at_tipset(node, tsk, lambda ts: node.state.account_key(address, ts))


@method("StateListActors", perm=READ)
async def state_list_actors(node: FullNode, tsk: TipSetKey) -> tuple[Address, ...]:
    """Every actor's ID address."""
    return tuple(await at_tipset(node, tsk, node.state.list_actors))


@method("StateReadState", perm=READ)
async def state_read_state(node: FullNode, actor: Address, tsk: TipSetKey) -> ActorState:
    """An actor's balance, code and state, the state decoded as its actor type declares it."""

    def read(ts: TipSet) -> ActorState:
        found, state = node.state.read_state(actor, ts)
        return ActorState(found.balance, found.code, Decoded(kind_of(type(state)), state))

    return await at_tipset(node, tsk, read)


def _method_of(node: FullNode, code: CID, number: int) -> MethodDef | None:
    definition = node.state.invoker.actor(code)
    return None if definition is None else definition.method(number)


@method("StateDecodeParams", perm=READ)
async def state_decode_params(
    node: FullNode, to_addr: Address, method_num: Uint64, params: Bytes, tsk: TipSetKey
) -> Decoded | None:
    """A method's CBOR params decoded by the params type of the receiving actor's method."""

    def decode(ts: TipSet) -> Decoded | None:
        code = node.state.get_actor(to_addr, ts).code
        if method_num == METHOD_SEND:
            if params:
                raise RpcError("method 0 (Send) takes no params")
            return None
        found = _method_of(node, code, method_num)
        if found is None:
            raise RpcError(f"getting params type: unknown method {method_num} for actor {code}")
        if found.params is None:
            if params:
                raise RpcError(f"method {found.name} takes no params")
            return None
        with answer_errors(DecodeError, prefix="decoding params"):
            return Decoded(found.params, found.params.decode(dagcbor.decode(params), f"{found.name} params"))

    return await at_tipset(node, tsk, decode)


# -- messages -------------------------------------------------------------------------------------------


def _unsigned(msg: Message | SignedMessage) -> Message:
    return msg.message if isinstance(msg, SignedMessage) else msg


def _return_dec(node: FullNode, cid: CID, receipt: MessageReceipt, ts: TipSet) -> Decoded | None:
    """The return value decoded by the called method's return type (Lotus StateWaitMsg's ReturnDec):
    null for a failure or an empty return; the raw bytes when the callee's method is unknown."""
    if receipt.exit_code != 0 or not receipt.return_data:
        return None
    msg = _unsigned(node.chain.get_message(cid))
    raw = Decoded(kind_of(Bytes), receipt.return_data)
    try:
        code = node.state.get_actor(msg.to, ts).code
    except ActorNotFound:
        return raw
    found = _method_of(node, code, msg.method)
    if found is None or found.returns is None:
        return raw
    try:
        return Decoded(found.returns, found.returns.decode(dagcbor.decode(receipt.return_data), "return"))
    except DecodeError as exc:
        _log.warning("return value does not decode", message=str(cid), error=str(exc))
        return raw


def _lookup(found: search.MsgLookup, return_dec: Decoded | None = None) -> MsgLookup:
    ts = found.tipset
    return MsgLookup(found.message, found.receipt, return_dec, ts.key, ts.height)


def _limit(limit: int | None) -> int:
    return LOOKBACK_NO_LIMIT if limit is None else limit


@method("StateWaitMsg", perm=READ)
async def state_wait_msg(
    node: FullNode, cid: CID, confidence: Uint64, limit: ChainEpoch | None, allow_replaced: bool
) -> MsgLookup:
    """Wait until a message has executed and `confidence` tipsets are on top, searching back `limit`
    epochs first (null: the whole chain); its receipt and decoded return value."""
    if confidence > node.policy.chain_finality:
        raise RpcError(f"message confidence exceeds maximum: {confidence} > {node.policy.chain_finality}")
    try:
        found = await node.wait_msg(cid, confidence, _limit(limit), allow_replaced)
    except search.UnknownMessage as exc:
        raise RpcError(f"failed to load message: {exc}") from None
    except search.MessageReplaced as exc:
        raise RpcError(f"message was replaced: {exc}") from None

    def decode() -> MsgLookup:
        with state_errors():
            return _lookup(found, _return_dec(node, cid, found.receipt, found.tipset))

    return await node.run_sync(decode)


@method("StateWaitMsg", perm=READ, api="v0")
async def state_wait_msg_v0(node: FullNode, cid: CID, confidence: Uint64) -> MsgLookup:
    """Wait until a message has executed and `confidence` tipsets are on top (v0: no limit,
    replacements allowed)."""
    return await state_wait_msg(node, cid, confidence, None, True)


@method("StateWaitMsgLimited", perm=READ, api="v0")
async def state_wait_msg_limited(
    node: FullNode, cid: CID, confidence: Uint64, limit: ChainEpoch
) -> MsgLookup:
    """Wait for a message, searching back at most `limit` epochs first (v0; replacements allowed)."""
    return await state_wait_msg(node, cid, confidence, limit, True)


async def _search(
    node: FullNode, tsk: TipSetKey, cid: CID, limit: int | None, allow_replaced: bool
) -> search.MsgLookup | None:
    def run() -> search.MsgLookup | None:
        start = load_tipset(node, tsk)
        try:
            with state_errors():
                return node.state.search_msg(start, cid, _limit(limit), allow_replaced)
        except search.UnknownMessage as exc:
            raise RpcError(f"failed to load message: {exc}") from None
        except search.MessageReplaced as exc:
            if not allow_replaced:
                return None  # as Lotus: the message itself never executed
            raise RpcError(f"message was replaced: {exc}") from None

    return await node.run_sync(run)


@method("StateSearchMsg", perm=READ, api="v1")
async def state_search_msg(
    node: FullNode, tsk: TipSetKey, cid: CID, limit: ChainEpoch | None, allow_replaced: bool
) -> MsgLookup | None:
    """Where a message executed, searching back from a tipset at most `limit` epochs (null: the whole
    chain); null if it has not."""
    found = await _search(node, tsk, cid, limit, allow_replaced)
    return None if found is None else _lookup(found)


@method("StateSearchMsg", perm=READ, api="v0")
async def state_search_msg_v0(node: FullNode, cid: CID) -> MsgLookup | None:
    """Where a message executed, searching the whole chain from the head; null if it has not (v0)."""
    return await state_search_msg(node, EMPTY_TSK, cid, None, True)


@method("StateSearchMsgLimited", perm=READ, api="v0")
async def state_search_msg_limited(node: FullNode, cid: CID, limit: ChainEpoch) -> MsgLookup | None:
    """Where a message executed, searching back at most `limit` epochs from the head (v0)."""
    return await state_search_msg(node, EMPTY_TSK, cid, limit, True)


@method("StateGetReceipt", perm=READ, api="v0")
async def state_get_receipt(node: FullNode, cid: CID, tsk: TipSetKey) -> MessageReceipt | None:
    """A message's receipt, searching the chain back from a tipset; null if it has not executed (v0)."""
    found = await _search(node, tsk, cid, None, True)
    return None if found is None else found.receipt


def _trace(msg: Message, receipt: MessageReceipt) -> ExecutionTrace:
    return ExecutionTrace(
        MessageTrace(
            from_=msg.from_,
            to=msg.to,
            value=msg.value,
            method=msg.method,
            params=msg.params,
            params_codec=DAG_CBOR_CODEC if msg.params else 0,
            gas_limit=max(msg.gas_limit, 0),
            read_only=False,
        ),
        ReturnTrace(receipt.exit_code, receipt.return_data, DAG_CBOR_CODEC if receipt.return_data else 0),
    )


def _gas_cost(msg: Message, receipt: MessageReceipt, costs: GasOutputs) -> MsgGasCost:
    """Lotus stmgr.MakeMsgGasCost: TotalCost is what the sender paid up front less its refund."""
    return MsgGasCost(
        message=msg.cid(),
        gas_used=receipt.gas_used,
        base_fee_burn=costs.base_fee_burn,
        over_estimation_burn=costs.over_estimation_burn,
        miner_penalty=costs.miner_penalty,
        miner_tip=costs.miner_tip,
        refund=costs.refund,
        total_cost=msg.gas_fee_cap * msg.gas_limit - costs.refund,
    )


# StateCall runs the message as an implicit message: nothing is charged, and Lotus reports a gas cost
# of zeros with no message CID.
_FREE_CALL: Final = MsgGasCost(None, 0, 0, 0, 0, 0, 0, 0)


@method("StateCall", perm=READ)
async def state_call(node: FullNode, msg: Message, tsk: TipSetKey) -> InvocResult:
    """Apply a message on a tipset's parent state without keeping anything (gas is free); its receipt,
    error and duration."""

    def call(ts: TipSet) -> InvocResult:
        result = node.state.call(msg, ts)
        applied = result.message
        return InvocResult(
            msg_cid=applied.cid(),
            msg=applied,
            msg_rct=result.receipt,
            gas_cost=_FREE_CALL,
            execution_trace=_trace(applied, result.receipt),
            error=result.error or "",
            duration=round(result.duration * 1e9),
        )

    return await at_tipset(node, tsk, call)


@method("StateReplay", perm=READ)
async def state_replay(node: FullNode, tsk: TipSetKey, cid: CID) -> InvocResult:
    """Execute again the tipset that included a message (the empty key: find it on the chain first)
    and return what applying the message gave; Duration is that of the whole replay."""
    target, executed = cid, None
    if tsk.is_empty():
        found = await _search(node, EMPTY_TSK, cid, None, True)
        if found is None:
            raise RpcError(f"didn't find msg {cid}")
        target, executed = found.message, found.tipset

    def replay() -> InvocResult:
        ts = load_tipset(node, tsk if executed is None else executed.parents)
        start = time.perf_counter()
        with state_errors(), answer_errors(MessageNotFound):
            chain_msg, ret = node.state.replay(ts, target)
        applied = _unsigned(chain_msg)
        return InvocResult(
            msg_cid=target,
            msg=applied,
            msg_rct=ret.receipt,
            gas_cost=_gas_cost(applied, ret.receipt, ret.gas_costs),
            execution_trace=_trace(applied, ret.receipt),
            error=ret.error or "",
            duration=round((time.perf_counter() - start) * 1e9),
        )

    return await node.run_sync(replay)
