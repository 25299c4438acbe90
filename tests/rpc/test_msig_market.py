"""Msig* and Market* methods over HTTP: the scenario's multisig (created, proposed to and approved
through the v0 methods) and market funds read back; the v1 methods' MessagePrototype shape; errors."""

from pathlib import Path
from typing import Any

import pytest

from actors import builtin
from actors.init.types import ExecParams
from actors.multisig.types import ConstructorParams, MultisigMethod, ProposeParams, TxnIDParams
from chain.encoding import dagcbor
from chain.types.message import Message
from rpc.auth import create_token, perms_up_to
from rpc.client import HttpClient, RpcCallError
from tests.rpc.chain_node import (
    ALICE_ADDR,
    BOB_ADDR,
    CAROL_ADDR,
    FIL,
    MSIG_UNLOCK,
    MSIG_VALUE,
    SECRET,
    Scenario,
    clients,
    devnet_genesis,
    mine,
    new_node,
    serving,
    settle,
)

Apis = tuple[HttpClient, HttpClient]


def locked_at(epoch: int) -> int:
    """What the scenario's multisig (vesting from epoch 0) still locks at epoch: the actor's rule,
    remaining / duration of the initial balance, rounded up."""
    remaining = max(MSIG_UNLOCK - epoch, 0)
    return -(-MSIG_VALUE * remaining // MSIG_UNLOCK)


async def test_msig_reads(live: Apis, scenario: Scenario) -> None:
    v0, v1 = live
    node = scenario.node
    head = node.chain.head()
    balance = node.state.get_actor(scenario.msig, head).balance
    assert balance == MSIG_VALUE - 1 * FIL  # transaction 0 (1 FIL to CAROL) executed
    genesis = node.chain.get_tipset_by_height(0)
    alice_id = node.state.lookup_id(ALICE_ADDR, head)
    for api in (v0, v1):
        available = await api.call("MsigGetAvailableBalance", str(scenario.msig_robust), None)
        assert int(available) == balance - locked_at(head.height)
        vested = await api.call("MsigGetVested", str(scenario.msig), genesis.key.to_json(), None)
        assert int(vested) == MSIG_VALUE - locked_at(head.height)
        assert await api.call("MsigGetVested", str(scenario.msig), None, None) == "0"
        with pytest.raises(RpcCallError, match=f"start tipset {head.height} is after end tipset 0"):
            await api.call("MsigGetVested", str(scenario.msig), None, genesis.key.to_json())
        pending = await api.call("MsigGetPending", str(scenario.msig), None)
        assert pending == [
            {
                "ID": 1,
                "To": str(CAROL_ADDR),
                "Value": str(2 * FIL),
                "Method": 0,
                "Params": None,
                "Approved": [str(alice_id)],
            }
        ]
    # before the approval both transactions were pending
    approved_in = node.state.search_msg(head, scenario.approve)
    assert approved_in is not None
    before = node.chain.load_tipset(approved_in.tipset.parents)
    earlier = await v1.call("MsigGetPending", str(scenario.msig), before.key.to_json())
    assert [t["ID"] for t in earlier] == [0, 1]
    carol = node.state.get_actor(CAROL_ADDR, head).balance
    assert carol == 1_000_000 * FIL + 1 * FIL


def _params(message: dict[str, Any]) -> Any:
    return dagcbor.decode(Message.from_json(message).params)


async def test_v1_builds_prototypes(live: Apis, scenario: Scenario) -> None:
    _, v1 = live
    signers = [str(ALICE_ADDR), str(BOB_ADDR)]
    create = await v1.call("MsigCreate", 0, signers, 50, str(3 * FIL), str(ALICE_ADDR), "0")
    assert set(create) == {"Message", "ValidNonce"} and create["ValidNonce"] is False
    msg = Message.from_json(create["Message"])
    assert (msg.to, msg.from_, msg.method, msg.value, msg.nonce) == (
        builtin.INIT_ACTOR_ADDR,
        ALICE_ADDR,
        2,
        3 * FIL,
        0,
    )
    assert (msg.gas_limit, msg.gas_fee_cap, msg.gas_premium) == (0, 0, 0)
    assert create["Message"]["CID"] == {"/": str(msg.cid())}
    exec_params = ExecParams.from_cbor(_params(create["Message"]))
    assert exec_params.code_cid == builtin.MULTISIG_ACTOR_CODE
    constructor = ConstructorParams.from_bytes(exec_params.constructor_params)
    assert constructor == ConstructorParams((ALICE_ADDR, BOB_ADDR), 2, 50, 0)  # 0 approvals: all signers

    propose = await v1.call(
        "MsigPropose", str(scenario.msig), str(CAROL_ADDR), str(FIL), str(BOB_ADDR), 0, None
    )
    msg = Message.from_json(propose["Message"])
    assert (msg.to, msg.from_, msg.method, msg.value) == (scenario.msig, BOB_ADDR, MultisigMethod.Propose, 0)
    assert ProposeParams.from_cbor(_params(propose["Message"])) == ProposeParams(CAROL_ADDR, FIL, 0, b"")

    approve = await v1.call("MsigApprove", str(scenario.msig), 1, str(BOB_ADDR))
    msg = Message.from_json(approve["Message"])
    assert (msg.to, msg.method) == (scenario.msig, MultisigMethod.Approve)
    assert TxnIDParams.from_cbor(_params(approve["Message"])) == TxnIDParams(1)
    # building a prototype pushes nothing
    assert scenario.node.mpool.pending()[0] == []


async def test_msig_errors(live: Apis, scenario: Scenario) -> None:
    v0, v1 = live
    signers = [str(ALICE_ADDR)]
    for api in (v0, v1):
        with pytest.raises(RpcCallError, match="cannot require signing of more addresses than provided"):
            await api.call("MsigCreate", 2, signers, 0, "0", str(ALICE_ADDR), "0")
        with pytest.raises(RpcCallError, match="must provide a non-negative amount"):
            await api.call("MsigPropose", str(scenario.msig), str(CAROL_ADDR), "-1", str(ALICE_ADDR), 0, None)
    # v0 pushes: a sender with no actor, one whose key the wallet lacks, a transaction that does not exist
    with pytest.raises(RpcCallError, match=r"pushing message: gas estimation failed: .* does not exist"):
        await v0.call("MsigCreate", 1, signers, 0, "0", "t1d2xrzcslx7xlbbylc5c3d5lvandqw4iwl6epxba", "0")
    owner = devnet_genesis().miners[0].owner  # on chain, its key is not in the node's wallet
    with pytest.raises(RpcCallError, match="pushing message: key not found"):
        await v0.call("MsigCreate", 1, signers, 0, "0", str(owner), "0")
    with pytest.raises(RpcCallError, match="pushing message: ") as info:
        await v0.call("MsigApprove", str(scenario.msig), 77, str(BOB_ADDR))
    assert info.value.code == 1
    assert scenario.node.mpool.pending()[0] == []


async def test_v1_prototype_pushed_creates_a_multisig(tmp_path: Path) -> None:
    node = new_node(tmp_path / "keystore")
    mine(node)
    async with serving(node) as bound, clients(bound) as (_, v1):
        proto = await v1.call("MsigCreate", 1, [str(BOB_ADDR)], 0, str(FIL), str(ALICE_ADDR), "0")
        signed = await node.run_sync(node.pusher.push_message, Message.from_json(proto["Message"]))
        settle(node)
        lookup = await v1.call("StateWaitMsg", {"/": str(signed.cid())}, 0, None, True)
        msig = lookup["ReturnDec"]["IDAddress"]
        assert await v1.call("MsigGetAvailableBalance", msig, None) == str(FIL)  # no vesting
        assert await v1.call("MsigGetPending", msig, None) == []


async def test_market_funds(live: Apis, scenario: Scenario) -> None:
    v0, v1 = live
    for api in (v0, v1):
        assert await api.call("MarketGetReserved", str(ALICE_ADDR)) == "0"
        with pytest.raises(
            RpcCallError, match=r"insufficient funds for withdrawal of 100 FIL: net available \("
        ):
            await api.call("MarketWithdraw", str(ALICE_ADDR), str(ALICE_ADDR), str(100 * FIL))
        with pytest.raises(RpcCallError, match="cannot add a negative amount"):
            await api.call("MarketAddBalance", str(ALICE_ADDR), str(ALICE_ADDR), "-5")
    assert scenario.node.mpool.pending()[0] == []


async def test_sign_methods_need_sign(scenario: Scenario) -> None:
    async with serving(scenario.node) as bound:
        for perm in (None, "read", "write"):
            token = None if perm is None else create_token(SECRET, perms_up_to(perm))
            async with clients(bound, token) as (v0, v1):
                for api in (v0, v1):
                    for name, params in (
                        ("MarketAddBalance", (str(ALICE_ADDR), str(ALICE_ADDR), "1")),
                        ("MarketWithdraw", (str(ALICE_ADDR), str(ALICE_ADDR), "1")),
                        ("MarketGetReserved", (str(ALICE_ADDR),)),
                        ("MsigApprove", (str(scenario.msig), 1, str(BOB_ADDR))),
                    ):
                        with pytest.raises(RpcCallError, match=f"missing permission to invoke '{name}'"):
                            await api.call(name, *params)
                    assert await api.call("MsigGetPending", str(scenario.msig), None)  # read is enough
