"""Gossip between hosts on 127.0.0.1: blocks and messages reach the other nodes' sinks; invalid data is
dropped before it is forwarded and its sender's score falls; ignored data costs the sender nothing."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
from libp2p.filecoin import filecoin_message_id
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service import background_trio_service

from chain.crypto.keys import KeyType, PrivateKey
from chain.encoding import dagcbor
from chain.params import DEVNET
from chain.types.address import Address
from chain.types.block import BlockMsg
from chain.types.message import Message, SignedMessage, sign_message
from node.config import Libp2pConfig
from node.p2p.chainview import IncludedMessages
from node.p2p.gossip import FilecoinGossipSub, GossipConfig, Ignore, Reject
from node.p2p.host import Libp2pHost
from node.p2p.identity import MemoryIdentity, load_or_create_identity
from node.p2p.protocols import PeerID, block_topic, message_topic
from node.p2p.service import P2PNode
from tests.p2p.chain_fixtures import block_msg, build_chain, header, signed
from tests.p2p.harness import Received, connect, make_node, running, wait_meshed, wait_until

NETWORK = DEVNET.network_name
INVALID_PENALTY = 0.1 * -1000  # topic weight x invalid-message weight: the first invalid message costs this


def new_block(height: int, salt: str = "") -> BlockMsg:
    messages = IncludedMessages((), (signed(100 + height), signed(200 + height)))
    return block_msg(header(height=height, parents=(), messages=messages, salt=salt), messages)


async def wait_forwarding(sender: P2PNode, receiver: P2PNode) -> None:
    """Until receiver has sender in its mesh for both topics (it forwards to its mesh peers)."""

    def meshed() -> bool:
        mesh = receiver.gossip.router.mesh
        return all(
            sender.host.peer_id in mesh.get(t, set()) for t in (block_topic(NETWORK), message_topic(NETWORK))
        )

    await wait_until(meshed, what="mesh formed")


class Attacker:
    """A peer running plain py-libp2p pubsub with no validators: it sends whatever bytes it likes."""

    def __init__(self) -> None:
        self.host = Libp2pHost(Libp2pConfig(), load_or_create_identity(MemoryIdentity()))
        self.router = FilecoinGossipSub(bootstrapper=False)
        self.pubsub = Pubsub(self.host.libp2p, self.router, msg_id_constructor=filecoin_message_id)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with background_trio_service(self.pubsub), background_trio_service(self.router):
            await self.pubsub.wait_until_ready()
            for topic in (block_topic(NETWORK), message_topic(NETWORK), block_topic("othernet")):
                await self.pubsub.subscribe(topic)
            async with trio.open_nursery() as nursery:
                await nursery.start(self.host.run)
                yield
                nursery.cancel_scope.cancel()

    async def send(self, topic: str, data: bytes) -> None:
        await self.pubsub.publish(topic, data)


async def test_blocks_and_messages_travel_through_a_line_of_three() -> None:
    chain, _ = build_chain(1)
    (a, got_a), (b, got_b), (c, got_c) = make_node(chain), make_node(chain), make_node(chain)
    async with running(a, b, c):
        await connect(a, b)
        await connect(b, c)
        await wait_meshed([a, b, c])
        await wait_forwarding(c, b)

        block = new_block(5)
        await a.gossip.publish_block(block)
        await wait_until(lambda: len(got_c.blocks) == 1, what="the block reaching c through b")
        assert got_b.blocks == [(block, a.host.peer_id)]
        assert got_c.blocks == [(block, b.host.peer_id)]  # c heard it from b, who forwarded it
        assert got_c.blocks[0][0].to_bytes() == block.to_bytes()

        message = signed(7)
        await a.gossip.publish_message(message)
        await wait_until(lambda: len(got_c.messages) == 1, what="the message reaching c")
        assert [m for m, _ in got_b.messages] == [message]
        assert got_c.messages == [(message, b.host.peer_id)]

        # The publisher's own sinks are not fed its own publications.
        await trio.sleep(0.2)
        assert got_a.blocks == [] and got_a.messages == []
        assert len(got_b.blocks) == 1 and len(got_b.messages) == 1


async def test_invalid_data_is_dropped_not_forwarded_and_penalised() -> None:
    chain, _ = build_chain(1)
    attacker = Attacker()
    (b, got_b), (c, got_c) = make_node(chain), make_node(chain)
    async with running(b, c), attacker.running():
        await connect(b, c)
        await attacker.host.connect(b.host.addrs_listen())
        bad = attacker.host.peer_id
        await wait_meshed([b, c])
        await wait_until(
            lambda: bad in b.gossip.topic_peers(block_topic(NETWORK)), what="attacker subscribed"
        )
        await wait_forwarding(c, b)
        assert b.gossip.score(bad) == pytest.approx(0, abs=0.01)  # time in mesh: a few 1e-5

        await attacker.send(block_topic(NETWORK), b"\xff\x00garbage")
        await wait_until(lambda: b.gossip.score(bad) < -1, what="penalty for garbage")
        assert b.gossip.score(bad) == pytest.approx(INVALID_PENALTY, abs=0.01)

        good = new_block(9)
        assert good.header is not None
        tampered = BlockMsg(
            good.header, good.bls_messages, good.secpk_messages[:1]
        )  # Messages root no longer fits
        await attacker.send(block_topic(NETWORK), tampered.to_bytes())
        await wait_until(lambda: b.gossip.score(bad) < INVALID_PENALTY - 1, what="penalty for a bad block")
        assert b.gossip.score(bad) == pytest.approx(4 * INVALID_PENALTY, abs=0.01)  # the count is squared

        forged = SignedMessage(signed(3).message, signed(4).signature)
        await attacker.send(message_topic(NETWORK), forged.to_bytes())
        await wait_until(
            lambda: b.gossip.score(bad) < 4 * INVALID_PENALTY - 1, what="penalty for a forged message"
        )
        assert b.gossip.score(bad) == pytest.approx(5 * INVALID_PENALTY, abs=0.01)

        # Non-canonical CBOR of a valid message is garbage too.
        raw = bytearray(signed(5).to_bytes())
        raw[0:1] = b"\x98\x02"  # the same array header, not minimally encoded
        await attacker.send(message_topic(NETWORK), bytes(raw))
        await wait_until(
            lambda: b.gossip.score(bad) < 5 * INVALID_PENALTY - 1, what="penalty for non-canonical CBOR"
        )

        # A valid block from the same peer still goes through (its score is above the publish
        # threshold), reaches b's sink and is forwarded to c; none of the invalid data did.
        before = b.gossip.score(bad)
        await attacker.send(block_topic(NETWORK), good.to_bytes())
        await wait_until(lambda: len(got_c.blocks) == 1, what="the valid block reaching c")
        assert [blk for blk, _ in got_b.blocks] == [good]
        assert [blk for blk, _ in got_c.blocks] == [good]
        assert got_b.messages == [] and got_c.messages == []
        assert b.gossip.score(bad) > before  # a first delivery earns a little
        assert c.gossip.score(b.host.peer_id) >= 0  # b forwarded nothing invalid


async def test_consensus_checks_and_the_message_pool_decide() -> None:
    chain, _ = build_chain(1)

    async def no_miner_666(block: BlockMsg) -> None:
        assert block.header is not None
        if block.header.miner == Address.new_id(666):
            raise Reject("miner 666 has no power")
        if block.header.height > 1000:
            raise Ignore("too far in the future")

    pool_says: dict[int, Exception] = {1: Ignore("nonce gap"), 2: Reject("value too high")}

    class Pool(Received):
        async def message(self, message: SignedMessage, source: PeerID) -> None:
            verdict = pool_says.get(message.message.nonce)
            if verdict is not None:
                raise verdict
            await super().message(message, source)

    a, _ = make_node(chain)
    b, pool = make_node(chain, block_check=no_miner_666, received=Pool())
    c, got_c = make_node(chain)
    async with running(a, b, c):
        await connect(a, b)
        await connect(b, c)
        await wait_meshed([a, b, c])
        await wait_forwarding(c, b)
        sender = a.host.peer_id

        # Ignored by the pool: dropped, not forwarded, no penalty.
        await a.gossip.publish_message(signed(1))
        await trio.sleep(0.5)
        assert pool.messages == [] and got_c.messages == []
        assert b.gossip.score(sender) == pytest.approx(0, abs=0.01)
        # A block too far ahead: ignored, no penalty.
        far = new_block(2000)
        await a.gossip.publish_block(far)
        await trio.sleep(0.5)
        assert pool.blocks == [] and got_c.blocks == []
        assert b.gossip.score(sender) == pytest.approx(0, abs=0.01)

        # Rejected by the pool / by the consensus checks: dropped and penalised.
        await a.gossip.publish_message(signed(2))
        await wait_until(lambda: b.gossip.score(sender) < -1, what="penalty for a rejected message")
        assert b.gossip.score(sender) == pytest.approx(INVALID_PENALTY, abs=0.01)
        messages = IncludedMessages()
        powerless = block_msg(header(height=3, parents=(), messages=messages, miner=666), messages)
        await a.gossip.publish_block(powerless)
        await wait_until(
            lambda: b.gossip.score(sender) < INVALID_PENALTY - 1, what="penalty for a rejected block"
        )
        assert pool.blocks == [] and pool.messages == []

        # What the pool accepts is forwarded.
        await a.gossip.publish_message(signed(3))
        await wait_until(lambda: len(got_c.messages) == 1, what="an accepted message forwarded")
        assert [m.message.nonce for m, _ in pool.messages] == [3]
        assert [m.message.nonce for m, _ in got_c.messages] == [3]


async def test_id_address_senders_need_a_key_resolver() -> None:
    chain, _ = build_chain(1)
    key = PrivateKey.derive(KeyType.SECP256K1, b"id sender")
    id_address = Address.new_id(4242)

    async def resolve(address: Address) -> Address | None:
        return Address.of_key(key) if address == id_address else None

    def from_id(nonce: int) -> SignedMessage:
        message = Message(
            to=Address.new_id(1001), from_=id_address, nonce=nonce, value=1,
            gas_limit=1_000_000, gas_fee_cap=200, gas_premium=100, method=0,
        )  # fmt: skip
        return sign_message(message, key)

    a, _ = make_node(chain)
    (b, got_b), (c, got_c) = make_node(chain, key_resolver=resolve), make_node(chain)
    async with running(a, b, c):
        await connect(a, b)
        await connect(a, c)
        await wait_meshed([a, b, c])
        await a.gossip.publish_message(from_id(1))
        await wait_until(lambda: len(got_b.messages) == 1, what="message from an ID address")
        await trio.sleep(0.3)
        assert got_c.messages == []  # c cannot check the signature: ignored
        assert c.gossip.score(a.host.peer_id) >= 0


async def test_topics_outside_the_allowlist_are_ignored() -> None:
    chain, _ = build_chain(1)
    attacker = Attacker()
    b, got_b = make_node(chain)
    async with running(b), attacker.running():
        await attacker.host.connect(b.host.addrs_listen())
        await wait_until(lambda: attacker.host.peer_id in b.gossip.topic_peers(block_topic(NETWORK)))
        assert b.gossip.topic_peers(block_topic("othernet")) == set()
        await attacker.send(block_topic("othernet"), new_block(1).to_bytes())
        await trio.sleep(0.3)
        assert got_b.blocks == []
        assert block_topic("othernet") not in b.gossip.pubsub.peer_topics


def test_gossip_config_and_wire_ids() -> None:
    assert GossipConfig("devnet").ip_colocation_whitelist == ("127.0.0.0/8", "::1/128")
    for bad in ({"network_name": ""}, {"network_name": "x", "ip_colocation_whitelist": ("nonsense",)}):
        try:
            GossipConfig(**bad)  # type: ignore[arg-type]
        except ValueError:
            continue
        raise AssertionError(f"{bad} was accepted")
    assert block_topic("devnet") == "/fil/blocks/devnet" and message_topic("devnet") == "/fil/msgs/devnet"
    block = new_block(1)
    assert dagcbor.decode(block.to_bytes())[1] == []  # CIDs only: no BLS messages in this block
