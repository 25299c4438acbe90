"""The miner's services: Window PoSt (wdpost.py) and the chain-side views of its proving."""
