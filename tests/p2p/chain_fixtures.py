"""An in-memory chain for the networking tests: a ChainView over tipsets built here, with real signed
messages (secp256k1 and BLS) and headers whose Messages roots commit to them."""

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from chain.chainstore.msgmeta import msg_meta_cid
from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.signature import Signature, SigType
from chain.encoding.cid import CID
from chain.types.address import Address
from chain.types.block import BlockHeader, BlockMsg
from chain.types.election import ElectionProof, Ticket
from chain.types.message import Message, SignedMessage, sign_message
from chain.types.tipset import TipSet, TipSetKey
from node.p2p.chainview import IncludedMessages, MessageBlock

SECP = PrivateKey.derive(KeyType.SECP256K1, b"p2p tests secp sender")
BLS = PrivateKey.derive(KeyType.BLS, b"p2p tests bls sender")
RECIPIENT = Address.new_id(1001)
NO_MESSAGES = IncludedMessages()


def _digest(*parts: object) -> bytes:
    return hashlib.blake2b(repr(parts).encode(), digest_size=32).digest()


def message(nonce: int, *, key: PrivateKey = SECP, value: int = 1) -> Message:
    return Message(
        to=RECIPIENT,
        from_=Address.of_key(key),
        nonce=nonce,
        value=value,
        gas_limit=1_000_000,
        gas_fee_cap=200,
        gas_premium=100,
        method=0,
    )


def signed(nonce: int, *, key: PrivateKey = SECP, value: int = 1) -> SignedMessage:
    return sign_message(message(nonce, key=key, value=value), key)


def header(
    *,
    height: int,
    parents: Sequence[CID],
    messages: IncludedMessages = NO_MESSAGES,
    miner: int = 1000,
    salt: str = "",
    weight: int = 0,
) -> BlockHeader:
    return BlockHeader(
        miner=Address.new_id(miner),
        ticket=Ticket(_digest("ticket", height, miner, salt) * 3),
        election_proof=ElectionProof(1, _digest("election", height, miner, salt) * 3),
        parents=tuple(parents),
        parent_weight=weight,
        height=height,
        parent_state_root=CID.hash_of(_digest("state", height)),
        parent_message_receipts=CID.hash_of(_digest("receipts", height)),
        messages=msg_meta_cid([m.cid() for m in messages.bls], [m.cid() for m in messages.secpk]),
        bls_aggregate=None,
        timestamp=1_700_000_000 + height,
        block_sig=Signature(SigType.BLS, _digest("sig", height, miner, salt) * 3),
        parent_base_fee=100,
    )


def block_msg(block: BlockHeader, messages: IncludedMessages) -> BlockMsg:
    return BlockMsg(block, tuple(m.cid() for m in messages.bls), tuple(m.cid() for m in messages.secpk))


@dataclass
class MemoryChain:
    """A ChainView: tipsets by key, each block's messages, the heaviest head."""

    genesis_tipset: TipSet
    tipsets: dict[TipSetKey, TipSet] = field(default_factory=dict)
    messages: dict[CID, IncludedMessages] = field(default_factory=dict)
    heaviest: TipSet | None = None
    # Set by tests that need a slow chain store: load_tipset() waits for it.
    gate: threading.Event | None = None

    def __post_init__(self) -> None:
        self.add(self.genesis_tipset, [IncludedMessages() for _ in self.genesis_tipset.blocks])

    def add(self, tipset: TipSet, messages: Sequence[IncludedMessages]) -> None:
        self.tipsets[tipset.key] = tipset
        for block, msgs in zip(tipset.blocks, messages, strict=True):
            self.messages[block.cid()] = msgs
        if self.heaviest is None or tipset.height > self.heaviest.height:
            self.heaviest = tipset

    def genesis(self) -> BlockHeader:
        return self.genesis_tipset.blocks[0]

    def genesis_cid(self) -> CID:
        return self.genesis().cid()

    def head(self) -> TipSet:
        assert self.heaviest is not None
        return self.heaviest

    def head_weight(self) -> int:
        return 1000 * self.head().height

    def load_tipset(self, key: TipSetKey) -> TipSet:
        if self.gate is not None:
            self.gate.wait(10)
        try:
            return self.tipsets[key]
        except KeyError:
            raise KeyError(f"tipset {key} not stored") from None

    def included(self, header: BlockHeader) -> IncludedMessages:
        try:
            return self.messages[header.cid()]
        except KeyError:
            raise KeyError(f"messages of block {header.cid()} not stored") from None

    def message_blocks(self, header: BlockHeader) -> tuple[Sequence[MessageBlock], Sequence[MessageBlock]]:
        included = self.included(header)
        return [(m.cid(), m.to_bytes()) for m in included.bls], [
            (m.cid(), m.to_bytes()) for m in included.secpk
        ]


def genesis_tipset(salt: str = "") -> TipSet:
    return TipSet((header(height=0, parents=(CID.hash_of(b"filpy p2p tests" + salt.encode()),), salt=salt),))


def build_chain(length: int, *, blocks: int = 2, salt: str = "") -> tuple[MemoryChain, list[TipSet]]:
    """Genesis then `length` tipsets of `blocks` blocks; the blocks of a tipset share one secp and one
    BLS message (compaction keeps each once) and each has one of its own."""
    chain = MemoryChain(genesis_tipset(salt))
    tipsets = [chain.genesis_tipset]
    nonce = 0
    for height in range(1, length + 1):
        shared_secp, shared_bls = signed(nonce), message(nonce, key=BLS)
        nonce += 1
        per_block = []
        for b in range(blocks):
            own = signed(nonce + b)
            per_block.append(IncludedMessages((shared_bls, message(nonce + b, key=BLS)), (shared_secp, own)))
        nonce += blocks
        parent = tipsets[-1]
        headers = [
            header(
                height=height,
                parents=parent.cids,
                messages=m,
                miner=1000 + b,
                salt=salt,
                weight=height * 1000,
            )
            for b, m in enumerate(per_block)
        ]
        tipset = TipSet(tuple(headers))
        ordered = [per_block[headers.index(h)] for h in tipset.blocks]
        chain.add(tipset, ordered)
        tipsets.append(tipset)
    return chain, tipsets
