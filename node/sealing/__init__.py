"""The miner's sectors: the store of sealed replicas it proves (and, later, the sealing pipeline)."""
