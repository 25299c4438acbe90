"""Message receipts: what applying a message left behind (lotus chain/types/message_receipt*.go).

Two encodings exist: version 0 (before FIP-0049) is [ExitCode, Return, GasUsed]; version 1 adds
EventsRoot (the root of the message's event AMT, or null) as a fourth field. Decoding picks the version
from the field count; encoding writes the version the receipt was made with. The field count varying
with the version is why this codec is written by hand rather than declared (chain.encoding.schema).
"""

from dataclasses import dataclass
from typing import Any, Final

from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.encoding.expect import expect_bytes, expect_int, expect_optional_cid
from chain.encoding.schema import (
    DEFAULT_NETWORK,
    INT64_KIND,
    bytes_from_json,
    bytes_to_json,
    cid_from_json,
    cid_to_json,
    json_object,
)

# cbor-gen's ByteArrayMaxLen: the longest byte string lotus decodes into a []byte field.
MAX_RETURN_LENGTH: Final = 2 << 20
RECEIPT_V0: Final = 0
RECEIPT_V1: Final = 1
# Events AMTs use this bitwidth (lotus EventAMTBitwidth).
EVENT_AMT_BITWIDTH: Final = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReceipt:
    exit_code: int
    return_data: bytes = b""
    gas_used: int
    events_root: CID | None = None
    version: int = RECEIPT_V1

    def __post_init__(self) -> None:
        if self.version not in (RECEIPT_V0, RECEIPT_V1):
            raise ValueError(f"unknown receipt version {self.version}")
        if self.version == RECEIPT_V0 and self.events_root is not None:
            raise ValueError("a version 0 receipt cannot carry an events root")

    def to_cbor(self) -> list[Any]:
        fields: list[Any] = [self.exit_code, self.return_data, self.gas_used]
        if self.version == RECEIPT_V1:
            fields.append(self.events_root)
        return fields

    @classmethod
    def from_cbor(cls, raw: Any, what: str = "MessageReceipt") -> "MessageReceipt":
        if type(raw) is not list or len(raw) not in (3, 4):
            got = f"an array of {len(raw)} fields" if type(raw) is list else type(raw).__name__
            raise DecodeError(f"{what}: expected an array of 3 or 4 fields, got {got}")
        return cls(
            exit_code=expect_int(raw[0], f"{what}.ExitCode"),
            return_data=expect_bytes(raw[1], f"{what}.Return", max_len=MAX_RETURN_LENGTH),
            gas_used=expect_int(raw[2], f"{what}.GasUsed"),
            events_root=expect_optional_cid(raw[3], f"{what}.EventsRoot") if len(raw) == 4 else None,
            version=RECEIPT_V1 if len(raw) == 4 else RECEIPT_V0,
        )

    def to_json(self, network: str = DEFAULT_NETWORK) -> dict[str, Any]:
        return {
            "ExitCode": self.exit_code,
            "Return": bytes_to_json(self.return_data),
            "GasUsed": self.gas_used,
            "EventsRoot": None if self.events_root is None else cid_to_json(self.events_root),
        }

    @classmethod
    def from_json(cls, raw: Any, what: str = "MessageReceipt") -> "MessageReceipt":
        """Read a receipt; JSON does not carry the encoding version, so it comes back as version 1."""
        obj = json_object(raw, what)
        for key in ("ExitCode", "Return", "GasUsed"):
            if key not in obj:
                raise DecodeError(f"{what}: missing field {key!r}")
        events = obj.get("EventsRoot")
        return cls(
            exit_code=INT64_KIND.from_json(obj["ExitCode"], f"{what}.ExitCode"),
            return_data=bytes_from_json(obj["Return"], f"{what}.Return"),
            gas_used=INT64_KIND.from_json(obj["GasUsed"], f"{what}.GasUsed"),
            events_root=None if events is None else cid_from_json(events, f"{what}.EventsRoot"),
        )

    def to_bytes(self) -> bytes:
        return dagcbor.encode(self.to_cbor())

    @classmethod
    def from_bytes(cls, data: bytes) -> "MessageReceipt":
        return cls.from_cbor(dagcbor.decode(data))
