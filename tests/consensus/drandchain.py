"""A devnet chain whose beacon is drand: the beacon's key and chain info (starting at the devchain's
genesis time, one round per 4-second epoch), a genesis whose round 0 is the chain's group hash, and
the beacon network as nodes see it when the producer is on time."""

from typing import Final

from chain.consensus.drand import DrandBeacon, DrandChainInfo, DrandKey
from chain.params import DEVNET
from chain.types.beacon import BeaconEntry
from node.genesis import Genesis, build_genesis
from tests.consensus.devchain import GENESIS_TIME, devnet_template

KEY: Final = DrandKey.derive(b"tests/consensus/drandchain")
INFO: Final = KEY.chain_info(genesis_time=GENESIS_TIME, period=DEVNET.block_delay_secs)


class OnTimeBeacon:
    """The beacon network as every node sees it when the producing node is on time: each round, signed
    by the beacon's key, chained from the genesis (the key stays here, never with the miners)."""

    def __init__(self, key: DrandKey, info: DrandChainInfo) -> None:
        self._key = key
        self._chain = [info.genesis_entry]

    def get(self, round_: int, /) -> BeaconEntry | None:
        while len(self._chain) <= round_:
            self._chain.append(self._key.next_entry(self._chain[-1]))
        return self._chain[round_]


_GENESIS: dict[str, Genesis] = {}


def drand_genesis() -> Genesis:
    if "drand" not in _GENESIS:
        _GENESIS["drand"] = build_genesis(
            devnet_template(1, 2, "drandchain"), beacon_entry=INFO.genesis_entry
        )
    return _GENESIS["drand"]


def drand_beacon() -> DrandBeacon:
    return DrandBeacon(
        INFO, genesis_time=GENESIS_TIME, block_delay=DEVNET.block_delay_secs, entries=OnTimeBeacon(KEY, INFO)
    )
