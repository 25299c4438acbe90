"""The miner's sectors: the sealing pipeline that makes them (pipeline.py and its siblings) and the store
of sealed replicas the node proves them from (sectors.py)."""
