"""The VRF outputs a block carries: its Ticket and its ElectionProof (lotus chain/types)."""

from dataclasses import dataclass
from typing import Any, Final

from chain.encoding.expect import expect_bytes, expect_int, expect_tuple
from chain.encoding.multihash import blake2b_256

# cbor-gen's ByteArrayMaxLen: the longest byte string lotus decodes into a []byte field.
MAX_BYTES_FIELD: Final = 2 << 20


@dataclass(frozen=True, slots=True)
class Ticket:
    """A BLS VRF proof over the ticket randomness; tickets order blocks and break weight ties."""

    vrf_proof: bytes

    def digest(self) -> bytes:
        """blake2b-256 of the proof: tickets compare by these bytes (lotus Ticket.Less)."""
        return blake2b_256(self.vrf_proof)

    def less(self, other: "Ticket") -> bool:
        return self.digest() < other.digest()

    def to_cbor(self) -> list[Any]:
        return [self.vrf_proof]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "Ticket") -> "Ticket":
        (proof,) = expect_tuple(raw, 1, what)
        return cls(expect_bytes(proof, f"{what}.VRFProof", max_len=MAX_BYTES_FIELD))


@dataclass(frozen=True, slots=True)
class ElectionProof:
    """A BLS VRF proof over the election randomness and the number of wins it earned."""

    win_count: int
    vrf_proof: bytes

    def to_cbor(self) -> list[Any]:
        return [self.win_count, self.vrf_proof]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "ElectionProof") -> "ElectionProof":
        win_count, proof = expect_tuple(raw, 2, what)
        return cls(
            expect_int(win_count, f"{what}.WinCount"),
            expect_bytes(proof, f"{what}.VRFProof", max_len=MAX_BYTES_FIELD),
        )
