"""Gossipsub on `/fil/blocks/<network>` and `/fil/msgs/<network>`, as Lotus runs it.

Router (lotus node/modules/lp2p/pubsub.go): message ID = blake2b-256 of the data; mesh D=8, Dlo=6,
Dhi=12 (0 on a bootstrapper, which only gossips and does peer exchange), Dlazy=12 with gossip factor
0.1, history 10 heartbeats of one second, flood publishing of our own messages, Lotus's peer scores
(score.py), and an allowlist: subscriptions to any other topic are ignored, and messages for topics we
are not subscribed to are dropped. A network that runs its own drand beacon adds its topic
(`GossipTopic`, given by node/beacon) with its own validator and scores, as Lotus allows and scores
the drand topics of its schedule.

Validation runs before anything is forwarded, as Lotus's BlockValidator and MessageValidator:

- a block: strict DAG-CBOR `BlockMsg`, a header, a signature, at most 10,000 message CIDs, the CID
  lists matching the header's Messages root, then `block_check` (the consensus checks that need no
  execution: miner power, ticket, election proof, beacon, block signature); a block seen before is
  ignored;
- a message: strict DAG-CBOR `SignedMessage` of at most 64 KiB, the syntax rules for inclusion, the
  signature against the sender's key (an ID-address sender needs `key_resolver`), then the
  `message_sink` (the message pool), whose verdict decides as mpool.Add's does in Lotus.

A check raises `Reject` (invalid: dropped and the sender's score falls by 100 for the first, more for
each after) or `Ignore` (dropped, not the sender's fault: a duplicate, a nonce gap, an unknown sender).
py-libp2p's validators only say yes or no; an ignored message is told apart by `pardon_invalid` on
the scorer (FilecoinPubsub.validate_msg). Our own publications are checked lightly and never penalised.

Accepted blocks from other peers reach `block_sink` with the peer that forwarded them (the syncer will
fetch what it lacks from there); messages reach `message_sink` during validation, as in Lotus.
"""

import ipaddress
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

import structlog
import trio
from libp2p.exceptions import ValidationError
from libp2p.filecoin import FILECOIN_GOSSIPSUB_PROTOCOLS, filecoin_message_id
from libp2p.peer.peerinfo import PeerInfo
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service import background_trio_service

from chain.chainstore.msgmeta import msg_meta_cid
from chain.crypto.signature import SignatureError
from chain.encoding.errors import DecodeError
from chain.params import Policy
from chain.types.address import Address
from chain.types.address import Protocol as AddressProtocol
from chain.types.block import BlockMsg
from chain.types.message import InvalidMessage, SignedMessage
from node.p2p.host import AddrInfo, Libp2pHost
from node.p2p.protocols import (
    BLOCK_MESSAGE_LIMIT,
    MAX_GOSSIP_MESSAGE_BYTES,
    PeerID,
    block_topic,
    message_topic,
)
from node.p2p.score import BOOTSTRAP_APP_SCORE, FilecoinPeerScorer, TopicScore, lotus_topic_scores

if TYPE_CHECKING:
    from trio_typing import TaskStatus  # trio-stubs (installed with trio-typing) shadow trio's own types

_log = structlog.get_logger(__name__)

# Recently accepted block CIDs: a block seen again (other bytes, or after the seen-cache expired) is
# ignored, as Lotus's blockReceiptCache does.
_SEEN_BLOCKS: Final = 8192
# Accepted blocks waiting for the subscription reader, and verdicts of ignored messages.
_PENDING: Final = 1024


class Verdict(Exception):
    """Why a gossiped block or message is not passed on."""


class Reject(Verdict):
    """Invalid: dropped, and the peer that sent it is penalised."""


class Ignore(Verdict):
    """Not passed on, but not the sender's fault."""


class BlockSink(Protocol):
    async def __call__(self, block: BlockMsg, source: PeerID) -> None:
        """A block that passed gossip validation, and the peer it came from."""


class MessageSink(Protocol):
    async def __call__(self, message: SignedMessage, source: PeerID) -> None:
        """Take a message that passed the syntax and signature checks (the message pool's Add);
        raise Reject or Ignore to keep it from being forwarded."""


class BlockCheck(Protocol):
    async def __call__(self, block: BlockMsg) -> None:
        """The consensus checks of a block that need no execution; raise Reject or Ignore."""


KeyResolver = Callable[[Address], Awaitable[Address | None]]
# A topic's check: (payload, forwarder, ours) -> the decoded value; raises Reject or Ignore.
TopicCheck = Callable[[bytes, PeerID, bool], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class GossipHooks:
    """What the gossip service calls into the rest of the node with; a hook left None is skipped."""

    block_sink: BlockSink | None = None
    message_sink: MessageSink | None = None
    block_check: BlockCheck | None = None
    key_resolver: KeyResolver | None = None


NO_HOOKS: Final = GossipHooks()


@dataclass(frozen=True, slots=True)
class GossipTopic:
    """A topic beyond blocks and messages that this network relays (the drand beacon's): allowed,
    subscribed, scored with its own parameters, and validated by `check` before anything is forwarded.
    What the check accepts it has already taken in (as the message sink does for messages)."""

    name: str
    what: str  # names the topic's payloads in the logs: gossip.<what>_rejected
    check: TopicCheck
    score: TopicScore


@dataclass(frozen=True, slots=True)
class GossipConfig:
    network_name: str
    # A bootstrapper keeps no mesh: it gossips and answers with peer exchange (Lotus's Bootstrapper).
    bootstrapper: bool = False
    # Peers on these networks are not penalised for sharing an IP (Lotus's IPColocationWhitelist). The
    # default whitelists loopback, where local testnets run many nodes on one address.
    ip_colocation_whitelist: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    validation_timeout: float = 5.0

    def __post_init__(self) -> None:
        if not self.network_name:
            raise ValueError("gossip: the network name is empty")
        for net in self.ip_colocation_whitelist:
            ipaddress.ip_network(net)


class FilecoinGossipSub(GossipSub):
    """py-libp2p's GossipSub with Lotus's overlay parameters and go-libp2p-pubsub's behaviour where
    py-libp2p adds its own: no adaptive degrees or heartbeat, no per-peer rate limit, no IP-diversity
    grafting, no equivocation memory (which grows without bound), and flood publishing."""

    def __init__(self, *, bootstrapper: bool, direct_peers: Sequence[PeerInfo] = ()) -> None:
        mesh = not bootstrapper
        super().__init__(
            protocols=list(FILECOIN_GOSSIPSUB_PROTOCOLS),
            degree=8 if mesh else 0,
            degree_low=6 if mesh else 0,
            degree_high=12 if mesh else 0,
            direct_peers=list(direct_peers),
            time_to_live=60,
            gossip_window=3,
            gossip_history=10,
            heartbeat_initial_delay=0.1,
            heartbeat_interval=1,
            direct_connect_initial_delay=30.0,
            direct_connect_interval=300,
            do_px=bootstrapper,
            px_peers_count=16,
            prune_back_off=300 if bootstrapper else 60,
            unsubscribe_back_off=10,
            adaptive_gossip_enabled=False,
            spam_protection_enabled=False,
            eclipse_protection_enabled=False,
        )
        self.gossip_factor = 0.1 if mesh else 0.25
        self.degree_lazy = 12 if mesh else 64

    def _get_adaptive_gossip_peers_count(self, topic: str, total_peers: int) -> int:
        return max(self.degree_lazy, int(total_peers * self.gossip_factor))

    def _check_equivocation(self, msg: rpc_pb2.Message) -> bool:
        return True

    def _get_peers_to_send(
        self, topic_ids: Iterable[str], msg_forwarder: PeerID, origin: PeerID, msg_id: bytes | None = None
    ) -> Iterator[PeerID]:
        topics = list(topic_ids)
        peers = set(super()._get_peers_to_send(topics, msg_forwarder, origin, msg_id))
        pubsub = self.pubsub
        if pubsub is not None and msg_forwarder == origin == pubsub.my_id:
            # Flood publishing: our own messages go to every subscribed peer above the publish
            # threshold, not only to the mesh.
            scorer = self.scorer
            for topic in topics:
                for peer in pubsub.peer_topics.get(topic, ()):
                    if peer != origin and (scorer is None or scorer.allow_publish(peer, [topic])):
                        peers.add(peer)
        yield from peers


class FilecoinPubsub(Pubsub):
    """Pubsub that tells the scorer when a failed validation was an Ignore (no penalty)."""

    def __init__(
        self, *args: Any, scorer: FilecoinPeerScorer, ignored: Callable[[bytes], bool], **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        self._scorer = scorer
        self._ignored = ignored

    async def validate_msg(self, msg_forwarder: PeerID, msg: rpc_pb2.Message) -> None:
        self._scorer.pardon_invalid = False
        try:
            await super().validate_msg(msg_forwarder, msg)
        except ValidationError:
            # push_msg charges the forwarder right after this raises, with no checkpoint in between,
            # so the flag cannot be seen by any other message's validation.
            self._scorer.pardon_invalid = self._ignored(self._msg_id_constructor(msg))
            raise


class _Bounded(OrderedDict[bytes, Any]):
    """An insertion-ordered map that forgets its oldest entries beyond `limit`."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: bytes, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


class GossipService:
    def __init__(
        self,
        host: Libp2pHost,
        config: GossipConfig,
        policy: Policy,
        *,
        hooks: GossipHooks = NO_HOOKS,
        bootstrap_peers: Iterable[AddrInfo] = (),
        topics: Sequence[GossipTopic] = (),
    ) -> None:
        self.host = host
        self.config = config
        self.policy = policy
        self.blocks_topic = block_topic(config.network_name)
        self.messages_topic = message_topic(config.network_name)
        # Kept as attributes that may be set after construction (the syncer sets them, see service.py).
        self.block_sink = hooks.block_sink
        self.message_sink = hooks.message_sink
        self.block_check = hooks.block_check
        self.key_resolver = hooks.key_resolver
        favoured = {info.peer_id() for info in bootstrap_peers}
        # Bootstrap peers score high so that we never prune them (not on a bootstrapper: that would
        # close the bootstrappers into their own mesh).
        favour = 0.0 if config.bootstrapper else BOOTSTRAP_APP_SCORE
        self.topics = {topic.name: topic for topic in topics}
        if {self.blocks_topic, self.messages_topic} & set(self.topics):
            raise ValueError("gossip: an extra topic may not be the blocks or messages topic")
        scores = lotus_topic_scores(config.network_name)
        scores.update({topic.name: topic.score for topic in topics})
        self.scorer = FilecoinPeerScorer(
            scores,
            app_score=lambda peer: favour if peer in favoured else 0.0,
            colocation_whitelist=config.ip_colocation_whitelist,
        )
        self.router = FilecoinGossipSub(bootstrapper=config.bootstrapper)
        self.router.scorer = self.scorer
        self._ignored = _Bounded(_PENDING)
        self._accepted = _Bounded(_PENDING)
        self._seen_blocks = _Bounded(_SEEN_BLOCKS)
        self.pubsub = FilecoinPubsub(
            host.libp2p,
            self.router,
            scorer=self.scorer,
            ignored=self._ignored.__contains__,
            msg_id_constructor=filecoin_message_id,
            strict_signing=True,
            max_inbound_rpc_size=MAX_GOSSIP_MESSAGE_BYTES,
            allowed_topics={self.blocks_topic, self.messages_topic, *self.topics},
            validation_timeout=config.validation_timeout,
        )
        self.pubsub.set_topic_validator(self.blocks_topic, self._validate_block, True)
        self.pubsub.set_topic_validator(self.messages_topic, self._validate_message, True)
        for topic in topics:
            self.pubsub.set_topic_validator(topic.name, self._topic_validator(topic), True)
        self._ready = trio.Event()

    # -- the service --------------------------------------------------------------------------------
    async def run(self, *, task_status: "TaskStatus[None]" = trio.TASK_STATUS_IGNORED) -> None:
        """Start pubsub before the host takes connections (it learns of peers from connection events)."""
        async with background_trio_service(self.pubsub), background_trio_service(self.router):
            await self.pubsub.wait_until_ready()
            blocks = await self.pubsub.subscribe(self.blocks_topic)
            messages = await self.pubsub.subscribe(self.messages_topic)
            extra = [await self.pubsub.subscribe(name) for name in self.topics]
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._deliver_blocks, blocks)
                nursery.start_soon(self._drain, messages)
                for subscription in extra:
                    nursery.start_soon(self._drain, subscription)
                self._ready.set()
                task_status.started()
                await trio.sleep_forever()

    async def _deliver_blocks(self, subscription: Any) -> None:
        while True:
            msg = await subscription.get()
            entry = self._accepted.pop(filecoin_message_id(msg), None)
            if entry is None:
                continue
            block, source = entry
            if source == self.host.peer_id or self.block_sink is None:
                continue
            try:
                await self.block_sink(block, source)
            except Exception:  # a sink's failure must not stop block delivery
                _log.exception("gossip.block_sink_failed", block=str(block.cid()), peer=str(source))

    async def _drain(self, subscription: Any) -> None:
        # Messages (and extra topics' payloads) were taken in during validation; the subscription
        # only needs emptying.
        while True:
            await subscription.get()

    # -- publishing ---------------------------------------------------------------------------------
    async def publish_block(self, block: BlockMsg) -> None:
        await self._publish(self.blocks_topic, block.to_bytes())

    async def publish_message(self, message: SignedMessage) -> None:
        await self._publish(self.messages_topic, message.to_bytes())

    async def publish(self, topic: str, data: bytes) -> None:
        """Publish on one of the extra topics this service was given."""
        if topic not in self.topics:
            raise ValueError(f"gossip: {topic} is not a topic of this network")
        await self._publish(topic, data)

    async def _publish(self, topic: str, data: bytes) -> None:
        await self._ready.wait()
        await self.pubsub.publish(topic, data)

    # -- scores ---------------------------------------------------------------------------------------
    def score(self, peer: PeerID) -> float:
        return self.scorer.score(peer, [])

    def penalize(self, peer: PeerID, reason: str) -> None:
        """Count one misbehaviour outside gossip (a chain-exchange peer that lied); beyond six the
        penalty weighs on the peer's score, quadratically, as go's behaviour penalty."""
        _log.info("gossip.penalize", peer=str(peer), reason=reason)
        self.scorer.penalize_behavior(peer, 1.0)

    def penalize_invalid_block(self, peer: PeerID, reason: str) -> None:
        """Charge a peer for a block it passed on that full validation found invalid (a wrong state
        root: what gossip validation cannot see), as an invalid delivery on the blocks topic, the
        penalty a rejected block costs at once."""
        _log.warning("gossip.invalid_block_penalty", peer=str(peer), reason=reason)
        # Not pardoned: the flag belongs to the gossip validation in progress, if any, not to this.
        pardon, self.scorer.pardon_invalid = self.scorer.pardon_invalid, False
        try:
            self.scorer.on_invalid_message(peer, self.blocks_topic)
        finally:
            self.scorer.pardon_invalid = pardon

    def topic_peers(self, topic: str) -> set[PeerID]:
        return set(self.pubsub.peer_topics.get(topic, ()))

    # -- validation -----------------------------------------------------------------------------------
    async def _validate_block(self, forwarder: PeerID, msg: rpc_pb2.Message) -> bool:
        block = await self._judge("block", forwarder, msg, self.blocks_topic, self._check_block)
        if block is None:
            return False
        self._accepted.put(filecoin_message_id(msg), (block, forwarder))
        return True

    async def _validate_message(self, forwarder: PeerID, msg: rpc_pb2.Message) -> bool:
        return (
            await self._judge("message", forwarder, msg, self.messages_topic, self._check_message) is not None
        )

    def _topic_validator(self, topic: GossipTopic) -> Callable[[PeerID, rpc_pb2.Message], Awaitable[bool]]:
        async def validate(forwarder: PeerID, msg: rpc_pb2.Message) -> bool:
            return await self._judge(topic.what, forwarder, msg, topic.name, topic.check) is not None

        return validate

    async def _judge(
        self,
        what: str,
        forwarder: PeerID,
        msg: rpc_pb2.Message,
        topic: str,
        check: Callable[[bytes, PeerID, bool], Awaitable[Any]],
    ) -> Any:
        """The decoded payload if it passes `check`, else None (and the verdict is logged)."""
        local = forwarder == self.host.peer_id
        try:
            if list(msg.topicIDs) != [topic]:
                raise Reject(f"published on topics {list(msg.topicIDs)}, expected only {topic}")
            return await check(msg.data, forwarder, local)
        except Verdict as verdict:
            rejected = isinstance(verdict, Reject) and not local
            if not rejected:
                self._ignored.put(filecoin_message_id(msg), True)
            log = _log.warning if rejected else _log.debug
            log(
                f"gossip.{what}_{'rejected' if rejected else 'ignored'}",
                peer=str(forwarder),
                reason=str(verdict),
            )
        except Exception:  # a bug in a check must not penalise the peer
            self._ignored.put(filecoin_message_id(msg), True)
            _log.exception(f"gossip.{what}_check_failed", peer=str(forwarder))
        return None

    async def _check_block(self, data: bytes, forwarder: PeerID, local: bool) -> BlockMsg:
        try:
            block = BlockMsg.from_bytes(data)
        except DecodeError as exc:
            raise Reject(f"undecodable block: {exc}") from None
        header = block.header
        if header is None:
            raise Reject("block message without a header")
        if len(block.bls_messages) + len(block.secpk_messages) > BLOCK_MESSAGE_LIMIT:
            raise Reject(f"block carries more than {BLOCK_MESSAGE_LIMIT} messages")
        if header.block_sig is None:
            raise Reject("block without a signature")
        if msg_meta_cid(block.bls_messages, block.secpk_messages) != header.messages:
            raise Reject("the block's message CIDs do not match its header's Messages root")
        cid = header.cid()
        if not local:
            if cid.bytes in self._seen_blocks:
                raise Ignore(f"block {cid} was seen before")
            if self.block_check is not None:
                await self.block_check(block)
        self._seen_blocks.put(cid.bytes, True)
        return block

    async def _check_message(self, data: bytes, forwarder: PeerID, local: bool) -> SignedMessage:
        if len(data) > self.policy.max_message_size:
            raise Reject(f"message of {len(data)} bytes exceeds {self.policy.max_message_size}")
        try:
            signed = SignedMessage.from_bytes(data)
        except DecodeError as exc:
            raise Reject(f"undecodable message: {exc}") from None
        try:
            signed.message.validate_for_block_inclusion(0)
        except InvalidMessage as exc:
            raise Reject(f"invalid message: {exc}") from None
        signer = signed.message.from_
        if signer.protocol == AddressProtocol.ID:
            resolved = await self.key_resolver(signer) if self.key_resolver is not None else None
            if resolved is None:
                if local:
                    return signed  # our own message pool took it, having resolved the sender
                raise Ignore(f"cannot resolve sender {signer} to a key address")
            signer = resolved
        try:
            signed.verify_signature(signer)
        except SignatureError as exc:
            raise Reject(f"bad signature: {exc}") from None
        if not local and self.message_sink is not None:
            await self.message_sink(signed, forwarder)
        return signed
