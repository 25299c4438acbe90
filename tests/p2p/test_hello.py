"""Hello: both sides announce their heads on connect and answer with latency; another genesis, an
unreadable hello or none at all ends the connection."""

import trio

from chain.encoding import dagcbor
from node.config import Libp2pConfig
from node.p2p.hello import HelloMessage, LatencyMessage
from node.p2p.host import Connectedness, Libp2pHost
from node.p2p.identity import MemoryIdentity, load_or_create_identity
from node.p2p.protocols import HELLO_PROTOCOL
from node.p2p.streamio import write_cbor
from tests.p2p.chain_fixtures import build_chain
from tests.p2p.harness import connect, make_node, running, wait_until


async def test_both_sides_say_hello_on_connect() -> None:
    long_chain, tipsets = build_chain(3)
    short_chain, _ = build_chain(1)
    assert long_chain.genesis_cid() == short_chain.genesis_cid()
    (a, got_a), (b, got_b) = make_node(long_chain), make_node(short_chain)
    async with running(a, b):
        await connect(a, b)
        await wait_until(lambda: got_a.hellos and got_b.hellos, what="hellos both ways")
        peer, hello = got_b.hellos[0]
        assert peer == a.host.peer_id
        assert hello == HelloMessage(tipsets[3].cids, 3, 3000, long_chain.genesis_cid())
        assert hello.head() == tipsets[3].key
        peer, hello = got_a.hellos[0]
        assert (peer, hello.heaviest_tip_set_height, hello.heaviest_tip_set_weight) == (
            b.host.peer_id,
            1,
            1000,
        )
        # Each side measured the round trip of its own hello; one clock, so no offset to speak of.
        await wait_until(lambda: b.host.peer_id in a.hello.latency and a.host.peer_id in b.hello.latency)
        latency = a.hello.latency[b.host.peer_id]
        assert 0 < latency.round_trip_ns < 5_000_000_000
        assert latency.clock_offset_ns is not None and abs(latency.clock_offset_ns) < 1_000_000_000
        assert a.host.is_connected(b.host.peer_id)


async def test_a_peer_with_another_genesis_is_disconnected() -> None:
    ours, _ = build_chain(2)
    theirs, _ = build_chain(2, salt="another network")
    assert ours.genesis_cid() != theirs.genesis_cid()
    (a, got_a), (b, got_b) = make_node(ours), make_node(theirs)
    async with running(a, b):
        await connect(a, b)
        await wait_until(
            lambda: a.host.connectedness(b.host.peer_id) == Connectedness.NOT_CONNECTED, what="hang up"
        )
        await wait_until(lambda: not b.host.is_connected(a.host.peer_id))
        await trio.sleep(0.5)  # and nobody dials again
        assert not a.host.is_connected(b.host.peer_id)
        assert got_a.hellos == [] and got_b.hellos == []


async def test_unreadable_or_missing_hello_ends_the_connection() -> None:
    chain, _ = build_chain(1)
    a, got_a = make_node(chain)
    a.hello.timeout = 0.5
    # A bare host: it says no hello of its own, only what the test writes.
    rude = Libp2pHost(Libp2pConfig(), load_or_create_identity(MemoryIdentity()))
    async with running(a), trio.open_nursery() as nursery:
        await nursery.start(rude.run)
        for payload in (b"\xa1garbage", dagcbor.encode([[], 1]), None):
            await rude.connect(a.host.addrs_listen())
            stream = await rude.open_stream(a.host.peer_id, HELLO_PROTOCOL, timeout=5)
            if payload is not None:  # None: say nothing and wait for a's deadline
                await write_cbor(stream, payload, timeout=5)
            await wait_until(lambda: not rude.is_connected(a.host.peer_id), what=f"hang up after {payload!r}")
            await wait_until(lambda: not a.host.is_connected(rude.peer_id), what="a's side closed too")
        assert got_a.hellos == []
        nursery.cancel_scope.cancel()


def test_wire_shapes() -> None:
    chain, tipsets = build_chain(1)
    hello = HelloMessage(tipsets[1].cids, 1, 1 << 70, chain.genesis_cid())
    assert dagcbor.decode(hello.to_bytes()) == [
        list(tipsets[1].cids),
        1,
        b"\x00\x40" + bytes(8),
        chain.genesis_cid(),
    ]
    assert dagcbor.decode(LatencyMessage(5, -6).to_bytes()) == [5, -6]
    assert HelloMessage.from_bytes(hello.to_bytes()) == hello
