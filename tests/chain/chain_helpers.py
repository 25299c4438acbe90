"""Building chains of real headers for chain store and message pool tests.

Headers are well-formed but not mined: tickets are derived from a label, signatures are placeholders,
and the state root is whatever the test gives (a real state when messages are read with ID senders).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from chain.chainstore.store import ChainStore
from chain.crypto.keys import PrivateKey
from chain.crypto.signature import Signature, SigType
from chain.encoding.cid import CID, RAW
from chain.encoding.multihash import blake2b_256
from chain.state.amt import amt_v0_from_list
from chain.types.address import Address
from chain.types.block import BlockHeader
from chain.types.election import Ticket
from chain.types.message import Message, SignedMessage
from chain.types.tipset import TipSet

# What a genesis block names as its parent (the Filecoin genesis block in a real chain).
GENESIS_PARENT_DATA = b"filpy test genesis parent"
GENESIS_PARENT = CID.hash_of(GENESIS_PARENT_DATA, codec=RAW)
PLACEHOLDER_SIG = Signature(SigType.BLS, bytes(96))
PLACEHOLDER_MESSAGES = CID.hash_of(b"messages")


@dataclass
class ChainBuilder:
    """Makes headers and tipsets over a chain store; `state_root` goes into every header."""

    store: ChainStore
    state_root: CID
    base_fee: int = 100
    _empty_meta: CID | None = field(default=None, init=False)

    @property
    def empty_meta(self) -> CID:
        if self._empty_meta is None:
            self._empty_meta = self.store.put_messages([], [])
        return self._empty_meta

    def header(
        self,
        parent: TipSet | None,
        *,
        height: int | None = None,
        miner: int = 1000,
        label: str = "",
        messages: CID | None = None,
        weight: int = 0,
        state_root: CID | None = None,
    ) -> BlockHeader:
        if parent is None:
            parents: tuple[CID, ...] = (GENESIS_PARENT,)
            at = 0 if height is None else height
        else:
            parents = parent.cids
            at = parent.height + 1 if height is None else height
        return BlockHeader(
            miner=Address.new_id(miner),
            ticket=Ticket(blake2b_256(f"ticket/{at}/{miner}/{label}".encode())),
            election_proof=None,
            parents=parents,
            parent_weight=weight,
            height=at,
            parent_state_root=self.state_root if state_root is None else state_root,
            parent_message_receipts=self.empty_receipts(),
            messages=self.empty_meta if messages is None else messages,
            bls_aggregate=None,
            timestamp=at * 4,
            block_sig=PLACEHOLDER_SIG,
            parent_base_fee=self.base_fee,
        )

    def empty_receipts(self) -> CID:
        # The receipts of a tipset without messages: an empty legacy AMT.
        return amt_v0_from_list(self.store.blockstore, [])

    def genesis(self) -> TipSet:
        self.store.blockstore.put(GENESIS_PARENT, GENESIS_PARENT_DATA)
        return self.store.set_genesis(self.header(None))

    def tipset(
        self,
        parent: TipSet,
        *,
        height: int | None = None,
        miners: Sequence[int] = (1000,),
        label: str = "",
        messages: Sequence[CID | None] | None = None,
    ) -> TipSet:
        """A tipset of one block per miner on parent, stored (not made the head)."""
        metas = list(messages) if messages is not None else [None] * len(miners)
        ts = TipSet(
            tuple(
                self.header(parent, height=height, miner=m, label=label, messages=meta)
                for m, meta in zip(miners, metas, strict=True)
            )
        )
        self.store.put_tipset(ts)
        return ts

    def extend(self, parent: TipSet, count: int, *, label: str = "", null_every: int = 0) -> list[TipSet]:
        """count tipsets on parent, one per epoch (skipping every null_every-th epoch when > 0)."""
        out = []
        tip = parent
        height = parent.height
        for _ in range(count):
            height += 1
            if null_every and height % null_every == 0:
                height += 1
            tip = self.tipset(tip, height=height, label=label)
            out.append(tip)
        return out

    def block_with_messages(
        self, bls: Sequence[Message | SignedMessage], secpk: Sequence[SignedMessage]
    ) -> CID:
        return self.store.put_messages(bls, secpk)


def signed_header(
    miner: Address,
    height: int,
    parents: tuple[CID, ...],
    key: PrivateKey | None,
    *,
    messages: CID = PLACEHOLDER_MESSAGES,
    timestamp: int = 0,
) -> BlockHeader:
    """A header with placeholder roots and no ticket or proofs, signed by key (unsigned without one):
    what the slash filter and the consensus-fault syscall look at."""
    unsigned = BlockHeader(
        miner=miner,
        ticket=None,
        election_proof=None,
        parents=parents,
        parent_weight=0,
        height=height,
        parent_state_root=CID.hash_of(b"state"),
        parent_message_receipts=CID.hash_of(b"receipts"),
        messages=messages,
        bls_aggregate=None,
        timestamp=timestamp,
        block_sig=None,
        parent_base_fee=100,
    )
    if key is None:
        return unsigned
    return replace(unsigned, block_sig=key.sign(unsigned.signing_bytes()))
