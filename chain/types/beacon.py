"""Drand beacon entries as block headers record them."""

from dataclasses import dataclass
from typing import Any, Final

from chain.encoding.expect import expect_bytes, expect_tuple, expect_uint

# cbor-gen's ByteArrayMaxLen: the longest byte string lotus decodes into a []byte field.
MAX_BYTES_FIELD: Final = 2 << 20


@dataclass(frozen=True, slots=True)
class BeaconEntry:
    """A drand round: its number and its signature (the randomness)."""

    round: int
    data: bytes

    def to_cbor(self) -> list[Any]:
        return [self.round, self.data]

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "BeaconEntry") -> "BeaconEntry":
        round_, data = expect_tuple(raw, 2, what)
        return cls(
            expect_uint(round_, f"{what}.Round"),
            expect_bytes(data, f"{what}.Data", max_len=MAX_BYTES_FIELD),
        )
