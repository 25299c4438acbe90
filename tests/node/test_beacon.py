"""node/beacon: the store of verified rounds (bounded, kept across a LevelDB restart), the service's
gossip verdicts and producer, waiting for a round, and setting a drand beacon up with a devnet."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from chain.chainstore.metadata import LevelDBMetadata, MemoryMetadata
from chain.consensus.beacon import MockBeacon
from chain.consensus.drand import DrandBeacon, DrandChainInfo, DrandKey
from chain.store.blockstore import LevelDBBlockstore, MemoryBlockstore
from chain.types.beacon import BeaconEntry
from chain.types.block import BlockHeader
from node.beacon.service import BeaconService
from node.beacon.setup import (
    BEACON_DRAND,
    BEACON_MOCK,
    BeaconSetupError,
    NodeBeacon,
    beacon_kind_of,
    check_genesis_commits,
    create_drand_chain,
    key_name,
    load_key,
    open_beacon,
    read_chain_info,
    write_chain_info,
)
from node.beacon.store import NAMESPACE, BeaconStore
from node.beacon.sync import MAX_ROUNDS_PER_REQUEST, RoundsRequest, RoundsServer
from node.beacon.wire import PublishedRound, drand_topic
from node.devnet import DevnetError, prepare_devnet
from node.genesis import load_genesis_file
from node.keystore import KeyInfo, Keystore
from node.p2p.gossip import Ignore, Reject
from node.p2p.protocols import PeerID
from node.repo import Repo

KEY = DrandKey.derive(b"tests/node/test_beacon")
GENESIS = 1_800_000_000
PERIOD = 4
INFO = KEY.chain_info(genesis_time=GENESIS, period=PERIOD)
PEER = PeerID(b"\x00\x24" + bytes(36))


def chain(rounds: int, key: DrandKey = KEY) -> list[BeaconEntry]:
    entries = [INFO.genesis_entry]
    for _ in range(rounds):
        entries.append(key.next_entry(entries[-1]))
    return entries


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def service(clock: Clock, *, key: DrandKey | None = None, store: BeaconStore | None = None) -> BeaconService:
    beacon = DrandBeacon(INFO, genesis_time=GENESIS, block_delay=PERIOD)
    store = BeaconStore.in_memory(INFO.hash) if store is None else store
    return BeaconService(beacon, store, key=key, clock=clock)


# -- the store ---------------------------------------------------------------------------------------------


@pytest.fixture
def leveldb(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "db"


def test_store_keeps_the_newest_rounds_across_a_restart(leveldb: Path) -> None:
    entries = chain(12)[1:]
    with LevelDBBlockstore(leveldb) as db:
        store = BeaconStore(LevelDBMetadata(db.db, namespace=NAMESPACE), INFO.hash, limit=8)
        for entry in entries:
            assert store.put(entry)
        assert not store.put(BeaconEntry(12, b"other"))  # the first one stays
        assert list(store.rounds()) == list(range(5, 13)) and len(store) == 8
        assert store.get(4) is None and store.get(12) == entries[-1]
    with LevelDBBlockstore(leveldb) as db:
        again = BeaconStore(LevelDBMetadata(db.db, namespace=NAMESPACE), INFO.hash, limit=8)
        assert list(again.rounds()) == list(range(5, 13))
        assert again.latest() == entries[-1] and 12 in again and 4 not in again
        # another chain's rounds in the same DB stay apart
        other = BeaconStore(LevelDBMetadata(db.db, namespace=NAMESPACE), b"\x01" * 32)
        assert len(other) == 0 and other.latest() is None
        # a smaller limit on reopening prunes on disk too
        smaller = BeaconStore(LevelDBMetadata(db.db, namespace=NAMESPACE), INFO.hash, limit=3)
        assert list(smaller.rounds()) == [10, 11, 12]
    with LevelDBBlockstore(leveldb) as db:
        assert len(BeaconStore(LevelDBMetadata(db.db, namespace=NAMESPACE), INFO.hash, limit=8)) == 3
    with pytest.raises(ValueError, match="at least one round"):
        BeaconStore.in_memory(INFO.hash, limit=0)


# -- the service: gossip verdicts ------------------------------------------------------------------------


def payload(entry: BeaconEntry, previous: BeaconEntry) -> bytes:
    return PublishedRound(entry.round, entry.data, previous.data).to_bytes()


async def test_gossip_rounds_are_verified_before_they_are_stored() -> None:
    entries = chain(5)
    clock = Clock(INFO.time_of_round(5))
    svc = service(clock)
    assert svc.topic == drand_topic(INFO.hash) == "/drand/pubsub/v0.0.0/" + INFO.hash.hex()
    with pytest.raises(LookupError):
        svc.beacon.entry(1)

    accepted = await svc._check_gossip(payload(entries[1], entries[0]), PEER, False)
    assert accepted == entries[1] and svc.beacon.entry(1) == entries[1]
    await svc._check_gossip(payload(entries[2], entries[1]), PEER, False)

    cases: list[tuple[type[Exception], str, bytes]] = [
        (Reject, "undecodable beacon round", b"\xff\xff\xff"),
        (Ignore, "round 2 is already here", payload(entries[2], entries[1])),
        # wrong signature: round 3 signed by another key
        (Reject, "the signature does not verify", payload(chain(3, DrandKey.derive(b"x"))[3], entries[2])),
        # wrong round: round 4's signature published as round 3
        (Reject, "the signature does not verify", payload(BeaconEntry(3, entries[4].data), entries[2])),
        # skipped round: round 4 chained to round 2 (round 3 never published)
        (Reject, "the signature does not verify", payload(entries[4], entries[2])),
        # a round 3 claiming a previous signature that is not the stored round 2
        (Reject, "not chained to round 2", payload(entries[3], entries[1])),
        # a round from the future
        (Reject, "round 7 is not due until", payload(KEY.next_entry(chain(6)[6]), chain(6)[6])),
        # a different round 2 than the one stored
        (Reject, "differs from the verified round", payload(BeaconEntry(2, entries[3].data), entries[1])),
    ]
    for verdict, reason, data in cases:
        with pytest.raises(verdict, match=reason):
            await svc._check_gossip(data, PEER, False)
    assert 3 not in svc.store and 4 not in svc.store
    assert (svc.stats.accepted, svc.stats.ignored, svc.stats.rejected) == (2, 1, 7)

    # the real round 3, then 4 skipping nothing, arrive and are taken
    await svc._check_gossip(payload(entries[3], entries[2]), PEER, False)
    await svc._check_gossip(payload(entries[4], entries[3]), PEER, False)
    assert [svc.beacon.entry(r) for r in (1, 2, 3, 4)] == entries[1:5]


async def test_wait_entry_wakes_when_the_round_arrives_and_times_out_otherwise() -> None:
    entries = chain(2)
    clock = Clock(INFO.time_of_round(2))
    svc = service(clock)
    got: list[BeaconEntry] = []

    async def waiter() -> None:
        got.append(await svc.wait_entry(1, timeout=5))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.sleep(0.05)
        assert got == []
        await svc._check_gossip(payload(entries[1], entries[0]), PEER, False)
    assert got == [entries[1]]
    with pytest.raises(LookupError, match="round 2"):
        await svc.wait_entry(2, timeout=0.05)


# -- the service: the producer ---------------------------------------------------------------------------


async def test_producer_signs_every_due_round_in_order_and_publishes_it() -> None:
    clock = Clock(GENESIS - 1)
    published: list[tuple[str, bytes]] = []

    async def publish(topic: str, data: bytes) -> None:
        published.append((topic, data))

    svc = service(clock, key=KEY)
    svc.attach(publish)
    assert await svc.produce_due() == []  # nothing due before the genesis
    clock.now = INFO.time_of_round(3) + 1
    made = await svc.produce_due()
    assert made == chain(3)[1:]
    clock.now = INFO.time_of_round(4)
    assert await svc.produce_due() == chain(4)[4:]
    assert svc.stats.produced == 4
    rounds = [PublishedRound.from_bytes(data) for _, data in published]
    assert {topic for topic, _ in published} == {svc.topic}
    assert [(r.round, r.previous_signature) for r in rounds] == [
        (e.round, p.data) for p, e in zip(chain(4), chain(4)[1:], strict=False)
    ]
    # what it published verifies as gossip on another node
    other = service(Clock(clock.now))
    for _, data in published:
        await other._check_gossip(data, PEER, False)
    assert len(other.store) == 4


async def test_producer_resumes_from_its_store_after_a_restart(leveldb: Path) -> None:
    clock = Clock(INFO.time_of_round(2))
    with LevelDBBlockstore(leveldb) as db:
        store = BeaconStore(LevelDBMetadata(db.db, namespace=NAMESPACE), INFO.hash)
        await service(clock, key=KEY, store=store).produce_due()
    clock.now = INFO.time_of_round(6)
    with LevelDBBlockstore(leveldb) as db:
        store = BeaconStore(LevelDBMetadata(db.db, namespace=NAMESPACE), INFO.hash)
        made = await service(clock, key=KEY, store=store).produce_due()
        assert [e.round for e in made] == [3, 4, 5, 6]
        assert [store.get(r) for r in range(1, 7)] == chain(6)[1:]


async def test_producer_runs_on_the_clock() -> None:
    """The run loop itself: with a one-second period it makes round after round as they fall due."""
    import time

    genesis = int(time.time())
    key = DrandKey.derive(b"on the clock")
    info = key.chain_info(genesis_time=genesis, period=1)
    beacon = DrandBeacon(info, genesis_time=genesis, block_delay=1)
    svc = BeaconService(beacon, BeaconStore.in_memory(info.hash), key=key)
    async with trio.open_nursery() as nursery:
        await nursery.start(svc.run)
        entry = await svc.wait_entry(3, timeout=10)
        nursery.cancel_scope.cancel()
    assert entry.round == 3
    beacon.verify_chain([beacon.entry(r) for r in (1, 2, 3)], info.genesis_entry)


def test_a_service_refuses_a_key_of_another_chain() -> None:
    with pytest.raises(ValueError, match="not the key of this beacon's chain"):
        service(Clock(GENESIS), key=DrandKey.derive(b"another"))


# -- setup ----------------------------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    with Repo.open(tmp_path / "devnet", network="devnet") as opened:
        yield opened


def open_in(repo: Repo, kind: str, genesis: BlockHeader, block_delay: int, **given: Any) -> NodeBeacon:
    """open_beacon as the node of repo calls it (its drand files and keystore unless given), the rounds
    kept in memory."""
    where: dict[str, Any] = {"info_path": repo.drand_path, "keystore": repo.keystore} | given
    return open_beacon(kind, genesis=genesis, block_delay=block_delay, meta=MemoryMetadata(), **where)


def test_a_devnet_with_its_own_drand_beacon(repo: Repo) -> None:
    devnet = prepare_devnet(repo, accounts=1, clock=lambda: GENESIS, beacon=BEACON_DRAND)
    assert devnet.beacon == BEACON_DRAND
    info = read_chain_info(repo.drand_path)
    assert json.loads(repo.drand_path.read_text())["hash"] == info.hash.hex()
    assert (info.genesis_time, info.period) == (GENESIS, repo.config.chain.block_delay)
    header = load_genesis_file(MemoryBlockstore(), repo.genesis_path)
    assert header.beacon_entries == (info.genesis_entry,)
    check_genesis_commits(info, header)
    key = load_key(repo.keystore, info)
    assert key is not None and key.public_key == info.public_key

    # the node of this repo produces; a node with the chain info but not the key only listens
    opened = open_in(repo, BEACON_DRAND, header, info.period)
    assert opened.service is not None and opened.service.producing and opened.beacon is opened.service.beacon
    listener = open_in(
        repo, BEACON_DRAND, header, info.period, keystore=Keystore.create(repo.path / "other-keystore")
    )
    assert listener.service is not None and not listener.service.producing

    # asking for the other beacon, on resume or at the node, says what to do
    with pytest.raises(DevnetError, match="runs the drand beacon, not mock"):
        prepare_devnet(repo, beacon=BEACON_MOCK)
    with pytest.raises(
        BeaconSetupError, match="made for the drand beacon, not mock: start with --beacon drand"
    ):
        open_in(repo, BEACON_MOCK, header, info.period)
    assert prepare_devnet(repo).beacon == BEACON_DRAND  # resumed as it was made

    # --reset removes the chain info with the chain
    prepare_devnet(repo, reset=True, accounts=1, clock=lambda: GENESIS + 60)
    assert not repo.drand_path.exists()


def test_the_mock_devnet_is_lotus_shaped(repo: Repo) -> None:
    devnet = prepare_devnet(repo, accounts=1, clock=lambda: GENESIS)
    assert devnet.beacon == BEACON_MOCK == beacon_kind_of(devnet.genesis)
    assert devnet.genesis.beacon_entries == (BeaconEntry(0, bytes(32)),)
    opened = open_in(repo, BEACON_MOCK, devnet.genesis, 4)
    assert isinstance(opened.beacon, MockBeacon) and opened.service is None
    with pytest.raises(BeaconSetupError, match="made for the mock beacon, not drand"):
        open_in(repo, BEACON_DRAND, devnet.genesis, 4)


def test_a_chain_info_the_genesis_does_not_commit_to_is_refused(repo: Repo, tmp_path: Path) -> None:
    prepare_devnet(repo, accounts=1, clock=lambda: GENESIS, beacon=BEACON_DRAND)
    header = load_genesis_file(MemoryBlockstore(), repo.genesis_path)
    info = read_chain_info(repo.drand_path)
    # another key's chain info for the same genesis time (someone swapped drand.json)
    swapped = DrandKey.derive(b"swapped").chain_info(genesis_time=GENESIS, period=info.period)
    with pytest.raises(BeaconSetupError, match="was not made for drand chain"):
        check_genesis_commits(swapped, header)
    # the same group hash with another key: the group hash no longer vouches for the key
    forged = DrandChainInfo(
        public_key=swapped.public_key, period=info.period, genesis_time=GENESIS, group_hash=info.group_hash
    )
    with pytest.raises(BeaconSetupError, match="cannot vouch for its key"):
        check_genesis_commits(forged, header)
    path = tmp_path / "drand.json"
    write_chain_info(path, forged)
    with pytest.raises(BeaconSetupError, match="cannot vouch"):
        open_in(repo, BEACON_DRAND, header, info.period, info_path=path)
    # damaged or missing files
    path.write_text('{"public_key": "00"}')
    with pytest.raises(BeaconSetupError, match="is not a drand chain info"):
        read_chain_info(path)
    with pytest.raises(BeaconSetupError, match="is missing"):
        read_chain_info(tmp_path / "absent.json")
    # a keystore entry that is not the chain's key
    repo.keystore.put(
        key_name(info.hash), KeyInfo(type="drand-bls12381", private_key=KEY.to_bytes()), overwrite=True
    )
    with pytest.raises(BeaconSetupError, match="is not the key of drand chain"):
        load_key(repo.keystore, info)


def test_a_drand_beacon_needs_a_block_delay(repo: Repo) -> None:
    with pytest.raises(BeaconSetupError, match="at least one second"):
        create_drand_chain(repo.keystore, repo.drand_path, genesis_time=GENESIS, period=0)


def test_the_rounds_server_answers_consecutive_rounds_it_holds() -> None:
    store = BeaconStore.in_memory(INFO.hash)
    entries = chain(6)
    for entry in (*entries[1:4], entries[5], entries[6]):  # round 4 missing
        store.put(entry)
    assert store.contiguous_end() == entries[3]
    server = RoundsServer(store)
    assert server.answer(RoundsRequest(2, 10)).entries == (entries[2], entries[3])
    assert server.answer(RoundsRequest(5, 1)).entries == (entries[5],)
    assert server.answer(RoundsRequest(4, 3)).entries == ()
    big = BeaconStore.in_memory(INFO.hash)
    for entry in chain(MAX_ROUNDS_PER_REQUEST + 3)[1:]:
        big.put(entry)
    assert len(RoundsServer(big).answer(RoundsRequest(1, 10_000)).entries) == MAX_ROUNDS_PER_REQUEST
    assert BeaconStore.in_memory(INFO.hash).contiguous_end() is None
