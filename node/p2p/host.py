"""The libp2p host as Lotus runs it: TCP, Noise, yamux only, identify, a persistent identity.

`Libp2pHost` wraps a py-libp2p BasicHost and adds what a Filecoin node needs around it:

- the identity comes from the repo (node/p2p/identity.py), so the peer ID survives restarts;
- security is Noise only and the muxer `/yamux/1.0.0` only (Lotus offers no mplex; py-libp2p's TLS
  cannot do mutual authentication, so Noise, Lotus's first choice, is the one offered);
- identify answers with agent version `filpy/<version>`, and every new connection is identified by
  us too, so that the peer's agent and protocols are known (NetAgentVersion; hello is said to peers
  that speak it, as Lotus does on EvtPeerIdentificationCompleted);
- bootstrap peers from the config are dialled at start and redialled when they drop, with a bounded,
  jittered exponential backoff;
- what the Net* RPC methods need: `id`, `addrs_listen`, `peers`, `connect`, `disconnect`,
  `connectedness`, `agent_version`.

`run` is the service: it returns only when cancelled, and closes every connection on the way out.
"""

import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, Final, cast

import structlog
import trio
from libp2p import new_swarm
from libp2p.abc import IMuxedConn, INetConn, INetStream, INetwork, INotifee
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519
from libp2p.custom_types import StreamHandlerFn, TProtocol
from libp2p.host.basic_host import BasicHost
from libp2p.host.ping import ID as PING_PROTOCOL
from libp2p.host.ping import PingService
from libp2p.identity.identify.identify import _mk_identify_protobuf, _remote_address_to_multiaddr
from libp2p.identity.identify.pb.identify_pb2 import Identify
from libp2p.identity.identify_push.identify_push import ID_PUSH, identify_push_handler_for
from libp2p.io.exceptions import IOException
from libp2p.network.auto_connector import AutoConnector
from libp2p.network.config import ConnectionConfig
from libp2p.network.swarm import Swarm
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux import yamux as _yamux
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.utils.varint import encode_varint_prefixed, read_varint_prefixed_bytes_limited
from multiaddr import Multiaddr
from multiaddr.protocols import P_P2P

from chain.encoding.errors import DecodeError
from node.config import Libp2pConfig
from node.p2p.addrinfo import AddrInfo as AddrInfo  # the host's callers name it from here too
from node.p2p.addrinfo import Connectedness as Connectedness
from node.p2p.identity import peer_id_of
from node.p2p.protocols import IDENTIFY_PROTOCOL, PeerID
from node.p2p.streamio import StreamFailure, close_quietly

# The largest yamux data frame we write (py-libp2p writes 64 KiB frames). Every frame costs the reader
# a wake-up, a read and a window update, and both sides a trip through yamux, Noise and trio: a chain
# exchange answer of 900 devnet headers is 14 MB. 256 KiB is the initial stream window, the most a
# first frame may carry by the yamux spec; go-yamux accepts frames up to the receive window, rust
# yamux and jvm-libp2p up to 1 MiB. py-libp2p reads the module's constant at each write.
YAMUX_MAX_FRAME: Final = 256 << 10
_yamux.MAX_MESSAGE_SIZE = YAMUX_MAX_FRAME

if TYPE_CHECKING:
    from trio_typing import TaskStatus  # trio-stubs (installed with trio-typing) shadow trio's own types

_log = structlog.get_logger(__name__)


def _agent_version() -> str:
    try:
        return f"filpy/{version('filpy')}"
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "filpy/unknown"


AGENT_VERSION: Final = _agent_version()

_IDENTIFY_MAX_BYTES: Final = 64 << 10
_IDENTIFY_TIMEOUT: Final = 10.0
_IDENTIFY_RETRIES: Final = (0.0, 0.25, 1.0, 3.0)  # pause before each attempt
_EVENT_BUFFER: Final = 1024
_HANG_UP_TIMEOUT: Final = 10.0


@dataclass(frozen=True, slots=True)
class HostOptions:
    """How the host dials and keeps connections (config.toml's [libp2p] says where it listens and whom
    it dials first: node/config.py)."""

    dial_timeout: float = 15.0
    # redialling a bootstrap peer that dropped: first wait, then doubled up to the cap, +-25 % jitter
    reconnect_min_backoff: float = 1.0
    reconnect_max_backoff: float = 60.0
    # connection manager (Lotus's ConnMgrLow/ConnMgrHigh): above high, trim down to low
    conn_low_water: int = 150
    conn_high_water: int = 180

    def __post_init__(self) -> None:
        if not 0 < self.conn_low_water <= self.conn_high_water:
            raise ValueError("libp2p: 0 < conn_low_water <= conn_high_water is required")
        if not 0 < self.reconnect_min_backoff <= self.reconnect_max_backoff:
            raise ValueError("libp2p: 0 < reconnect_min_backoff <= reconnect_max_backoff is required")
        if self.dial_timeout <= 0:
            raise ValueError("libp2p: dial_timeout must be positive")


DEFAULT_OPTIONS: Final = HostOptions()


@dataclass(slots=True)
class _PeerState:
    agent: str | None = None
    protocols: frozenset[str] = frozenset()
    disconnected: trio.Event = field(default_factory=trio.Event)


class _NoAutoDial(AutoConnector):
    """py-libp2p dials peers from its peerstore whenever connections are below its watermark; go-libp2p
    (Lotus) does not. Who we dial is decided here: bootstrap peers, NetConnect, later discovery."""

    async def maybe_connect(self) -> None:
        return


class _Notifee(INotifee):
    """Moves the swarm's connection events onto a channel; the host's run loop handles them, so the
    swarm's event path never waits for us."""

    def __init__(self, send: trio.MemorySendChannel[tuple[bool, PeerID]]) -> None:
        self._send = send

    def _post(self, connected: bool, conn: INetConn) -> None:
        peer = getattr(conn.muxed_conn, "peer_id", None)
        if peer is None:
            return
        try:
            self._send.send_nowait((connected, peer))
        except trio.WouldBlock:
            _log.warning("p2p.event_dropped", peer=str(peer), connected=connected)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self._post(True, conn)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._post(False, conn)

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def listen(self, network: INetwork, multiaddr: Multiaddr) -> None:
        pass

    async def listen_close(self, network: INetwork, multiaddr: Multiaddr) -> None:
        pass


class Libp2pHost:
    def __init__(
        self,
        config: Libp2pConfig,
        key_pair: KeyPair,
        *,
        options: HostOptions = DEFAULT_OPTIONS,
        agent_version: str = AGENT_VERSION,
    ) -> None:
        """DecodeError if a listen or bootstrap address cannot be read."""
        self.config = config
        self.options = options
        if not config.listen:
            raise DecodeError("libp2p.listen: at least one address is needed")
        self._listen = [_multiaddr(text, "libp2p.listen") for text in config.listen]
        self.bootstrap_peers = tuple(AddrInfo.parse(text) for text in config.bootstrap)
        self.agent = agent_version
        self._key_pair = key_pair
        swarm = new_swarm(
            key_pair=key_pair,
            sec_opt={NOISE_PROTOCOL: NoiseTransport(key_pair, noise_privkey=new_x25519().private_key)},
            muxer_opt={TProtocol(YAMUX_PROTOCOL): cast(type[IMuxedConn], Yamux)},
            listen_addrs=self._listen,
            connection_config=ConnectionConfig(
                low_watermark=options.conn_low_water,
                high_watermark=options.conn_high_water,
                grace_period=20.0,
            ),
        )
        if isinstance(swarm, Swarm):
            swarm.auto_connector = _NoAutoDial(swarm)
        # Our identify handler replaces py-libp2p's (which would announce "py-libp2p/<version>");
        # push and ping are py-libp2p's, registered once the host they serve exists.
        handlers: OrderedDict[TProtocol, StreamHandlerFn] = OrderedDict(
            {IDENTIFY_PROTOCOL: self._answer_identify}
        )
        self._host = BasicHost(swarm, default_protocols=handlers)
        self._host.set_stream_handler(ID_PUSH, identify_push_handler_for(self._host, use_varint_format=True))
        self._host.set_stream_handler(PING_PROTOCOL, PingService(self._host).handle_ping)
        self._events_send, self._events = trio.open_memory_channel[tuple[bool, PeerID]](_EVENT_BUFFER)
        self._host.get_network().register_notifee(_Notifee(self._events_send))
        self._peers: dict[PeerID, _PeerState] = {}
        self._identified_subscribers: list[trio.MemorySendChannel[PeerID]] = []
        self._hangups_send, self._hangups = trio.open_memory_channel[PeerID](_EVENT_BUFFER)
        self._running = trio.Event()

    # -- the service --------------------------------------------------------------------------------
    async def run(self, *, task_status: "TaskStatus[None]" = trio.TASK_STATUS_IGNORED) -> None:
        async with self._host.run(self._listen), trio.open_nursery() as nursery:
            nursery.start_soon(self._handle_events, nursery)
            nursery.start_soon(self._hang_up_loop, nursery)
            for info in self.bootstrap_peers:
                nursery.start_soon(self._keep_connected, info)
            self._running.set()
            _log.info("p2p.listening", peer_id=self.id(), addrs=list(self.addrs_listen().addrs))
            task_status.started()
            await trio.sleep_forever()

    async def _handle_events(self, nursery: trio.Nursery) -> None:
        async for connected, peer in self._events:
            state = self._peers.setdefault(peer, _PeerState())
            if connected:
                if state.disconnected.is_set():
                    state.disconnected = trio.Event()
                # A connection after the first does not change what the peer speaks.
                if len(self._host.get_network().get_connections(peer)) <= 1:
                    nursery.start_soon(self._identify, peer)
            elif not self._host.get_network().get_connections(peer):
                state.disconnected.set()
                _log.debug("p2p.disconnected", peer=str(peer))

    async def _hang_up_loop(self, nursery: trio.Nursery) -> None:
        async for peer in self._hangups:
            nursery.start_soon(self._hang_up_now, peer)

    async def _hang_up_now(self, peer: PeerID) -> None:
        with trio.move_on_after(_HANG_UP_TIMEOUT):
            await self.disconnect(peer)

    async def _identify(self, peer: PeerID) -> None:
        """Ask the peer who it is (agent, protocols) and tell the subscribers once we know.

        A refusal is retried: py-libp2p's host runs its own identify on each new connection, and
        js-libp2p answers one identify stream per connection at a time, closing a second one."""
        message: Identify | None = None
        for attempt, pause in enumerate(_IDENTIFY_RETRIES):
            await trio.sleep(pause)
            if not self.is_connected(peer):
                return
            try:
                message = await self._ask_identify(peer)
                break
            except Exception as exc:  # a timeout, the peer left or refused, or sent garbage
                _log.info(
                    "p2p.identify_failed",
                    peer=str(peer),
                    attempt=attempt + 1,
                    error=str(exc) or type(exc).__name__,
                )
        if message is None:
            return
        state = self._peers.setdefault(peer, _PeerState())
        state.agent = message.agent_version
        state.protocols = frozenset(message.protocols)
        _log.debug("p2p.identified", peer=str(peer), agent=state.agent)
        for send in list(self._identified_subscribers):
            try:
                send.send_nowait(peer)
            except trio.WouldBlock:
                _log.warning("p2p.identified_event_dropped", peer=str(peer))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._identified_subscribers.remove(send)

    async def _ask_identify(self, peer: PeerID) -> Identify:
        with trio.fail_after(_IDENTIFY_TIMEOUT):
            stream = await self._host.new_stream(peer, [IDENTIFY_PROTOCOL])
            try:
                data = await read_varint_prefixed_bytes_limited(stream, _IDENTIFY_MAX_BYTES)
            finally:
                await close_quietly(stream)
        message = Identify()
        message.ParseFromString(data)
        return message

    async def _answer_identify(self, stream: INetStream) -> None:
        """py-libp2p's identify message with our agent version in it."""
        observed = None
        try:
            observed = _remote_address_to_multiaddr(stream.get_remote_address())
        except Exception as exc:  # a transport without a socket address
            _log.debug("p2p.identify_no_remote_address", error=str(exc))
        message = _mk_identify_protobuf(self._host, observed)
        message.agent_version = self.agent
        try:
            with trio.move_on_after(_IDENTIFY_TIMEOUT):
                await stream.write(encode_varint_prefixed(message.SerializeToString()))
        except IOException as exc:
            _log.debug("p2p.identify_answer_failed", error=str(exc))
        finally:
            await close_quietly(stream)

    async def _keep_connected(self, info: AddrInfo) -> None:
        """Dial a bootstrap peer; redial it whenever it drops, backing off while dials fail."""
        peer = info.peer_id()
        backoff = self.options.reconnect_min_backoff
        while True:
            if self.is_connected(peer):
                backoff = self.options.reconnect_min_backoff
                await self._peers.setdefault(peer, _PeerState()).disconnected.wait()
                _log.info("p2p.bootstrap_peer_dropped", peer=info.id)
                continue
            try:
                await self.connect(info)
                _log.info("p2p.bootstrap_connected", peer=info.id)
            except StreamFailure as exc:
                delay = backoff * random.uniform(0.75, 1.25)
                _log.info("p2p.bootstrap_dial_failed", peer=info.id, error=str(exc), retry_in=round(delay, 2))
                await trio.sleep(delay)
                backoff = min(backoff * 2, self.options.reconnect_max_backoff)

    # -- what other services use --------------------------------------------------------------------
    @property
    def libp2p(self) -> BasicHost:
        """The py-libp2p host (for pubsub, which attaches itself to it)."""
        return self._host

    @property
    def peer_id(self) -> PeerID:
        return peer_id_of(self._key_pair)

    def subscribe_identified(self, buffer: int = 256) -> trio.MemoryReceiveChannel[PeerID]:
        """Peers, each time one is connected and identified; a slow reader loses events, never
        blocks the host."""
        send, receive = trio.open_memory_channel[PeerID](buffer)
        self._identified_subscribers.append(send)
        return receive

    def set_stream_handler(
        self, protocol: TProtocol, handler: Callable[[INetStream], Awaitable[None]]
    ) -> None:
        self._host.set_stream_handler(protocol, handler)

    async def open_stream(
        self, peer: PeerID, protocol: TProtocol, *, timeout: float, dial: bool = False
    ) -> INetStream:
        """A new stream speaking protocol; StreamFailure if it cannot be had within timeout. Without
        `dial`, only over an existing connection (as Lotus's hello and chain exchange: a peer that
        hung up on us is not called back by a protocol)."""
        if not dial and not self.is_connected(peer):
            raise StreamFailure(f"not connected to {peer}")
        try:
            with trio.fail_after(timeout):
                return await self._host.new_stream(peer, [protocol])
        except trio.TooSlowError:
            raise StreamFailure(f"opening {protocol} to {peer} took longer than {timeout} s") from None
        except Exception as exc:  # dial errors, protocol negotiation refusals, resets
            raise StreamFailure(f"cannot open {protocol} to {peer}: {exc or type(exc).__name__}") from None

    def supports(self, peer: PeerID, protocol: str) -> bool:
        """Whether identify said the peer speaks protocol (False until it has been identified)."""
        state = self._peers.get(peer)
        return state is not None and protocol in state.protocols

    def is_connected(self, peer: PeerID) -> bool:
        return bool(self._host.get_network().get_connections(peer))

    def connected_peers(self) -> list[PeerID]:
        return [p for p in self._host.get_network().get_connections_map() if self.is_connected(p)]

    # -- the Net* API ---------------------------------------------------------------------------------
    def id(self) -> str:
        """ID: our peer ID."""
        return self.peer_id.to_base58()

    def addrs_listen(self) -> AddrInfo:
        """NetAddrsListen: our ID and the addresses we listen on."""
        addrs = [str(a.decapsulate_code(P_P2P)) for a in self._host.get_addrs()]
        return AddrInfo(self.id(), tuple(dict.fromkeys(addrs)))

    def peers(self) -> list[AddrInfo]:
        """NetPeers: connected peers, each with the remote addresses of its connections."""
        out = []
        for peer, conns in self._host.get_network().get_connections_map().items():
            if not conns:
                continue
            addrs: list[str] = []
            for conn in conns:
                addrs.extend(str(a.decapsulate_code(P_P2P)) for a in _transport_addresses(conn))
            out.append(AddrInfo(peer.to_base58(), tuple(dict.fromkeys(addrs))))
        return out

    async def connect(self, info: AddrInfo) -> None:
        """NetConnect: dial the peer (no-op when connected); StreamFailure if that fails."""
        peer_info = info.to_peer_info()
        if peer_info.peer_id == self.peer_id:
            raise StreamFailure("cannot connect to ourselves")
        # py-libp2p refuses for 60 s to dial a peer whose addresses all failed once; an explicit dial
        # (NetConnect) and the bootstrap redial loop, which backs off on its own, must reach a peer
        # that has just come back up.
        network = self._host.get_network()
        if isinstance(network, Swarm):
            network.unblock_peer(peer_info.peer_id)
        if peer_info.addrs and not network.get_connections(peer_info.peer_id):
            # The addresses given are what the caller knows now (a miner's on chain, say): a peer that
            # restarted on another port is otherwise dialled at the stale address it had, and only there.
            self._host.get_peerstore().clear_addrs(peer_info.peer_id)
        try:
            with trio.fail_after(self.options.dial_timeout):
                await self._host.connect(peer_info)
        except trio.TooSlowError:
            raise StreamFailure(
                f"dialling {info.id} took longer than {self.options.dial_timeout} s"
            ) from None
        except Exception as exc:  # every dial failure py-libp2p can raise
            raise StreamFailure(f"cannot connect to {info.id}: {exc or type(exc).__name__}") from None

    async def disconnect(self, peer: PeerID) -> None:
        """NetDisconnect: close every connection to the peer."""
        # Each connection is closed by itself: the swarm forgets it as it closes. (py-libp2p's
        # close_peer drops the peer's entry after awaiting, and so loses a connection the peer
        # opened again meanwhile.)
        for conn in self._host.get_network().get_connections(peer):
            try:
                await conn.close()
            except Exception as exc:  # a connection already torn down
                _log.debug("p2p.close_failed", peer=str(peer), error=str(exc))
        _log.debug("p2p.hung_up", peer=str(peer))

    def hang_up(self, peer: PeerID) -> None:
        """Disconnect the peer soon, from the host's own task: a stream handler runs inside the
        connection it would close, and closing it there would cancel the handler half-way."""
        try:
            self._hangups_send.send_nowait(peer)
        except trio.WouldBlock:
            _log.warning("p2p.hang_up_dropped", peer=str(peer))

    def connectedness(self, peer: PeerID) -> Connectedness:
        """NetConnectedness."""
        return Connectedness.CONNECTED if self.is_connected(peer) else Connectedness.NOT_CONNECTED

    def agent_version(self, peer: PeerID) -> str:
        """NetAgentVersion: what the peer's identify said; KeyError before it has been identified."""
        state = self._peers.get(peer)
        if state is None or state.agent is None:
            raise KeyError(f"no agent version known for peer {peer}")
        return state.agent

    def protocols(self, peer: PeerID) -> frozenset[str]:
        state = self._peers.get(peer)
        return frozenset() if state is None else state.protocols

    async def wait_running(self) -> None:
        await self._running.wait()


def _multiaddr(text: str, what: str) -> Multiaddr:
    try:
        return Multiaddr(text)
    except Exception as exc:  # multiaddr raises several unrelated types for bad text
        raise DecodeError(f"{what}: {text!r} is not a multiaddr: {exc}") from None


def _transport_addresses(conn: INetConn) -> Sequence[Multiaddr]:
    getter: Any = getattr(conn, "get_transport_addresses", None)
    try:
        return list(getter()) if getter is not None else []
    except Exception:  # a connection being torn down
        return []
