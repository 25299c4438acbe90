"""A node on a network: the libp2p host with gossip, hello and chain exchange (node/p2p), the chain sync
(node/chainsync) and, on a chain that runs its own drand beacon, the beacon service (node/beacon), wired
to each other and to the FullNode.

    network = NodeNetwork.open(node, repo.keystore, config.libp2p, beacon=opened.service)
    runner = ServiceRunner([..., *network.services(), ...])

`open` loads the host's identity from the keystore (`libp2p-host`, made on first start, as Lotus keeps
it), builds the P2P node with the beacon's gossip topic, makes the sync service (which sets the P2P
node's hooks and itself as `node.sync`, so it must exist before the P2P node runs), attaches the beacon
service to gossip and to the host (it serves and fetches missed rounds), and sets `node.host` (what the
Net* methods read) and `node.peer_id`. `services()` is the order they start in: the sync service, the
P2P node (gossip, hello, then the host listening and dialling its bootstrap peers), then the beacon
service, which publishes on gossip.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from node.beacon.service import BeaconService
from node.chainsync.service import SyncService
from node.config import Libp2pConfig
from node.daemon import Service
from node.fullnode import FullNode
from node.keystore import Keystore
from node.p2p.host import DEFAULT_OPTIONS, HostOptions
from node.p2p.identity import KeystoreIdentity, load_or_create_identity
from node.p2p.service import P2PNode

log = structlog.get_logger("network")


@dataclass(frozen=True, slots=True)
class NodeNetwork:
    """The network services of one node (see the module docstring)."""

    p2p: P2PNode
    sync: SyncService
    beacon: BeaconService | None

    @classmethod
    def open(
        cls,
        node: FullNode,
        keystore: Keystore,
        config: Libp2pConfig,
        *,
        beacon: BeaconService | None = None,
        options: HostOptions = DEFAULT_OPTIONS,
    ) -> "NodeNetwork":
        key = load_or_create_identity(KeystoreIdentity(keystore))
        topics = [beacon.gossip_topic()] if beacon is not None else []
        p2p = P2PNode(config, key, node.chain, node.policy, options=options, topics=topics)
        sync = SyncService(node, p2p)
        if beacon is not None:
            beacon.attach(p2p.gossip.publish)
            beacon.attach_host(p2p.host, penalize=p2p.gossip.penalize)
        node.host = p2p.host
        node.peer_id = p2p.host.id()
        return cls(p2p, sync, beacon)

    def services(self) -> Sequence[Service]:
        """In the order they start: sync, then the P2P node, then the beacon service."""
        return [self.sync, self.p2p, *([self.beacon] if self.beacon is not None else [])]

    def peer_addresses(self) -> list[str]:
        """This node's addresses with its peer ID (`/ip4/.../tcp/.../p2p/<id>`): what another node puts
        in its bootstrap list or gives NetConnect. The real ports once the host listens."""
        info = self.p2p.host.addrs_listen()
        return [f"{addr}/p2p/{info.id}" for addr in info.addrs]
