"""A drand beacon run by the network itself: setup (setup.py), the store of verified rounds (store.py),
the gossip wire format (wire.py) and the service that takes rounds in and produces them (service.py)."""
