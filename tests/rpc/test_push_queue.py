"""MpoolPush's PushQueue (rpc/methods/mpool.py): concurrent pushes share worker-thread trips, in arrival
order, each message checked and answered on its own; a caller that is cancelled strands nobody; the
consecutive pushes of a JSON-RPC batch share their trips too, answered as if run one after another."""

from typing import Any

import pytest
import trio
import trio.testing

from chain.encoding.cid import CID
from chain.mpool.errors import InvalidSignature, MpoolError
from chain.types.address import Address
from chain.types.message import SignedMessage, sign_message
from node.fullnode import FullNode
from rpc.client import HttpClient, RpcCallError
from rpc.errors import INVALID_PARAMS
from rpc.methods.mpool import push_queue
from tests.consensus.devchain import ALICE, CAROL
from tests.rpc.chain_node import Served, transfer
from tests.rpc.conftest import chain_token

ALICE_ADDRESS = Address.of_key(ALICE)
CAROL_ADDRESS = Address.of_key(CAROL)
PUSHES = 24


def gated_trips(node: FullNode) -> tuple[list[int], trio.Event]:
    """Count the node's worker-thread trips from now on; the first waits until the event is set."""
    trips = [0]
    gate = trio.Event()
    run_sync = node.run_sync

    async def counting(fn: Any, *args: object) -> Any:
        trips[0] += 1
        await gate.wait()
        return await run_sync(fn, *args)

    node.run_sync = counting  # type: ignore[method-assign]
    return trips, gate


async def test_concurrent_pushes_share_trips_in_arrival_order(served: Served) -> None:
    node = served.node
    nonce = node.mpool.get_nonce(ALICE_ADDRESS)
    # Consecutive nonces: taken in arrival order, so none is refused for a gap beyond the pool's 4.
    messages = [transfer(ALICE, nonce + i, CAROL_ADDRESS) for i in range(PUSHES)]
    forged_at = PUSHES // 2
    forged = sign_message(transfer(ALICE, nonce + PUSHES, CAROL_ADDRESS).message, CAROL)
    messages.insert(forged_at, forged)
    trips, gate = gated_trips(node)
    answers: list[CID | Exception] = [ValueError("not answered")] * len(messages)

    async def one(i: int, signed: SignedMessage) -> None:
        try:
            answers[i] = await push_queue(node).push(signed)
        except MpoolError as exc:
            answers[i] = exc

    async with trio.open_nursery() as nursery:
        for i, signed in enumerate(messages):  # each arrives once the one before waits in the queue
            nursery.start_soon(one, i, signed)
            await trio.testing.wait_all_tasks_blocked()
        gate.set()
    assert trips[0] == 2  # the first push's trip, then one for all that arrived while it was held
    refusal = answers.pop(forged_at)
    assert isinstance(refusal, InvalidSignature)
    assert answers == [m.cid() for m in messages if m is not forged]
    pending, _ = node.mpool.pending()
    assert [m.message.nonce for m in pending if m.message.from_ == ALICE_ADDRESS] == [
        nonce + i for i in range(PUSHES)
    ]


async def test_a_cancelled_caller_strands_nobody(served: Served) -> None:
    node = served.node
    nonce = node.mpool.get_nonce(ALICE_ADDRESS)
    first, *rest = [transfer(ALICE, nonce + i, CAROL_ADDRESS) for i in range(4)]
    answers: list[CID] = []

    async def follower(signed: SignedMessage) -> None:
        answers.append(await push_queue(node).push(signed))

    async with trio.open_nursery() as nursery:
        with trio.CancelScope() as leader:
            leader.cancel()  # the first caller is cancelled before its push even starts its trip
            for signed in rest:
                nursery.start_soon(follower, signed)
            with pytest.raises(trio.Cancelled):
                await push_queue(node).push(first)
    assert sorted(map(str, answers)) == sorted(str(m.cid()) for m in rest)
    pending, _ = node.mpool.pending()
    assert {m.cid() for m in pending} >= {first.cid(), *(m.cid() for m in rest)}


async def test_a_batch_of_pushes_shares_one_trip_and_answers_each_in_order(served: Served) -> None:
    node = served.node
    nonce = node.mpool.get_nonce(ALICE_ADDRESS)
    good = [transfer(ALICE, nonce + i, CAROL_ADDRESS) for i in range(PUSHES)]
    forged = sign_message(transfer(ALICE, nonce + PUSHES, CAROL_ADDRESS).message, CAROL)
    too_far = transfer(ALICE, nonce + PUSHES + 10, CAROL_ADDRESS)  # a nonce gap beyond the pool's 4
    calls: list[tuple[str, list[Any]]] = [("MpoolPush", [m.to_json("t")]) for m in good[:12]]
    calls += [("MpoolPush", [forged.to_json("t")]), ("MpoolPush", [{"Message": 1}])]
    calls += [("MpoolPush", [m.to_json("t")]) for m in good[12:]]
    calls += [("MpoolPush", [too_far.to_json("t")]), ("MpoolPush", [])]
    trips, gate = gated_trips(node)
    gate.set()
    async with HttpClient(served.url(), token=chain_token("write")) as writer:
        answers = await writer.batch(calls)
    # Two runs (the undecodable call splits them), one trip each: not one trip per push.
    assert trips[0] == 2
    assert answers[:12] == [{"/": str(m.cid())} for m in good[:12]]
    assert isinstance(answers[12], RpcCallError) and "signature" in answers[12].message
    assert isinstance(answers[13], RpcCallError) and answers[13].code == INVALID_PARAMS
    assert answers[14:26] == [{"/": str(m.cid())} for m in good[12:]]
    assert isinstance(answers[26], RpcCallError) and "nonce gap" in answers[26].message
    assert isinstance(answers[27], RpcCallError) and "wrong param count" in answers[27].message
    pending, _ = node.mpool.pending()
    assert [m.message.nonce for m in pending if m.message.from_ == ALICE_ADDRESS] == [
        nonce + i for i in range(PUSHES)
    ]
