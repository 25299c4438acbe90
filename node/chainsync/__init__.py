"""The node's sync service: gossip and hello reception wired to the syncer (chain/sync)."""
