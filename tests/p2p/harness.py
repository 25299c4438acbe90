"""Running P2P nodes in one process on 127.0.0.1, and what their sinks received."""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

from chain.params import DEVNET
from chain.types.block import BlockMsg
from chain.types.message import SignedMessage
from node.config import Libp2pConfig
from node.p2p.chainview import ChainView
from node.p2p.gossip import BlockCheck, GossipHooks, GossipTopic, KeyResolver
from node.p2p.hello import HelloMessage
from node.p2p.host import HostOptions
from node.p2p.identity import MemoryIdentity, load_or_create_identity
from node.p2p.protocols import PeerID
from node.p2p.service import P2PNode
from tests.polling import wait_until


@dataclass
class Received:
    """What a node's sinks were given, in order."""

    blocks: list[tuple[BlockMsg, PeerID]] = field(default_factory=list)
    messages: list[tuple[SignedMessage, PeerID]] = field(default_factory=list)
    hellos: list[tuple[PeerID, HelloMessage]] = field(default_factory=list)

    async def block(self, block: BlockMsg, source: PeerID) -> None:
        self.blocks.append((block, source))

    async def message(self, message: SignedMessage, source: PeerID) -> None:
        self.messages.append((message, source))

    async def hello(self, peer: PeerID, hello: HelloMessage) -> None:
        self.hellos.append((peer, hello))


def make_node(
    chain: ChainView,
    *,
    bootstrap: Sequence[str] = (),
    block_check: BlockCheck | None = None,
    key_resolver: KeyResolver | None = None,
    reconnect_min_backoff: float = 1.0,
    topics: Sequence[GossipTopic] = (),
    received: Received | None = None,
) -> tuple[P2PNode, Received]:
    """A node on chain whose sinks record into received (a fresh Received unless given)."""
    received = Received() if received is None else received
    config = Libp2pConfig(bootstrap=tuple(bootstrap))
    node = P2PNode(
        config,
        load_or_create_identity(MemoryIdentity()),
        chain,
        DEVNET,
        hooks=GossipHooks(
            block_sink=received.block,
            message_sink=received.message,
            block_check=block_check,
            key_resolver=key_resolver,
        ),
        on_hello=received.hello,
        options=HostOptions(reconnect_min_backoff=reconnect_min_backoff),
        topics=topics,
    )
    return node, received


@asynccontextmanager
async def running(*nodes: P2PNode) -> AsyncIterator[None]:
    async with trio.open_nursery() as nursery:
        for node in nodes:
            with trio.fail_after(10):
                await nursery.start(node.run)
        yield
        nursery.cancel_scope.cancel()


async def connect(a: P2PNode, b: P2PNode) -> None:
    with trio.fail_after(10):
        await a.host.connect(b.host.addrs_listen())


async def wait_meshed(nodes: Sequence[P2PNode]) -> None:
    """Until every node knows every connected node's subscription to both topics."""

    def meshed() -> bool:
        for node in nodes:
            peers = set(node.host.connected_peers())
            for topic in (node.gossip.blocks_topic, node.gossip.messages_topic):
                if not peers <= node.gossip.topic_peers(topic):
                    return False
        return True

    await wait_until(meshed, what="subscriptions exchanged")
