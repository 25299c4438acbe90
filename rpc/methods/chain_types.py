"""The result shapes of the Chain* methods that are not chain types themselves (lotus api/api_full.go).

Each is declared once with its Go field names; the chain store's own values are turned into them by
the `of` constructors, so the methods build no JSON by hand.
"""

from typing import Annotated, Final, Self

from chain.chainstore.store import ChainMessage
from chain.encoding.cid import CID
from chain.encoding.schema import LotusJson, Uint64
from chain.types.message import Message, SignedMessage
from rpc.jsontypes import NonNilBytesKind, array_kind

# ChainExport sends the CAR in pieces of this many bytes (the last one shorter), as Lotus, which reads
# its export pipe 1 MiB at a time; an empty piece (`""`) ends a complete export.
EXPORT_PIECE: Final = 1 << 20
ExportPiece = Annotated[bytes, NonNilBytesKind(max_len=EXPORT_PIECE)]


class BlockMessages(LotusJson):
    """lotus api.BlockMessages: a block's BLS messages (unsigned), its secp256k1 messages, and the CIDs
    of both in that order. Lotus makes the three slices with make(), so empty ones are `[]`."""

    bls_messages: Annotated[tuple[Message, ...], array_kind(Message)]
    secpk_messages: Annotated[tuple[SignedMessage, ...], array_kind(SignedMessage)]
    cids: Annotated[tuple[CID, ...], array_kind(CID)]

    @classmethod
    def of(cls, bls: list[Message], secpk: list[SignedMessage]) -> Self:
        cids = tuple(m.cid() for m in bls) + tuple(m.cid() for m in secpk)
        return cls(bls_messages=tuple(bls), secpk_messages=tuple(secpk), cids=cids)


class ApiMessage(LotusJson):
    """lotus api.Message: a message as the chain knows it (`Cid`: the signed message's CID for a
    secp256k1 message, the message's own for BLS) and the unsigned message the VM runs."""

    cid: CID
    message: Message

    @classmethod
    def of(cls, msg: ChainMessage) -> Self:
        vm_message = msg.message if isinstance(msg, SignedMessage) else msg
        return cls(cid=msg.cid(), message=vm_message)


class ObjStat(LotusJson):
    """lotus api.ObjStat: the blocks (Links, counting the root) and bytes (Size) of a DAG."""

    size: Uint64
    links: Uint64
