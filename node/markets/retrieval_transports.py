"""`/fil/retrieval/transports/1.0.0` (Boost): which retrieval transports a provider serves, and where.

The client opens a stream and reads one DAG-CBOR `QueryResponse{Protocols: [{Name, Addresses}]}` (an
IPLD schema struct: a map; each address a multiaddr's bytes, e.g. `/ip4/1.2.3.4/tcp/1234/http`); the
provider writes it and closes. filpy's providers list their HTTP endpoint (the node's API port, where
`/ipfs/` and `/piece/` are served); `http_urls` turns the answer into base URLs for
node/markets/retrieval_client.py's `retrieve_http`.
"""

from typing import Annotated, Final

import structlog
from libp2p.abc import INetStream
from libp2p.custom_types import TProtocol
from multiaddr import Multiaddr

from chain.encoding.errors import DecodeError
from chain.encoding.schema import BytesMax, CborMap, MaxLen
from node.p2p.host import Libp2pHost
from node.p2p.protocols import PeerID
from node.p2p.streamio import StreamFailure, close_quietly, read_cbor, write_cbor

_log = structlog.get_logger(__name__)

TRANSPORTS_PROTOCOL: Final = TProtocol("/fil/retrieval/transports/1.0.0")
TIMEOUT: Final = 10.0
MAX_RESPONSE: Final = 16 << 10


class TransportProtocol(CborMap):
    name: str  # "http", "https", "libp2p"
    addresses: Annotated[tuple[Annotated[bytes, BytesMax(256)], ...], MaxLen(32)]


class TransportsResponse(CborMap):
    protocols: Annotated[tuple[TransportProtocol, ...], MaxLen(16)]


class TransportsError(Exception):
    """The provider's transports could not be had; the message says why."""


def url_to_multiaddr(url: str) -> Multiaddr:
    """`http://host:port` as `/ip4/host/tcp/port/http` (or /dns for a name, /https for https)."""
    scheme, _, rest = url.partition("://")
    hostport = rest.split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if scheme not in ("http", "https") or not host or not port.isdigit():
        raise ValueError(f"{url} is not an http(s)://host:port URL")
    kind = "ip4" if all(part.isdigit() for part in host.split(".")) and host.count(".") == 3 else "dns"
    return Multiaddr(f"/{kind}/{host}/tcp/{port}/{scheme}")


def http_urls(response: TransportsResponse) -> list[str]:
    """Base URLs of the HTTP transports offered (addresses that are not ip/dns + tcp + http(s) are left
    out)."""
    out = []
    for protocol in response.protocols:
        if protocol.name not in ("http", "https"):
            continue
        for raw in protocol.addresses:
            try:
                addr = Multiaddr(raw)
                names = [p.name for p in addr.protocols()]
                host_kind = next(n for n in names if n in ("ip4", "ip6", "dns", "dns4", "dns6"))
                host = addr.value_for_protocol(host_kind)
                port = addr.value_for_protocol("tcp")
            except Exception:  # an address we cannot read is skipped
                continue
            scheme = "https" if "https" in names else "http"
            host_text = f"[{host}]" if host_kind == "ip6" else host
            out.append(f"{scheme}://{host_text}:{port}")
    return out


class TransportsProvider:
    """Answers `/fil/retrieval/transports/1.0.0` with the node's HTTP retrieval endpoints."""

    def __init__(self, urls: tuple[str, ...]) -> None:
        self.response = TransportsResponse(
            (TransportProtocol("http", tuple(url_to_multiaddr(u).to_bytes() for u in urls)),)
        )

    def register(self, host: Libp2pHost) -> None:
        host.set_stream_handler(TRANSPORTS_PROTOCOL, self._handle)

    async def _handle(self, stream: INetStream) -> None:
        try:
            await write_cbor(stream, self.response.to_bytes(), timeout=TIMEOUT)
        except StreamFailure as exc:
            _log.info("transports.answer_failed", peer=str(stream.muxed_conn.peer_id), error=str(exc))
        finally:
            await close_quietly(stream)


async def query_transports(host: Libp2pHost, peer: PeerID, *, timeout: float = TIMEOUT) -> TransportsResponse:
    """Ask peer which retrieval transports it serves; TransportsError if it cannot be had."""
    try:
        stream = await host.open_stream(peer, TRANSPORTS_PROTOCOL, timeout=timeout, dial=True)
    except StreamFailure as exc:
        raise TransportsError(f"cannot ask {peer} for its retrieval transports: {exc}") from None
    try:
        return TransportsResponse.from_cbor(await read_cbor(stream, max_bytes=MAX_RESPONSE, timeout=timeout))
    except (StreamFailure, DecodeError) as exc:
        raise TransportsError(f"{peer}'s retrieval transports could not be read: {exc}") from None
    finally:
        await close_quietly(stream)
