"""A CAR v1 read as bytes arrive (an HTTP body, a libp2p stream): push bytes in, take sections out.

The same limits and checks as chain/store/car.py's CarReader (header at most 32 MiB, a section at most
`max_section_size`, every CID parsed strictly), for a caller that cannot block on a `read`. Hashes are
not checked here: the DagVerifier checks each block against its CID and its place in the DAG.
"""

from typing import Final

from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.varint import MAX_VARINT_BYTES, decode_uvarint
from chain.store.car import MAX_HEADER_SIZE, CarHeader

DEFAULT_MAX_SECTION: Final = (2 << 20) + 128  # a 2 MiB block and its CID


class CarStreamParser:
    def __init__(self, *, max_section_size: int = DEFAULT_MAX_SECTION) -> None:
        self.max_section_size = max_section_size
        self.header: CarHeader | None = None
        self._buf = bytearray()
        self._offset = 0  # stream offset of _buf[0]
        self.sections = 0

    @property
    def roots(self) -> tuple[CID, ...]:
        if self.header is None:
            raise DecodeError("the CAR header has not arrived")
        return self.header.roots

    def _varint(self) -> tuple[int, int] | None:
        """(value, its length) at the start of the buffer, None while it is incomplete."""
        buf = self._buf
        for i in range(min(len(buf), MAX_VARINT_BYTES)):
            if buf[i] < 0x80:
                try:
                    value, end = decode_uvarint(bytes(buf[: i + 1]))
                except DecodeError as exc:
                    raise DecodeError(f"CAR at offset {self._offset}: {exc}") from None
                return value, end
        if len(buf) >= MAX_VARINT_BYTES:
            raise DecodeError(f"CAR at offset {self._offset}: varint longer than {MAX_VARINT_BYTES} bytes")
        return None

    def feed(self, data: bytes) -> list[tuple[CID, bytes]]:
        """The sections completed by data, in order."""
        self._buf += data
        out: list[tuple[CID, bytes]] = []
        while True:
            head = self._varint()
            if head is None:
                return out
            length, skip = head
            limit = MAX_HEADER_SIZE if self.header is None else self.max_section_size
            what = "CAR header" if self.header is None else f"CAR section {self.sections}"
            if length == 0:
                raise DecodeError(f"{what} at offset {self._offset} has zero length")
            if length > limit:
                raise DecodeError(f"{what} at offset {self._offset}: length {length} exceeds {limit} bytes")
            if len(self._buf) < skip + length:
                return out
            body = bytes(self._buf[skip : skip + length])
            del self._buf[: skip + length]
            start = self._offset
            self._offset += skip + length
            if self.header is None:
                try:
                    self.header = CarHeader.from_cbor(dagcbor.decode(body))
                except DecodeError as exc:
                    raise DecodeError(f"CAR header: {exc}") from None
                continue
            try:
                cid, end = CID.read(body, 0)
            except DecodeError as exc:
                raise DecodeError(
                    f"CAR section {self.sections} at offset {start}: invalid CID: {exc}"
                ) from None
            out.append((cid, body[end:]))
            self.sections += 1

    def close(self) -> None:
        """DecodeError if the stream stopped inside the header or a section."""
        if self.header is None:
            raise DecodeError("the CAR ended before its header was complete")
        if self._buf:
            raise DecodeError(
                f"the CAR ended inside section {self.sections} "
                f"({len(self._buf)} bytes of it at offset {self._offset})"
            )
