"""State* methods about miners, power and the market, over HTTP against the devnet node: each answer
compared with the state (its Lotus JSON shape), and the multisig, escrow and deal the scenario made
through RPC found where they should be."""

import base64
from dataclasses import replace
from typing import Any

import pytest

from actors.miner.state import SectorOnChainInfo
from chain.crypto.randomness import DomainSeparationTag
from chain.types.address import Address
from chain.types.bitfield import BitField
from rpc.client import HttpClient, RpcCallError
from tests.rpc.chain_node import (
    ALICE_ADDR,
    CLIENT_ESCROW,
    PROVIDER_ESCROW,
    WITHDRAWN,
    Scenario,
    miner_address,
)

Apis = tuple[HttpClient, HttpClient]
MINER = miner_address()


async def test_miner_info_and_power(live: Apis, scenario: Scenario) -> None:
    v0, v1 = live
    node = scenario.node
    ts = node.chain.head()
    info = node.state.miner_info(MINER, ts)
    for api in (v0, v1):
        answer = await api.call("StateMinerInfo", str(MINER), None)
        assert answer == {
            "Owner": str(info.owner),
            "Worker": str(info.worker),
            "NewWorker": "<empty>",
            "ControlAddresses": None,
            "WorkerChangeEpoch": -1,
            "PeerId": None,
            "Multiaddrs": None,
            "WindowPoStProofType": int(info.window_post_proof_type),
            "SectorSize": 2048,
            "WindowPoStPartitionSectors": info.window_post_partition_sectors,
            "ConsensusFaultElapsed": info.consensus_fault_elapsed,
            "PendingOwnerAddress": None,
            "Beneficiary": str(info.beneficiary),
            "BeneficiaryTerm": {"Quota": "0", "UsedQuota": "0", "Expiration": 0},
            "PendingBeneficiaryTerm": None,
        }
        power = node.state.miner_power(MINER, ts)
        assert await api.call("StateMinerPower", str(MINER), None) == {
            "MinerPower": {"RawBytePower": "4096", "QualityAdjPower": "4096"},
            "TotalPower": {
                "RawBytePower": str(power.total.raw_byte_power),
                "QualityAdjPower": str(power.total.quality_adj_power),
            },
            "HasMinPower": True,
        }
        assert power.total.raw_byte_power == 8192  # two miners of two 2 KiB sectors
        # an address without a claim has no power (Lotus: no error)
        none = await api.call("StateMinerPower", str(ALICE_ADDR), None)
        assert none["MinerPower"] == {"RawBytePower": "0", "QualityAdjPower": "0"} and not none["HasMinPower"]
        assert await api.call("StateListMiners", None) == ["t01000", "t01001"]
        available = await api.call("StateMinerAvailableBalance", str(MINER), None)
        assert available == str(node.state.available_balance(MINER, ts))


async def test_sectors(live: Apis, scenario: Scenario) -> None:
    _, v1 = live
    node = scenario.node
    ts = node.chain.head()
    sectors = node.state.miner_sectors(MINER, ts)
    assert [s.sector_number for s in sectors] == [0, 1]
    everything = await v1.call("StateMinerSectors", str(MINER), None, None)
    assert [SectorOnChainInfo.from_json(s) for s in everything] == sectors
    assert everything[0]["SealedCID"] == {"/": str(sectors[0].sealed_cid)}
    only_one = await v1.call("StateMinerSectors", str(MINER), BitField.from_bits([1]).to_json(), None)
    assert [s["SectorNumber"] for s in only_one] == [1]
    active = await v1.call("StateMinerActiveSectors", str(MINER), None)
    assert [s["SectorNumber"] for s in active] == [
        s.sector_number for s in node.state.miner_active_sectors(MINER, ts)
    ]
    assert await v1.call("StateSectorGetInfo", str(MINER), 1, None) == sectors[1].to_json("t")
    assert await v1.call("StateSectorGetInfo", str(MINER), 99, None) is None


async def test_deadlines_and_partitions(live: Apis, scenario: Scenario) -> None:
    _, v1 = live
    node = scenario.node
    ts = node.chain.head()
    deadlines = await v1.call("StateMinerDeadlines", str(MINER), None)
    assert len(deadlines) == node.policy.wpost_period_deadlines
    state_deadlines = node.state.miner_deadlines(MINER, ts)
    for answer, deadline in zip(deadlines, state_deadlines, strict=True):
        assert answer == {
            "PostSubmissions": deadline.partitions_posted.to_json(),
            "DisputableProofCount": 0,
            "DailyFee": "0",
        }
    with_sectors = [i for i, d in enumerate(state_deadlines) if d.live_sectors]
    assert with_sectors, "the genesis miner's sectors sit in some deadline"
    partitions = await v1.call("StateMinerPartitions", str(MINER), with_sectors[0], None)
    (partition,) = node.state.miner_partitions(MINER, with_sectors[0], ts)
    assert partitions == [
        {
            "AllSectors": partition.sectors.to_json(),
            "FaultySectors": partition.faults.to_json(),
            "RecoveringSectors": partition.recoveries.to_json(),
            "LiveSectors": partition.live().to_json(),
            "ActiveSectors": partition.active().to_json(),
        }
    ]
    assert BitField.from_json(partitions[0]["AllSectors"]) == BitField.from_bits([0, 1])
    assert await v1.call("StateMinerPartitions", str(MINER), with_sectors[0] ^ 1, None) in ([], partitions)
    with pytest.raises(RpcCallError, match="out of range"):
        await v1.call("StateMinerPartitions", str(MINER), 1000, None)
    assert await v1.call("StateMinerFaults", str(MINER), None) == node.state.miner_faults(MINER, ts).to_json()
    assert await v1.call("StateMinerRecoveries", str(MINER), None) == [0]  # empty: one run of zeros


async def test_proving_deadline(live: Apis, scenario: Scenario) -> None:
    _, v1 = live
    node = scenario.node
    ts = node.chain.head()
    info = node.state.proving_deadline(MINER, ts)
    policy = node.policy
    assert await v1.call("StateMinerProvingDeadline", str(MINER), None) == {
        "CurrentEpoch": ts.height,
        "PeriodStart": info.period_start,
        "Index": info.index,
        "Open": info.open,
        "Close": info.close,
        "Challenge": info.challenge,
        "FaultCutoff": info.fault_cutoff,
        "WPoStPeriodDeadlines": policy.wpost_period_deadlines,
        "WPoStProvingPeriod": policy.wpost_proving_period,
        "WPoStChallengeWindow": policy.wpost_challenge_window,
        "WPoStChallengeLookback": policy.wpost_challenge_lookback,
        "FaultDeclarationCutoff": policy.fault_declaration_cutoff,
    }
    assert info.open <= ts.height < info.close or ts.height < info.open


async def test_market(live: Apis, scenario: Scenario) -> None:
    v0, v1 = live
    node = scenario.node
    deal = scenario.deal
    locked = deal.client_balance_requirement
    # the market keeps the client by its ID address
    alice_id = node.state.lookup_id(ALICE_ADDR, node.chain.head())
    stored = replace(deal, client=alice_id)
    for api in (v0, v1):
        client = await api.call("StateMarketBalance", str(ALICE_ADDR), None)
        assert client == {"Escrow": str(CLIENT_ESCROW - WITHDRAWN), "Locked": str(locked)}
        provider = await api.call("StateMarketBalance", str(MINER), None)
        assert provider == {"Escrow": str(PROVIDER_ESCROW), "Locked": str(deal.provider_collateral)}
        # an address the market does not know has nothing in it
        assert await api.call("StateMarketBalance", "t0424242", None) == {"Escrow": "0", "Locked": "0"}
        expected = {
            "Proposal": stored.to_json("t"),
            "State": {"SectorNumber": 0, "SectorStartEpoch": -1, "LastUpdatedEpoch": -1, "SlashEpoch": -1},
        }
        assert await api.call("StateMarketDeals", None) == {str(scenario.deal_id): expected}
        assert await api.call("StateMarketStorageDeal", scenario.deal_id, None) == expected
        with pytest.raises(RpcCallError, match="deal 77 not found"):
            await api.call("StateMarketStorageDeal", 77, None)
    assert expected["Proposal"]["Label"] == "rpc-state test deal"
    assert expected["Proposal"]["Client"] == str(alice_id)
    # before the deal was published the market had none
    genesis = node.chain.get_tipset_by_height(0)
    assert await v1.call("StateMarketDeals", genesis.key.to_json()) == {}


async def test_randomness(live: Apis, scenario: Scenario) -> None:
    _, v1 = live
    node = scenario.node
    ts = node.chain.head()
    tag = int(DomainSeparationTag.WindowedPoStChallengeSeed)
    entropy = b"rpc entropy"
    b64 = "cnBjIGVudHJvcHk="
    tickets = await v1.call("StateGetRandomnessFromTickets", tag, ts.height - 1, b64, None)
    beacon = await v1.call("StateGetRandomnessFromBeacon", tag, ts.height - 1, b64, None)
    assert _bytes(tickets) == node.state.draw_chain_randomness(ts, tag, ts.height - 1, entropy)
    assert _bytes(beacon) == node.state.draw_beacon_randomness(ts, tag, ts.height - 1, entropy)
    assert tickets != beacon
    with pytest.raises(RpcCallError, match="cannot draw randomness from the future"):
        await v1.call("StateGetRandomnessFromTickets", tag, ts.height + 5, None, None)


def _bytes(raw: Any) -> bytes:

    return base64.b64decode(raw)


def test_address_fixture() -> None:
    assert Address.new_id(1000) == MINER
