"""What a drand beacon publishes on gossip, as drand's relays do.

Topic: `/drand/pubsub/v0.0.0/<chain hash in hex>` (drand lp2p PubSubTopic; Lotus subscribes to the
same name, built from its chain info's hash). Payload: the protobuf `drand.PublicRandResponse` of
drand's protobuf/drand/api.proto:

    message PublicRandResponse {
        uint64 round = 1;
        bytes signature = 2;
        bytes previous_signature = 3;
        bytes randomness = 4;   // sha256(signature), "to demonstrate": receivers compute it themselves
        Metadata metadata = 5;  // the beacon ID; not written here, skipped when read
    }

so a drand client watching the topic reads our rounds, and we read theirs. The message class is built
from that declaration at import (google.protobuf's descriptor pool), never generated code.
"""

from dataclasses import dataclass
from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError as ProtobufDecodeError

from chain.consensus.drand import drand_randomness
from chain.encoding.errors import DecodeError

TOPIC_PREFIX: Final = "/drand/pubsub/v0.0.0/"
# A round is about 240 bytes; anything much larger is not one.
MAX_PAYLOAD_BYTES: Final = 1024

_FIELDS: Final = (
    ("round", 1, descriptor_pb2.FieldDescriptorProto.TYPE_UINT64),
    ("signature", 2, descriptor_pb2.FieldDescriptorProto.TYPE_BYTES),
    ("previous_signature", 3, descriptor_pb2.FieldDescriptorProto.TYPE_BYTES),
    ("randomness", 4, descriptor_pb2.FieldDescriptorProto.TYPE_BYTES),
)


def _message_class() -> Any:
    proto = descriptor_pb2.FileDescriptorProto(
        name="filpy/drand/public_rand.proto", package="drand", syntax="proto3"
    )
    message = proto.message_type.add(name="PublicRandResponse")
    for name, number, kind in _FIELDS:
        message.field.add(
            name=name, number=number, type=kind, label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
        )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("drand.PublicRandResponse"))


_PublicRandResponse: Final = _message_class()


def drand_topic(chain_hash: bytes) -> str:
    return TOPIC_PREFIX + chain_hash.hex()


@dataclass(frozen=True, slots=True)
class PublishedRound:
    """One round as drand publishes it: the signature and the signature it is chained to."""

    round: int
    signature: bytes
    previous_signature: bytes

    def to_bytes(self) -> bytes:
        data: bytes = _PublicRandResponse(
            round=self.round,
            signature=self.signature,
            previous_signature=self.previous_signature,
            randomness=drand_randomness(self.signature),
        ).SerializeToString(deterministic=True)
        return data

    @classmethod
    def from_bytes(cls, data: bytes) -> "PublishedRound":
        """Read a payload; DecodeError for anything that is not a PublicRandResponse with a round and
        a signature (the randomness it claims is ignored: it is recomputed from the signature)."""
        if len(data) > MAX_PAYLOAD_BYTES:
            raise DecodeError(f"PublicRandResponse: {len(data)} bytes, more than a round ever is")
        message = _PublicRandResponse()
        try:
            message.ParseFromString(data)
        except ProtobufDecodeError as exc:
            raise DecodeError(f"PublicRandResponse: not a protobuf message: {exc}") from None
        if message.round == 0:
            raise DecodeError("PublicRandResponse.round: missing (drand's rounds start at 1)")
        if not message.signature:
            raise DecodeError("PublicRandResponse.signature: missing")
        return cls(int(message.round), bytes(message.signature), bytes(message.previous_signature))
