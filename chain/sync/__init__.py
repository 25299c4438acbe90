"""Chain sync: following other nodes' chains (see docs/sync.md)."""
