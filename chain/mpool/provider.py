"""What the message pool needs from the rest of the node: two narrow interfaces.

`ChainAccess` is what the chain store offers (chain.chainstore.store.ChainStore implements it as it
is); `StateAccess` is what the state manager offers. Keeping them this small lets the pool be tested
over a real state tree without a node, and says exactly what the state manager must answer.

"The state after ts" is the state ts's messages leave: the ParentStateRoot of ts's children, the state
a block mined on ts executes on (Lotus's GetActorAfter).
"""

from collections.abc import Sequence
from typing import Protocol

from chain.encoding.cid import CID
from chain.state.tree import Actor
from chain.types.address import Address
from chain.types.block import BlockHeader
from chain.types.message import Message, SignedMessage
from chain.types.tipset import TipSet, TipSetKey
from chain.vm.vm import ApplyRet

ChainMessage = Message | SignedMessage


class ChainAccess(Protocol):
    def load_tipset(self, key: TipSetKey) -> TipSet:
        """The tipset with these blocks; raises if it is not stored."""
        ...

    def messages_for_block(self, header: BlockHeader) -> tuple[list[Message], list[SignedMessage]]:
        """A block's BLS messages (unsigned) and secp256k1 messages, in block order."""
        ...

    def messages_for_tipset(self, ts: TipSet) -> list[ChainMessage]:
        """ts's messages, each once, in execution order (for fee statistics)."""
        ...

    def put_message(self, msg: ChainMessage) -> CID:
        """Store a message block, so that pending messages can be looked up by CID."""
        ...


class StateAccess(Protocol):
    def actor_after(self, address: Address, ts: TipSet) -> Actor | None:
        """The actor at address (any protocol) in the state after ts, or None if there is none."""
        ...

    def resolve_to_key(self, address: Address, ts: TipSet) -> Address | None:
        """The key address (secp256k1, BLS or delegated) of an account in the state after ts: address
        itself when it is one already, None when an ID address names no account with a key."""
        ...

    def base_fee(self, ts: TipSet) -> int:
        """The base fee of a block mined on ts (Lotus ChainComputeBaseFee: ts's ParentBaseFee moved
        by the gas its messages used)."""
        ...


class GasStateAccess(StateAccess, Protocol):
    """What gas estimation needs beyond the pool's own needs: running a message without keeping it."""

    def call_with_gas(self, message: ChainMessage, prior: Sequence[SignedMessage], ts: TipSet) -> ApplyRet:
        """Apply prior (the sender's pending messages, in nonce order) and then message on the state
        after ts at epoch ts.height + 1 with ts's base fee, and return what applying message gave;
        nothing is kept. Signatures are not checked; message's nonce is taken as it is (the caller
        sets it to the sender's next one). A secp256k1 sender's message comes signed with a
        placeholder 65-byte signature, so that its on-chain size (and gas) is that of the real one.
        """
        ...
