"""The shapes of the Net* methods (go-libp2p peer.AddrInfo as Lotus's API writes it)."""

from typing import Annotated

from chain.encoding.schema import LotusJson, Name
from rpc.jsontypes import array_kind


class AddrInfo(LotusJson):
    """A peer and its transport addresses, without /p2p parts: `{"ID": "12D3Koo...", "Addrs": [...]}`
    (go-libp2p writes Addrs from make(), so no addresses is `[]`).

    The p2p host (node/p2p/host.py, branch p2p) declares the same shape; once it is on main the host's
    declaration should be the only one."""

    id: Annotated[str, Name("ID")]
    addrs: Annotated[tuple[str, ...], array_kind(str)] = ()
