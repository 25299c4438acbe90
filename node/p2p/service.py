"""The networking layer as one service: host, gossip, hello and chain exchange, started in order.

Pubsub learns of peers from connection events, so it runs before the host listens or dials; hello
runs before the host too, so that no identified peer goes ungreeted. The sinks may be set after
construction (the syncer needs `xchg` and is itself the block sink): `node.gossip.block_sink = ...`;
given at construction they come as one `GossipHooks`.
Extra gossip topics (the drand beacon's, node/beacon) are given at construction: `topics=[...]`.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

import trio
from libp2p.crypto.keys import KeyPair

from chain.params import Policy
from node.config import Libp2pConfig
from node.p2p.chainview import ChainView
from node.p2p.chainxchg import ChainExchangeClient, ChainExchangeServer
from node.p2p.gossip import NO_HOOKS, GossipConfig, GossipHooks, GossipService, GossipTopic
from node.p2p.hello import HelloService, HelloSink
from node.p2p.host import DEFAULT_OPTIONS, HostOptions, Libp2pHost

if TYPE_CHECKING:
    from trio_typing import TaskStatus  # trio-stubs (installed with trio-typing) shadow trio's own types


class P2PNode:
    name = "p2p"  # in the service runner's logs

    def __init__(
        self,
        config: Libp2pConfig,
        key_pair: KeyPair,
        chain: ChainView,
        policy: Policy,
        *,
        gossip: GossipConfig | None = None,
        hooks: GossipHooks = NO_HOOKS,
        on_hello: HelloSink | None = None,
        options: HostOptions = DEFAULT_OPTIONS,
        topics: Sequence[GossipTopic] = (),
    ) -> None:
        self.host = Libp2pHost(config, key_pair, options=options)
        self.gossip = GossipService(
            self.host,
            gossip or GossipConfig(policy.network_name),
            policy,
            hooks=hooks,
            bootstrap_peers=self.host.bootstrap_peers,
            topics=topics,
        )
        self.hello = HelloService(self.host, chain, on_hello)
        self.xchg_server = ChainExchangeServer(self.host, chain)
        self.xchg = ChainExchangeClient(self.host, penalize=self.gossip.penalize)

    async def run(self, *, task_status: "TaskStatus[None]" = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.gossip.run)
            await nursery.start(self.hello.run)
            await nursery.start(self.host.run)
            task_status.started()
