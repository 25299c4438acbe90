"""Protocol IDs, topic names and the limits the wire protocols share (lotus build, buildconstants).

The names come from py-libp2p's `libp2p.filecoin` helpers, which carry Lotus's values.
"""

from typing import Final

from libp2p.custom_types import TProtocol
from libp2p.filecoin import FIL_CHAIN_EXCHANGE_PROTOCOL, FIL_HELLO_PROTOCOL, blocks_topic, messages_topic
from libp2p.peer.id import ID as PeerID  # noqa: N811 - one name for peer IDs across the layer

__all__ = ["PeerID"]

HELLO_PROTOCOL: Final[TProtocol] = FIL_HELLO_PROTOCOL  # /fil/hello/1.0.0
CHAIN_EXCHANGE_PROTOCOL: Final[TProtocol] = FIL_CHAIN_EXCHANGE_PROTOCOL  # /fil/chain/xchg/0.0.1
IDENTIFY_PROTOCOL: Final = TProtocol("/ipfs/id/1.0.0")

# Most messages one block may carry (lotus buildconstants.BlockMessageLimit).
BLOCK_MESSAGE_LIMIT: Final = 10_000
# Largest gossip RPC frame accepted, as go-libp2p-pubsub's default (Lotus does not change it).
MAX_GOSSIP_MESSAGE_BYTES: Final = 1 << 20


def block_topic(network_name: str) -> str:
    """`/fil/blocks/<network>`."""
    return blocks_topic(network_name)


def message_topic(network_name: str) -> str:
    """`/fil/msgs/<network>`."""
    return messages_topic(network_name)
