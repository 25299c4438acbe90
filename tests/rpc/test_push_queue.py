"""MpoolPush's drain (rpc/methods/mpool.py, node/drain.py): concurrent pushes share worker-thread passes,
in arrival order, each message checked and answered on its own; a caller that is cancelled strands
nobody; the consecutive pushes of a JSON-RPC batch share their passes too, answered as if run one after
another; over one WebSocket connection, calls in flight are queued in arrival order and each answered
in its own frame (a cancelled one is not run, or not answered)."""

import threading
from typing import Any

import orjson
import pytest
import trio
import trio.testing
import trio_websocket

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
WAIT_S = 10.0


class GatedPool:
    """The node's pool pushes, the first held (in the drain's worker thread) until the gate opens."""

    def __init__(self, node: FullNode) -> None:
        self.entered = threading.Event()
        self.gate = threading.Event()
        self._push = node.mpool.push
        node.mpool.push = self  # type: ignore[method-assign]  # before the node's drain is made

    def __call__(self, signed: SignedMessage) -> CID:
        if not self.entered.is_set():
            self.entered.set()
            assert self.gate.wait(WAIT_S)
        return self._push(signed)

    async def wait_entered(self) -> None:
        with trio.fail_after(WAIT_S):
            while not self.entered.is_set():
                await trio.sleep(0.001)


async def push(node: FullNode, signed: SignedMessage) -> CID:
    (outcome,) = await push_queue(node).run([signed])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


async def test_concurrent_pushes_share_passes_in_arrival_order(served: Served) -> None:
    node = served.node
    nonce = node.mpool.get_nonce(ALICE_ADDRESS)
    # Consecutive nonces: taken in arrival order, so none is refused for a gap beyond the pool's 4.
    messages = [transfer(ALICE, nonce + i, CAROL_ADDRESS) for i in range(PUSHES)]
    forged_at = PUSHES // 2
    forged = sign_message(transfer(ALICE, nonce + PUSHES, CAROL_ADDRESS).message, CAROL)
    messages.insert(forged_at, forged)
    pool = GatedPool(node)
    answers: list[CID | Exception] = [ValueError("not answered")] * len(messages)

    async def one(i: int, signed: SignedMessage) -> None:
        try:
            answers[i] = await push(node, signed)
        except MpoolError as exc:
            answers[i] = exc

    with trio.fail_after(WAIT_S):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(one, 0, messages[0])
            await pool.wait_entered()
            for i, signed in enumerate(messages[1:], 1):  # each arrives once the one before waits
                nursery.start_soon(one, i, signed)
                await trio.testing.wait_all_tasks_blocked()
            pool.gate.set()
    assert push_queue(node).passes == 2  # the first push's pass, then one for all that arrived meanwhile
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
        answers.append(await push(node, signed))

    async with trio.open_nursery() as nursery:
        with trio.CancelScope() as leader:
            leader.cancel()  # the first caller is cancelled before its push even starts its trip
            for signed in rest:
                nursery.start_soon(follower, signed)
            with pytest.raises(trio.Cancelled):
                await push(node, first)
    assert sorted(map(str, answers)) == sorted(str(m.cid()) for m in rest)
    pending, _ = node.mpool.pending()
    assert {m.cid() for m in pending} >= {first.cid(), *(m.cid() for m in rest)}


async def test_a_batch_of_pushes_shares_one_pass_and_answers_each_in_order(served: Served) -> None:
    node = served.node
    nonce = node.mpool.get_nonce(ALICE_ADDRESS)
    good = [transfer(ALICE, nonce + i, CAROL_ADDRESS) for i in range(PUSHES)]
    forged = sign_message(transfer(ALICE, nonce + PUSHES, CAROL_ADDRESS).message, CAROL)
    too_far = transfer(ALICE, nonce + PUSHES + 10, CAROL_ADDRESS)  # a nonce gap beyond the pool's 4
    calls: list[tuple[str, list[Any]]] = [("MpoolPush", [m.to_json("t")]) for m in good[:12]]
    calls += [("MpoolPush", [forged.to_json("t")]), ("MpoolPush", [{"Message": 1}])]
    calls += [("MpoolPush", [m.to_json("t")]) for m in good[12:]]
    calls += [("MpoolPush", [too_far.to_json("t")]), ("MpoolPush", [])]
    async with HttpClient(served.url(), token=chain_token("write")) as writer:
        answers = await writer.batch(calls)
    # Two runs (the undecodable call splits them), one pass each: not one pass per push.
    assert push_queue(node).passes == 2
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


def ws_headers() -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {chain_token('write')}")]


def push_frame(request_id: int, params: list[Any]) -> str:
    call = {"jsonrpc": "2.0", "id": request_id, "method": "Filecoin.MpoolPush", "params": params}
    return orjson.dumps(call).decode()


async def test_websocket_calls_in_flight_are_pushed_in_arrival_order_each_answered(served: Served) -> None:
    node = served.node
    nonce = node.mpool.get_nonce(ALICE_ADDRESS)
    good = [transfer(ALICE, nonce + i, CAROL_ADDRESS) for i in range(PUSHES)]
    forged = sign_message(transfer(ALICE, nonce + PUSHES, CAROL_ADDRESS).message, CAROL)
    # Every call sent before any answer is read; ids as the client chose them, one used twice.
    frames = [push_frame(i, [m.to_json("t")]) for i, m in enumerate(good)]
    frames.insert(5, push_frame(100, [forged.to_json("t")]))
    frames.insert(9, push_frame(101, [{"Message": 1}]))
    frames.append(push_frame(3, [good[3].to_json("t")]))  # id 3 again: the same message, a duplicate
    answers: list[dict[str, Any]] = []
    with trio.fail_after(WAIT_S):
        async with trio_websocket.open_websocket_url(
            served.url(scheme="ws"), extra_headers=ws_headers()
        ) as ws:
            for frame in frames:
                await ws.send_message(frame)
            for _ in frames:
                answers.append(orjson.loads(await ws.get_message()))
    results = [a for a in answers if "result" in a]
    # In arrival order: a sender's nonces more than 4 apart out of order would be refused as gaps.
    assert results == [{"jsonrpc": "2.0", "id": i, "result": {"/": str(m.cid())}} for i, m in enumerate(good)]
    errors = {a["id"]: a["error"] for a in answers if "error" in a}
    assert sorted(errors) == [3, 100, 101]
    assert "signature" in errors[100]["message"]
    assert errors[101]["code"] == INVALID_PARAMS
    assert "already in mpool" in errors[3]["message"] or "duplicate" in errors[3]["message"].lower()
    pending, _ = node.mpool.pending()
    assert [m.message.nonce for m in pending if m.message.from_ == ALICE_ADDRESS] == [
        nonce + i for i in range(PUSHES)
    ]


async def test_websocket_cancel_of_a_queued_push(served: Served) -> None:
    node = served.node
    pool = GatedPool(node)
    nonce = node.mpool.get_nonce(ALICE_ADDRESS)
    first, cancelled, last = (transfer(ALICE, nonce + i, CAROL_ADDRESS) for i in range(3))
    with trio.fail_after(WAIT_S):
        async with trio_websocket.open_websocket_url(
            served.url(scheme="ws"), extra_headers=ws_headers()
        ) as ws:
            await ws.send_message(push_frame(1, [first.to_json("t")]))
            await pool.wait_entered()  # the first push is held in the worker thread
            await ws.send_message(push_frame(2, [cancelled.to_json("t")]))
            await ws.send_message('{"jsonrpc":"2.0","method":"xrpc.cancel","params":[2]}')
            await trio.testing.wait_all_tasks_blocked()  # the server has read both frames
            pool.gate.set()
            await ws.send_message(push_frame(3, [last.to_json("t")]))
            answered = [orjson.loads(await ws.get_message()) for _ in range(2)]
    # The cancelled call was neither run nor answered; the one after it went on (a gap of one nonce).
    assert [(a["id"], a["result"]["/"]) for a in answered] == [(1, str(first.cid())), (3, str(last.cid()))]
    pending, _ = node.mpool.pending()
    cids = {m.cid() for m in pending}
    assert first.cid() in cids and last.cid() in cids and cancelled.cid() not in cids


async def test_websocket_closed_with_pushes_queued(served: Served) -> None:
    node = served.node
    pool = GatedPool(node)
    nonce = node.mpool.get_nonce(ALICE_ADDRESS)
    messages = [transfer(ALICE, nonce + i, CAROL_ADDRESS) for i in range(4)]
    with trio.fail_after(WAIT_S):
        async with trio_websocket.open_websocket_url(
            served.url(scheme="ws"), extra_headers=ws_headers()
        ) as ws:
            await ws.send_message(push_frame(0, [messages[0].to_json("t")]))
            await pool.wait_entered()
            for i, m in enumerate(messages[1:], 1):
                await ws.send_message(push_frame(i, [m.to_json("t")]))
            await trio.testing.wait_all_tasks_blocked()
        pool.gate.set()  # the client is gone: the push held goes on, nobody is answered
        async with HttpClient(served.url(), token=chain_token("write")) as writer:
            nxt = transfer(ALICE, nonce + 4, CAROL_ADDRESS)
            assert await writer.call("MpoolPush", nxt.to_json("t")) == {"/": str(nxt.cid())}
    pending, _ = node.mpool.pending()
    assert messages[0].cid() in {m.cid() for m in pending}
