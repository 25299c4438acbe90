"""State* methods over HTTP against a real devnet node (tests/rpc/chain_node.py): each answer compared
with what the node's state holds, in Lotus's JSON shapes; missing actors, bad tipset keys and bad params
answered as Lotus does."""

import base64
from typing import Any

import pytest

from actors.multisig.types import MultisigState
from chain.types.address import Address
from chain.types.tipset import TipSet
from rpc.client import HttpClient, RpcCallError
from rpc.errors import INVALID_PARAMS, LotusCode
from tests.rpc.chain_node import ALICE_ADDR, BOB_ADDR, CAROL_ADDR, FIL, Scenario

Apis = tuple[HttpClient, HttpClient]


def head(scenario: Scenario) -> TipSet:
    return scenario.node.chain.head()


def tsk_json(ts: TipSet) -> list[dict[str, str]]:
    return ts.key.to_json()


async def fails(call: Any, code: int, words: str) -> RpcCallError:
    with pytest.raises(RpcCallError) as info:
        await call
    assert info.value.code == code, info.value
    assert words in info.value.message, info.value.message
    return info.value


async def test_network(live: Apis, scenario: Scenario) -> None:
    v0, v1 = live
    node = scenario.node
    for api in (v0, v1):
        assert await api.call("StateNetworkName") == node.state.network_name(head(scenario)) == "devchain"
        assert await api.call("StateNetworkVersion", None) == node.state.network_version == 21
    genesis = node.chain.get_tipset_by_height(0)
    assert await v1.call("StateNetworkVersion", tsk_json(genesis)) == 21
    params = await v1.call("StateGetNetworkParams")
    assert params["NetworkName"] == "devchain"
    assert params["BlockDelaySecs"] == node.policy.block_delay_secs
    assert params["ConsensusMinerMinPower"] == str(node.policy.consensus_miner_min_power)
    assert params["PreCommitChallengeDelay"] == node.policy.pre_commit_challenge_delay
    assert params["Eip155ChainID"] == 31415926
    assert params["GenesisTimestamp"] == node.chain.genesis().timestamp
    upgrades = params["ForkUpgradeParams"]
    assert len(upgrades) == 34 and upgrades["BreezeGasTampingDuration"] == 0
    assert upgrades["UpgradeWatermelonHeight"] < 0  # nv21: before the genesis
    assert upgrades["UpgradeDragonHeight"] == 9_999_999_999  # nv22: never
    assert await v1.call("StateCirculatingSupply", None) == str(node.state.circulating_supply(head(scenario)))


async def test_actors(live: Apis, scenario: Scenario) -> None:
    v0, v1 = live
    node, ts = scenario.node, head(scenario)
    alice_id = node.state.lookup_id(ALICE_ADDR, ts)
    for api in (v0, v1):
        actor = await api.call("StateGetActor", str(ALICE_ADDR), None)
        assert actor == node.state.get_actor(ALICE_ADDR, ts).to_json("t")
        assert set(actor) == {"Code", "Head", "Nonce", "Balance", "DelegatedAddress"}
        assert await api.call("StateLookupID", str(ALICE_ADDR), None) == str(alice_id)
        assert await api.call("StateAccountKey", str(alice_id), None) == str(ALICE_ADDR)
        listed = await api.call("StateListActors", None)
        assert listed == [str(a) for a in node.state.list_actors(ts)]
        assert str(scenario.msig) in listed and str(alice_id) in listed
    assert await v1.call("StateLookupRobustAddress", str(scenario.msig), None) == str(scenario.msig_robust)
    assert await v1.call("StateLookupID", str(scenario.msig_robust), None) == str(scenario.msig)
    # at an older tipset the multisig did not exist yet
    genesis = node.chain.get_tipset_by_height(0)
    await fails(
        v1.call("StateGetActor", str(scenario.msig), tsk_json(genesis)),
        LotusCode.ACTOR_NOT_FOUND,
        "not found",
    )


async def test_missing_actor_is_actor_not_found(live: Apis) -> None:
    v0, v1 = live
    nobody = str(Address.new_id(424242))
    unknown_key = "t1d2xrzcslx7xlbbylc5c3d5lvandqw4iwl6epxba"
    for api in (v0, v1):
        for name, params in (
            ("StateGetActor", (nobody, None)),
            ("StateGetActor", (unknown_key, None)),
            ("StateLookupID", (unknown_key, None)),
            ("StateAccountKey", (nobody, None)),
            ("StateReadState", (nobody, None)),
            ("StateMinerInfo", (nobody, None)),
            ("StateMinerSectors", (nobody, None, None)),
            ("StateMinerAvailableBalance", (nobody, None)),
            ("MsigGetAvailableBalance", (nobody, None)),
            ("MsigGetPending", (nobody, None)),
            ("StateDecodeParams", (nobody, 2, None, None)),
        ):
            await fails(api.call(name, *params), LotusCode.ACTOR_NOT_FOUND, "actor not found")
    await fails(
        v1.call("StateLookupRobustAddress", nobody, None), LotusCode.ACTOR_NOT_FOUND, "actor not found"
    )


async def test_wrong_kind_of_actor(live: Apis) -> None:
    _, v1 = live
    alice = str(ALICE_ADDR)
    await fails(v1.call("StateMinerInfo", alice, None), 1, "is not a storage miner actor")
    await fails(v1.call("StateMinerDeadlines", alice, None), 1, "is not a storage miner actor")
    await fails(v1.call("MsigGetPending", alice, None), 1, "is not a multisig actor")
    await fails(v1.call("StateAccountKey", "t04", None), 1, "is not an account actor")


async def test_bad_tipset_key(live: Apis, scenario: Scenario) -> None:
    _, v1 = live
    not_a_block = scenario.create  # a message CID, not a block header
    unknown = "bafy2bzacea3wsdh6y3a36tb3skempjoxqpuyompjbmfeyf34fi3uy6uue42v4"
    for tsk in ([{"/": unknown}], [{"/": str(not_a_block)}]):
        await fails(v1.call("StateGetActor", str(ALICE_ADDR), tsk), 1, "loading tipset")
        await fails(v1.call("StateMinerPower", "t01000", tsk), 1, "loading tipset")
        await fails(v1.call("MsigGetVested", str(scenario.msig), None, tsk), 1, "loading tipset")
    await fails(
        v1.call("StateGetActor", str(ALICE_ADDR), [{"/": "nonsense"}]), INVALID_PARAMS, "decoding param 2"
    )


async def test_bad_params_name_the_param(live: Apis) -> None:
    v0, v1 = live
    cases = (
        (v1, "StateGetActor", ("nonsense", None), "decoding param 1 of 'Filecoin.StateGetActor' (Address)"),
        (
            v1,
            "StateMinerPartitions",
            ("t01000", -1, None),
            "decoding param 2 of 'Filecoin.StateMinerPartitions'",
        ),
        (
            v1,
            "StateSearchMsg",
            (None, "bafy", None, True),
            "decoding param 2 of 'Filecoin.StateSearchMsg' (CID)",
        ),
        (v1, "StateMarketStorageDeal", ("1", None), "decoding param 1 of 'Filecoin.StateMarketStorageDeal'"),
        (
            v1,
            "MsigGetVested",
            ("t01000", None, 5),
            "decoding param 3 of 'Filecoin.MsigGetVested' (TipSetKey)",
        ),
        (v1, "StateCall", ({"To": "t01"}, None), "decoding param 1 of 'Filecoin.StateCall' (Message)"),
        (
            v1,
            "StateWaitMsg",
            ({"/": "bafy"}, 0),
            "wrong param count (method 'Filecoin.StateWaitMsg'): 2 != 4",
        ),
        (
            v0,
            "StateWaitMsg",
            ({"/": "bafy"}, 0, None, True),
            "wrong param count (method 'Filecoin.StateWaitMsg'): 4 != 2",
        ),
        (
            v0,
            "StateSearchMsg",
            (None, {"/": "bafy"}, None, True),
            "wrong param count (method 'Filecoin.StateSearchMsg'): 4 != 1",
        ),
        (
            v1,
            "MarketAddBalance",
            ("t01000", "t01000", 5),
            "decoding param 3 of 'Filecoin.MarketAddBalance' (BigInt)",
        ),
    )
    for api, name, params, words in cases:
        await fails(api.call(name, *params), INVALID_PARAMS, words)
    # methods v1 lacks or v0 lacks
    for api, name in ((v1, "StateGetReceipt"), (v1, "StateWaitMsgLimited"), (v0, "StateLookupRobustAddress")):
        await fails(api.call(name, "t01", None), -32601, "not found")


async def test_read_state(live: Apis, scenario: Scenario) -> None:
    _, v1 = live
    node, ts = scenario.node, head(scenario)
    actor, state = node.state.read_state(scenario.msig, ts)
    assert isinstance(state, MultisigState)
    answer = await v1.call("StateReadState", str(scenario.msig_robust), None)
    assert answer == {
        "Balance": str(actor.balance),
        "Code": {"/": str(actor.code)},
        "State": state.to_json("t"),
    }
    assert answer["State"]["Signers"] == [str(node.state.lookup_id(a, ts)) for a in (ALICE_ADDR, BOB_ADDR)]
    assert answer["State"]["NumApprovalsThreshold"] == 2
    assert answer["State"]["NextTxnID"] == 2
    assert answer["State"]["PendingTxns"] == {"/": str(state.pending_txs)}
    miner = await v1.call("StateReadState", "t01000", None)
    assert miner["State"]["Info"] == {"/": str(node.state.read_state(Address.new_id(1000), ts)[1].info)}


async def test_decode_params(live: Apis, scenario: Scenario) -> None:
    _, v1 = live
    node = scenario.node
    proposal = node.chain.get_message(scenario.proposals[1])
    params = base64.b64encode(proposal.message.params).decode()
    decoded = await v1.call("StateDecodeParams", str(scenario.msig), 2, params, None)
    assert decoded == {"To": str(CAROL_ADDR), "Value": str(2 * FIL), "Method": 0, "Params": None}
    assert await v1.call("StateDecodeParams", str(scenario.msig), 0, None, None) is None
    await fails(v1.call("StateDecodeParams", str(scenario.msig), 77, params, None), 1, "unknown method 77")
    await fails(v1.call("StateDecodeParams", str(scenario.msig), 2, "AAAA", None), 1, "decoding params")
