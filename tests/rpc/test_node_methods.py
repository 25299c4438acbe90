"""Beacon entries (StateGetBeaconEntry v1, BeaconGetEntry v0), SyncState and the Net* methods over HTTP
against a node with mined blocks; Net* both without a libp2p host (a single-node devnet) and with one."""

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from libp2p.peer.id import ID as PeerID  # noqa: N811 - py-libp2p names its peer ID class ID

from chain.encoding.cid import CID
from chain.sync.state import ActiveSync, SyncStage, SyncStatus
from chain.types.tipset import TipSet
from node.p2p.addrinfo import AddrInfo
from rpc.client import HttpClient, RpcCallError
from rpc.errors import METHOD_NOT_FOUND
from tests.rpc.chain_node import Served
from tests.rpc.conftest import chain_token

T = "t"
PEER = "12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf"
OTHER_PEER = "12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK"
OWN_PEER = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"


async def test_beacon_entries(served: Served) -> None:
    node = served.node
    head = node.chain.head()
    async with HttpClient(served.url()) as v1, HttpClient(served.url("v0")) as v0:
        for epoch in range(head.height + 1):
            entry = node.state.beacon_entry(head, epoch).to_json(T)
            assert await v1.call("StateGetBeaconEntry", epoch) == entry
            assert await v0.call("BeaconGetEntry", epoch) == entry
        # a negative epoch is the genesis's, a future one the beacon's own
        assert await v1.call("StateGetBeaconEntry", -5) == await v1.call("StateGetBeaconEntry", 0)
        future = head.height + 10
        expected = node.beacon.entry(node.beacon.max_beacon_round_for_epoch(future))
        assert await v1.call("StateGetBeaconEntry", future) == expected.to_json(T)
        assert expected.round == node.beacon.max_beacon_round_for_epoch(future)
        for api, method in ((v0, "StateGetBeaconEntry"), (v1, "BeaconGetEntry")):
            with pytest.raises(RpcCallError) as err:
                await api.call(method, 1)
            assert err.value.code == METHOD_NOT_FOUND


async def test_sync_state_of_a_node_making_its_own_chain(served: Served) -> None:
    head = served.node.chain.head()
    stamp = datetime.fromtimestamp(head.min_timestamp(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    async with HttpClient(served.url()) as api:
        assert await api.call("SyncState") == {
            "ActiveSyncs": [
                {
                    "WorkerID": 1,
                    "Base": head.to_json(T),
                    "Target": head.to_json(T),
                    "Stage": 4,  # StageSyncComplete
                    "Height": head.height,
                    "Start": stamp,
                    "End": stamp,
                    "Message": "",
                }
            ],
            "VMApplied": 0,
        }


@dataclass
class _Sync:
    """A sync service half-way through a sync (what node/chainsync's SyncService answers), with a bad
    block table."""

    target: TipSet
    bad: dict[CID, str] = field(default_factory=dict)
    started: bool = True

    def sync_state(self) -> SyncStatus:
        if not self.started:
            return SyncStatus((), vm_applied=0)
        start = datetime(2024, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
        running = ActiveSync(7, None, self.target, SyncStage.MESSAGES, self.target.height - 1, start)
        return SyncStatus((running, ActiveSync(8)), vm_applied=1234)

    def check_bad(self, cid: CID) -> str:
        return self.bad.get(cid, "")

    def mark_bad(self, cid: CID) -> None:
        self.bad[cid] = "manually marked bad"

    def unmark_bad(self, cid: CID) -> None:
        self.bad.pop(cid, None)

    def unmark_all_bad(self) -> None:
        self.bad.clear()


async def test_a_sync_service_without_workers_reports_the_head_as_synced(served: Served) -> None:
    served.node.sync = _Sync(served.node.chain.head(), started=False)  # type: ignore[assignment]
    async with HttpClient(served.url()) as api:
        got = await api.call("SyncState")
    (worker,) = got["ActiveSyncs"]
    head = served.node.chain.head().to_json(T)
    assert (worker["Base"], worker["Target"], worker["Stage"]) == (head, head, 4)


async def test_sync_state_reports_the_sync_service(served: Served) -> None:
    head = served.node.chain.head()
    served.node.sync = _Sync(head)  # type: ignore[assignment]
    async with HttpClient(served.url()) as api:
        got = await api.call("SyncState")
    assert got["VMApplied"] == 1234
    running, idle = got["ActiveSyncs"]
    assert running == {
        "WorkerID": 7,
        "Base": None,
        "Target": head.to_json(T),
        "Stage": 3,
        "Height": head.height - 1,
        "Start": "2024-01-02T03:04:05.6Z",
        "End": "0001-01-01T00:00:00Z",  # Go's zero time: not finished
        "Message": "",
    }
    assert idle == {
        "WorkerID": 8,
        "Base": None,
        "Target": None,
        "Stage": 0,
        "Height": 0,
        "Start": "0001-01-01T00:00:00Z",
        "End": "0001-01-01T00:00:00Z",
        "Message": "",
    }


async def test_bad_blocks(served: Served) -> None:
    head = served.node.chain.head()
    cid = head.cids[0]
    async with (
        HttpClient(served.url()) as reader,
        HttpClient(served.url(), token=chain_token("admin")) as admin,
    ):
        with pytest.raises(RpcCallError, match="does not sync from a network"):
            await reader.call("SyncCheckBad", {"/": str(cid)})
        served.node.sync = _Sync(head)  # type: ignore[assignment]
        assert await reader.call("SyncCheckBad", {"/": str(cid)}) == ""
        with pytest.raises(RpcCallError, match=r"'SyncMarkBad' \(need 'admin'\)"):
            await reader.call("SyncMarkBad", {"/": str(cid)})
        assert await admin.call("SyncMarkBad", {"/": str(cid)}) is None
        assert await reader.call("SyncCheckBad", {"/": str(cid)}) == "manually marked bad"
        assert await admin.call("SyncUnmarkBad", {"/": str(cid)}) is None
        assert await reader.call("SyncCheckBad", {"/": str(cid)}) == ""
        await admin.call("SyncMarkBad", {"/": str(cid)})
        assert await admin.call("SyncUnmarkAllBad") is None
        assert await reader.call("SyncCheckBad", {"/": str(cid)}) == ""


async def test_net_without_a_host(served: Served) -> None:
    served.node.peer_id = OWN_PEER
    async with (
        HttpClient(served.url()) as reader,
        HttpClient(served.url(), token=chain_token("write")) as writer,
    ):
        assert await reader.call("NetPeers") == []
        assert await reader.call("NetAddrsListen") == {"ID": OWN_PEER, "Addrs": []}
        assert await reader.call("ID") == OWN_PEER
        assert await reader.call("NetConnectedness", PEER) == 0
        for bad in ("not-a-peer", "nope", "QmShort", ""):
            with pytest.raises(RpcCallError, match=f"failed to parse peer ID '{bad}'"):
                await reader.call("NetConnectedness", bad)
        with pytest.raises(RpcCallError, match=r"no agent version known for peer .*runs no libp2p host"):
            await reader.call("NetAgentVersion", PEER)
        info = {"ID": PEER, "Addrs": ["/ip4/127.0.0.1/tcp/4001"]}
        with pytest.raises(RpcCallError, match=r"'NetConnect' \(need 'write'\)"):
            await reader.call("NetConnect", info)
        with pytest.raises(RpcCallError, match=f"cannot connect to {PEER}: this node runs no libp2p host"):
            await writer.call("NetConnect", info)
        with pytest.raises(RpcCallError, match=f"cannot disconnect from {PEER}: this node runs no libp2p"):
            await writer.call("NetDisconnect", PEER)


class _Host:
    """A libp2p host as the Net* methods use it (node/p2p/host.py's interface), over a table of peers."""

    def __init__(self) -> None:
        self.connected: dict[str, tuple[str, ...]] = {}
        self.agents: dict[str, str] = {}

    def addrs_listen(self) -> AddrInfo:
        return AddrInfo(id=OWN_PEER, addrs=("/ip4/127.0.0.1/tcp/4001",))

    def peers(self) -> list[AddrInfo]:
        return [AddrInfo(id=p, addrs=a) for p, a in self.connected.items()]

    async def connect(self, info: AddrInfo) -> None:
        if not info.addrs:
            raise OSError("no addresses to dial")
        self.connected[info.id] = info.addrs
        self.agents[info.id] = "lotus-1.30.0+mainnet"

    async def disconnect(self, peer: PeerID) -> None:
        self.connected.pop(peer.to_base58(), None)

    def connectedness(self, peer: PeerID) -> int:
        return 1 if peer.to_base58() in self.connected else 0

    def agent_version(self, peer: PeerID) -> str:
        return self.agents[peer.to_base58()]


async def test_net_with_a_host(served: Served) -> None:
    served.node.host = _Host()  # type: ignore[assignment]
    async with HttpClient(served.url(), token=chain_token("write")) as api:
        assert await api.call("NetAddrsListen") == {"ID": OWN_PEER, "Addrs": ["/ip4/127.0.0.1/tcp/4001"]}
        assert await api.call("NetConnect", {"ID": PEER, "Addrs": ["/ip4/10.0.0.1/tcp/1347"]}) is None
        assert await api.call("NetPeers") == [{"ID": PEER, "Addrs": ["/ip4/10.0.0.1/tcp/1347"]}]
        assert await api.call("NetConnectedness", PEER) == 1
        assert await api.call("NetConnectedness", OTHER_PEER) == 0
        assert await api.call("NetAgentVersion", PEER) == "lotus-1.30.0+mainnet"
        with pytest.raises(RpcCallError, match="not identified"):
            await api.call("NetAgentVersion", OTHER_PEER)
        with pytest.raises(RpcCallError, match=f"connecting to {OTHER_PEER}: no addresses to dial"):
            await api.call("NetConnect", {"ID": OTHER_PEER, "Addrs": None})
        with pytest.raises(RpcCallError, match="failed to parse peer ID"):
            await api.call("NetConnect", {"ID": "nope", "Addrs": []})
        assert await api.call("NetDisconnect", PEER) is None
        assert await api.call("NetConnectedness", PEER) == 0
        assert await api.call("NetPeers") == []
