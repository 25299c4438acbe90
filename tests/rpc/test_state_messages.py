"""StateWaitMsg, StateSearchMsg (v0 and v1 shapes), StateGetReceipt, StateCall and StateReplay over
HTTP: lookups of the scenario's messages compared with the chain, and StateWaitMsg answering once a
pushed message has been mined under enough tipsets."""

from pathlib import Path
from typing import Any

import pytest
import trio

from chain.encoding.cid import CID
from chain.mpool.push import message_to_push
from chain.types.message import Message
from rpc.client import HttpClient, RpcCallError
from rpc.errors import LotusCode
from tests.rpc.chain_node import (
    ALICE_ADDR,
    CAROL_ADDR,
    FIL,
    WITHDRAWN,
    Scenario,
    clients,
    mine,
    new_node,
    serving,
)

Apis = tuple[HttpClient, HttpClient]


def cid_json(cid: CID) -> dict[str, str]:
    return {"/": str(cid)}


async def test_search_and_wait_shapes(live: Apis, scenario: Scenario) -> None:
    v0, v1 = live
    node = scenario.node
    found = node.state.search_msg(node.chain.head(), scenario.create)
    assert found is not None
    lookup = {
        "Message": cid_json(scenario.create),
        "Receipt": found.receipt.to_json("t"),
        "ReturnDec": None,
        "TipSet": found.tipset.key.to_json(),
        "Height": found.tipset.height,
    }
    assert await v0.call("StateSearchMsg", cid_json(scenario.create)) == lookup
    assert await v1.call("StateSearchMsg", None, cid_json(scenario.create), None, True) == lookup
    assert await v1.call("StateSearchMsg", [], cid_json(scenario.create), -1, False) == lookup
    assert await v0.call("StateSearchMsgLimited", cid_json(scenario.create), -1) == lookup
    # a limit of 0 epochs looks at the start tipset only: the create executed further down
    assert await v0.call("StateSearchMsgLimited", cid_json(scenario.create), 0) is None
    assert await v1.call("StateSearchMsg", None, cid_json(scenario.create), 0, True) is None
    # searching from the tipset that executed it finds it with any limit
    assert (
        await v1.call("StateSearchMsg", found.tipset.key.to_json(), cid_json(scenario.create), 0, True)
        == lookup
    )
    assert await v0.call("StateGetReceipt", cid_json(scenario.create), None) == lookup["Receipt"]

    # StateWaitMsg adds the decoded return value: init.Exec's addresses of the new multisig
    return_dec = {"IDAddress": str(scenario.msig), "RobustAddress": str(scenario.msig_robust)}
    waited = await v1.call("StateWaitMsg", cid_json(scenario.create), 1, None, False)
    assert waited == lookup | {"ReturnDec": return_dec}
    assert await v0.call("StateWaitMsg", cid_json(scenario.create), 1) == waited
    assert await v0.call("StateWaitMsgLimited", cid_json(scenario.create), 1, 100) == waited
    # a proposal returns ProposeReturn, a withdrawal the amount withdrawn
    proposal = await v0.call("StateWaitMsg", cid_json(scenario.proposals[1]), 0)
    assert proposal["ReturnDec"] == {"TxnID": 1, "Applied": False, "Code": 0, "Ret": None}
    withdraw = await v0.call("StateWaitMsg", cid_json(scenario.withdraw), 0)
    assert withdraw["ReturnDec"] == str(WITHDRAWN) and withdraw["Receipt"]["ExitCode"] == 0


async def test_search_errors(live: Apis, scenario: Scenario) -> None:
    v0, v1 = live
    unknown = cid_json(CID.hash_of(b"no such message"))
    for call in (
        v0.call("StateSearchMsg", unknown),
        v1.call("StateSearchMsg", None, unknown, None, True),
        v0.call("StateGetReceipt", unknown, None),
        v1.call("StateWaitMsg", unknown, 0, None, True),
        v1.call("StateReplay", None, unknown),
    ):
        with pytest.raises(RpcCallError, match="failed to load message") as info:
            await call
        assert info.value.code == 1
    finality = scenario.node.policy.chain_finality
    with pytest.raises(
        RpcCallError, match=f"message confidence exceeds maximum: {finality + 1} > {finality}"
    ):
        await v0.call("StateWaitMsg", cid_json(scenario.create), finality + 1)


async def test_replay(live: Apis, scenario: Scenario) -> None:
    _, v1 = live
    node = scenario.node
    found = node.state.search_msg(node.chain.head(), scenario.approve)
    assert found is not None
    included = node.chain.load_tipset(found.tipset.parents)
    by_search = await v1.call("StateReplay", None, cid_json(scenario.approve))
    by_tipset = await v1.call("StateReplay", included.key.to_json(), cid_json(scenario.approve))
    for replay in (by_search, by_tipset):
        assert replay["MsgCid"] == cid_json(scenario.approve)
        assert replay["MsgRct"] == found.receipt.to_json("t")
        assert replay["Error"] == ""
        msg = Message.from_json(replay["Msg"])
        assert msg.cid() == scenario.approve  # BOB's key is BLS: the message is stored unsigned
        cost = {k: int(v) for k, v in replay["GasCost"].items() if k != "Message"}
        assert replay["GasCost"]["Message"] == cid_json(msg.cid())
        assert cost["GasUsed"] == found.receipt.gas_used
        paid = cost["BaseFeeBurn"] + cost["OverEstimationBurn"] + cost["MinerTip"] + cost["Refund"]
        assert paid == msg.gas_fee_cap * msg.gas_limit
        assert cost["TotalCost"] == paid - cost["Refund"]
        trace = replay["ExecutionTrace"]
        assert trace["Msg"]["From"] == str(msg.from_) and trace["Msg"]["Method"] == 3
        assert trace["MsgRct"]["ExitCode"] == 0 and trace["MsgRct"]["ReturnCodec"] == 0x51
        assert trace["GasCharges"] is None and trace["Subcalls"] is None and trace["InvokedActor"] is None
        assert replay["Duration"] > 0
    # the executing tipset did not include it: Lotus's "not found in tipset" case
    with pytest.raises(RpcCallError, match="is not among the messages"):
        await v1.call("StateReplay", found.tipset.key.to_json(), cid_json(scenario.approve))


def _transfer(value: int) -> dict[str, Any]:
    return {
        "Version": 0,
        "To": str(CAROL_ADDR),
        "From": str(ALICE_ADDR),
        "Nonce": 0,
        "Value": str(value),
        "GasLimit": 0,
        "GasFeeCap": "0",
        "GasPremium": "0",
        "Method": 0,
        "Params": None,
    }


async def test_call(live: Apis, scenario: Scenario) -> None:
    v0, v1 = live
    node = scenario.node
    nonce = node.state.get_actor(ALICE_ADDR, node.chain.head()).nonce
    for api in (v0, v1):
        result = await api.call("StateCall", _transfer(FIL), None)
        assert result["MsgRct"] == {"ExitCode": 0, "Return": None, "GasUsed": 0, "EventsRoot": None}
        assert result["Msg"]["Nonce"] == nonce and result["Msg"]["Value"] == str(FIL)
        assert result["MsgCid"] == result["Msg"]["CID"]
        assert result["GasCost"] == {
            "Message": None,
            "GasUsed": "0",
            "BaseFeeBurn": "0",
            "OverEstimationBurn": "0",
            "MinerPenalty": "0",
            "MinerTip": "0",
            "Refund": "0",
            "TotalCost": "0",
        }
        assert result["Error"] == "" and result["Duration"] > 0
    # nothing was kept
    assert node.state.get_actor(ALICE_ADDR, node.chain.head()).nonce == nonce
    # a method the multisig lacks fails inside the call, not the call itself
    bad = _transfer(0) | {"To": str(scenario.msig), "Method": 99}
    failed = await v1.call("StateCall", bad, None)
    assert failed["MsgRct"]["ExitCode"] != 0 and "no method 99" in failed["Error"]
    # a sender with no actor
    stranger = _transfer(1) | {"From": "t0424242"}
    with pytest.raises(RpcCallError) as info:
        await v1.call("StateCall", stranger, None)
    assert info.value.code == LotusCode.ACTOR_NOT_FOUND


async def test_wait_returns_once_mined(tmp_path: Path) -> None:
    """StateWaitMsg (v1 with a null limit and v0) blocks until the pushed message is on chain under
    `confidence` tipsets, then answers; the test mines the blocks."""
    node = new_node(tmp_path / "keystore")
    mine(node)
    async with serving(node) as bound, clients(bound) as (v0, v1):
        msg = message_to_push(CAROL_ADDR, ALICE_ADDR, value=7 * FIL)
        signed = await node.run_sync(node.pusher.push_message, msg)
        cid = cid_json(signed.cid())
        answers: dict[str, Any] = {}

        async def wait(name: str, api: HttpClient, *params: Any) -> None:
            answers[name] = await api.call("StateWaitMsg", cid, *params)
            answers[name + " at"] = node.chain.head().height

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait, "v1", v1, 2, None, False)
                nursery.start_soon(wait, "v0", v0, 2)
                await trio.sleep(0.2)
                assert await v0.call("StateSearchMsg", cid) is None  # pushed, not mined
                included = mine(node)
                for _ in range(3):
                    await trio.sleep(0.2)
                    assert not answers or node.chain.head().height >= included.height + 3
                    mine(node)
        executed = node.chain.get_tipset_by_height(included.height + 1, prev=False)  # included's child
        for name in ("v0", "v1"):
            assert answers[name]["Message"] == cid
            assert answers[name]["Receipt"]["ExitCode"] == 0
            assert answers[name]["Height"] == executed.height
            assert answers[name]["TipSet"] == executed.key.to_json()
            assert answers[name]["ReturnDec"] is None  # a transfer returns nothing
            assert answers[name + " at"] >= executed.height + 2
        carol = await v1.call("StateGetActor", str(CAROL_ADDR), None)
        assert int(carol["Balance"]) == 1_000_000 * FIL + 7 * FIL
