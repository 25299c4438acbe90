"""`filpy net id|listen|peers|connect` against nodes with real libp2p hosts on 127.0.0.1 (tests/kit: two
nodes of one genesis, not connected), and against a node that runs no host."""

from pathlib import Path

import pytest
import trio

from rpc.client import HttpClient
from rpc.methods import full_node_registry
from rpc.methods.net import NO_NETWORK
from rpc.server import BoundAddress, RpcServer
from tests.cli.client_kit import Filpy, error_line, fake_repo
from tests.kit.ensemble import ensemble, wait_until
from tests.rpc.chain_node import ADMIN_TOKEN, SECRET

pytestmark = pytest.mark.slow  # two libp2p hosts


async def test_connect_two_nodes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], nursery: trio.Nursery
) -> None:
    async with ensemble(nodes=2, miners=1, connect=False) as ens:
        ours, theirs = ens.nodes
        ours.node.host = ours.p2p.host  # type: ignore[attr-defined]  # what the daemon sets for Net*
        server = RpcServer(full_node_registry(), ours.node, secret=SECRET, host="127.0.0.1", port=0)
        bound: BoundAddress = await nursery.start(server.run)
        filpy = Filpy(capsys, fake_repo(tmp_path / "repo", bound))

        our_id = str(ours.peer_id)
        assert (await filpy("net", "id")).out == f"{our_id}\n"
        listen = (await filpy("net", "listen")).lines
        assert listen and all(
            line.startswith("/ip4/127.0.0.1/tcp/") and line.endswith(f"/p2p/{our_id}") for line in listen
        )
        assert (await filpy("net", "peers")).lines[-1] == "0 peers"

        their = theirs.p2p.host.addrs_listen()
        target = f"{their.addrs[0]}/p2p/{their.id}"
        ran = await filpy("net", "connect", target)
        assert ran.out == f"connect {their.id}: success\n", ran.err
        await wait_until(lambda: ours.connected_to(theirs), what="connected")
        peers = await filpy("net", "peers", "--agent")
        header, row, *_ = peers.table()
        assert header == ["Peer", "Addresses", "Agent"]
        assert row[0] == str(their.id) and row[2].startswith("filpy")
        async with HttpClient(bound.url("/rpc/v1"), token=ADMIN_TOKEN) as api:
            assert (await filpy("net", "peers", "--json")).json() == await api.call("NetPeers")
            assert (await filpy("net", "listen", "--json")).json() == await api.call("NetAddrsListen")

        no_p2p = await filpy("net", "connect", "/ip4/127.0.0.1/tcp/1")
        assert error_line(no_p2p, "net connect") == (
            "'/ip4/127.0.0.1/tcp/1' is not a peer's multiaddr: expected /ip4/<host>/tcp/<port>/p2p/<peer ID>"
        )
        ens.stop(theirs)


async def test_a_node_without_a_host(filpy: Filpy) -> None:
    assert (await filpy("net", "peers")).lines[-1] == "0 peers"
    assert (await filpy("net", "peers", "--json")).json() == []
    assert (await filpy("net", "listen")).out == ""
    peer = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
    refused = await filpy("net", "connect", f"/ip4/127.0.0.1/tcp/4001/p2p/{peer}")
    assert refused.out == f"connect {peer}: failure\n"
    assert error_line(refused, "net connect") == f"cannot connect to {peer}: {NO_NETWORK}"
