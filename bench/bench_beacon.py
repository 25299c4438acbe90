"""The drand beacon: verifying an entry (a League of Entropy mainnet round and our own), a chain of 100,
signing a round, and the gossip check of one round; with the mock beacon's check for comparison."""

import itertools
import time

import trio

from bench.common import report, seconds, section
from chain.consensus.beacon import MockBeacon
from chain.consensus.drand import DrandBeacon, DrandChainInfo, DrandKey
from chain.types.beacon import BeaconEntry
from node.beacon.service import BeaconService
from node.beacon.store import BeaconStore
from node.beacon.wire import PublishedRound
from node.p2p.protocols import PeerID

# League of Entropy mainnet (api.drand.sh/info) and two consecutive published rounds.
MAINNET = DrandChainInfo.from_json(
    {
        "public_key": (
            "868f005eb8e6e4ca0a47c8a77ceaa5309a47978a7c71bc5cce96366b5d7a569937c529eeda66c7293784a9402801af31"
        ),
        "period": 30,
        "genesis_time": 1595431050,
        "groupHash": "176f93498eac9ca337150b46d21dd58673ea4e3581185f869672e59fa4cb390a",
    }
)
ROUND_72785 = BeaconEntry(
    72785,
    bytes.fromhex(
        "82f5d3d2de4db19d40a6980e8aa37842a0e55d1df06bd68bddc8d60002e8e959eb9cfa368b3c1b77d18f02a54fe047b8"
        "0f0989315f83b12a74fd8679c4f12aae86eaf6ab5690b34f1fddd50ee3cc6f6cdf59e95526d5a5d82aaa84fa6f181e42"
    ),
)
ROUND_72784 = BeaconEntry(
    72784,
    bytes.fromhex(
        "a609e19a03c2fcc559e8dae14900aaefe517cb55c840f6e69bc8e4f66c8d18e8a609685d9917efbfb0c37f058c2de88f"
        "13d297c7e19e0ab24813079efe57a182554ff054c7638153f9b26a60e7111f71a0ff63d9571704905d3ca6df0b031747"
    ),
)
CHAIN = 100


def run() -> None:
    section("drand beacon (chained BLS12-381, blspy)")
    mainnet = lambda: DrandBeacon(MAINNET, genesis_time=1598306400, block_delay=30)  # noqa: E731
    per_entry = seconds(lambda: mainnet().verify_entry(ROUND_72785, ROUND_72784), 20)
    report("verify one mainnet entry (fresh beacon, no cache)", per_entry * 1000, "ms")

    key = DrandKey.derive(b"bench/beacon")
    info = key.chain_info(genesis_time=1_800_000_000, period=4)
    entries = [info.genesis_entry]
    start = time.perf_counter()
    for _ in range(CHAIN):
        entries.append(key.next_entry(entries[-1]))
    sign = (time.perf_counter() - start) / CHAIN
    report("sign one round (producer)", sign * 1000, "ms")

    fresh = lambda: DrandBeacon(info, genesis_time=info.genesis_time, block_delay=4)  # noqa: E731
    chain_time = seconds(lambda: fresh().verify_chain(entries[1:], entries[0]), 3)
    report(
        f"verify a chain of {CHAIN} entries",
        chain_time * 1000,
        "ms",
        f"{chain_time / CHAIN * 1000:.2f} ms/entry",
    )
    warm = fresh()
    warm.verify_chain(entries[1:], entries[0])
    cached = seconds(lambda: warm.verify_chain(entries[1:], entries[0]), 3)
    report(
        f"the same {CHAIN} again (remembered as verified)",
        cached * 1000,
        "ms",
        f"{chain_time / cached:,.0f}x faster",
    )

    mock = MockBeacon()
    mock_entries = [mock.entry(r) for r in range(101, 101 + CHAIN)]
    mock_time = seconds(lambda: [mock.verify_entry(e, e) for e in mock_entries], 3)
    report(
        f"mock beacon: {CHAIN} entries (blake2b)",
        mock_time * 1000,
        "ms",
        f"drand costs {chain_time / mock_time:,.0f}x",
    )

    payloads = [PublishedRound(e.round, e.data, p.data).to_bytes() for p, e in itertools.pairwise(entries)]
    peer = PeerID(b"\x00\x24" + bytes(36))

    async def gossip_in() -> None:
        service = BeaconService(fresh(), BeaconStore.in_memory(info.hash), clock=lambda: 2_000_000_000)
        for data in payloads:
            await service._check_gossip(data, peer, False)

    gossip = seconds(lambda: trio.run(gossip_in), 3)
    report(
        f"gossip check of {CHAIN} rounds (verify, store)",
        gossip * 1000,
        "ms",
        f"{gossip / CHAIN * 1000:.2f} ms/round",
    )
