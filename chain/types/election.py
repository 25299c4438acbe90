"""The VRF outputs a block carries: its Ticket and its ElectionProof (lotus chain/types)."""

from typing import Annotated

from chain.encoding.multihash import blake2b_256
from chain.encoding.schema import Bytes, CborTuple, Int64, Name

VRFProof = Annotated[Bytes, Name("VRFProof")]


class Ticket(CborTuple):
    """A BLS VRF proof over the ticket randomness; tickets order blocks and break weight ties."""

    vrf_proof: VRFProof

    def digest(self) -> bytes:
        """blake2b-256 of the proof: tickets compare by these bytes (lotus Ticket.Less)."""
        return blake2b_256(self.vrf_proof)

    def less(self, other: "Ticket") -> bool:
        return self.digest() < other.digest()


class ElectionProof(CborTuple):
    """A BLS VRF proof over the election randomness and the number of wins it earned."""

    win_count: Int64
    vrf_proof: VRFProof
