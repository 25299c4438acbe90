"""The node's networking layer: a libp2p host, gossipsub for blocks and messages, hello and chain exchange.

Everything on the wire is Lotus's format (docs/p2p.md). The layer reaches the rest of the node only
through the small Protocols its modules declare (ChainView, BlockSink, MessageSink, HelloSink, ...), so
it can be run and tested with in-memory implementations.
"""
