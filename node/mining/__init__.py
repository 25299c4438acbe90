"""The miner's services: block mining (miner.py, with the local miners of local.py), Window PoSt
(wdpost.py) and the chain-side views of its proving."""
