"""A block with its messages (Lotus types.FullBlock): what a producer makes and validation checks."""

from dataclasses import dataclass

from chain.encoding.cid import CID
from chain.types.block import BlockHeader, BlockMsg
from chain.types.message import Message, SignedMessage


@dataclass(frozen=True, slots=True)
class FullBlock:
    header: BlockHeader
    bls_messages: tuple[Message, ...] = ()
    secp_messages: tuple[SignedMessage, ...] = ()

    def cid(self) -> CID:
        return self.header.cid()

    def block_msg(self) -> BlockMsg:
        """What is gossiped on /fil/blocks: the header and its messages' CIDs."""
        return BlockMsg(
            self.header,
            tuple(m.cid() for m in self.bls_messages),
            tuple(m.cid() for m in self.secp_messages),
        )
