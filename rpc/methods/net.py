"""The Net* methods (lotus api/api_net.go) over the node's libp2p host, `node.host` (node/p2p/host.py,
set by node/network.py for every node `filpy daemon` and `filpy devnet` run).

A node without a host (an in-process node of the tests) answers as a host with no peers would:
NetPeers is empty, NetAddrsListen gives the node's own ID and no addresses, every peer is NotConnected
(0), and NetConnect, NetDisconnect and NetAgentVersion say that there is no network. ID is declared with
the common methods.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, Protocol

from chain.encoding.multihash import IDENTITY, SHA2_256, Multihash
from node.fullnode import FullNode
from node.p2p.addrinfo import AddrInfo, Connectedness
from rpc.errors import RpcError
from rpc.registry import READ, WRITE, method

if TYPE_CHECKING:
    from libp2p.peer.id import ID as PeerID  # noqa: N811 - py-libp2p names its peer ID class ID


class NetHost(Protocol):
    """What these methods ask of the host (node/p2p/host.py's Libp2pHost offers it)."""

    def addrs_listen(self) -> AddrInfo: ...
    def peers(self) -> Sequence[AddrInfo]: ...
    async def connect(self, info: AddrInfo) -> None: ...
    async def disconnect(self, peer: "PeerID") -> None: ...
    def connectedness(self, peer: "PeerID") -> int: ...
    def agent_version(self, peer: "PeerID") -> str: ...


NO_NETWORK: Final = "this node runs no libp2p host"
# A peer ID is the multihash of the peer's public key: inlined (identity) when short, else sha2-256.
PEER_ID_HASHES: Final = frozenset({IDENTITY, SHA2_256})


def _host(node: FullNode) -> NetHost | None:
    return node.host


def _host_for(node: FullNode, refusal: str) -> NetHost:
    """The node's host; RpcError `refusal` when the node runs none."""
    host = _host(node)
    if host is None:
        raise RpcError(f"{refusal}: {NO_NETWORK}")
    return host


def parse_peer_id(text: str) -> "PeerID":
    """A peer ID (a base58 identity or sha2-256 multihash, as go-libp2p writes it); RpcError if it is
    not one."""
    # py-libp2p takes a second to import: only calls that name a peer pay for it, once.
    from libp2p.peer.id import ID

    try:
        peer = ID.from_base58(text)
        digest = Multihash.from_bytes(peer.to_bytes())
    except Exception as exc:  # base58 and multihash raise several unrelated types
        raise RpcError(f"failed to parse peer ID {text!r}: {exc}") from None
    if digest.code not in PEER_ID_HASHES:
        raise RpcError(f"failed to parse peer ID {text!r}: not an identity or sha2-256 multihash")
    return peer


@method("NetPeers", perm=READ)
async def net_peers(node: FullNode) -> tuple[AddrInfo, ...]:
    """The connected peers, each with the addresses of its connections."""
    host = _host(node)
    return () if host is None else tuple(host.peers())


@method("NetAddrsListen", perm=READ)
async def net_addrs_listen(node: FullNode) -> AddrInfo:
    """This node's peer ID and the addresses it listens on."""
    host = _host(node)
    return AddrInfo(id=node.peer_id) if host is None else host.addrs_listen()


@method("NetConnect", perm=WRITE)
async def net_connect(node: FullNode, peer: AddrInfo) -> None:
    """Connect to a peer at the given addresses."""
    parse_peer_id(peer.id)
    host = _host_for(node, f"cannot connect to {peer.id}")
    try:
        await host.connect(peer)
    except Exception as exc:  # the host's dial failures (StreamFailure and py-libp2p's own)
        raise RpcError(f"connecting to {peer.id}: {exc}") from None


@method("NetDisconnect", perm=WRITE)
async def net_disconnect(node: FullNode, peer: str) -> None:
    """Close every connection to a peer (a bootstrap peer is dialled again after a while)."""
    peer_id = parse_peer_id(peer)
    await _host_for(node, f"cannot disconnect from {peer}").disconnect(peer_id)


@method("NetConnectedness", perm=READ)
async def net_connectedness(node: FullNode, peer: str) -> Connectedness:
    """Whether this node is connected to a peer (go-libp2p's numbers: 0 not connected, 1 connected)."""
    peer_id = parse_peer_id(peer)
    host = _host(node)
    return Connectedness.NOT_CONNECTED if host is None else Connectedness(host.connectedness(peer_id))


@method("NetAgentVersion", perm=READ)
async def net_agent_version(node: FullNode, peer: str) -> str:
    """The agent a peer announced in identify (e.g. lotus-1.x, filpy/0.1)."""
    peer_id = parse_peer_id(peer)
    host = _host_for(node, f"no agent version known for peer {peer}")
    try:
        return host.agent_version(peer_id)
    except KeyError:
        raise RpcError(f"no agent version known for peer {peer}: not identified") from None
