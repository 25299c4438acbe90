"""Drand beacon entries as block headers record them."""

from chain.encoding.schema import Bytes, CborTuple, Uint64


class BeaconEntry(CborTuple):
    """A drand round: its number and its signature (the randomness)."""

    round: Uint64
    data: Bytes
