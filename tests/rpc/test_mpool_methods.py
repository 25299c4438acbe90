"""The Mpool* and GasEstimate* methods over HTTP (MpoolSub over WebSocket) against a node with mined
blocks: what each answers compared with the pool and the estimator, permissions as Lotus's."""

import random
from dataclasses import replace

import pytest
import trio

from chain.crypto.signature import verify
from chain.mpool import gas_estimate
from chain.mpool.checks import MessagePrototype, check_messages
from chain.mpool.push import message_to_push
from chain.types.address import Address
from chain.types.message import Message, SignedMessage
from rpc.client import HttpClient, RpcCallError, WsClient
from rpc.errors import GENERIC_ERROR, METHOD_NOT_FOUND
from rpc.methods.mpool_types import MessageCheckStatus
from tests.consensus.devchain import ALICE, BOB, CAROL
from tests.rpc.chain_node import Served, transfer
from tests.rpc.conftest import chain_token

T = "t"
MORE_THAN_ALICE_HAS = 2_000_000 * 10**18  # she was funded with 1,000,000 FIL
CAROL_ADDRESS = Address.of_key(CAROL)


def cid_json(signed: SignedMessage) -> dict[str, str]:
    return {"/": str(signed.cid())}


async def test_push_pending_nonce_select_and_clear(served: Served) -> None:
    node = served.node
    alice = Address.of_key(ALICE)
    nonce = node.mpool.get_nonce(alice)
    assert nonce == len(served.mined.secp)
    first = transfer(ALICE, nonce, CAROL_ADDRESS)
    batch = [transfer(ALICE, nonce + i, CAROL_ADDRESS) for i in range(1, 4)]
    async with (
        HttpClient(served.url()) as reader,
        HttpClient(served.url(), token=chain_token("write")) as writer,
    ):
        with pytest.raises(RpcCallError, match=r"missing permission to invoke 'MpoolPush' \(need 'write'\)"):
            await reader.call("MpoolPush", first.to_json(T))
        assert await reader.call("MpoolPending", None) == []
        assert await writer.call("MpoolPush", first.to_json(T)) == cid_json(first)
        assert await writer.call("MpoolBatchPush", [m.to_json(T) for m in batch]) == [
            cid_json(m) for m in batch
        ]
        pending = await reader.call("MpoolPending", None)
        assert pending == [m.to_json(T) for m in [first, *batch]]
        assert node.mpool.pending()[0] == [first, *batch]
        # as of an older tipset: the pool's messages as they are
        older = served.mined.tipsets[0].key.to_json(T)
        assert await reader.call("MpoolPending", older) == pending
        assert await reader.call("MpoolGetNonce", alice.to_string(T)) == nonce + 4
        bob = Address.of_key(BOB)
        assert await reader.call("MpoolGetNonce", bob.to_string(T)) == 1  # BOB's one transfer is mined
        nobody = Address.new_id(999_999).to_string(T)
        with pytest.raises(RpcCallError, match=r"resolution lookup failed \(t0999999\): actor not found"):
            await reader.call("MpoolGetNonce", nobody)

        selected = await reader.call("MpoolSelect", None, 0.8)
        assert selected == [m.to_json(T) for m in node.mpool.select(node.chain.head(), 0.8)]
        assert [m["CID"] for m in selected] == [cid_json(m) for m in [first, *batch]]
        assert await reader.call("MpoolSelect", None, 1) == selected  # an integer is a float64 too

        with pytest.raises(RpcCallError, match="need 'write'"):
            await reader.call("MpoolClear", True)
        assert await writer.call("MpoolClear", False) is None  # local messages stay
        assert len(await reader.call("MpoolPending", None)) == 4
        assert await writer.call("MpoolClear", True) is None
        assert await reader.call("MpoolPending", None) == []
        assert node.mpool.size == 0


async def test_batch_push_stops_at_the_first_refusal(served: Served) -> None:
    alice = Address.of_key(ALICE)
    nonce = served.node.mpool.get_nonce(alice)
    good = transfer(ALICE, nonce, CAROL_ADDRESS)
    stale = transfer(ALICE, 0, CAROL_ADDRESS)
    never = transfer(ALICE, nonce + 1, CAROL_ADDRESS)
    async with HttpClient(served.url(), token=chain_token("write")) as api:
        with pytest.raises(RpcCallError, match=r"message nonce too low \(message 1 of the batch; 1 added"):
            await api.call("MpoolBatchPush", [m.to_json(T) for m in (good, stale, never)])
    assert served.node.mpool.pending()[0] == [good]


async def test_mpool_sub_sees_adds_and_removes(served: Served) -> None:
    alice = Address.of_key(ALICE)
    signed = transfer(ALICE, served.node.mpool.get_nonce(alice), CAROL_ADDRESS)
    async with (
        WsClient.connect(served.url(scheme="ws"), token=chain_token("write")) as ws,
        ws.subscribe("MpoolSub") as updates,
    ):
        with trio.fail_after(30):
            assert await ws.call("MpoolPush", signed.to_json(T)) == cid_json(signed)
            assert await updates.__anext__() == {"Type": 0, "Message": signed.to_json(T)}
            await ws.call("MpoolClear", True)
            assert await updates.__anext__() == {"Type": 1, "Message": signed.to_json(T)}


async def test_push_message_estimates_numbers_and_signs(served: Served) -> None:
    node = served.node
    alice = Address.of_key(ALICE)
    alice_id = node.state.lookup_id(alice, node.chain.head())
    unsigned = message_to_push(CAROL_ADDRESS, alice, value=777)
    nonce = node.mpool.get_nonce(alice)
    async with (
        HttpClient(served.url(), token=chain_token("write")) as writer,
        HttpClient(served.url(), token=chain_token("sign")) as signer,
    ):
        with pytest.raises(RpcCallError, match=r"'MpoolPushMessage' \(need 'sign'\)"):
            await writer.call("MpoolPushMessage", unsigned.to_json(T), None)
        got = await signer.call("MpoolPushMessage", unsigned.to_json(T), None)
        signed = SignedMessage.from_json(got)
        msg = signed.message
        assert msg.nonce == nonce and msg.value == 777 and msg.to == CAROL_ADDRESS and msg.from_ == alice
        assert msg.gas_limit > 0 and 0 < msg.gas_premium <= msg.gas_fee_cap
        verify(signed.signature, alice, msg.signing_bytes())
        assert node.mpool.pending_for(alice) == [signed]
        # the sender as an ID address is signed for by its key; MaxFee caps the fee
        max_fee = 10**15
        spec = {"MaxFee": str(max_fee)}
        got = await signer.call("MpoolPushMessage", replace(unsigned, from_=alice_id).to_json(T), spec)
        second = SignedMessage.from_json(got).message
        assert second.from_ == alice and second.nonce == nonce + 1
        assert second.gas_fee_cap * second.gas_limit <= max_fee
        with pytest.raises(RpcCallError, match="MpoolPushMessage expects message nonce to be 0, was 5"):
            await signer.call("MpoolPushMessage", replace(unsigned, nonce=5).to_json(T), None)
        # CAROL has funds but her key is not in the node's wallet
        theirs = replace(unsigned, from_=CAROL_ADDRESS, to=alice)
        with pytest.raises(RpcCallError, match="failed to sign message: key not found") as err:
            await signer.call("MpoolPushMessage", theirs.to_json(T), {"MaxFee": "0"})
        assert err.value.code == GENERIC_ERROR
        assert node.mpool.pending_for(CAROL_ADDRESS) == []


async def test_check_messages(served: Served) -> None:
    node = served.node
    alice = Address.of_key(ALICE)
    nonce = node.mpool.get_nonce(alice)
    good = transfer(ALICE, nonce, CAROL_ADDRESS).message
    too_rich = replace(good, value=MORE_THAN_ALICE_HAS)
    protos = [MessagePrototype(good, True), MessagePrototype(too_rich, False)]
    expected = [
        [MessageCheckStatus.of(s).to_json(T) for s in statuses]
        for statuses in check_messages(node.mpool, protos)
    ]
    async with HttpClient(served.url()) as v1, HttpClient(served.url("v0")) as v0:
        got = await v1.call(
            "MpoolCheckMessages",
            [
                {"Message": m.to_json(T), "ValidNonce": v}
                for m, v in [
                    (good, True),
                    (too_rich, False),
                ]
            ],
        )
        assert got == expected
        assert all(status["OK"] for status in got[0])
        failed = [s for s in got[1] if not s["OK"]]
        assert [(s["Code"], s["Err"]) for s in failed] == [(12, "insufficient balance")]  # MessageBalance
        assert set(got[0][0]) == {"Cid", "Code", "OK", "Err", "Hint"}
        assert await v1.call("MpoolCheckPendingMessages", alice.to_string(T)) == []
        replaced = await v1.call("MpoolCheckReplaceMessages", [good.to_json(T)])
        assert [s["Cid"] for s in replaced[0]] == [{"/": str(good.cid())}] * len(replaced[0])
        with pytest.raises(RpcCallError) as err:
            await v0.call("MpoolCheckMessages", [])
        assert err.value.code == METHOD_NOT_FOUND  # v1 only, as Lotus


class _NoNoise(random.Random):
    def gauss(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        return 0.0


async def test_gas_estimates(served: Served) -> None:
    node = served.node
    head = node.chain.head()
    alice = Address.of_key(ALICE)
    msg = message_to_push(CAROL_ADDRESS, alice, value=5)
    used = gas_estimate.gas_estimate_gas_limit(node.mpool, node.state, msg, head)
    target = node.policy.block_gas_target
    premium = gas_estimate.gas_estimate_gas_premium(node.chain, 10, head, target, _NoNoise())
    async with HttpClient(served.url()) as api:
        assert await api.call("GasEstimateGasLimit", msg.to_json(T), None) == used > 0
        for blocks in (1, 10):
            got = int(await api.call("GasEstimateGasPremium", blocks, alice.to_string(T), 0, None))
            exact = gas_estimate.gas_estimate_gas_premium(node.chain, blocks, head, target, _NoNoise())
            assert abs(got - exact) <= exact // 20  # 0.5% noise, ten standard deviations
        with_premium = replace(msg, gas_premium=premium)
        fee_cap = await api.call("GasEstimateFeeCap", with_premium.to_json(T), 20, None)
        denominator = node.policy.base_fee_max_change_denom
        assert fee_cap == str(gas_estimate.gas_estimate_fee_cap(with_premium, 20, head, denominator))
        assert int(fee_cap) > head.blocks[0].parent_base_fee

        # iso-filecoin's call: [msg, {MaxFee}, null]
        estimated = Message.from_json(
            await api.call("GasEstimateMessageGas", msg.to_json(T), {"MaxFee": "0"}, None)
        )
        assert estimated.gas_limit == int(used * node.mpool.config.gas_limit_overestimation)
        assert 0 < estimated.gas_premium <= estimated.gas_fee_cap
        assert estimated.gas_fee_cap * estimated.gas_limit <= gas_estimate.DEFAULT_MAX_FEE
        assert (estimated.to, estimated.from_, estimated.value, estimated.nonce) == (msg.to, alice, 5, 0)
        capped = Message.from_json(
            await api.call("GasEstimateMessageGas", msg.to_json(T), {"MaxFee": "1000000000000"}, None)
        )
        assert capped.gas_fee_cap == 10**12 // capped.gas_limit
        exact_fee = {"MaxFee": "1000000000000", "MaximizeFeeCap": True}
        maximized = Message.from_json(
            await api.call("GasEstimateMessageGas", msg.to_json(T), exact_fee, None)
        )
        assert maximized.gas_fee_cap == 10**12 // maximized.gas_limit
        given = replace(msg, gas_limit=123_456, gas_premium=7, gas_fee_cap=10**9)
        kept = Message.from_json(await api.call("GasEstimateMessageGas", given.to_json(T), None, None))
        assert (kept.gas_limit, kept.gas_premium, kept.gas_fee_cap) == (123_456, 7, 10**9)
        # a message that cannot run
        broke = replace(msg, value=MORE_THAN_ALICE_HAS)
        with pytest.raises(RpcCallError, match="gas estimation failed: message execution failed"):
            await api.call("GasEstimateMessageGas", broke.to_json(T), None, None)
        with pytest.raises(RpcCallError, match="gas estimation failed"):
            await api.call("GasEstimateGasLimit", broke.to_json(T), None)
