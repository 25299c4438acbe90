"""A peer and its addresses (go-libp2p peer.AddrInfo) and go-libp2p's Connectedness, declared once for
the host, the config and the Net* methods. This module imports no py-libp2p at load (it takes a second):
only the calls that need a libp2p peer ID import it.
"""

from enum import IntEnum
from typing import TYPE_CHECKING, Annotated

from chain.encoding.errors import DecodeError
from chain.encoding.schema import LotusJson, Name, array_kind

if TYPE_CHECKING:
    from libp2p.peer.peerinfo import PeerInfo

    from node.p2p.protocols import PeerID


class Connectedness(IntEnum):
    """go-libp2p network.Connectedness, as NetConnectedness returns it."""

    NOT_CONNECTED = 0
    CONNECTED = 1
    CAN_CONNECT = 2
    CANNOT_CONNECT = 3
    LIMITED = 4


class AddrInfo(LotusJson):
    """A peer and its transport addresses, without /p2p parts: `{"ID": "12D3Koo...", "Addrs": [...]}`
    (go-libp2p writes Addrs from make(), so no addresses is `[]`)."""

    id: Annotated[str, Name("ID")]
    addrs: Annotated[tuple[str, ...], array_kind(str)] = ()

    @classmethod
    def parse(cls, text: str) -> "AddrInfo":
        """An address ending in /p2p/<peer id>, as config files and `filpy net connect` take them."""
        from multiaddr import Multiaddr
        from multiaddr.protocols import P_P2P

        try:
            addr = Multiaddr(text)
            peer = addr.get_peer_id()
        except Exception as exc:  # multiaddr raises several unrelated types for bad text
            raise DecodeError(f"{text!r} is not a multiaddr: {exc}") from None
        if peer is None:
            raise DecodeError(f"{text!r} does not end in /p2p/<peer id>")
        transport = addr.decapsulate_code(P_P2P)
        return cls(peer, (str(transport),) if str(transport) not in ("", "/") else ())

    def peer_id(self) -> "PeerID":
        from node.p2p.protocols import PeerID

        try:
            return PeerID.from_base58(self.id)
        except Exception as exc:  # base58 and multihash errors
            raise DecodeError(f"{self.id!r} is not a peer ID: {exc}") from None

    def to_peer_info(self) -> "PeerInfo":
        from libp2p.peer.peerinfo import PeerInfo
        from multiaddr import Multiaddr

        return PeerInfo(self.peer_id(), [Multiaddr(a) for a in self.addrs])
