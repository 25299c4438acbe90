"""The state manager: the state after each tipset (computed once, cached, persisted), randomness drawn
from the chain and the beacon, queries at any tipset, message search, calls and replays."""
